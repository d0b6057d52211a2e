"""The share of a limit a bucket takes when other processes spend it too (no I/O)."""

from __future__ import annotations

from llmobs_async._share import FIRST_WAVE, Share


def test_while_unknown_requests_go_in_measured_waves_that_double() -> None:
    share = Share()
    # After the probe: a first wave, then nothing until all of it is answered.
    assert share.credit(room=19, limit=20, sent=0, answered=0, probe=True) == FIRST_WAVE
    assert share.credit(room=17, limit=20, sent=2, answered=1, probe=True) == 0
    share.measure(ours=3, others=0, consumed=3)
    # Alone so far: the next wave doubles.
    assert share.credit(room=17, limit=20, sent=2, answered=2, probe=True) == 2
    assert share.credit(room=15, limit=20, sent=4, answered=4, probe=True) == 4


def test_seen_alone_the_whole_room_is_spent() -> None:
    share = Share()
    share.measure(ours=20, others=0, consumed=20)
    share.next_window(rejected=False, reset_at=2.0)
    assert share.alone
    assert share.credit(room=19, limit=20, sent=0, answered=0, probe=True) == 19


def test_sharing_keeps_to_the_window_divided_by_the_sharers() -> None:
    share = Share()
    share.measure(ours=5, others=15, consumed=20)  # a quarter of the window was ours
    share.next_window(rejected=False, reset_at=2.0)
    assert not share.alone
    # limit 20 / 4 sharers = 5 a window, the probe included; and a quarter of the room.
    assert share.credit(room=19, limit=20, sent=0, answered=0, probe=True) == 4
    assert share.credit(room=8, limit=20, sent=0, answered=0, probe=True) == 2
    assert share.credit(room=19, limit=20, sent=4, answered=4, probe=True) == 0


def test_the_share_falls_at_once_rises_slowly_and_backs_off_once_per_window() -> None:
    share = Share()
    share.measure(ours=10, others=10, consumed=20)
    share.next_window(rejected=False, reset_at=2.0)
    share.measure(ours=5, others=15, consumed=20)
    share.next_window(rejected=False, reset_at=4.0)
    quarter = share.credit(room=20, limit=20, sent=0, answered=0, probe=False)
    assert quarter == 5  # fell to the new measurement at once
    share.measure(ours=20, others=0, consumed=20)  # nobody else seen
    share.next_window(rejected=False, reset_at=6.0)
    assert not share.alone  # but it climbs back over several windows
    climbed = share.credit(room=20, limit=20, sent=0, answered=0, probe=False)
    assert climbed > quarter
    share.next_window(rejected=True, reset_at=8.0)
    after_one = share.credit(room=20, limit=20, sent=0, answered=0, probe=False)
    assert after_one < climbed
    share.next_window(rejected=True, reset_at=8.1)  # the same window's other 429s
    assert share.credit(room=20, limit=20, sent=0, answered=0, probe=False) == after_one
