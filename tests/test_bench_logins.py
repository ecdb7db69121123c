"""The login-storm benchmark works: its sink process and a seconds-long storm against a real server.

Not a measurement (other tests share the machine): it checks that the silent members join and are
drained by a process of their own, and that ``python -m bench.logins`` logs everyone in and prints the
generator's and the server's views.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from bench.servers import run_ours

REPO = Path(__file__).parent.parent


def _roster(port: int) -> set[str]:
    """The IDs a newcomer's ``107`` lists."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"001#watcher\n")
        seen = b""
        while b"\n107#" not in seen or not seen.split(b"\n107#", 1)[1].count(b"\n"):
            chunk = sock.recv(65536)
            assert chunk, "the server closed the watcher"
            seen += chunk
        line = seen.split(b"\n107#", 1)[1].split(b"\n", 1)[0].decode()
        return set(line.split("#"))


def test_the_sink_process_joins_its_members_and_drains_them() -> None:
    with run_ours(0) as server, subprocess.Popen(
            [sys.executable, "-m", "bench.sinks", "--port", str(server.port), "--first", "3", "--count", "30"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO) as sinks:
        try:
            assert sinks.stdout is not None and sinks.stdin is not None
            assert sinks.stdout.readline().split() == ["ready", "30"]
            assert {f"u{i}" for i in range(3, 33)} <= _roster(server.port)  # all present
            sinks.stdin.close()
            done, nbytes, closed = sinks.stdout.readline().split()
            assert done == "done" and int(nbytes) > 0 and closed == "0"  # it read; no one was dropped
            assert sinks.wait(timeout=10) == 0
        finally:
            if sinks.poll() is None:
                sinks.kill()
                sinks.wait(timeout=10)


def test_the_login_storm_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.logins", "--users", "60", "--probes", "10", "--senders", "5", "--logins", "20",
         "--queue", "4", "--rate", "100", "--warmup", "0.5", "--baseline", "1", "--retry", "0.05-0.1"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "logins: 20/20 joined" in out and "refused: none" in out
    assert "silent members 45 (a sink process at nice 19)" in out
    assert "0 closed by the server" in out
    for view in ("to the probe's read", "to the kernel's arrival"):
        line = next(line for line in out.splitlines() if f"during the storm, {view}" in line)
        assert "(0 samples)" not in line  # the probes timed messages during the storm
    assert "server during the storm: loop-lag timer" in out and "longer than 50 ms" in out
