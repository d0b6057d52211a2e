"""The share of a limit a bucket takes when other processes spend it too (no I/O)."""

from __future__ import annotations

from llmobs_async._ratelimit.share import FIRST_WAVE, Share


def test_while_unknown_a_sixteenth_of_the_window_is_in_flight() -> None:
    share = Share()
    # A short window: one request at a time after the probe, until the answers tell.
    assert credit(share, room=19, limit=20, sent=0, base=19, in_flight=0) == FIRST_WAVE
    assert credit(share, room=18, limit=20, sent=1, base=19, in_flight=1) == 0
    # A window with room: 599 // 16 = 37 in flight, far more than a client's 16.
    assert credit(share, room=599, limit=600, sent=0, base=599, in_flight=0) == 37
    assert credit(share, room=583, limit=600, sent=16, base=599, in_flight=16) == 21
    share.measure(ours=21, others=0, consumed=21)  # nobody else seen: the same
    assert credit(share, room=570, limit=600, sent=30, base=599, in_flight=10) == 27
    share.measure(ours=20, others=20, consumed=40)  # others seen: half the window, ours
    assert credit(share, room=558, limit=600, sent=30, base=599, in_flight=10) == 269


def credit(share: Share, *, room: int, limit: int, sent: int, base: int, in_flight: int) -> int:
    """``share.credit`` after a probe of ours."""
    return share.credit(room, limit, sent, True, base=base, in_flight=in_flight)


def test_seen_alone_the_whole_room_is_spent() -> None:
    share = Share()
    share.measure(ours=20, others=0, consumed=20)
    share.next_window(rejected=False, reset_at=2.0)
    assert share.alone
    assert share.credit(19, 20, 0, True, base=19, in_flight=0) == 19


def test_sharing_keeps_to_the_window_divided_by_the_sharers() -> None:
    share = Share()
    share.measure(ours=5, others=15, consumed=20)  # a quarter of the window was ours
    share.next_window(rejected=False, reset_at=2.0)
    assert not share.alone
    # limit 20 / 4 sharers = 5 a window, the probe included; and a quarter of the room.
    assert share.credit(19, 20, 0, True, base=19, in_flight=0) == 4
    assert share.credit(8, 20, 0, True, base=8, in_flight=0) == 2
    assert share.credit(19, 20, 4, True, base=19, in_flight=0) == 0


def test_the_share_falls_at_once_rises_slowly_and_backs_off_once_per_window() -> None:
    share = Share()
    share.measure(ours=10, others=10, consumed=20)
    share.next_window(rejected=False, reset_at=2.0)
    share.measure(ours=5, others=15, consumed=20)
    share.next_window(rejected=False, reset_at=4.0)
    quarter = share.credit(20, 20, 0, False, base=20, in_flight=0)
    assert quarter == 5  # fell to the new measurement at once
    share.measure(ours=20, others=0, consumed=20)  # nobody else seen
    share.next_window(rejected=False, reset_at=6.0)
    assert not share.alone  # but it climbs back over several windows
    climbed = share.credit(20, 20, 0, False, base=20, in_flight=0)
    assert climbed > quarter
    share.next_window(rejected=True, reset_at=8.0)
    after_one = share.credit(20, 20, 0, False, base=20, in_flight=0)
    assert after_one < climbed
    share.next_window(rejected=True, reset_at=8.1)  # the same window's other 429s
    assert share.credit(20, 20, 0, False, base=20, in_flight=0) == after_one
