"""The embedded session store alone: the cost of a room message while N sessions are parked.

``python -m bench.parked [--parked 0,100,1000] [--messages 900]`` prints microseconds per room message
and per resume. No sockets: it measures the store's own work (BENCHMARKS.md, "Parked sessions").
"""

from __future__ import annotations

import argparse
import asyncio
import time

from tcp_server.protocol import Message
from tcp_server.room import InMemorySessionStore


async def measure(parked: int, messages: int) -> tuple[float, float]:
    """Seconds per room message, and per resume, with ``parked`` sessions parked."""
    store = InMemorySessionStore(60.0, 1000, 256 * 1024)
    tokens = [store.issue(f"u{i}", f"u{i}") for i in range(parked)]
    for i in range(parked):
        store.park(f"u{i}", [])
    message = Message("bob", "x" * 50, 1)
    started = time.perf_counter()
    for _ in range(messages):
        store.room_event(message, "bob")
    per_message = (time.perf_counter() - started) / messages
    started = time.perf_counter()
    for token in tokens:
        await store.take(token)
    per_resume = (time.perf_counter() - started) / max(parked, 1)
    return per_message, per_resume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parked", default="0,100,1000", help="comma-separated counts of parked sessions")
    parser.add_argument("--messages", type=int, default=900, help="room messages (the default resume bound is 1000)")
    args = parser.parse_args()
    for parked in (int(n) for n in args.parked.split(",")):
        per_message, per_resume = asyncio.run(measure(parked, args.messages))
        print(f"{parked:6} parked: {per_message * 1e6:8.2f} us per message, {per_resume * 1e3:6.3f} ms per resume")


if __name__ == "__main__":
    main()
