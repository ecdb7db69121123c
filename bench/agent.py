"""Drive the C load generator (``loadgen``) over its stdin/stdout command protocol.

The generator is a long-lived agent: connections stay joined between commands,
so a ramp runs many steps over the same users without re-joining (joins into
one channel are quadratic and take minutes on ngircd). Python only sends one
command line and waits for its one JSON answer, with a timeout for each, so
every run is bounded even if the agent or a server hangs.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .build import build

log = logging.getLogger("bench")

Result = dict[str, Any]


class AgentError(RuntimeError):
    """The agent died, answered garbage, or did not answer in time."""


@dataclass(frozen=True)
class StepSpec:
    """One paced traffic period. ``rate`` is messages a second, summed over all senders."""

    mode: str = "broadcast"  # or "whisper"
    rate: float = 100.0
    secs: float = 5.0
    senders: int = 10
    probes: int = 16
    parse_all: bool = False  # every receiver parses (whisper, soak): counts only payload lines
    churn_rate: float = 0.0  # churn cycles started a second (soak)
    drain_secs: float = 10.0  # longest wait for late deliveries after sending stops
    quiet_ms: int = 1000  # ... or until nothing arrived for this long

    def command(self) -> str:
        mode = "w" if self.mode == "whisper" else "b"
        return (
            f"step {mode} {self.rate:.6f} {self.secs:.6f} {self.senders} {self.probes} "
            f"{int(self.parse_all)} {self.churn_rate:.6f} {self.drain_secs:.6f} {self.quiet_ms}"
        )

    def timeout(self) -> float:
        return self.secs + self.drain_secs + 5.0 + (3.0 if self.churn_rate else 0.0)


def _pin(cpus: set[int] | None) -> None:
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError:  # fewer CPUs than asked for: run unpinned
            pass


class Agent:
    """One generator process talking to one server."""

    def __init__(
        self,
        port: int,
        proto: str,
        prefix: str = "u",
        msg_size: int = 100,
        host: str = "127.0.0.1",
        max_secs: float = 7200.0,
        cpus: set[int] | None = None,
        binary: Path | None = None,
        port2: int | None = None,
    ) -> None:
        self.binary = binary or build()
        cmd = [
            str(self.binary), "--host", host, "--port", str(port), "--proto", proto,
            "--prefix", prefix, "--msg-size", str(msg_size), "--max-secs", str(max_secs),
        ]
        if port2:  # a second node of a shared room: every odd user connects there
            cmd += ["--port2", str(port2)]
        log.debug("starting agent: %s", " ".join(cmd))
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=(lambda: _pin(cpus)) if cpus else None,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None and self.proc.stderr is not None
        self._stdout = self.proc.stdout
        self._stdin = self.proc.stdin
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._stdout, selectors.EVENT_READ)
        self._stderr_thread = threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,), daemon=True)
        self._stderr_thread.start()
        ready = self._read_result(10.0)
        if ready.get("cmd") != "ready":
            raise AgentError(f"agent did not start: {ready}")

    @staticmethod
    def _pump_stderr(stream: IO[bytes]) -> None:
        """The agent's own diagnostics (refused joins, drops) go to our log; the pipe is closed at its end."""
        with stream:
            for raw in stream:
                log.warning("%s", raw.decode(errors="replace").rstrip())

    def _read_result(self, timeout: float) -> Result:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AgentError(f"no answer from the agent within {timeout:.0f} s")
            if not self._sel.select(left):
                continue
            chunk = os.read(self._stdout.fileno(), 65536)
            if not chunk:
                self.proc.wait(5)
                raise AgentError(f"agent exited with status {self.proc.returncode}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            result: Result = json.loads(line)
        except ValueError as exc:
            raise AgentError(f"agent said {line!r}") from exc
        return result

    def command(self, line: str, timeout: float) -> Result:
        """Send one command and return its JSON result."""
        log.debug("agent <- %s", line)
        try:
            self._stdin.write(line.encode() + b"\n")
            self._stdin.flush()
        except BrokenPipeError as exc:
            raise AgentError("agent is gone") from exc
        result = self._read_result(timeout)
        log.debug("agent -> %s", result)
        if not result.get("ok", False) and "error" in result:
            raise AgentError(f"{line!r}: {result['error']}")
        return result

    # ------------------------------------------------------------ commands

    def connect(self, users: int, concurrency: int, timeout: float, wait_notices: bool = False,
                accept_window: int = 0) -> Result:
        """Connect and join ``users`` more users, ``concurrency`` joins in flight at most.

        ``accept_window`` bounds the connections the server has not answered yet
        (0: the concurrency); keep it under the server's listen backlog.
        """
        return self.command(
            f"connect {users} {concurrency} {timeout:.3f} {int(wait_notices)} {accept_window}", timeout + 10.0
        )

    def step(self, spec: StepSpec) -> Result:
        return self.command(spec.command(), spec.timeout())

    def settle(self, quiet_ms: int = 300, timeout: float = 30.0) -> Result:
        """Read until nothing has arrived for ``quiet_ms`` (join notices still in flight, say)."""
        return self.command(f"settle {quiet_ms} {timeout:.3f}", timeout + 10.0)

    def idle(self, secs: float) -> Result:
        return self.command(f"idle {secs:.3f}", secs + 10.0)

    def close_all(self) -> Result:
        return self.command("close", 30.0)

    def stats(self) -> Result:
        return self.command("stats", 10.0)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        """Ask the agent to quit (it also quits when its stdin closes); kill it if it will not."""
        if self.proc.poll() is None:
            try:
                self._stdin.write(b"quit\n")
                self._stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        self._sel.close()
        self._stdout.close()
        try:
            self._stdin.close()
        except BrokenPipeError:  # its unflushed bytes had nowhere to go: the agent is gone anyway
            pass
        self._stderr_thread.join(5)

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
