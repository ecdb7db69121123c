"""``python -m bench.sinks``: room members that only have to be present and read, in a process of their own.

A big room's members must read what the server writes to them (or it drops them as slow readers), but
the benchmark times only a few of them. Reading 1,000 sockets in the process that also times messages
made that process's own lateness the measurement (every join or leave is a frame to every member: 1,000
read callbacks). Here the silent majority is drained by a plain ``selectors`` loop in big reads, at a low
priority (``--nice``, 19 by default), so it takes only the CPU nobody else wants.

Protocol with the parent: it joins ``--count`` members named ``PREFIX<n>`` from ``--first`` on, prints
``ready N`` on stdout once all of them have their ``107``, drains until its stdin closes (or says
anything), then prints ``done BYTES CLOSED`` (bytes read, connections the server closed) and exits.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys
import time

TIMEOUT = 60.0
BATCH = 100


def _joined(seen: bytes) -> bool:
    return seen.startswith(b"107") or b"\n107" in seen


def run(port: int, prefix: str, first: int, count: int, nice: int) -> int:
    """Join, report ``ready``, drain until stdin closes, report ``done``; 0 when every member joined."""
    if nice:
        os.nice(nice)
    sel = selectors.DefaultSelector()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    waiting: dict[socket.socket, bytes] = {}
    total = closed = 0

    def drain(timeout: float | None) -> bool:
        """One select round over the members; False when stdin closed or spoke."""
        nonlocal total, closed
        for key, _ in sel.select(timeout):
            if key.data is None:
                return False
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                n = sock.recv_into(view)
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            if n == 0:
                closed += 1
                sel.unregister(sock)
                sock.close()
                waiting.pop(sock, None)
                continue
            total += n
            if sock in waiting:
                seen = waiting[sock] + bytes(view[:n])
                if _joined(seen):
                    del waiting[sock]
                else:
                    waiting[sock] = seen
        return True

    names = [f"{prefix}{i}" for i in range(first, first + count)]
    for start in range(0, len(names), BATCH):
        for name in names[start:start + BATCH]:
            sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            sock.sendall(f"001#{name}\n".encode())
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, name)
            waiting[sock] = b""
        deadline = time.monotonic() + TIMEOUT
        while waiting and time.monotonic() < deadline:
            drain(1.0)
        if waiting:
            print(f"failed {len(waiting)} members did not join", flush=True)
            return 1
    print(f"ready {count}", flush=True)
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    while drain(None):
        pass
    print(f"done {total} {closed}", flush=True)
    return 0


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sinks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--prefix", default="u")
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--nice", type=int, default=19, help="the nice increment this process takes (0: none)")
    args = p.parse_args()
    sys.exit(run(args.port, args.prefix, args.first, args.count, args.nice))


if __name__ == "__main__":
    main()
