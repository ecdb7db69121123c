"""What one connection may send, and how fast: its budgets, pacing and the flood kick, pure.

Every client frame costs a token of the budget its table entry names (:class:`~.table.Budget`); a
message also costs one of its address's shared budget, so that more sockets do not mean more rate.
:meth:`Admission.charge` says what to do with the frame, :meth:`Admission.pace` how long reading
should rest; the server's shell carries both out (it owns the socket and the timers). The caller
passes the clock, as everywhere in the core.
"""

from __future__ import annotations

from enum import Enum, auto

from .limits import CONTROL_BURST, CONTROL_RATE, AddressBuckets, TokenBucket
from .table import Budget


class Verdict(Enum):
    """Why one frame is refused (:meth:`Admission.charge` answers None for a frame to handle)."""

    FLOOD = auto()
    """Over a budget: not handled; the peer hears ``109#flood`` and may go on."""
    KICK = auto()
    """Over a budget once too often in a row: the connection is dropped for flooding."""
    BUSY = auto()
    """Over its address's connection limit and not (yet) a gateway: refused, closed."""


_MESSAGE = Budget.MESSAGE
_CONTROL = Budget.CONTROL
_SEARCH = Budget.SEARCH


class Admission:
    """One connection's budgets (flood, control, search) and its strikes.

    ``on`` is False while there is nothing to charge (flood control off, no over-limit grace): the
    shell then skips :meth:`charge` altogether, with no call per frame.
    """

    __slots__ = ("message", "control", "search", "shared", "key", "strikes", "kick_after", "over_limit", "on")

    def __init__(self, flood_rate: float, flood_burst: int, now: float, *, kick_after: int = 100,
                 search_rate: float = 0.0, search_burst: int = 1, shared: AddressBuckets | None = None,
                 key: str = "") -> None:
        on = flood_rate > 0
        self.message = TokenBucket(flood_rate, flood_burst, now) if on else None
        self.control = TokenBucket(CONTROL_RATE, CONTROL_BURST, now) if on else None
        self.search = TokenBucket(search_rate, search_burst, now) if on and search_rate > 0 else None
        self.shared = shared  # the address's message budget, shared by all its connections
        self.key = key  # the address's key in ``shared`` (IPv6: its /64)
        self.strikes = 0  # refusals in a row
        self.kick_after = kick_after
        self.over_limit = False
        self.on = on

    def hold(self) -> None:
        """Over the address's connection limit, in a gateway's grace: only control frames (000, 007)
        pass until the gateway names the real user (:meth:`rehome`)."""
        self.over_limit = self.on = True

    def rehome(self, key: str) -> None:
        """A trusted gateway named the real user: the shared budget is that address's from now on."""
        self.key = key
        self.over_limit = False
        self.on = self.message is not None

    def charge(self, budget: Budget | None, now: float) -> Verdict | None:
        """Spend a token of ``budget`` (and for a message, one of the address's) for one frame: None
        when it may be handled, else why not. (Per frame: the budgets are module constants, since an
        enum member's lookup costs as much as a bucket's arithmetic.)"""
        if self.over_limit:
            return None if budget is _CONTROL else Verdict.BUSY
        if budget is _MESSAGE:
            bucket = self.message
            shared = self.shared
        else:
            bucket = self.search if budget is _SEARCH else self.control
            shared = None
        if bucket is None:
            return None
        if not bucket.take(now) or (shared is not None and not shared.take(self.key, now)):
            self.strikes += 1
            return Verdict.KICK if self.strikes > self.kick_after else Verdict.FLOOD
        self.strikes = 0
        return None

    def pace(self) -> float:
        """Seconds reading should rest so that the next frame finds a token (0: read on). What the peer
        sends meanwhile waits in its own socket buffer, not in ours."""
        wait = 0.0
        for bucket in (self.message, self.control):
            if bucket is not None and bucket.tokens < 1.0:
                wait = max(wait, bucket.wait_time())
        return wait
