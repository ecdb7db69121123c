"""``chat-bench history``: a room with a million stored messages, and how fast real clients read it.

1. **Fill**: a store (an SQLite file, or a database in a private PostgreSQL cluster) is opened and
   migrated by the server's own :class:`tcp_server.store.db.MessageStore`, then filled in bulk with
   rows made by its :class:`StoredMessage` (the same ``folded`` column the server writes): chat lines
   of Korean and English words, 200 authors, a month of timestamps. The search indexes are built as
   the migration builds them (SQLite: the FTS5 trigram index rebuilt once after the rows, instead of
   its writer in steps; PostgreSQL: ``COPY``, then the pg_trgm GIN index created).
2. **Serve**: the real server (``python -m tcp_server``, pinned as in every other scenario) starts on
   that database, with the product's defaults (50 on join, resume on).
3. **Time**: clients over real sockets, one request in flight at a time, time from the request's
   write to the answer's last line: a fresh **join** (``001`` → ``107``, ``112``, 50 × ``111``,
   ``141``), **one page back** (``016`` from the join's cursor, 50 lines, then ``141``), **deeper pages**
   (each from the previous one's cursor), and **searches** (``017`` → ``142`` lines, ``143``) of
   3+ characters (FTS5 trigram / pg_trgm) and of 2 characters (no trigram: a scan), each query
   frequent, rare, and absent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")

KOREAN = ("안녕하세요 오늘 내일 회의 회의실 점심 저녁 커피 프로젝트 배포 서버 데이터 확인 부탁 감사합니다 "
          "좋아요 네 아니요 잠깐 지금 나중에 문서 검토 일정 변경 테스트 결과 성공 실패 다시 시작 "
          "우리 팀 같이 먹어요 어디 언제 왜 어떻게 정말 진짜 괜찮아요 수고하셨습니다 주말 날씨 비 "
          "출근 퇴근 휴가 코드 리뷰 버그 수정 완료 진행 중 질문 답변 링크 공유 사진 영상 음악").split()
ENGLISH = ("the a to and is it of for on in this that we you I can will please thanks ok sure deploy "
           "server build test review merge branch fix bug issue meeting lunch coffee today tomorrow "
           "later now done working on it looks good to me LGTM ship release notes docs link check "
           "logs error timeout retry again soon weekend weather rain office home remote call").split()
RARE = ("zeppelin", "펭귄")  # one message in ten thousand each: what a rare search finds
EMOJI = ("ㅋㅋㅋ", "ㅎㅎ", "!!", "?", ":)", "^^")

QUERIES: tuple[tuple[str, str], ...] = (
    ("3+ chars, frequent (deploy)", "deploy"),
    ("3+ chars, Korean (회의실)", "회의실"),
    ("3+ chars, rare (zeppelin)", "zeppelin"),
    ("3+ chars, absent (없는말이다)", "없는말이다"),
    ("2 chars, frequent (회의)", "회의"),
    ("2 chars, rare (펭귄)", "펭귄"),
    ("2 chars, absent (qz)", "qz"),
)


def chat_line(rng: random.Random) -> str:
    """A chat line: 3 to 16 words, mostly one language, sometimes mixed, sometimes a rare word."""
    words: list[str] = []
    korean = rng.random() < 0.6
    for _ in range(rng.randint(3, 16)):
        pool = KOREAN if (korean if rng.random() < 0.85 else not korean) else ENGLISH
        words.append(rng.choice(pool))
    r = rng.random()
    if r < 1e-4:
        words.insert(rng.randrange(len(words) + 1), RARE[0])
    elif r < 2e-4:
        words.insert(rng.randrange(len(words) + 1), RARE[1])
    if rng.random() < 0.3:
        words.append(rng.choice(EMOJI))
    return " ".join(words)


def rows(count: int, room: str, start_ms: int, seed: int = 23) -> Iterator[Any]:
    """``count`` StoredMessages, oldest first, a month of time up to ``start_ms``."""
    from tcp_server.protocol.ids import id_key
    from tcp_server.store.db import StoredMessage

    rng = random.Random(seed)
    authors = [(f"user{i}", id_key(f"user{i}")) for i in range(150)] + \
              [(f"사용자{i}", id_key(f"사용자{i}")) for i in range(50)]
    span = 30 * 86_400_000
    for seq in range(1, count + 1):
        author, key = authors[rng.randrange(len(authors))]
        yield StoredMessage(room, seq, start_ms - span + seq * span // count, author, key, chat_line(rng))


@dataclass
class Target:
    kind: str  # sqlite, postgresql
    url: str
    disk_bytes: Any  # () -> int


def _sqlite_fill(path: Path, count: int, room: str, batch: int) -> None:
    """The rows through the schema's INSERT in big transactions; the FTS index rebuilt once at the end."""
    import sqlite3

    from sqlalchemy.dialects import sqlite as sqlite_dialect

    from tcp_server.store.schema import messages
    from tcp_server.store.sqlite_writer import WATERMARK

    stmt = messages.insert().compile(dialect=sqlite_dialect.dialect())
    order = list(stmt.positiontup or [])
    sql = str(stmt)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    fts = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'").fetchone() is not None
    now = time.time_ns() // 1_000_000
    chunk: list[tuple[Any, ...]] = []
    for m in rows(count, room, now):
        row = m.row()
        chunk.append(tuple(row.get(k) for k in order))
        if len(chunk) >= batch:
            conn.executemany(sql, chunk)
            conn.commit()
            chunk = []
    if chunk:
        conn.executemany(sql, chunk)
        conn.commit()
    if fts:
        t0 = time.monotonic()
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
        conn.execute("UPDATE meta SET value = (SELECT CAST(coalesce(max(id), 0) AS TEXT) FROM messages) "
                     "WHERE key = ?", (WATERMARK,))  # every row is indexed (migration 0004)
        conn.commit()
        log.info("FTS5 trigram index rebuilt in %.1f s", time.monotonic() - t0)
    conn.execute("ANALYZE")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def _pg_fill(url: str, count: int, room: str, batch: int) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
    try:
        has_trgm = await conn.fetchval("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_messages_folded_trgm'")
        if has_trgm:
            await conn.execute("DROP INDEX ix_messages_folded_trgm")
        now = time.time_ns() // 1_000_000
        columns = ["room", "seq", "ts", "author", "author_key", "body", "folded"]
        chunk: list[tuple[Any, ...]] = []
        for m in rows(count, room, now):
            row = m.row()
            chunk.append(tuple(row[c] for c in columns))
            if len(chunk) >= batch:
                await conn.copy_records_to_table("messages", records=chunk, columns=columns)
                chunk = []
        if chunk:
            await conn.copy_records_to_table("messages", records=chunk, columns=columns)
        if has_trgm:  # migration 0002's index, built once
            t0 = time.monotonic()
            await conn.execute("SET maintenance_work_mem = '256MB'")
            await conn.execute("CREATE INDEX ix_messages_folded_trgm ON messages USING gin (folded gin_trgm_ops)")
            log.info("pg_trgm GIN index built in %.1f s", time.monotonic() - t0)
        await conn.execute("VACUUM ANALYZE messages")
    finally:
        await conn.close()


async def _open_and_migrate(url: str) -> None:
    from tcp_server.store.db import MessageStore
    from tcp_server.store.urls import parse_database

    store = await MessageStore.open(parse_database(url))
    await store.close()


def migrate(url: str) -> None:
    """Create the schema with the server's own code (its Alembic migrations)."""
    asyncio.run(_open_and_migrate(url))


def fill(url: str, count: int, batch: int = 20_000) -> float:
    """Fill a migrated store; seconds taken."""
    from tcp_server.protocol.scrollback import LOBBY

    t0 = time.monotonic()
    if url.startswith("sqlite:///"):
        _sqlite_fill(Path(url[len("sqlite:///"):]), count, LOBBY, batch)
    else:
        asyncio.run(_pg_fill(url, count, LOBBY, batch))
    return time.monotonic() - t0


# ---------------------------------------------------------------- the timing client


class Client:
    """One connection speaking the chat protocol; ``request`` times a frame's answer up to its last line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int) -> Client:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, frame: str, last: str, timeout: float = 30.0) -> tuple[float, list[str]]:
        """Send ``frame``; read lines until one starting with ``last``; (seconds, lines)."""
        t0 = time.perf_counter()
        self.writer.write(frame.encode() + b"\n")
        lines: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.reader.readline()
                if not raw:
                    raise ConnectionError(f"closed while waiting for {last} (after {frame[:20]!r})")
                line = raw.decode().rstrip("\n")
                if line.startswith("109#"):
                    raise RuntimeError(f"{frame[:20]!r} refused: {line}")
                if line.startswith(("103#", "104#", "105#")):  # the room meanwhile: not part of the answer
                    continue
                lines.append(line)
                if line.startswith(last):
                    return time.perf_counter() - t0, lines

    async def close(self) -> None:
        try:
            self.writer.write(b"004\n")
            await self.writer.drain()
        except OSError:
            pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))] if s else float("nan")


def summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": round(_pct(ms, 0.50), 2), "p95_ms": round(_pct(ms, 0.95), 2),
            "p99_ms": round(_pct(ms, 0.99), 2), "max_ms": round(max(ms), 2) if ms else float("nan")}


async def time_reads(host: str, port: int, joins: int, pages: int, searches: int) -> dict[str, Any]:
    """Joins (each a fresh user, left after its page), pages back, searches; the figures by operation."""
    from tcp_server.protocol.scrollback import LOBBY

    results: dict[str, list[float]] = {"join (001 → 111 × 50, 141)": [], "one page back (016, 50)": [],
                                       "deeper pages (016, 50, chained)": []}
    counts: dict[str, int] = {}
    cursor = ""
    for i in range(joins):
        client = await Client.connect(host, port)
        try:
            secs, lines = await client.request(f"001#hist{i}", "141#")
            results["join (001 → 111 × 50, 141)"].append(secs)
            counts["join 111 lines"] = sum(1 for line in lines if line.startswith("111#"))
            cursor = lines[-1].split("#", 3)[3]
            secs, lines = await client.request(f"016#{LOBBY}#{cursor}#50", "141#")
            results["one page back (016, 50)"].append(secs)
            counts["page 140 lines"] = sum(1 for line in lines if line.startswith("140#"))
        finally:
            await client.close()
    client = await Client.connect(host, port)
    try:
        _, lines = await client.request("001#histdeep", "141#")
        cursor = lines[-1].split("#", 3)[3]
        for _ in range(pages):
            secs, lines = await client.request(f"016#{LOBBY}#{cursor}#50", "141#")
            results["deeper pages (016, 50, chained)"].append(secs)
            cursor = lines[-1].split("#", 3)[3]
            if not cursor:
                break
        for label, query in QUERIES:
            times: list[float] = []
            for _ in range(searches):
                secs, lines = await client.request(f"017#{LOBBY}#{query}", "143#")
                times.append(secs)
            results[f"search: {label}"] = times
            counts[f"found: {label}"] = sum(1 for line in lines if line.startswith("142#"))
    finally:
        await client.close()
    return {"ops": {name: summary(values) for name, values in results.items()}, "counts": counts}


# ---------------------------------------------------------------- the scenario


@contextmanager
def target(kind: str, keep: str | None, cpus: set[int] | None) -> Iterator[Target]:
    """An empty store to fill: an SQLite file in a temporary (or ``keep``) directory, or a private cluster."""
    if kind == "sqlite":
        data = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="chat-bench-history-"))
        data.mkdir(parents=True, exist_ok=True)
        path = data / "chat.db"
        from .servers import sqlite_bytes

        try:
            yield Target("sqlite", f"sqlite:///{path}", lambda: sqlite_bytes(path))
        finally:
            if not keep:
                shutil.rmtree(data, ignore_errors=True)
    elif kind in ("postgresql", "pg"):
        from . import pg

        with pg.cluster(cpus) as cluster:
            url = cluster.database("chat")
            yield Target("postgresql", url, lambda: cluster.db_bytes("chat"))
    else:
        raise ValueError(f"unknown database {kind!r} (sqlite or postgresql)")


def run(kind: str, messages: int, joins: int, pages: int, searches: int, keep: str | None = None,
        cpus: set[int] | None = None, agent_cpus: set[int] | None = None) -> dict[str, Any]:
    from .servers import run_ours

    report: dict[str, Any] = {"scenario": "history", "database": kind, "messages": messages,
                              "loadavg_before": os.getloadavg()}
    with target(kind, keep, cpus) as tgt:
        filled = False
        if kind == "sqlite" and keep and Path(tgt.url[len("sqlite:///"):]).exists():
            filled = True  # --keep DIR from an earlier run: reuse its rows
            log.info("reusing %s", tgt.url)
        if not filled:
            migrate(tgt.url)
            report["empty_disk_bytes"] = tgt.disk_bytes()
            log.info("filling %s with %d messages", tgt.url, messages)
            report["fill_secs"] = round(fill(tgt.url, messages), 1)
            log.info("filled in %.1f s", report["fill_secs"])
        report["disk_bytes"] = tgt.disk_bytes()
        report["disk_bytes_per_message"] = round(
            (report["disk_bytes"] - report.get("empty_disk_bytes", 0)) / messages, 1)
        env = {"CHAT_HISTORY": "50", "CHAT_RESUME_GRACE": "60", "CHAT_DATABASE": tgt.url}
        t0 = time.monotonic()
        with run_ours(0, cpus=cpus, env_extra=env, name=f"hanchat-{kind}") as server:
            report["server_start_secs"] = round(time.monotonic() - t0, 2)
            before = os.sched_getaffinity(0)
            if agent_cpus:
                os.sched_setaffinity(0, agent_cpus)
            try:
                report.update(asyncio.run(time_reads(server.host, server.port, joins, pages, searches)))
            finally:
                os.sched_setaffinity(0, before)
    report["loadavg_after"] = os.getloadavg()
    return report


def table(reports: list[dict[str, Any]], limit_ms: float = 50.0) -> str:
    """One row per operation, one column group per database."""
    if not reports:
        return ""
    cols = " | ".join(f"{r['database']} p50 / p95 / max ms (n)" for r in reports)
    head = f"| operation | {cols} | p95 ≤ {limit_ms:g} ms |"
    lines = [head, "|---|" + "---:|" * len(reports) + ":---:|"]
    for op in reports[0]["ops"]:
        cells = []
        ok = True
        for r in reports:
            s = r["ops"].get(op)
            if not s:
                cells.append("–")
                continue
            cells.append(f"{s['p50_ms']:.1f} / {s['p95_ms']:.1f} / {s['max_ms']:.1f} ({s['n']})")
            ok = ok and s["p95_ms"] <= limit_ms
        lines.append(f"| {op} | " + " | ".join(cells) + f" | {'yes' if ok else '**no**'} |")
    lines.append("")
    for r in reports:
        lines.append(
            f"- {r['database']}: {r['messages']:,} messages, filled in {r.get('fill_secs', '–')} s, "
            f"{r['disk_bytes']:,} bytes on disk ({r['disk_bytes_per_message']:,} per message), server up in "
            f"{r['server_start_secs']} s; matches in the last search of each query: "
            + ", ".join(f"{k.split(': ', 1)[1]} {v}" for k, v in r["counts"].items() if k.startswith("found"))
            + f"; load average {r['loadavg_before'][0]:.2f} before, {r['loadavg_after'][0]:.2f} after")
    return "\n".join(lines)
