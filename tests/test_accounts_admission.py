"""A login storm's surplus is refused before it reads the database, on real sockets and a real SQLite file.

Every ``018`` reads the accounts table before it reaches the hashing pool. Admission used to look at
the pool alone, so a storm whose logins all arrived before the first of them reached the pool all
passed, all read the database at once (exhausting its connection pool; the message path's commits
waited behind them: BENCHMARKS.md, issue 24), and only then were refused ``login-busy`` by the pool.
"""

from __future__ import annotations

import asyncio
import pathlib

from sqlalchemy import event

from tcp_server import ChatServer
from tcp_server.protocol import Error, ErrorReason, Joined
from tests.conftest import server_config
from tests.helpers import LineClient

STORM = 40


async def test_a_storm_beyond_the_queue_is_refused_before_its_database_read(tmp_path: pathlib.Path) -> None:
    server = ChatServer(server_config(database=f"sqlite:///{tmp_path / 'chat.db'}", login_workers=1,
                                      login_queue=2))
    await server.start()
    assert server.accounts is not None and server.store is not None
    reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if "FROM accounts" in statement:
            reads.append(statement)

    event.listen(server.store.engine.sync_engine, "before_cursor_execute", count)
    clients = [await LineClient.connect("127.0.0.1", server.port) for _ in range(STORM)]
    try:
        await asyncio.gather(*(client.send(f"018#someone{i}#password-{i}") for i, client in enumerate(clients)))
        answers: list[Error | Joined] = []
        for client in clients:
            frames = await client.recv_until(lambda f: isinstance(f, (Error, Joined)))
            last = frames[-1]
            assert isinstance(last, (Error, Joined))
            answers.append(last)
        reasons = [a.reason for a in answers if isinstance(a, Error)]
        assert len(reasons) == STORM  # (no such accounts: bad-login or login-busy)
        assert set(reasons) == {ErrorReason.BAD_LOGIN, ErrorReason.LOGIN_BUSY}
        # Only what the pool can hold (1 running + 2 waiting at a time) read the table; the rest were
        # refused before it, none by the pool itself after a wasted read.
        assert server.accounts.hashing.busy_refusals == 0
        assert len(reads) == reasons.count(ErrorReason.BAD_LOGIN) < STORM
    finally:
        event.remove(server.store.engine.sync_engine, "before_cursor_execute", count)
        for client in clients:
            await client.close()
        await server.close(timeout=2.0)
