"""Where the shared room lives, who this node is, its Redis key names and its limits."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

COMMAND_TIMEOUT = 2.0
"""Seconds one Redis round trip may take before the room counts as unavailable."""
RETRY_PAUSE = 0.5
"""Seconds between attempts to reach Redis again."""
MAX_OUTBOX = 100_000
"""Publishes queued while Redis is slow; past it they are dropped (and logged), not hoarded."""
ACCOUNT_TOMBSTONE_MS = 600_000
"""How long a deleted account's key stays barred from a node's periodic sync of the accounts (``P
accounts:gone``, see ``redis_lua.SYNC_ACCOUNTS``). A sync is written seconds after its database read (the
read has a 10 s timeout, a queued write lives one writer batch): ten minutes is a wide margin."""
POOL_SIZE = 16
"""Redis connections a node may open (the channel, the writer, the liveness, resumes in flight):
past it a command waits for a free one (up to ``COMMAND_TIMEOUT``) instead of failing. Joins do not
count: they ride the writer's pipeline."""


def entry_id(ident: str) -> tuple[int, int]:
    """A stream entry ID (``ms-seq``) as something that orders."""
    ms, _, seq = ident.partition("-")
    return int(ms), int(seq or 0)


def room_seq(place: tuple[int, int]) -> int:
    """A message's place in the room's order as one number (the durable store's ``seq``): from its log entry
    ID, which Redis assigns in publishing order and which keeps growing across a Redis restart (time-based)."""
    ms, n = place
    return (ms << 20) | min(n, (1 << 20) - 1)


def default_node_id(port: int) -> str:
    return f"{socket.gethostname()}:{port}"


@dataclass
class RedisSettings:
    """Where the shared room lives and who this node is."""

    url: str
    node_id: str | None = None  # default: hostname:port, known once the node listens
    prefix: str = "hanchat:"
    node_timeout: float = 15.0
    history: int = 0  # messages kept in the room's history stream (0: none)
    resume_grace: float = 0.0  # seconds a dropped session is kept (0: no resume)
    resume_max_frames: int = 1000  # what a parked session may miss, in frames...
    resume_max_bytes: int = 256 * 1024  # ...and in bytes
    ids: bool = False  # every message needs its log ID: its place in the room's order (a durable store)

    @property
    def log_cap(self) -> int:
        """Entries kept in the room log: enough for a parked session's bound (a cursor older than that is
        past its bound anyway); a short log when only history needs IDs."""
        if self.resume_grace > 0:
            # Whispers to others and a session's own messages are in it too: twice the bound (a
            # resume from a position walks it back; it is refused, never cut short, past its start).
            return 2 * self.resume_max_frames + 1
        return 1 if self.history > 0 or self.ids else 0


@dataclass
class RedisKeys:
    """The Redis key names of one room (``prefix``) and one node (listed in :mod:`.redis_lua`)."""

    prefix: str
    node: str
    names: str = field(init=False)
    owner: str = field(init=False)
    order: str = field(init=False)
    seq: str = field(init=False)
    nodes: str = field(init=False)
    epoch: str = field(init=False)
    alive: str = field(init=False)
    held: str = field(init=False)
    channel: str = field(init=False)
    log: str = field(init=False)
    history: str = field(init=False)
    logcap: str = field(init=False)
    parked: str = field(init=False)
    seen: str = field(init=False)
    bans: str = field(init=False)
    mutes: str = field(init=False)
    accounts: str = field(init=False)
    accounts_gone: str = field(init=False)

    def __post_init__(self) -> None:
        p = self.prefix
        self.names, self.owner, self.order, self.seq = p + "names", p + "owner", p + "order", p + "seq"
        self.nodes, self.channel, self.epoch = p + "nodes", p + "room", p + "epoch"
        self.alive, self.held = f"{p}alive:{self.node}", f"{p}users:{self.node}"
        self.log, self.history, self.logcap = p + "room:log", p + "room:history", p + "room:logcap"
        self.parked, self.seen, self.bans, self.mutes = p + "parked", p + "seen", p + "bans", p + "mutes"
        self.accounts, self.accounts_gone = p + "accounts", p + "accounts:gone"

