"""The seam between one server node and the room it serves: a directory and a bus.

What is one room in one process must be split so that a second implementation
(several nodes sharing Redis) can take its place without touching connection code:

- the **directory** decides who holds which ID (an async claim, since a shared
  directory needs a round trip) and keeps the user list in join order;
- the **history** keeps the room's last messages, and the **session store** keeps
  dropped sessions (and what they miss) for a resume within the grace;
- the **bus** carries room events (a message, a join, a leave, a whisper) to
  every node; each node's subscriber (:class:`tcp_server.local_room.LocalRoom`)
  fans them out to its own connections and keeps its roster from them.

ARCHITECTURE.md draws the path of one message across this seam.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tcp_server.protocol.frames import Message, ServerFrame, WhisperMessage
from tcp_server.protocol.session import RoomFrame


class RoomUnavailable(Exception):
    """The room cannot be reached right now (a shared directory's store is down): the join is refused."""


class IdRegistered(Exception):
    """A shared directory refused a guest's claim: the ID's key is an account's (registered on any node)."""


class Later:
    """The answer of a directory that needs a round trip: ask :meth:`Directory.claim` instead."""

    __slots__ = ()


LATER = Later()


class Directory(Protocol):
    """Who holds which ID, across every node."""

    def try_claim(self, name: str, key: str, account: bool = False) -> tuple[str, ...] | None | Later:
        """:meth:`claim` answered at once when this directory can (in memory), else :data:`LATER`.

        A join storm then costs no task and no loop iteration per join where none is needed.
        """

    async def claim(self, name: str, key: str, account: bool = False) -> tuple[str, ...] | None:
        """Take ``name`` (unique by ``key``); everyone in the room in join order (``name`` last), or None if taken.

        ``account``: the joiner logged in; a directory that announces the join itself says so with it.

        Raises :class:`RoomUnavailable` when the directory cannot answer, :class:`IdRegistered` when a
        guest's (not ``account``) claim names a registered ID the node did not know of yet.
        """

    def release(self, key: str) -> None:
        """``key`` is free again. Fire and forget: an implementation that needs a round trip queues it."""


class Subscriber(Protocol):
    """A node's side of the bus: what it does with each room event."""

    def room_event(self, frame: RoomFrame, exclude: str | None) -> None:
        """A frame for every member but the one whose ID key is ``exclude``."""

    def whisper(self, key: str, frame: WhisperMessage) -> None:
        """A frame for the member whose ID key is ``key``, if it is connected to this node."""

    def entered(self, ref: str, key: str) -> None:
        """This node's own claim or take came back on the bus: the place of ``key``'s joiner in the room's order.

        A directory that needs a round trip (:data:`LATER`) publishes each join itself, atomically with
        the claim (``ref``: the ID key), and a store that :attr:`SessionStore.announces_takes` each take
        (``ref``: the reference the taker gave); the answer and the bus's events travel apart, so the
        joiner takes the room from here (what came before is in the answer), whichever arrives first.
        """


class Bus(Protocol):
    """Room events to every node, in order per publisher."""

    def subscribe(self, subscriber: Subscriber) -> None:
        """This node's subscriber (one per node)."""

    def publish(self, frame: RoomFrame, exclude: str | None) -> None:
        """Fire and forget, in order."""

    def deliver(self, key: str, frame: WhisperMessage) -> None:
        """A whisper to the user whose ID key is ``key``."""


class RoomWatcher(Protocol):
    """What a shared room tells its node beyond the room's frames: members the node must let go, the
    room's health, and moderation changed on another node (the embedded room has none of these)."""

    def lost(self, key: str) -> None:
        """``key``'s place in the room is gone (taken elsewhere, or removed while this node was cut off)."""

    def replaced(self, key: str) -> None:
        """``key``'s session was resumed on another node: its connection here lets go."""

    def kicked(self, key: str, reason: str) -> None:
        """An operator on another node kicked ``key``, a member of this node."""

    def degraded(self) -> None:
        """The room cannot deliver until it recovers (told once per outage)."""

    def bans_changed(self, bans: list[dict[str, Any]]) -> None:
        """Every ban of the room (at each load, and when any node changes one)."""

    def mutes_changed(self, mutes: dict[str, float | None]) -> None:
        """Every mute of the room, ID key -> until (None: until lifted), likewise."""

    def author_forgotten(self, key: str) -> None:
        """An operator erased ``key``'s stored messages: the node's recent window forgets them too."""

    def accounts_loaded(self, accounts: dict[str, str]) -> None:
        """Every account the room knows, ID key -> ID (at each load: a node whose database is down has them)."""

    def account_changed(self, key: str, name: str | None, holder: bool) -> None:
        """``key`` was registered as ``name`` (None: deleted) through another node; ``holder``: by its online
        holder (``019``), who is an account from now on."""


class RecentHistory(Protocol):
    """The room's last messages to all (``111`` on a fresh join); never whispers."""

    def add(self, frame: Message) -> None:
        """Keep ``frame`` (it carries its server timestamp); the oldest go past the bounds."""

    def recent(self) -> list[Message]:
        """What is kept, oldest first."""


@dataclass(frozen=True, slots=True)
class Resumable:
    """A session a token named: who it is, whether it was parked (else a live connection holds it),
    and the frames it missed meanwhile, in order.

    ``gap``: the resume named a position the store cannot replay from (older than its window, or
    never sent): nothing is replayed and the session has ended (the store says its ``104``).
    """

    name: str
    key: str
    parked: bool
    missed: list[ServerFrame]
    gap: bool = False


class SessionStore(Protocol):
    """Sessions that outlive their connection for a grace period, and their single-use resume tokens.

    The store keeps the frames a parked session misses (it hears every room event
    and whisper through :meth:`room_event` and :meth:`whisper`); when a grace ends
    unused, or the kept frames pass their bounds, it calls ``on_expire(name, key)``
    once, and the server says ``104`` and frees the ID. A shared store (Redis) ends
    sessions itself, releasing the ID and announcing the ``104`` on the bus in one
    step whichever node notices, and never calls ``on_expire``.
    """

    on_expire: Callable[[str, str], None] | None
    announces_takes: bool
    """A take is announced on the bus (:meth:`Subscriber.entered` with the ``ref`` given to :meth:`take`),
    at the point its missed frames end: the taker enters there (a shared store; the embedded one
    answers in the caller's turn and needs none)."""

    def issue(self, name: str, key: str, address: str = "") -> str:
        """A fresh token for the session of ``key`` (any earlier one dies), connected from ``address``
        (what an address ban matches while it is parked). Never log it."""

    def park(self, key: str, unsent: list[ServerFrame]) -> bool:
        """Its connection dropped: keep the session (``unsent`` first) for the grace. False: no session."""

    async def take(self, token: str, ref: str = "", position: int | None = None) -> Resumable | None:
        """Use ``token`` up (single use): the session it names, or None if unknown, used or expired.

        ``ref``: what the announcement of the take names (see :attr:`announces_takes`).
        ``position``: how many counted frames (room frames and whispers) the client has of this
        session; the missed frames are then exactly those that follow it, from the window the store
        keeps for every session, live or parked (past it: :attr:`Resumable.gap`). None: what the
        session missed since it was parked (an older client).

        Async because a shared store needs a round trip (the connection waits as for a claim);
        raises :class:`RoomUnavailable` when the store cannot answer.
        """

    def end(self, key: str) -> None:
        """The session is over (``004``): its token dies, nothing is kept."""

    async def token_of(self, key: str) -> str | None:
        """The live token of ``key``'s session (a login takes the account's session over with it, as a
        resume would: wherever it is, live or parked); None when it has none. Never log it."""

    def end_banned(self, banned: Callable[[str, str], object]) -> list[str]:
        """A ban came into force: every parked session of this node for which ``banned(key, address)``
        is true ends now, as if its grace had ended (its ``104``, its ID freed; no resume). The IDs
        ended at once (a shared store ends them in a round trip and answers [])."""

    def parked(self) -> int:
        """How many sessions this node keeps parked (a metric)."""

    def room_event(self, frame: RoomFrame, exclude: str | None) -> None:
        """A room frame: in the window of every session but ``exclude``'s, and kept for the parked ones."""

    def whisper(self, key: str, frame: WhisperMessage) -> None:
        """A whisper to ``key``, live or parked: in its window (and kept if it is parked)."""

    def close(self) -> None:
        """The server stops: forget everything, no expiry calls."""
