"""How much of an org's rate limit is ours, when other processes spend it too.

Every process using the same keys reads the same ``X-RateLimit-Remaining``. If
each spent all of it, all but the first would be answered 429. A :class:`Share`
watches a bucket's answers for spending that our own requests do not explain,
measures our part of the window, and turns it into how many requests may go.
"""

from __future__ import annotations

import math
from typing import Final

FIRST_WAVE: Final = 1
"""Requests in flight after a probe, at least, before the answers show whether others share.

One, not two: four processes starting together each sent a probe and two
more before any answer showed the others, and that first burst alone was
up to a tenth of a short job's requests answered 429."""
UNSEEN_SPLIT: Final = 16
"""Until others are measured, at most 1/16 of a window's Remaining is in flight at once.

Sixteen processes starting together then stay within what the window has
left, and a limit with room (hundreds per window, as Datadog's are) is not
slowed at all: 600 left allows 37 in flight, more than a client's default 16.
A short limit (20 per window) still goes one request at a time until its
answers show whether anyone else spends it."""
_MIN: Final = 0.05
_ALONE: Final = 0.95
"""A share above this means nobody else is spending the limit."""
_BACK_OFF: Final = 0.7
"""A 429 to a request sent on credit shrinks our share by this factor."""


class Share:
    """Our part of one limit: measured in each window, folded in at the next one."""

    __slots__ = ("_backed_off_at", "_now", "_past")

    def __init__(self) -> None:
        self._past: float | None = None  # from windows before this one
        self._now: float | None = None  # measured in this window so far
        self._backed_off_at = -math.inf

    @property
    def alone(self) -> bool:
        """True while nothing shows anyone else spending this limit."""
        return (self._past or 1.0) >= _ALONE

    def credit(
        self,
        room: int,
        limit: int,
        sent: int,
        probe: bool,
        *,
        base: int,
        in_flight: int,
    ) -> int:
        """How many more requests may go in this window (or now, while it is not measured).

        ``room`` is what the answers leave (Remaining less ours not yet counted),
        ``sent`` counts our requests since the window's first answer, ``probe``
        says whether that answer was to a probe of ours, ``base`` is the
        Remaining it reported and ``in_flight`` how many of ours await answers.
        """
        share = self._past
        if share is None:
            if self._now is not None and self._now < 1.0:
                share = self._now
            else:
                # Whether others spend this limit is not known yet. Keep a sixteenth
                # of what the window had in flight: as answers come back they show
                # whether others spend it too (then the share above applies), and a
                # window with room for far more than we can send is not slowed.
                return min(room, max(FIRST_WAVE, base // UNSEEN_SPLIT) - in_flight)
        if share >= 1.0:
            return room
        # Others spend the same budget: keep to our share of the window, so that the
        # first to wake does not take it all and the others' requests bounce. Our
        # share says how many spend it; everyone keeping to limit / that many fits.
        # At least one request beyond the probe, so the share is measured again.
        sharers = max(1, math.ceil(1 / share - 0.05))
        quota = max(FIRST_WAVE, limit // sharers)
        # And of what is left now: others read the same Remaining at the same time.
        return min(math.floor(room * share + 1e-9), quota - sent - (1 if probe else 0))

    def measure(self, ours: int, others: int, consumed: int) -> None:
        """Take one answer's account of the window: ``ours`` counted, ``others``' drop."""
        if others < 1:
            # Every drop in Remaining is explained by our own requests.
            if self._now is None:
                self._now = 1.0
        elif consumed > 0:
            # Of everything counted in this window, how much was ours: measured against
            # the whole window (limit - remaining), so a bucket that woke late is not
            # flattered.
            self._now = max(_MIN, min(1.0, ours / consumed))

    def next_window(self, *, rejected: bool, reset_at: float) -> None:
        """Fold this window's measurement in; ``rejected``: a request on credit got 429."""
        if self._now is not None:
            self._past = _fold(self._past, self._now)
        self._now = None
        if rejected and reset_at - self._backed_off_at > 0.5:
            # We spent more than was there: others spend it too, or more than we knew.
            # Once per window: the other answers of the same burst say the same thing.
            self._past = max(_MIN, (self._past or 1.0) * _BACK_OFF)
            self._backed_off_at = reset_at

    def __repr__(self) -> str:
        return f"Share(past={self._past}, now={self._now})"


def _fold(past: float | None, measured: float) -> float:
    """Quick to fall, slow to rise.

    A window's measurement runs high when others spend after our last answer
    (and under a sliding window, room coming back hides them), and every process
    overestimating its share is what makes 429s; so the share rises by a tenth
    per window, or by a quarter when nobody else was seen at all.
    """
    if past is None:
        return measured
    if measured >= 1.0:
        return min(1.0, past * 1.25 + 0.05)
    return min(measured, past * 1.1)
