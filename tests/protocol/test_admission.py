"""A connection's budgets, pacing and flood kick, pure, on a clock the test moves (protocol/admission.py)."""

from __future__ import annotations

import pytest

from tcp_server.protocol.admission import Admission, Verdict
from tcp_server.protocol.limits import CONTROL_BURST, AddressBuckets
from tcp_server.protocol.table import Budget


class Clock:
    """Seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def test_off_charges_nothing() -> None:
    admission = Admission(0.0, 1, 0.0)
    assert not admission.on
    assert all(admission.charge(Budget.MESSAGE, 0.0) is None for _ in range(1000))
    assert admission.pace() == 0.0


def test_burst_then_flood_then_refill() -> None:
    clock = Clock()
    admission = Admission(2.0, 3, clock.now)
    assert admission.on
    assert [admission.charge(Budget.MESSAGE, clock.now) for _ in range(4)] == [
        None, None, None, Verdict.FLOOD]
    assert admission.pace() == pytest.approx(0.5)  # one token at 2 a second
    assert admission.charge(Budget.MESSAGE, clock.advance(0.5)) is None
    assert admission.strikes == 0  # a frame that passes forgives the refusals before it


def test_kick_after_too_many_refusals_in_a_row() -> None:
    clock = Clock()
    admission = Admission(1.0, 1, clock.now, kick_after=2)
    assert admission.charge(Budget.MESSAGE, clock.now) is None
    verdicts = [admission.charge(Budget.MESSAGE, clock.now) for _ in range(3)]
    assert verdicts == [Verdict.FLOOD, Verdict.FLOOD, Verdict.KICK]


def test_budgets_are_apart() -> None:
    clock = Clock()
    admission = Admission(1.0, 1, clock.now, search_rate=1.0, search_burst=1)
    assert admission.charge(Budget.MESSAGE, clock.now) is None
    assert admission.charge(Budget.MESSAGE, clock.now) is Verdict.FLOOD
    # Pings still pass: the control budget is its own, and generous.
    assert [admission.charge(Budget.CONTROL, clock.now) for _ in range(CONTROL_BURST)] == [None] * CONTROL_BURST
    assert admission.charge(Budget.CONTROL, clock.now) is Verdict.FLOOD
    assert admission.charge(Budget.SEARCH, clock.now) is None
    assert admission.charge(Budget.SEARCH, clock.now) is Verdict.FLOOD


def test_no_search_budget_means_searches_pass() -> None:
    admission = Admission(1.0, 1, 0.0, search_rate=0.0)
    assert all(admission.charge(Budget.SEARCH, 0.0) is None for _ in range(5))


def test_address_budget_is_shared_by_its_connections() -> None:
    clock = Clock()
    shared = AddressBuckets(rate=1.0, burst=2)
    one = Admission(10.0, 10, clock.now, shared=shared, key="203.0.113.7")
    two = Admission(10.0, 10, clock.now, shared=shared, key="203.0.113.7")
    assert one.charge(Budget.MESSAGE, clock.now) is None
    assert two.charge(Budget.MESSAGE, clock.now) is None
    assert two.charge(Budget.MESSAGE, clock.now) is Verdict.FLOOD  # its own bucket is full; the address's is not
    assert one.charge(Budget.CONTROL, clock.now) is None  # only messages are shared


def test_over_limit_grace_lets_only_control_frames_through() -> None:
    clock = Clock()
    admission = Admission(0.0, 1, clock.now)
    admission.hold()
    assert admission.on
    assert admission.charge(Budget.CONTROL, clock.now) is None
    assert admission.charge(Budget.MESSAGE, clock.now) is Verdict.BUSY
    admission.rehome("198.51.100.4")
    assert not admission.on  # flood control off: nothing to charge once the gateway named the user
    assert admission.key == "198.51.100.4"


def test_pace_waits_for_the_slowest_needed_bucket() -> None:
    clock = Clock()
    admission = Admission(4.0, 1, clock.now)
    assert admission.pace() == 0.0
    admission.charge(Budget.MESSAGE, clock.now)
    assert admission.pace() == pytest.approx(0.25)
    clock.advance(0.25)
    assert admission.charge(Budget.MESSAGE, clock.now) is None
