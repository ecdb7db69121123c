"""The room's events through one Redis channel, in one total order for every node (see :mod:`.redis`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, assert_never

from tcp_server.protocol.frames import Message, ServerNotice, UserJoined, UserLeft, WhisperMessage
from tcp_server.protocol.ids import id_key
from tcp_server.protocol.session import RoomFrame

from .base import Subscriber
from .redis_events import (
    LOADED_TAGS,
    LOGGED_TAGS,
    AccountChanged,
    BansChanged,
    ForgetAuthor,
    Joined,
    KeptFrame,
    Kick,
    Left,
    MalformedEvent,
    MutesChanged,
    Notice,
    RoomEvent,
    RoomMessage,
    Taken,
    Whisper,
    encode,
    from_list,
    publish_kind,
)
from .redis_settings import entry_id, room_seq

if TYPE_CHECKING:
    from .redis_link import RedisLink

log = logging.getLogger("tcp_server.redis")


class RedisBus:
    """Room events through one Redis channel; this node's subscriber gets them in the channel's order.

    Joins and leaves are published by the directory's scripts (atomically with
    the claim or the release), so :meth:`publish` sends only messages.
    """

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        link.bus = self
        self._subscriber: Subscriber | None = None
        self.view: dict[str, str] = {}  # the room as this node knows it: ID key -> ID, in join order
        self.marked: set[str] = set()  # the keys in view that are accounts (logged in): 103 with it, 132

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber
        for key, name in self.view.items():
            subscriber.room_event(UserJoined(name, key in self.marked), key)

    def publish(self, frame: RoomFrame, exclude: str | None) -> None:
        """Every room frame (the table's ``Delivery.ROOM``) has its case: mypy names one left out."""
        match frame:
            case Message():  # its publish kind names who is not sent it: the sessions' positions
                self._send(RoomMessage(exclude, frame.sender, frame.message, frame.ts, 1 if frame.account else None))
            case ServerNotice():  # chat-admin notice: to every node
                self._send(Notice(frame.text))
            case UserJoined() | UserLeft():
                pass  # already published by the claim / release script, atomically with it
            case _:
                assert_never(frame)

    def deliver(self, key: str, frame: WhisperMessage) -> None:
        self._send(Whisper(key, frame.sender, frame.message, frame.ts))

    def _send(self, event: RoomMessage | Whisper | Notice) -> None:
        self.link.queue("publish", (publish_kind(event), encode(event)))

    # ------------------------------------------------------------ from the channel

    def load(self, names: list[str], accounts: Collection[str] = ()) -> None:
        """The room from Redis (at start, or after an outage): tell the subscriber only what changed.

        ``accounts``: the registered keys (``P accounts``). Someone online under a registered key is an
        account: a guest cannot claim one (the claim script refuses it), and ``chat-admin account add``
        removes a guest holding it. So a member this node did not see join is marked from that (the
        room's ``132`` on a node started after the login); one it saw keeps the mark of its join.
        """
        fresh = {id_key(name): name for name in names}
        old, old_marks = self.view, self.marked
        self.view = fresh
        self.marked = {key for key, name in fresh.items()
                       if (key in old_marks if old.get(key) == name else key in accounts)}
        sub = self._subscriber
        if sub is None:
            return
        for key, name in old.items():
            if fresh.get(key) != name:  # gone, or someone else holds the ID now (another spelling)
                sub.room_event(UserLeft(name), key)
        for key, name in fresh.items():
            if old.get(key) != name:
                sub.room_event(UserJoined(name, key in self.marked), key)

    def received(self, data: Any) -> None:
        """One event, or a batch of them, from the channel (``IDS TS JSON``, see :mod:`.redis_lua`).

        Each logged event (a message, a join, a leave) has its log ID in IDS, in order: this node's
        ``last_id`` moves as each is handled, so a whisper kept for a parked session knows exactly
        which logged events came before it. A malformed event is logged and skipped (its log ID too).
        """
        link = self.link
        try:
            ident, stamp, text = str(data).split(" ", 2)
            if link.stats is not None:
                link.stats.bus_lag_seconds.observe(max(time.time() - float(stamp), 0.0))
            raw = json.loads(text)
        except ValueError:
            log.exception("malformed room event %r", data)
            return
        ids = iter(() if ident == "-" else ident.split(","))
        for one in (raw if raw and isinstance(raw, list) and isinstance(raw[0], list) else (raw,)):
            tag = one[0] if isinstance(one, list) and one else None
            seq = None
            if tag in LOGGED_TAGS:
                logged = next(ids, None)
                if logged is not None:
                    place = entry_id(logged)
                    if place > link.loaded_id:
                        link.last_id = logged
                        seq = room_seq(place)
                    elif tag in LOADED_TAGS:
                        continue  # already in the load
            try:
                event = from_list(one)
            except MalformedEvent as exc:
                log.warning("a malformed room event was skipped: %s", exc)
                continue
            try:
                self._dispatch(event, seq)
            except (ValueError, IndexError, TypeError, KeyError):  # as before the table: one event, not the node
                log.exception("room event %r failed", event)

    def _dispatch(self, event: RoomEvent, seq: int | None = None) -> None:
        """Act on one event; ``seq``: a message's place in the room's order (a logged one)."""
        sub = self._subscriber
        link = self.link
        match event:
            case RoomMessage(exclude, sender, text, ts, account):
                if sub is not None:
                    sub.room_event(Message(sender, text, ts, seq, account=account == 1), exclude)
            case Whisper(key, sender, text, ts):
                if sub is not None:
                    sub.whisper(key, WhisperMessage(sender, text, ts))
            case Notice(text):
                if sub is not None:
                    sub.room_event(ServerNotice(text), None)
            case BansChanged():
                link.reload_bans()
            case MutesChanged():
                link.reload_mutes()
            case ForgetAuthor(key):
                if link.watcher is not None:
                    link.watcher.author_forgotten(key)
            case Kick(key, reason):
                if key in self.view and link.watcher is not None:
                    link.watcher.kicked(key, reason)
            case Taken(key, node, ref):
                if node != link.node:
                    link.mine.pop(key, None)
                    if link.watcher is not None:
                        link.watcher.replaced(key)
                elif sub is not None and ref is not None:
                    sub.entered(ref, key)  # this node's take: the resumed member takes the room from here
            case Joined(key, name, node, account):
                if key not in self.view:  # already there: the load saw it
                    self.view[key] = name
                    if account == 1:
                        self.marked.add(key)
                    if sub is not None:
                        sub.room_event(UserJoined(name, account == 1), key)
                if sub is not None and node is not None and node == link.node:
                    sub.entered(key, key)  # this node's claim: its joiner takes the room from here
            case Left(key, name):
                self.marked.discard(key)
                if self.view.pop(key, None) is not None and sub is not None:
                    sub.room_event(UserLeft(name), key)
            case AccountChanged(key, name, account):
                if link.watcher is not None:
                    link.watcher.account_changed(key, name, account == 1)
            case KeptFrame():
                log.warning("a parked session's kept frame on the room channel was ignored")
            case _:
                assert_never(event)
