"""The fan-out log and its cursors: one append per room frame, each member its own part, no resets."""

from __future__ import annotations

from tcp_server.fanout import FanoutLog
from tcp_server.protocol.encoders import FRAMES, JSON
from tcp_server.protocol.frames import Message, UserJoined


def test_a_cursor_takes_what_was_appended_after_it_and_only_once() -> None:
    log = FanoutLog()
    early = log.cursor()
    log.append(UserJoined("bob"))
    late = log.cursor()
    log.append(Message("bob", "hi"))
    assert log.take(early) == [UserJoined("bob"), Message("bob", "hi")]
    assert log.take(early) == [] and not log.behind(early)
    part = log.part(late)
    assert part.start == 1 and log.frames(part) == [Message("bob", "hi")]


def test_the_sender_skips_its_own_entry_after_catching_up() -> None:
    log = FanoutLog()
    sender = log.cursor()
    log.append(UserJoined("carol"))
    assert log.take(sender) == [UserJoined("carol")]  # what the log held for it comes first
    log.append(Message("alice", "mine"))
    log.skip(sender)
    assert not log.behind(sender)


def test_after_a_flush_every_old_cursor_means_the_start_without_touching_it() -> None:
    log = FanoutLog()
    cursors = [log.cursor() for _ in range(3)]
    log.append(Message("a", "1"))
    log.take(cursors[0])
    log.reset()
    assert log.entries == [] and all(not log.behind(c) for c in cursors)
    log.append(Message("a", "2"))
    parts = [log.part(c) for c in cursors]
    assert all(p.start == 0 for p in parts)
    assert [log.frames(p) for p in parts] == [[Message("a", "2")]] * 3


def test_the_log_is_encoded_per_encoder() -> None:
    log = FanoutLog()
    log.append(Message("a", "x # y"))
    assert log.encoded(FRAMES) == [b"105#a#x # y\n"]
    assert log.encoded(JSON) == [b'{"type":"message","from":"a","text":"x # y"}\n']


def test_a_member_catching_up_takes_slices_of_the_shared_encoding() -> None:
    """A sender catching up queues a part of the log, written from the bytes every member gets."""
    log = FanoutLog()
    sender = log.cursor()
    log.append(Message("a", "1"))
    log.append(Message("b", "2"))
    shared = log.encoded(FRAMES)
    part = log.part(sender)
    assert (part.start, part.end, len(part)) == (0, 2, 2) and not log.behind(sender)
    assert log.bytes_of(FRAMES, part) == shared and log.encoded(FRAMES) is shared  # not encoded again
    assert log.frames(part) == [Message("a", "1"), Message("b", "2")]
    log.append(Message("c", "3"))
    assert log.encoded(FRAMES)[:2] == shared and len(log.encoded(FRAMES)) == 3  # grows, keeps what was done
    later = log.part(sender)
    assert (later.start, later.end) == (2, 3)
