"""The asyncio TCP server node: its listeners, its connections, and the room seam it is wired to."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .admin import AdminServer, SharedRoom, load_bans
from .config import ServerConfig
from .connection import ChatConnection, set_keepalive
from .joiner import Joiner
from .local_room import LocalRoom, Numbered
from .protocol.codes import ErrorReason
from .protocol.encoders import LEGACY
from .protocol.frames import Error, UserLeft
from .protocol.ids import prepare as prepare_ids
from .protocol.limits import AddressBuckets, AddressLimits
from .protocol.moderation import Moderation
from .protocol.texts import text
from .room import (
    Bus,
    Directory,
    InMemoryBus,
    InMemoryDirectory,
    InMemoryHistory,
    InMemorySessionStore,
    RecentHistory,
    SessionStore,
)
from .stats import PORT_KINDS, ServerStats
from .store.urls import parse_database
from .tls import ServerTLS

if TYPE_CHECKING:
    from .accounts.service import Accounts
    from .metrics_http import ServerMetrics
    from .store.db import MessageStore
    from .store.gate import StoreGate

log = logging.getLogger("tcp_server")

ACCEPT_RETRY = 1.0
"""Seconds the TLS port waits after a failed accept (out of file descriptors) before the next."""
RETENTION_INTERVAL = 3600.0
"""Seconds between two retention passes over the stored history."""
RETENTION_BATCH = 1000
RETENTION_TIMEOUT = 30.0


class ChatServer:
    """One node of the chat room: the line port and, optionally, the legacy port.

    The room itself is behind the seam (``directory`` + ``bus``): in memory by
    default, shared between nodes when another implementation is passed in.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        directory: Directory | None = None,
        bus: Bus | None = None,
        history: RecentHistory | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.config = cfg = config or ServerConfig()
        self.directory: Directory = directory if directory is not None else InMemoryDirectory()
        self.bus: Bus = bus if bus is not None else InMemoryBus()
        if history is None and cfg.history > 0:
            history = InMemoryHistory(cfg.history, cfg.history_max_bytes)
        self.history = history
        if sessions is None and cfg.resume_grace > 0:
            sessions = InMemorySessionStore(cfg.resume_grace, cfg.resume_max_frames, cfg.resume_max_bytes)
        if sessions is not None:
            sessions.on_expire = self._session_expired
        self.sessions = sessions
        self.connections: set[ChatConnection] = set()
        self.address_limits = AddressLimits(self.config.max_per_address, self.config.max_new_per_minute)
        cfg = self.config
        self.address_buckets = (AddressBuckets(cfg.address_flood_rate, cfg.address_flood_burst)
                                if cfg.address_flood_rate > 0 and cfg.flood_rate > 0 else None)
        self.closing = False
        self.in_grace = 0  # connections over their address's limit waiting for a gateway's 000
        self._room: LocalRoom | None = None
        self._joiner: Joiner | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._tls_listeners: list[socket.socket] = []  # the TLS port's sockets; this node accepts on them
        self._tls_accepting: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port: int = 0
        self.legacy_port: int | None = None
        self._drained = asyncio.Event()  # set when closing and the last connection is gone
        self._sweeper: asyncio.TimerHandle | None = None
        self.stats = ServerStats()  # plain counters; read at scrape time (tcp_server/stats.py)
        self.moderation = Moderation(time.time)  # bans and mutes (chat-admin); bans kept in --bans-file
        self.admin: AdminServer | None = None
        self.shared: SharedRoom | None = None  # the room beyond this node, for chat-admin (set with --redis)
        self.tls: ServerTLS | None = None  # the TLS port's context; reload() on SIGHUP
        self.tls_port: int | None = None
        self.metrics: ServerMetrics | None = None
        self.store: MessageStore | None = None  # the durable history (--database other than memory)
        self.cursor_key: bytes | None = None  # signs 016's cursors; from the database (every node, every restart)
        self.gate: StoreGate | None = None  # the bus's subscriber in front of the room when there is a store
        self.accounts: Accounts | None = None  # 018-020, with a durable database only
        self._registry_task: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    @property
    def room(self) -> LocalRoom:
        assert self._room is not None, "server not started"
        return self._room

    @property
    def joiner(self) -> Joiner:
        assert self._joiner is not None, "server not started"
        return self._joiner

    # ------------------------------------------------------------ start/stop

    async def start(self) -> None:
        """Listen and serve; a failure part-way (a port in use, an admin socket path that is not ours)
        closes what was started, then raises."""
        try:
            await self._start()
        except BaseException:
            await self.close(timeout=1.0)
            raise

    async def _start(self) -> None:
        prepare_ids()  # the first join should not wait for the Unicode tables to load
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        if parse_database(cfg.database).durable:
            await self._open_store()
            await self._open_accounts()
        self._room = LocalRoom(self._loop, self.stats, self.history, self.sessions)
        if self.accounts is not None:
            self.accounts.registry.registered_online = self._room.account_registered
        if self.store is not None:
            from .store.gate import LOBBY, StoredWindow, StoreGate, group_commit_for

            assert isinstance(self.history, StoredWindow)
            self.gate = StoreGate(self._room, self.store, self.history, LOBBY, self.stats, cfg.lang,
                                  group_commit=group_commit_for(parse_database(cfg.database).kind,
                                                                cfg.group_commit_ms))
            self.bus.subscribe(self.gate)
            if cfg.history_days > 0 or cfg.history_max > 0:
                self._retention = self._loop.create_task(self._retain(), name="history-retention")
        else:
            self.bus.subscribe(self._room)
        self._joiner = Joiner(self._room, self.directory, self.sessions, self.history, self.stats,
                              oldest_seq=self.oldest_seq, joined=self.log_connected,
                              learn=self.accounts.registry.learn if self.accounts is not None else None,
                              resume_max_frames=cfg.resume_max_frames)
        self.port = await self._listen(lambda: ChatConnection(self), cfg.port, backlog=1024)
        if cfg.legacy_port is not None:
            self.legacy_port = await self._listen(lambda: ChatConnection(self, legacy=True), cfg.legacy_port)
        if cfg.tls_port is not None and cfg.tls_cert and cfg.tls_key:
            self.tls = ServerTLS(cfg.tls_cert, cfg.tls_key)
            self.tls_port = self._listen_tls(cfg.tls_port)
        if cfg.metrics_port is not None:
            from .metrics_http import ServerMetrics  # local: aiohttp and prometheus-client only when asked for

            self.metrics = ServerMetrics(self)
            await self.metrics.start(cfg.metrics_host, cfg.metrics_port)
        if cfg.bans_file:
            count = load_bans(cfg.bans_file, self.moderation)
            log.info("%d ban(s) in force from %s", count, cfg.bans_file)
        if cfg.admin_socket:
            admin = AdminServer(self, cfg.admin_socket, cfg.admin_socket_mode, cfg.bans_file)
            await admin.start()
            self.admin = admin
        self._sweeper = self._loop.call_later(AddressLimits.WINDOW, self._sweep)
        log.info("chat server listening on %s:%d%s%s", cfg.host, self.port,
                 f" (legacy port {self.legacy_port})" if self.legacy_port is not None else "",
                 f" (TLS port {self.tls_port})" if self.tls_port is not None else "")

    async def _open_store(self) -> None:
        """Open (and migrate) the database; the room's window of recent messages comes from it."""
        from .store.db import MessageStore
        from .store.gate import LOBBY, StoredWindow

        cfg = self.config
        url = parse_database(cfg.database)
        self.store = store = await MessageStore.open(url)
        try:
            window = StoredWindow(cfg.history, cfg.history_max_bytes)
            window.load(await store.before(LOBBY, None, cfg.history) if cfg.history > 0 else [],
                        await store.last_seq(LOBBY))
            self.cursor_key = await store.cursor_key()
        except BaseException:
            await store.close()
            self.store = None
            raise
        self.history = window
        log.info("history kept in %s", url.safe())

    async def _open_accounts(self) -> None:
        """Accounts on the store's database: the registry of keys loaded, the hashing pool made."""
        from .accounts.service import Accounts
        from .protocol.guessing import GuessLimits

        cfg = self.config
        assert self.store is not None
        limits = GuessLimits(cfg.login_per_account_address, cfg.login_per_address, cfg.login_per_account,
                             cfg.login_window, cfg.login_lockout, cfg.login_max_lockout, ipv6_prefix=cfg.ipv6_prefix)
        accounts = Accounts(self.store.engine, limits, registration_open=cfg.registration == "open",
                            guests=cfg.guests, workers=cfg.login_workers, max_waiting=cfg.login_queue,
                            niceness=cfg.login_nice)
        self.accounts = accounts
        await accounts.start()
        log.info("accounts on: %d registered", len(accounts.registry))

    async def _retain(self) -> None:
        """Retention (--history-days, --history-max): in batches, at start and then every RETENTION_INTERVAL."""
        from .store.gate import LOBBY

        cfg = self.config
        store = self.store
        assert store is not None
        while True:
            try:
                older = (int((time.time() - cfg.history_days * 86400) * 1000) if cfg.history_days > 0 else None)
                removed = 0
                while True:
                    batch = await asyncio.wait_for(
                        store.prune(LOBBY, older, cfg.history_max or None, RETENTION_BATCH), RETENTION_TIMEOUT)
                    removed += batch
                    if batch < RETENTION_BATCH:
                        break
                if removed:
                    log.info("retention removed %d stored message(s)", removed)
            except Exception as exc:
                from .store.db import describe

                log.warning("retention failed this time: %s", describe(exc))
            await asyncio.sleep(RETENTION_INTERVAL)

    async def _listen(self, factory: Callable[[], ChatConnection], port: int, **options: Any) -> int:
        """A listening port (its number); keepalive set on it, which the accepted sockets inherit."""
        server = await self.loop.create_server(factory, self.config.host, port, start_serving=False, **options)
        if self.config.keepalive:
            for sock in server.sockets:
                set_keepalive(sock)
        await server.start_serving()
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def _listen_tls(self, port: int) -> int:
        """The TLS port: this node accepts its sockets itself, so that each is counted and limited at once
        (``ChatConnection.accept_tls``), as on every listener, before the loop runs its handshake; the
        loop's own TLS server would count a connection only after its handshake."""
        infos = socket.getaddrinfo(self.config.host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        bound = 0
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(1024)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            if self.config.keepalive:
                set_keepalive(sock)  # the accepted sockets inherit it
            self._tls_listeners.append(sock)
            self._tls_accepting.append(self.loop.create_task(self._accept_tls(sock), name="TLS port"))
            bound = bound or int(sock.getsockname()[1])
        return bound

    async def _accept_tls(self, listener: socket.socket) -> None:
        context = self.tls.context if self.tls is not None else None  # (reload() changes this very object)
        loop = self.loop
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError as exc:  # out of file descriptors, say: the port stays, and tries again
                log.warning("TLS port: accept failed: %s", exc)
                await asyncio.sleep(ACCEPT_RETRY)
                continue
            ChatConnection(self, tls=context).accept_tls(sock)

    async def close(self, timeout: float = 5.0) -> None:
        """Tell every client ``109#shutdown``, close them, stop listening."""
        if self.closing:
            return
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for srv in self._servers:
            srv.close()
        for task in self._tls_accepting:
            task.cancel()
        if self._tls_accepting:  # (each stops waiting on its socket before the socket closes)
            await asyncio.gather(*self._tls_accepting, return_exceptions=True)
        for sock in self._tls_listeners:
            sock.close()
        if self.gate is not None and not await self.gate.drain(timeout):
            log.warning("%d message(s) could not be stored before shutdown", len(self.gate.unwritten))
        notice = Error(ErrorReason.SHUTDOWN, "server shutting down")
        for conn in list(self.connections):
            conn.leave_cause = "shutdown"
            conn.send(notice)
            conn.close_after_flush()
        if self._room is not None:
            self._room.close()
        if self.connections:
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except TimeoutError:
                log.warning("%d connections did not close in time; aborting them", len(self.connections))
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self.sessions is not None:
            self.sessions.close()  # the sessions parked by the closes above end with the process
        for srv in self._servers:
            await srv.wait_closed()
        if self.metrics is not None:
            await self.metrics.close()
        if self.admin is not None:
            await self.admin.close()
        if self._retention is not None:
            self._retention.cancel()
            try:
                await asyncio.wait_for(self._retention, 1.0)
            except (asyncio.CancelledError, TimeoutError):
                pass
        if self.gate is not None:
            await self.gate.stop()
        if self._registry_task is not None:
            self._registry_task.cancel()
        if self.accounts is not None:
            self.accounts.close()
        if self.store is not None:
            await self.store.close()
        log.info("chat server stopped")

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ what connections ask of their node

    def opened(self, conn: ChatConnection) -> int:
        self.connections.add(conn)
        return len(self.connections)

    def closed(self, conn: ChatConnection) -> None:
        self.connections.discard(conn)
        if self.closing and not self.connections:
            self._drained.set()

    def reload(self) -> None:
        """SIGHUP: the TLS port's certificate from its files again; without a TLS port there is nothing to load."""
        if self.tls is not None:
            self.tls.reload()
        else:
            log.info("SIGHUP: nothing to reload (no TLS port); nobody was dropped")

    def _sweep(self) -> None:
        """Forget per-address history older than the rate window, once a window."""
        now = self.loop.time()
        self.address_limits.sweep(now)
        if self.address_buckets is not None:
            self.address_buckets.sweep(now)
        if self.accounts is not None:
            self.accounts.guessing.sweep()
            if self._registry_task is None or self._registry_task.done():  # another node's (or chat-admin's)
                self._registry_task = self.loop.create_task(self.accounts.refresh(), name="account registry")
        self._sweeper = self.loop.call_later(AddressLimits.WINDOW, self._sweep)

    def connections_by_kind(self) -> dict[str, int]:
        """Open connections by port kind, for the metrics (stats.PORT_KINDS)."""
        kinds = dict.fromkeys(PORT_KINDS, 0)
        for conn in list(self.connections):
            if conn.encoder is LEGACY:
                kinds["legacy"] += 1
            elif conn.tls is not None:
                kinds["tls"] += 1
            else:
                kinds["line"] += 1
        return kinds

    @property
    def members(self) -> list[ChatConnection]:
        """Every connection (the admin socket looks at the joined ones)."""
        return list(self.connections)

    @property
    def node_name(self) -> str:
        """The node as chat-admin shows it: its ``--node-id`` in a shared room, else where it listens."""
        return self.config.node_id or f"{self.config.host}:{self.port}"

    async def delete_history(self, key: str, room: str | None) -> int:
        """chat-admin history delete: from the store, from the window of recent messages, from what waits."""
        from .store.gate import LOBBY

        if self.store is None:
            raise ValueError("this server keeps no stored history (--database memory)")
        if self.gate is not None and (room is None or room == LOBBY):
            self.gate.forget_author(key)
            if self.shared is not None:
                self.shared.forget_author(key)
        return await asyncio.wait_for(self.store.delete_author(key, room), RETENTION_TIMEOUT)

    def oldest_seq(self) -> int | None:
        if self.store is None or not isinstance(self.history, Numbered):
            return None
        return self.history.oldest_seq()

    def users_online(self) -> int:
        return len(self.room.members) if self._room is not None else 0

    def sessions_parked(self) -> int:
        return self.sessions.parked() if self.sessions is not None else 0

    def _session_expired(self, name: str, key: str) -> None:
        """A parked session's grace ran out (or what it missed passed the bound): it leaves, as a drop does."""
        if self.closing:
            return
        self.bus.publish(UserLeft(name), key)
        self.directory.release(key)
        log.info("%s [session expired]", text("log_disconnected", self.config.lang, id=name))

    def log_connected(self, name: str, address: str) -> None:
        self.stats.joined()
        log.info("%s [%s]", text("log_connected", self.config.lang, id=name), address,
                 extra={"event": "join", "user": name, "address": address})

    def log_disconnected(self, name: str, address: str) -> None:
        log.info("%s [%s]", text("log_disconnected", self.config.lang, id=name), address,
                 extra={"event": "leave", "user": name, "address": address})
