"""The shared room's event table (:mod:`tcp_server.room.redis_events`): the codec both ways for every kind,
malformed events refused (and skipped by a live node), the Lua scripts in step with the table, and mypy
naming a kind a ``match`` forgot."""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import re
import subprocess
import sys
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from tcp_server.protocol import Message, ServerNotice
from tcp_server.room import redis_lua
from tcp_server.room.redis_events import (
    EVENTS,
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
    arity,
    decode,
    encode,
    field_names,
    publish_kind,
)
from tests.helpers import TIMEOUT
from tests.redis_fixtures import Connect, MakeNode, RedisServer

WIRE: list[tuple[RoomEvent, str]] = [
    (RoomMessage("alice", "Alice", "hi", 1700000000000), '["m", "alice", "Alice", "hi", 1700000000000]'),
    (RoomMessage(None, "Alice", "hi", None), '["m", null, "Alice", "hi", null]'),
    # An account's message and join carry a trailing 1; a guest's keep the spelling older nodes know.
    (RoomMessage("alice", "Alice", "hi", 5, 1), '["m", "alice", "Alice", "hi", 5, 1]'),
    (Joined("alice", "Alice", "node-a", 1), '["j", "alice", "Alice", "node-a", 1]'),
    (Whisper("bob", "Alice", "psst", 5), '["w", "bob", "Alice", "psst", 5]'),
    (Notice("maintenance at noon"), '["n", "maintenance at noon"]'),
    (Joined("alice", "Alice", "node0"), '["j", "alice", "Alice", "node0"]'),
    (Left("alice", "Alice"), '["l", "alice", "Alice"]'),
    (Taken("alice", "node1", "ref"), '["x", "alice", "node1", "ref"]'),
    (BansChanged(), '["b"]'),
    (MutesChanged(), '["u"]'),
    (Kick("alice", "spam"), '["k", "alice", "spam"]'),
    (ForgetAuthor("alice"), '["h", "alice"]'),
    (KeptFrame("105#Alice#hi"), '["f", "105#Alice#hi"]'),
    (AccountChanged("alice", "Alice"), '["a", "alice", "Alice"]'),
    (AccountChanged("alice", None), '["a", "alice", null]'),
]
"""One event of every kind and its exact wire text (what nodes of earlier versions send and expect)."""


def test_the_table_covers_every_kind_with_distinct_tags() -> None:
    assert {type(event) for event, _ in WIRE} == set(EVENTS)
    assert len({cls.TAG for cls in EVENTS}) == len(EVENTS)


@pytest.mark.parametrize(("event", "wire"), WIRE, ids=[type(e).__name__ for e, _ in WIRE])
def test_the_codec_both_ways(event: RoomEvent, wire: str) -> None:
    assert encode(event) == wire
    assert decode(wire) == event


@pytest.mark.parametrize(("wire", "event"), [
    ('["m", null, "Alice", "hi"]', RoomMessage(None, "Alice", "hi")),
    ('["w", "bob", "Alice", "psst"]', Whisper("bob", "Alice", "psst")),
    ('["j", "alice", "Alice"]', Joined("alice", "Alice")),  # RECONCILE's join: no node
    ('["x", "alice", "node1"]', Taken("alice", "node1")),
    ('["m", "a", "Alice", "non-ASCII é", 15]', RoomMessage("a", "Alice", "non-ASCII é", 15)),
])
def test_trailing_optional_fields_may_be_absent(wire: str, event: RoomEvent) -> None:
    assert decode(wire) == event


@pytest.mark.parametrize("wire", [
    "not json",
    '{"m": 1}',
    "[]",
    "[1, 2]",
    '["z", "unknown"]',
    '["m", null, "Alice"]',  # too few
    '["l", "alice", "Alice", "extra"]',  # too many
    '["b", 1]',
    '["n", 42]',  # a field of the wrong type
    '["k", null, "why"]',
    '["m", null, "Alice", "hi", "noon"]',
    '["m", null, "Alice", "hi", true]',
])
def test_malformed_events_are_refused(wire: str) -> None:
    with pytest.raises(MalformedEvent):
        decode(wire)


def test_publish_kinds_are_what_the_publish_script_counts() -> None:
    assert publish_kind(RoomMessage(None, "A", "x")) == "m"
    assert publish_kind(RoomMessage("a", "A", "x")) == "m a"
    assert publish_kind(Whisper("b", "A", "x")) == "w b"
    assert publish_kind(Notice("x")) == "n"


# ------------------------------------------------------------ the Lua scripts

SCRIPTS = {name: text for name, text in vars(redis_lua).items() if name.isupper() and isinstance(text, str)}


def _argv_names(script: str) -> list[str]:
    """The script's ``-- ... ARGV: a b c`` comment, as names (ARGV[1] is the first)."""
    found = re.search(r"--[^\n]*ARGV: ([^\n;]*)", script)
    assert found is not None, "a script that builds events names its ARGV"
    return [word.strip(".") for word in found.group(1).split()]


def _lua_events(script: str) -> list[tuple[str, list[str]]]:
    """Every ``cjson.encode({'t', a, b})`` in a script: its tag and its fields' names."""
    out = []
    for body in re.findall(r"cjson\.encode\(\{([^}]*)\}\)", script):
        tag, *parts = [p.strip() for p in body.split(",")]
        names = []
        for part in parts:
            part = re.sub(r"\s+or\s+''$", "", part)  # a default for an absent argument
            if part == "''":
                names.append("")  # a literal: any name fits
                continue
            argv = re.fullmatch(r"ARGV\[(\d+)\]", part)
            names.append(_argv_names(script)[int(argv.group(1)) - 1] if argv else part)
        out.append((tag.strip("'"), names))
    return out


def test_the_lua_scripts_build_events_in_the_tables_field_order() -> None:
    emitted = {(name, tag): fields for name, text in SCRIPTS.items() for tag, fields in _lua_events(text)}
    assert {tag for _, tag in emitted} >= {"j", "l", "x"}  # what the scripts announce themselves
    by_tag = {cls.TAG: cls for cls in EVENTS}
    for (script, tag), names in emitted.items():
        cls = by_tag[tag]
        least, most = arity(cls)
        assert least <= len(names) <= most, (script, tag, names)
        expected = field_names(cls)[: len(names)]
        assert all(n in ("", e) for n, e in zip(names, expected, strict=True)), (script, tag, names, expected)


def test_the_take_scripts_reading_of_the_log_matches_the_table() -> None:
    """``TAKE`` reads a logged event's second element as the member it concerns (``e[2]``)."""
    assert "local kind, who = e[1], e[2]" in redis_lua.TAKE
    for cls in (RoomMessage, Whisper, Joined, Left):
        assert field_names(cls)[0] in ("exclude", "key")


# ------------------------------------------------------------ a live node

async def test_a_node_logs_and_skips_malformed_events_and_goes_on(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer, caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = await make_node(), await make_node()
    alice, bob = await node_clients(a), await node_clients(b)
    await alice.join("Alice")
    await bob.join("Bob")
    await bob.sync()
    await alice.sync()
    probe = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    channel = "hanchat:room"
    bad: list[Any] = ["not json", ["z", "x"], ["m", None], ["l", "bob"], ["k", 1, 2], ["x", "bob", "node0", "r", 9]]
    caplog.set_level(logging.WARNING, logger="tcp_server.redis")
    try:
        for event in bad:
            text = event if isinstance(event, str) else json.dumps(event)
            await asyncio.wait_for(probe.publish(channel, f"- {time.time():.6f} {text}"), TIMEOUT)
        batch = json.dumps([["q"], ["n", "still here"]])  # a bad one in a batch: the rest is handled
        await asyncio.wait_for(probe.publish(channel, f"- {time.time():.6f} {batch}"), TIMEOUT)
    finally:
        await probe.aclose()
    assert await bob.recv() == ServerNotice("still here")
    await alice.send("002#Alice#after")
    assert await bob.recv() == Message("Alice", "after")
    assert len(b.server.room.roster) == 2  # the malformed leave removed nobody
    skipped = [r for r in caplog.records if "malformed room event" in r.getMessage()]
    assert len(skipped) >= 2 * len(bad)  # every node skipped every one


# ------------------------------------------------------------ exhaustiveness

def test_mypy_names_a_kind_a_match_forgot(tmp_path: pathlib.Path) -> None:
    probe = tmp_path / "forgot.py"
    probe.write_text(
        "from typing import assert_never\n"
        "from tcp_server.room.redis_events import RoomEvent, RoomMessage\n"
        "def handle(event: RoomEvent) -> None:\n"
        "    match event:\n"
        "        case RoomMessage():\n"
        "            pass\n"
        "        case _:\n"
        "            assert_never(event)\n"
    )
    root = pathlib.Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), str(probe)],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "assert_never" in result.stdout and "Whisper" in result.stdout, result.stdout
