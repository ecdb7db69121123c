"""Where the durable store meets the message path: nothing reaches a member before it is committed.

:class:`StoreGate` is the bus's subscriber in front of the node's
:class:`tcp_server.local_room.LocalRoom`. A message is held (with every room event,
whisper and join echo after it, so that the room's order holds) until the batch it
belongs to is committed, then handed to the room, whose next flush delivers it: one
transaction per batch, however many messages arrived while the previous one was being
written. The room's sequence number is assigned here, in the order the room delivers.

When the database fails, the chat goes on live: messages pass at once and wait in memory
(bounded; what overflows is counted and logged), the room is told once that history is not
being kept, and once that it is again when the waiting messages are written, in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Union

from tcp_server.protocol.frames import Message, ServerNotice, WhisperMessage
from tcp_server.protocol.ids import id_key
from tcp_server.protocol.scrollback import LOBBY as LOBBY  # re-exported for the server
from tcp_server.protocol.session import RoomFrame
from tcp_server.room.recall import frame_size

from .db import MessageStore, StoredMessage, describe

if TYPE_CHECKING:
    from tcp_server.local_room import LocalRoom
    from tcp_server.stats import ServerStats

log = logging.getLogger("tcp_server.store")

WRITE_TIMEOUT = 5.0
"""Seconds a batch may take to commit before the database counts as down (the batch is then delivered)."""
GROUP_COMMIT = 0.003
"""Seconds at least between the starts of two batches under a steady flow (a first message after a pause
goes at once): what arrives meanwhile joins the next batch. Each commit costs the same CPU however few
messages it holds (BENCHMARKS.md, "Durable history"), so this bounds commits to about 300 a second
for at most 3 ms more latency: PostgreSQL's default, whose commit is a round trip."""
GROUP_COMMIT_BY_KIND = {"sqlite": 0.0, "postgresql": GROUP_COMMIT}
"""SQLite commits inline in ~50 us (WAL, synchronous=NORMAL): a batch per loop turn that has messages costs
+4 % of a core at 1,000 messages a second and takes the group commit's wait out of every message's
latency (BENCHMARKS.md, "Group commit per database")."""


def group_commit_for(kind: str, ms: float | None) -> float:
    """The gate's interval in seconds: ``--group-commit-ms`` when given, else the database kind's default."""
    return ms / 1000 if ms is not None else GROUP_COMMIT_BY_KIND.get(kind, GROUP_COMMIT)
RETRY_MIN = 0.2
RETRY_MAX = 5.0
DEFAULT_MAX_PENDING = 10_000

NOTICES = {
    "stopped": {"en": "The chat history is not being saved right now; messages still reach everyone.",
                "ko": "지금은 대화 기록이 저장되지 않습니다. 메시지는 그대로 전달됩니다."},
    "resumed": {"en": "The chat history is being saved again.",
                "ko": "대화 기록이 다시 저장됩니다."},
}


class StoredWindow:
    """The room's last messages in memory (``111`` on a fresh join), each with its place in the room's order.

    Loaded from the store at start, then fed by the room in the same step as the fan-out log
    (a newcomer gets each message once: from here or live). ``next_seq`` is the number the next
    message takes; the gate sets it before handing each message on.
    """

    __slots__ = ("limit", "max_bytes", "bytes", "next_seq", "_frames")

    def __init__(self, limit: int, max_bytes: int) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.bytes = 0
        self.next_seq = 1
        self._frames: deque[tuple[Message, int, int]] = deque()

    def load(self, kept: list[StoredMessage], last_seq: int) -> None:
        """What the store holds (oldest first) and the room's newest number."""
        self.next_seq = last_seq + 1
        for message in kept:
            self._add(Message(message.author, message.text, message.ts, account=message.account), message.seq)
        self.next_seq = last_seq + 1

    def add(self, frame: Message) -> None:
        self._add(frame, self.next_seq)
        self.next_seq += 1

    def _add(self, frame: Message, seq: int) -> None:
        if self.limit <= 0:
            return
        size = frame_size(frame)
        frames = self._frames
        frames.append((frame, size, seq))
        self.bytes += size
        while frames and (len(frames) > self.limit or self.bytes > self.max_bytes):
            self.bytes -= frames.popleft()[1]

    def recent(self) -> list[Message]:
        return [frame for frame, _, _ in self._frames]

    def oldest_seq(self) -> int:
        """The number of the oldest message kept here (``next_seq`` when none): older ones are paged from it."""
        return self._frames[0][2] if self._frames else self.next_seq

    def forget_author(self, key: str) -> None:
        """``chat-admin history delete``: the window forgets them too."""
        kept = [(f, s, q) for f, s, q in self._frames if id_key(f.sender) != key]
        self._frames = deque(kept)
        self.bytes = sum(s for _, s, _ in kept)

    def __len__(self) -> int:
        return len(self._frames)


_Event = Union[
    tuple[RoomFrame, Union[str, None], int],  # a room event (and the seq of a message, else 0)
    tuple[str, WhisperMessage],  # a whisper
    tuple[str, str],  # a join's echo (ref, key)
]


class StoreGate:
    """The bus's subscriber on a node with a durable store (see the module's docstring)."""

    def __init__(self, room: LocalRoom, store: MessageStore, window: StoredWindow, room_key: str,
                 stats: ServerStats, lang: str = "en", max_pending: int = DEFAULT_MAX_PENDING,
                 write_timeout: float = WRITE_TIMEOUT, group_commit: float = GROUP_COMMIT) -> None:
        self.room = room
        self.store = store
        self.window = window
        self.room_key = room_key
        self.stats = stats
        self.lang = lang
        self.max_pending = max_pending
        self.write_timeout = write_timeout
        self.group_commit = group_commit
        self._last_batch = 0.0  # loop time the last batch started
        self.next_seq = window.next_seq
        self.staged: list[_Event] = []  # held behind a message not yet committed, in the room's order
        self.unwritten: deque[StoredMessage] = deque()  # not committed yet (held, or passed during an outage)
        self.degraded = False  # the database failed: messages pass at once and wait here
        self.dropped = 0  # messages the outage's bound let go unstored
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------ the bus's subscriber

    def room_event(self, frame: RoomFrame, exclude: str | None) -> None:
        if type(frame) is Message:
            seq = frame.seq  # a shared room's bus numbers messages for every node alike
            if seq is None:
                seq = self.next_seq
            self.next_seq = max(self.next_seq, seq + 1)
            self._keep(StoredMessage(self.room_key, seq, frame.ts or time.time_ns() // 1_000_000, frame.sender,
                                     id_key(frame.sender), frame.message, frame.account))
            if self.degraded:  # live first: it waits in memory for the database
                self._message(frame, exclude, seq)
                return
            self.staged.append((frame, exclude, seq))
            self._start()
        elif self.staged:
            self.staged.append((frame, exclude, 0))
        else:
            self.room.room_event(frame, exclude)

    def whisper(self, key: str, frame: WhisperMessage) -> None:
        if self.staged:
            self.staged.append((key, frame))
        else:
            self.room.whisper(key, frame)

    def entered(self, ref: str, key: str) -> None:
        if self.staged:
            self.staged.append((ref, key))
        else:
            self.room.entered(ref, key)

    # ------------------------------------------------------------ writing

    def _keep(self, message: StoredMessage) -> None:
        self.unwritten.append(message)
        if self.degraded:
            self._bound()

    def _bound(self) -> None:
        """During an outage at most ``max_pending`` wait (the oldest go first, counted and logged).

        While the database is up nothing is dropped: what waits is held from delivery too, so
        the input's own limits (flood rate, clients) bound it.
        """
        excess = len(self.unwritten) - self.max_pending
        if excess <= 0:
            return
        for _ in range(excess):
            self.unwritten.popleft()
        before = self.dropped
        self.dropped += excess
        self.stats.history_dropped += excess
        if before == 0 or before // 1000 != self.dropped // 1000:
            log.warning("the history database is down and %d messages are waiting: %d message(s) will not "
                        "be stored", self.max_pending, self.dropped)

    def _message(self, frame: Message, exclude: str | None, seq: int) -> None:
        self.window.next_seq = seq  # the window numbers it as the gate did
        self.room.room_event(frame, exclude)

    def _release(self, events: list[_Event]) -> None:
        """Hand held events to the room, in order: its next flush delivers them."""
        room = self.room
        for item in events:
            if len(item) == 3:
                frame, exclude, seq = item
                if type(frame) is Message:
                    self._message(frame, exclude, seq)
                else:
                    room.room_event(frame, exclude)
            else:
                first, second = item
                if isinstance(second, WhisperMessage):
                    room.whisper(first, second)
                else:
                    room.entered(first, second)

    def _start(self) -> None:
        if self._task is None:
            self._idle.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="history-writer")

    async def _run(self) -> None:
        retry = RETRY_MIN
        loop = asyncio.get_running_loop()
        try:
            while self.unwritten or self.staged:
                wait = self._last_batch + self.group_commit - loop.time()
                if wait > 0 and not self.degraded:
                    await asyncio.sleep(wait)  # a steady flow: gather a little more into this batch
                self._last_batch = loop.time()
                batch = list(self.unwritten)
                events, self.staged = self.staged, []
                try:
                    async with asyncio.timeout(self.write_timeout):  # no task of its own, unlike wait_for
                        await self.store.write(batch)
                except Exception as exc:  # the database is down (or refuses): the chat goes on live
                    events += self.staged  # and what arrived meanwhile: from now on messages pass at once,
                    self.staged = []  # so nothing may stay held behind them
                    self._release(events)
                    self._down(exc)
                    await asyncio.sleep(retry)
                    retry = min(retry * 2, RETRY_MAX)
                    continue
                retry = RETRY_MIN
                if batch:
                    last = batch[-1]
                    while self.unwritten and self.unwritten[0].seq <= last.seq:
                        self.unwritten.popleft()
                self._release(events)
                if self.degraded and not self.unwritten:
                    self._up()
        finally:
            self._task = None
            self._idle.set()

    def _down(self, exc: BaseException) -> None:
        self.stats.history_write_failures += 1
        if self.degraded:
            return
        self.degraded = True
        self._bound()
        log.error("the history database failed (%s); messages are delivered and wait in memory (at most %d)",
                  describe(exc), self.max_pending)
        self._notice("stopped")

    def _up(self) -> None:
        self.degraded = False
        self.dropped = 0
        log.warning("the history database is back; the messages of the outage are stored")
        self._notice("resumed")

    def _notice(self, which: str) -> None:
        texts = NOTICES[which]
        self.room.room_event(ServerNotice(texts.get(self.lang, texts["en"])), None)

    def forget_author(self, key: str) -> None:
        """chat-admin history delete: the window forgets them, and what waits to be written is not written."""
        self.window.forget_author(key)
        self.unwritten = deque(m for m in self.unwritten if m.author_key != key)

    async def drain(self, timeout: float) -> bool:
        """Wait for what is held to be written (shutdown); False if it could not be in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return not self.unwritten

    async def stop(self) -> None:
        """No more writing (shutdown, after :meth:`drain`)."""
        task = self._task
        if task is not None:
            task.cancel()
            try:
                await asyncio.wait_for(task, 1.0)
            except (asyncio.CancelledError, TimeoutError):
                pass
