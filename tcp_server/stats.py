"""The server's numbers for Prometheus, kept so that counting costs the hot path nothing.

The server increments plain ints and dicts on :class:`ServerStats` once per
flush or per event (never per delivery); no prometheus-client call happens
while serving. :class:`ServerCollector` turns them into metric families when
Prometheus scrapes, and reads what the server already keeps (its connections,
the room) at that moment instead of counting it.

Histograms are :class:`Buckets`: an observation is one C bisect and two
additions; the cumulative buckets are made at scrape time.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from .protocol.codes import ClientCode, ErrorReason


class Scraped(Protocol):
    """What the collector asks a server node when Prometheus scrapes (no import of the server: no cycle)."""

    @property
    def stats(self) -> ServerStats: ...

    def connections_by_kind(self) -> dict[str, int]:
        """Open connections by PORT_KINDS."""

    def users_online(self) -> int:
        """Users joined on this node."""

    def sessions_parked(self) -> int:
        """Dropped sessions this node keeps for a resume."""

LEAVE_CAUSES = ("quit", "drop", "kick", "flood", "slow_reader", "shutdown")
"""Why a joined user left: 004, the connection went away, an admin kick, flooding, a reader too slow, shutdown."""
PORT_KINDS = ("line", "tls", "legacy")

FLUSH_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
REDIS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

LOOP_LAG_INTERVAL = 0.25
"""Seconds between the loop-lag timer's ticks."""


class Buckets:
    """A histogram as plain counts: ``counts[i]`` holds the observations in (bounds[i-1], bounds[i]]."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        """Cumulative ``le`` buckets, as Prometheus wants them."""
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=self.total)


class ServerStats:
    """Counters the server bumps; see the hook methods for when.

    The server may also increment the attributes directly where a method call
    would show in a profile (they are plain ints and dicts). Wired today:
    ``joins`` (ChatServer.log_connected); connections and users online are read
    at scrape time. For the reshaped server to wire (one line each):

    - ``left(cause)``: where a joined user goes (004: quit; connection_lost:
      drop; an admin kick: kick; _flooding's drop: flood; overflow: slow_reader;
      close(): shutdown);
    - ``read(nbytes, frames)``: per read in data_received, frames counted by
      code from the decoded batch (or ``frames_in[code] += 1`` in the session);
    - ``flushed(cost, deliveries, nbytes)``: once at the end of ``_flush``, with
      the sum of the members' writes (``len(members) * len(log)`` frames and
      ``len(members) * len(shared)`` bytes for the shared part: no per-member work);
    - ``error_sent(reason)`` where a 109 is encoded; ``slow_reader_dropped()``
      in overflow; ``flood_refused()`` in _flooding;
    - with ``--redis``: ``redis_round_trip_seconds.observe``,
      ``bus_lag_seconds.observe``, ``nodes``.
    """

    __slots__ = (
        "joins", "resumes", "leaves", "frames_in", "deliveries", "bytes_in", "bytes_out", "errors",
        "slow_reader_drops", "flood_refusals", "flush_seconds", "loop_lag_seconds",
        "redis_round_trip_seconds", "bus_lag_seconds", "nodes", "history_write_failures", "history_dropped",
        "logins", "login_failures", "lockouts", "registrations",
    )

    def __init__(self) -> None:
        self.joins = 0
        self.resumes = 0  # sessions taken back with 008
        self.leaves: dict[str, int] = dict.fromkeys(LEAVE_CAUSES, 0)
        self.frames_in: dict[str, int] = dict.fromkeys(map(str, ClientCode), 0)
        self.deliveries = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.errors: dict[str, int] = dict.fromkeys(map(str, ErrorReason), 0)
        self.slow_reader_drops = 0
        self.flood_refusals = 0
        self.flush_seconds = Buckets(FLUSH_BUCKETS)
        self.loop_lag_seconds = Buckets(LAG_BUCKETS)
        # Fed by the Redis room (--redis) when there is one; a single node otherwise.
        self.redis_round_trip_seconds = Buckets(REDIS_BUCKETS)
        self.bus_lag_seconds = Buckets(LAG_BUCKETS)
        self.nodes = 1
        # The durable history (--database): failed batch writes, and messages an outage's bound let go unstored.
        self.history_write_failures = 0
        self.history_dropped = 0
        # Accounts: logins that succeeded and failed (bad-login), lockouts started by scope, 019 registrations.
        self.logins = 0
        self.login_failures = 0
        self.lockouts: dict[str, int] = {"account-address": 0, "address": 0, "account": 0}
        self.registrations = 0

    # ------------------------------------------------------------ hooks for the server

    def joined(self) -> None:
        """A user joined (100 sent)."""
        self.joins += 1

    def left(self, cause: str) -> None:
        """A joined user left; ``cause`` is one of LEAVE_CAUSES."""
        self.leaves[cause] = self.leaves.get(cause, 0) + 1

    def read(self, nbytes: int, frames: dict[str, int] | None = None) -> None:
        """One read: its size and, when counted, its frames by code."""
        self.bytes_in += nbytes
        if frames:
            for code, n in frames.items():
                self.frames_in[code] = self.frames_in.get(code, 0) + n

    def flushed(self, seconds: float, deliveries: int, nbytes: int) -> None:
        """One flush: how long it took, frames delivered in all, bytes written in all."""
        self.flush_seconds.observe(seconds)
        self.deliveries += deliveries
        self.bytes_out += nbytes

    def error_sent(self, reason: str) -> None:
        """A 109 went out with ``reason``."""
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def slow_reader_dropped(self) -> None:
        self.slow_reader_drops += 1

    def flood_refused(self) -> None:
        """A frame refused with 109#flood (the drop for flooding is a leave with cause ``flood``)."""
        self.flood_refusals += 1


class LoopLagMonitor:
    """How late a periodic timer fires: the time every callback waits behind the others."""

    def __init__(self, buckets: Buckets, interval: float = LOOP_LAG_INTERVAL) -> None:
        self.buckets = buckets
        self.interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.buckets.observe(max(0.0, now - self._due))
        self._due = now + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def build_info(program: str) -> GaugeMetricFamily:
    """``hanchat_build_info{program, version} 1``: which program and version answer at this address."""
    from . import __version__

    family = GaugeMetricFamily("hanchat_build_info", "Always 1: the program and its version",
                               labels=["program", "version"])
    family.add_metric([program, __version__], 1)
    return family


def _labelled(family: CounterMetricFamily | GaugeMetricFamily, values: dict[str, int]) -> Metric:
    for label, value in values.items():
        family.add_metric([label], value)
    return family


class ServerCollector:
    """Reads a :class:`ChatServer` and its :class:`ServerStats` when Prometheus scrapes."""

    def __init__(self, server: Scraped) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        s: ServerStats = server.stats
        yield build_info("server")
        yield _labelled(GaugeMetricFamily("hanchat_connections_open", "TCP connections open, by port kind",
                                          labels=["kind"]), server.connections_by_kind())
        yield GaugeMetricFamily("hanchat_users_online", "Users joined to the room on this node",
                                value=server.users_online())
        yield CounterMetricFamily("hanchat_joins", "Users who joined", value=s.joins)
        yield CounterMetricFamily("hanchat_resumes", "Sessions taken back with 008 (a reload, a reconnect)",
                                  value=s.resumes)
        yield CounterMetricFamily("hanchat_logins", "Logins with a right password (018)", value=s.logins)
        yield CounterMetricFamily("hanchat_login_failures", "Logins refused as bad-login (wrong password or "
                                  "no such account)", value=s.login_failures)
        yield _labelled(CounterMetricFamily("hanchat_login_lockouts", "Guessing lockouts started, by what they "
                                            "count", labels=["scope"]), s.lockouts)
        yield CounterMetricFamily("hanchat_registrations", "IDs registered with 019", value=s.registrations)
        yield GaugeMetricFamily("hanchat_sessions_parked", "Dropped sessions this node keeps for a resume",
                                value=server.sessions_parked())
        yield _labelled(CounterMetricFamily("hanchat_leaves", "Joined users who left, by cause",
                                            labels=["cause"]), s.leaves)
        yield _labelled(CounterMetricFamily("hanchat_frames_in", "Frames read from clients, by code",
                                            labels=["code"]), s.frames_in)
        yield CounterMetricFamily("hanchat_deliveries", "Frames written to clients", value=s.deliveries)
        yield CounterMetricFamily("hanchat_bytes_in", "Bytes read from clients", value=s.bytes_in)
        yield CounterMetricFamily("hanchat_bytes_out", "Bytes written to clients", value=s.bytes_out)
        yield _labelled(CounterMetricFamily("hanchat_errors_sent", "109 frames sent, by reason",
                                            labels=["reason"]), s.errors)
        yield CounterMetricFamily("hanchat_slow_reader_drops", "Connections dropped for an output queue over "
                                  "--max-queue", value=s.slow_reader_drops)
        yield CounterMetricFamily("hanchat_flood_refusals", "Frames refused with 109#flood", value=s.flood_refusals)
        yield s.flush_seconds.family("hanchat_flush_duration_seconds", "Time one fan-out flush took")
        yield s.loop_lag_seconds.family("hanchat_loop_lag_seconds", "How late a periodic event-loop timer fired")
        yield s.redis_round_trip_seconds.family("hanchat_redis_round_trip_seconds",
                                                "Redis command round trip (--redis)")
        yield s.bus_lag_seconds.family("hanchat_bus_lag_seconds",
                                       "Publish-to-receive delay of the Redis message bus (--redis)")
        yield GaugeMetricFamily("hanchat_nodes", "Chat server nodes sharing the room", value=s.nodes)
        yield CounterMetricFamily("hanchat_history_write_failures", "Batches the history database failed to "
                                  "commit (--database)", value=s.history_write_failures)
        yield CounterMetricFamily("hanchat_history_dropped", "Messages not stored: the history database was "
                                  "down longer than the waiting bound", value=s.history_dropped)
