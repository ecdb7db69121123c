"""Several chat-server nodes behind one gateway (``--server A:9000,B:9000``): whom a new user goes to.

Least-connected among the servers not known to be down; a server that refused a
connection is skipped for ``DOWN_SECONDS`` (tried last, not never: when all are
down, the least recently failed is still tried), so a gateway keeps working while
one node restarts. With one server this is just that server.
"""

from __future__ import annotations

from collections.abc import Callable

from tcp_server.protocol.codes import ErrorReason

Address = tuple[str, int]

DOWN_SECONDS = 10.0
SERVER_WIDE_REFUSALS = frozenset({ErrorReason.BUSY, ErrorReason.SHUTDOWN, ErrorReason.UNAVAILABLE,
                                  ErrorReason.INTERNAL, ErrorReason.FORBIDDEN})
"""Refusals of anyone this gateway sends there (full, stopping, its room unreachable, our secret refused):
that server is skipped a while. Any other refusal (``address-limit``, ``flood``, a join timeout) was aimed
at one user, and must not steer everyone else to another server."""


def marks_down(closed_by_server: bool, error: bool, refusal: str | None) -> bool:
    """Whether a backend connection that ended before its user joined says its server is down: a connection
    failure (``error``), or the server closing with a server-wide refusal or with none at all."""
    if error:
        return True
    return closed_by_server and (refusal is None or refusal in SERVER_WIDE_REFUSALS)


class BackendPool:
    """Open backend connections per server, and which servers failed lately."""

    def __init__(self, servers: tuple[Address, ...], clock: Callable[[], float]) -> None:
        assert servers, "at least one server"
        self.servers = servers
        self.clock = clock
        self.open: dict[Address, int] = dict.fromkeys(servers, 0)
        self.failed_at: dict[Address, float] = {}

    def order(self) -> list[Address]:
        """Servers to try, best first: up ones by fewest connections, then down ones by oldest failure."""
        now = self.clock()
        up = [s for s in self.servers if now - self.failed_at.get(s, float("-inf")) >= DOWN_SECONDS]
        down = sorted((s for s in self.servers if s not in up), key=lambda s: self.failed_at[s])
        return sorted(up, key=lambda s: self.open[s]) + down

    def opened(self, server: Address) -> None:
        self.open[server] += 1
        self.failed_at.pop(server, None)

    def closed(self, server: Address) -> None:
        self.open[server] = max(0, self.open[server] - 1)

    def failed(self, server: Address) -> None:
        self.failed_at[server] = self.clock()
