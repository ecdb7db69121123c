"""A connection at the door: its place in its address's counts, a gateway's grace, the join deadline.

Counted when accepted (on every listener, before a TLS handshake): over its address's limits it is
refused, unless a gateway secret is configured and it may yet be that gateway, about to name the
real user with ``000`` (then it waits :data:`GATEWAY_GRACE`, only control frames passing). A
base class of :class:`tcp_server.connection.ChatConnection`, between its output and its flow.
"""

from __future__ import annotations

import asyncio

from .outbound import Outbound
from .protocol.admission import Admission
from .protocol.codes import ErrorReason
from .protocol.limits import address_key

GATEWAY_GRACE = 2.0
"""A connection over its per-address limit may still be a trusted gateway about to name the real
user with ``000``; where a gateway secret is configured it gets this long to do so."""
GRACE_MAX = 64
"""Connections held in that grace at once; past it, over-limit connections are refused at once."""


class Door(Outbound):
    """The address limits' side of a connection."""

    __slots__ = ("admission", "counted_address", "in_grace", "timer")

    admission: Admission
    counted_address: str | None  # the address key this connection is counted under
    in_grace: bool  # over its address's limit, waiting for a gateway's 000
    timer: asyncio.TimerHandle | None  # the join deadline (or the grace's end)

    def count_address(self, address: str) -> None:
        """Count the connection under ``address`` (a gateway's over-limit grace, or refused when over)."""
        node = self.node
        cfg = node.config
        self.admission.key = key = address_key(address, cfg.ipv6_prefix)
        if node.address_limits.admit(key, node.loop.time()):
            self.counted_address = key
            self.timer = node.loop.call_later(cfg.join_timeout, self._join_timeout)
        elif cfg.gateway_secret and node.in_grace < GRACE_MAX:
            self.in_grace = True
            self.admission.hold()
            node.in_grace += 1
            self.timer = node.loop.call_later(GATEWAY_GRACE, self.refuse_busy)
        else:
            self.refuse_busy()

    def rehome(self, real_address: str) -> None:
        """A trusted gateway named the real user: count limits on that address."""
        node = self.node
        now = node.loop.time()
        if self.counted_address is not None:
            # The gateway's host is not this user: its count, this minute's included, goes back.
            node.address_limits.release(self.counted_address, now, refund=True)
            self.counted_address = None
        self.end_grace()
        self.entered()
        key = address_key(real_address, node.config.ipv6_prefix)
        self.admission.rehome(key)
        if not node.address_limits.admit(key, now):
            self.refuse(ErrorReason.ADDRESS_LIMIT, "too many connections from your address")
            return
        self.counted_address = key
        self.timer = node.loop.call_later(node.config.join_timeout, self._join_timeout)

    def uncount(self) -> None:
        """Gone: its place in its address's counts is free again."""
        self.end_grace()
        self.entered()
        if self.counted_address is not None:
            self.node.address_limits.release(self.counted_address, self.node.loop.time())
            self.counted_address = None

    def entered(self) -> None:
        """In the room (or gone): the join deadline is off."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def end_grace(self) -> None:
        if self.in_grace:
            self.in_grace = False
            self.node.in_grace -= 1

    def _join_timeout(self) -> None:
        self.timer = None
        if not self.session.joined and not self.closing:
            self.refuse(ErrorReason.NOT_JOINED, "join deadline passed")

    def refuse_busy(self) -> None:
        self.timer = None
        self.end_grace()
        if not self.closing:
            self.refuse(ErrorReason.ADDRESS_LIMIT, "too many connections from your address")
