"""History and resumable sessions in Redis: two real nodes (one a real process, for SIGKILL) and a real redis-server."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from tcp_server.__main__ import stop_node
from tcp_server.protocol import (
    Error,
    ErrorReason,
    History,
    Joined,
    Message,
    Resumed,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
)
from tcp_server.room.redis_recall import merge
from tests.helpers import TIMEOUT, LineClient, wait_until
from tests.metrics_helpers import samples, value, wait_for_value
from tests.redis_fixtures import NODE_TIMEOUT, Connect, MakeNode, Node, RedisServer, more_reaper_rounds
from tests.test_redis_room import NodeProcess, node_process  # noqa: F401 - the fixture

GRACE = 30.0


async def join_with_token(client: LineClient, name: str) -> str:
    frames = await client.join(name)
    assert frames[-2] == Joined(name)
    token = await client.recv()
    assert isinstance(token, SessionToken)
    return token.token


async def session_in_redis(redis_server: RedisServer, key: str, field: str, check: Callable[[str | None], bool],
                           what: str) -> None:
    """Wait until Redis holds ``key``'s session with ``check(field)`` (a node's write, or the reaper's, landed)."""
    probe = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NODE_TIMEOUT * 4
        while not check(await asyncio.wait_for(probe.hget(f"hanchat:sess:{key}", field), TIMEOUT)):
            assert loop.time() < deadline, f"{key}: {what}"
            await asyncio.sleep(0.05)  # polling another process's state: there is no event to wait on
    finally:
        await probe.aclose()


async def parked_in_redis(redis_server: RedisServer, key: str) -> None:
    await session_in_redis(redis_server, key, "parked", lambda v: v == "1", "not parked in Redis")


async def resume(client: LineClient, token: str) -> tuple[list[object], list[object]]:
    """008 → 100, 107, a fresh 112, the missed frames, 113: (the first three, the missed frames)."""
    await client.send(f"008#{token}")
    frames = await client.recv_until(Resumed)
    assert isinstance(frames[2], SessionToken) and frames[2].token != token
    missed = frames[3:-1]
    assert frames[-1] == Resumed(len(missed))
    return list(frames[:3]), list(missed)


async def test_a_dropped_session_resumes_on_the_other_node_with_what_it_missed(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    a, b = await make_node(resume_grace=GRACE), await make_node(resume_grace=GRACE)
    alice, bob = await node_clients(a), await node_clients(b)
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    assert await alice.recv_until(UserJoined("bob"))
    alice.writer.transport.abort()  # a dropped link, no 004
    await parked_in_redis(redis_server, "alice")

    await bob.send("002#bob#are you # there?")
    await bob.send("003#bob#alice#psst")  # kept by node a, which parked her
    # Kept before carol comes (a join does not queue behind bob's writes: it could come first otherwise).
    await session_in_redis(redis_server, "alice", "count", lambda v: v == "1", "the whisper was not kept")
    carol = await node_clients(b)
    await carol.join("carol")
    await carol.send("004#carol")
    assert UserLeft("alice") not in await bob.recv_until(UserLeft("carol"))

    again = await node_clients(b)
    head, missed = await resume(again, token)
    assert head[:2] == [Joined("alice"), UserList(("alice", "bob"))]
    assert missed == [Message("bob", "are you # there?"), WhisperMessage("bob", "psst"), UserJoined("carol"),
                      UserLeft("carol")]
    await bob.send("002#bob#live again")
    assert await again.recv() == Message("bob", "live again")
    assert await again.sync() == [] and await bob.sync() == []  # no 104/103 for alice, ever

    reuse = await node_clients(a)  # the token was used on b: dead on a too
    await reuse.send(f"008#{token}")
    assert isinstance(err := await reuse.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
    await again.send("004#alice")  # she is node b's now: her leave is b's to announce
    assert await bob.recv_until(UserLeft("alice"))


def hold_channel_until_take(channel_of: Node, taker: Node) -> list[object]:
    """``channel_of``'s room channel is held back (what it brings is kept, in order) until just after
    ``taker``'s next take has its answer: what a busy channel looks like. Returns what is held."""
    assert channel_of.room is not None and taker.server.sessions is not None
    bus, sessions = channel_of.room.bus, taker.server.sessions
    deliver, take = bus.received, sessions.take
    held: list[object] = []

    def release() -> None:
        bus.received = deliver  # type: ignore[method-assign]
        for data in held:
            deliver(data)

    async def take_then_release(*args: str) -> object:
        found = await take(*args)
        asyncio.get_running_loop().call_soon(release)  # after the taker's next step
        return found

    bus.received = held.append  # type: ignore[method-assign]
    sessions.take = take_then_release  # type: ignore[method-assign]
    return held


async def test_a_resume_whose_answer_overtakes_the_room_channel_gets_each_message_once(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    """The take's answer and the room channel travel on different connections: here node b's channel is
    held back until just after the answer, as a busy channel would be. The missed frames and the live ones
    still meet exactly where the take happened in the channel: each message once, in order (before, the
    messages published between the node's channel position and the take came twice)."""
    a, b = await make_node(resume_grace=GRACE), await make_node(resume_grace=GRACE)
    alice, bob, carol = await node_clients(a), await node_clients(b), await node_clients(a)
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    await join_with_token(carol, "carol")
    assert await alice.recv_until(UserJoined("carol"))
    alice.writer.transport.abort()
    await parked_in_redis(redis_server, "alice")

    held = hold_channel_until_take(b, b)
    for i in range(50):
        await carol.send(f"002#carol#m{i}")
    # All fifty are in Redis (node b's channel has them, held) before the take.
    await wait_until(lambda: any('"m49"' in str(data) for data in held), what="node b's channel held back")
    again = await node_clients(b)
    _, missed = await resume(again, token)
    for i in range(50, 60):
        await carol.send(f"002#carol#m{i}")
    live = await again.recv_until(Message("carol", "m59"))
    got = [f.message for f in [*missed, *live] if isinstance(f, Message)]
    assert got == [f"m{i}" for i in range(60)], (len(missed), got)
    assert await again.sync() == []


async def test_a_whisper_the_parking_node_keeps_too_late_still_reaches_the_resumed_session(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    """A whisper reaches the parking node's channel just before the session resumes elsewhere, and its
    keeping runs after the take (here: node a's channel held back until then): it is sent on to the new
    holder, live, instead of kept for a session no longer parked (lost, before)."""
    a, b = await make_node(resume_grace=GRACE), await make_node(resume_grace=GRACE)
    alice, bob = await node_clients(a), await node_clients(b)
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    assert await alice.recv_until(UserJoined("bob"))
    alice.writer.transport.abort()
    await parked_in_redis(redis_server, "alice")

    held = hold_channel_until_take(a, b)
    await bob.send("003#bob#alice#are you back?")
    await wait_until(lambda: any("are you back?" in str(data) for data in held), what="node a holds the whisper")
    again = await node_clients(b)
    _, missed = await resume(again, token)
    psst = WhisperMessage("bob", "are you back?")
    # Node a had not kept it by the take: it comes live, or among the frames since the take's announcement
    # when it beat the take's answer to node b; either way once.
    if psst not in missed:
        assert (await again.recv_until(WhisperMessage))[-1] == psst
    else:
        assert missed.count(psst) == 1
    assert await again.sync() == []


async def test_a_session_on_a_killed_node_resumes_on_another_and_nobody_sees_a_leave(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
    node_process: Callable[..., Awaitable[NodeProcess]],  # noqa: F811 - the fixture
) -> None:
    a = await make_node(resume_grace=GRACE)
    bob = await node_clients(a)
    await join_with_token(bob, "bob")
    victim = await node_process("victim", "--resume-grace", str(GRACE))
    alice = await LineClient.connect("127.0.0.1", victim.port)
    try:
        token = await join_with_token(alice, "alice")
        await bob.recv_until(UserJoined("alice"))
        # The token is in Redis (a node killed before its write landed would lose the session: a plain 104).
        await session_in_redis(redis_server, "alice", "token", lambda v: bool(v), "no token in Redis")
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=TIMEOUT)
        await parked_in_redis(redis_server, "alice")  # the reaper parked her instead of removing her
        await bob.send("002#bob#while you were away")
        again = await node_clients(a)
        head, missed = await resume(again, token)
        assert head[:2] == [Joined("alice"), UserList(("bob", "alice"))]
        assert missed[-1] == Message("bob", "while you were away") and UserLeft("alice") not in missed
        await more_reaper_rounds(a)
        assert await bob.sync() == []  # no 104, no 103
        await bob.send("003#bob#alice#still here?")
        assert await again.recv() == WhisperMessage("bob", "still here?")
    finally:
        await alice.close()


async def test_grace_expiry_across_nodes_gives_exactly_one_104(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    a, b = await make_node(resume_grace=1.0), await make_node(resume_grace=1.0)
    alice, carol, bob = await node_clients(a), await node_clients(a), await node_clients(b)
    token = await join_with_token(alice, "alice")
    await join_with_token(carol, "carol")
    await join_with_token(bob, "bob")
    await carol.recv_until(UserJoined("bob"))
    alice.writer.transport.abort()
    await parked_in_redis(redis_server, "alice")
    for watcher in (bob, carol):
        assert await watcher.recv(timeout=NODE_TIMEOUT * 4) == UserLeft("alice")
    await more_reaper_rounds(a, b)  # both nodes swept again: still one
    assert await bob.sync() == [] and await carol.sync() == []
    late = await node_clients(b)
    await late.send(f"008#{token}")
    assert isinstance(err := await late.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
    assert (await late.join("alice"))[-2] == Joined("alice")  # the ID is free


async def test_a_token_is_single_use_across_nodes_and_the_reconnecting_tab_wins(
    make_node: MakeNode, node_clients: Connect,
) -> None:
    a, b = await make_node(resume_grace=GRACE), await make_node(resume_grace=GRACE)
    alice, bob = await node_clients(a), await node_clients(b)
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    other_tab = await node_clients(b)
    head, missed = await resume(other_tab, token)  # alice's first connection is still open on a
    assert head[0] == Joined("alice") and missed == []
    assert await alice.recv_until(Error) == [
        UserJoined("bob"), Error(ErrorReason.REPLACED, "this session was resumed by another connection")]
    for node in (a, b):
        again = await node_clients(node)
        await again.send(f"008#{token}")
        assert isinstance(err := await again.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
    await bob.send("003#bob#alice#which tab?")
    assert await other_tab.recv() == WhisperMessage("bob", "which tab?")
    assert await bob.sync() == []  # the takeover is silent


async def test_history_is_shared_and_survives_node_restarts(
    make_node: MakeNode, node_clients: Connect,
) -> None:
    a, b = await make_node(history=3), await make_node(history=3)
    alice, watcher = await node_clients(a), await node_clients(b)
    await alice.join("alice")
    await watcher.join("watcher")
    await alice.recv_until(UserJoined("watcher"))
    for i in range(5):
        await alice.send(f"002#alice#m{i} # {i}")
    await watcher.recv_until(Message("alice", "m4 # 4"))

    newcomer = await node_clients(b)
    await newcomer.join("newcomer")
    kept = [await newcomer.recv() for _ in range(3)]
    assert [(h.sender, h.message) for h in kept if isinstance(h, History)] == [
        ("alice", "m2 # 2"), ("alice", "m3 # 3"), ("alice", "m4 # 4")]
    assert all(isinstance(h, History) and h.ts > 0 for h in kept)

    for node in (a, b):  # every node restarts: Redis keeps the history
        await asyncio.wait_for(stop_node(node.server, node.room), TIMEOUT * 2)
        node.stopped = True
    fresh = await make_node(history=3, node_id="node0")
    later = await node_clients(fresh)
    await later.join("later")
    again = [await later.recv() for _ in range(3)]
    assert again == kept
    assert await later.sync() == []


async def test_redis_metrics_move_round_trips_bus_lag_and_nodes(make_node: MakeNode, node_clients: Connect) -> None:
    a = await make_node(metrics_port=0)
    assert a.server.metrics is not None
    url = f"http://127.0.0.1:{a.server.metrics.port}/metrics"
    before = await samples(url)
    b = await make_node()
    await wait_for_value(url, "hanchat_nodes", lambda v: v == 2, timeout=NODE_TIMEOUT * 4)  # the reaper sees b
    alice, bob = await node_clients(a), await node_clients(b)
    await alice.join("alice")
    await bob.join("bob")
    await bob.send("002#bob#hello")
    assert await alice.recv_until(Message("bob", "hello"))
    after = await samples(url)
    for name in ("hanchat_redis_round_trip_seconds_count", "hanchat_bus_lag_seconds_count"):
        assert value(after, name) > value(before, name), name
    assert value(after, "hanchat_bus_lag_seconds_sum") >= 0
    await asyncio.wait_for(stop_node(b.server, b.room), TIMEOUT * 2)
    b.stopped = True
    await wait_for_value(url, "hanchat_nodes", lambda v: v == 1, timeout=NODE_TIMEOUT * 4)  # b left the node list


async def test_past_its_bounds_a_parked_session_ends_once_and_its_resume_fails(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    """Messages past the bound: the resume fails cleanly (bad-token, one 104); whispers past it: the sweep ends it."""
    bound = {"resume_grace": GRACE, "resume_max_frames": 3}
    a, b = await make_node(**bound), await make_node(**bound)
    alice, wendy, bob = await node_clients(a), await node_clients(a), await node_clients(b)
    token = await join_with_token(alice, "alice")
    await join_with_token(wendy, "wendy")
    await join_with_token(bob, "bob")
    await alice.recv_until(UserJoined("bob"))
    await wendy.recv_until(UserJoined("bob"))
    alice.writer.transport.abort()
    wendy.writer.transport.abort()
    await parked_in_redis(redis_server, "alice")
    await parked_in_redis(redis_server, "wendy")

    for i in range(5):  # more than alice may miss: the log keeps them, her resume counts them
        await bob.send(f"002#bob#flood {i}")
    late = await node_clients(b)
    await late.send(f"008#{token}")
    assert isinstance(err := await late.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
    assert await bob.recv() == UserLeft("alice")

    for i in range(4):  # whispers past the bound end wendy's session at the next sweep
        await bob.send(f"003#bob#wendy#psst {i}")
    assert await bob.recv(timeout=NODE_TIMEOUT * 4) == UserLeft("wendy")
    await more_reaper_rounds(a, b)
    assert await bob.sync() == []  # each 104 once


def test_kept_frames_merge_into_the_log_after_the_events_they_came_after() -> None:
    """A parked session's whispers carry the log ID they came after; its own events are left out."""
    events = ['5-0 ["m", "bob", "bob", "one", 1]', '6-0 ["j", "carol", "carol"]', '7-0 ["m", "alice", "alice", "x"]',
              '8-0 ["l", "carol", "carol"]']
    kept = ['0-0 ["f", "105#bob#unsent"]', '5-0 ["w", "alice", "bob", "psst", 2]', '8-0 ["w", "alice", "bob", "end"]']
    assert merge(kept, events, "alice") == [
        Message("bob", "unsent"), Message("bob", "one"), WhisperMessage("bob", "psst"), UserJoined("carol"),
        UserLeft("carol"), WhisperMessage("bob", "end")]


async def test_a_killed_nodes_unresumed_sessions_end_with_one_104_when_the_grace_ends(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
    node_process: Callable[..., Awaitable[NodeProcess]],  # noqa: F811 - the fixture
) -> None:
    a, b = await make_node(resume_grace=1.0), await make_node(resume_grace=1.0)
    wa, wb = await node_clients(a), await node_clients(b)
    await wa.join("wa")
    await wb.join("wb")
    victim = await node_process("victim", "--resume-grace", "1")
    alice = await LineClient.connect("127.0.0.1", victim.port)
    try:
        token = await join_with_token(alice, "alice")
        await session_in_redis(redis_server, "alice", "token", lambda v: bool(v), "no token in Redis")
        for w in (wa, wb):
            await w.recv_until(UserJoined("alice"))
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=TIMEOUT)
        await parked_in_redis(redis_server, "alice")  # parked by a reaper: no 104 yet
        for w in (wa, wb):
            assert await w.recv(timeout=NODE_TIMEOUT * 4) == UserLeft("alice")  # the grace ended
        await more_reaper_rounds(a, b)
        assert await wa.sync() == [] and await wb.sync() == []  # once
        late = await node_clients(a)
        await late.send(f"008#{token}")
        assert isinstance(err := await late.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
    finally:
        await alice.close()


async def test_a_redis_restart_ends_parked_sessions_with_one_104(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    """Redis restarted empty forgets the parked sessions: their IDs are not registered again (no ghosts)."""
    a = await make_node(resume_grace=GRACE)
    alice, watcher = await node_clients(a), await node_clients(a)
    token = await join_with_token(alice, "alice")
    await join_with_token(watcher, "watcher")
    alice.writer.transport.abort()
    await parked_in_redis(redis_server, "alice")
    redis_server.restart()
    frames = await watcher.recv_until(UserLeft("alice"), timeout=10.0)
    assert UserLeft("alice") not in frames[:-1]
    await wait_until(lambda: a.room.link.subscribed, timeout=10.0, what="node a back on Redis")
    await more_reaper_rounds(a)
    assert UserLeft("alice") not in await watcher.sync()
    late = await node_clients(a)
    await late.send(f"008#{token}")
    assert isinstance(err := await late.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
    assert (await late.join("alice"))[-2] == Joined("alice")


# ----------------------------------------------------------------------------- positions (issue 26)


async def test_a_resume_from_a_position_on_another_node_gets_what_went_into_the_dying_connection(
    make_node: MakeNode, node_clients: Connect,
) -> None:
    """Node a has written everything to alice's connection but she read only part of it; it has not
    noticed anything. A resume on node b from her position gets the rest exactly once: messages, her
    whisper, a notice-free room's joins and leaves, in order."""
    a, b = await make_node(resume_grace=GRACE), await make_node(resume_grace=GRACE)
    alice, bob = await node_clients(a), await node_clients(b)
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    assert await alice.recv_until(UserJoined("bob")) == [UserJoined("bob")]
    await alice.send("002#alice#mine")  # not sent to her: not counted
    await bob.recv_until(Message("alice", "mine"))
    sent = [Message("bob", f"m{i}") for i in range(6)]
    for frame in sent[:3]:
        await bob.send(f"002#bob#{frame.message}")
    await bob.send("003#bob#alice#psst")
    for frame in sent[3:]:
        await bob.send(f"002#bob#{frame.message}")
    expected = [*sent[:3], WhisperMessage("bob", "psst"), *sent[3:]]
    assert await alice.recv_until(sent[-1]) == expected  # all of it reached her socket
    position = 1 + 2  # 103 bob, m0, m1: what her client showed before the link died

    again = await node_clients(b)
    await again.send(f"008#{token}#{position}")
    frames = await again.recv_until(Resumed)
    assert frames[:2] == [Joined("alice"), UserList(("alice", "bob"))]
    assert frames[3:] == [*expected[2:], Resumed(len(expected) - 2)]
    assert (await alice.recv_until(Error))[-1] == Error(ErrorReason.REPLACED,
                                                         "this session was resumed by another connection")
    await bob.send("002#bob#live")
    assert await again.recv() == Message("bob", "live")
    assert await bob.sync() == []  # no 104, no 103 for alice


async def test_a_resume_past_the_window_in_redis_ends_the_session_once(
    make_node: MakeNode, node_clients: Connect,
) -> None:
    a = await make_node(resume_grace=GRACE, resume_max_frames=4)
    b = await make_node(resume_grace=GRACE, resume_max_frames=4)
    alice, bob = await node_clients(a), await node_clients(b)
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    for i in range(6):
        await bob.send(f"002#bob#m{i}")
    await alice.recv_until(Message("bob", "m5"))
    again = await node_clients(b)
    await again.send(f"008#{token}#1")  # six to replay: more than four
    err = await again.recv()
    assert isinstance(err, Error) and err.reason is ErrorReason.GAP
    assert await bob.recv_until(UserLeft("alice")) == [UserLeft("alice")]
    await alice.closed()  # its node let it go
    await again.join("alice")  # a fresh join
    assert await bob.recv() == UserJoined("alice")
    assert await bob.sync() == []
