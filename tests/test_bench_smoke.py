"""The benchmark works: a seconds-long run of the C generator against a real server.

Not a measurement (other tests share the machine): it checks that the generator
builds, joins, counts every delivery, samples latency, and that the soak mode
runs its churn and reads the server's memory and descriptors.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import scenarios
from bench.agent import Agent, StepSpec
from bench.build import build
from bench.servers import ServerHandle, run_gateway, run_ngircd, run_ours


@pytest.fixture(scope="module")
def binary() -> Path:
    return build()


@pytest.fixture(params=["plain", "history"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    """Our server as benchmarked, and with history and resume on (the generator must not count 111/112)."""
    scenarios.set_pinning(False)  # other tests run beside us: no pinning
    env = {"CHAT_HISTORY": "50", "CHAT_RESUME_GRACE": "60"} if request.param == "history" else None
    with run_ours(0, env_extra=env) as handle:
        yield handle


def test_generator_counts_every_delivery(binary: Path, server: ServerHandle) -> None:
    with Agent(server.port, "chat", prefix="t", max_secs=60, binary=binary) as agent:
        joined = agent.connect(20, 10, 20.0, wait_notices=True)
        assert joined["joined"] == 20
        assert joined["notices"] == joined["notices_expected"] == 20 * 19 // 2  # every 103 counted

        step = agent.step(StepSpec(rate=200.0, secs=1.0, senders=4, probes=4, drain_secs=5.0, quiet_ms=300))
        assert step["sent"] > 100
        assert step["expected"] == step["sent"] * 19
        assert step["delivered"] == step["expected"]
        assert step["lost"] == step["dropped_users"] == step["skipped"] == 0
        assert step["samples"] > 0 and 0 <= step["p50_ms"] <= step["p99_ms"]

        whisper = agent.step(StepSpec(mode="whisper", rate=300.0, secs=0.5, senders=4, parse_all=True,
                                      drain_secs=5.0, quiet_ms=300))
        assert whisper["delivered"] == whisper["expected"] == whisper["sent"] > 0
        assert whisper["samples"] == whisper["delivered"]  # every receiver parsed: every line sampled


def test_short_soak(server: ServerHandle) -> None:
    cfg = scenarios.SoakConfig(secs=3.0, tick=1.0, users=20, senders=2, rate=50.0, whisper_rate=100.0,
                               whisper_every=2, churn_rate=15.0)
    report = scenarios.soak(server, cfg)
    totals = report["totals"]
    assert len(report["samples"]) >= 2
    assert totals["delivered"] == totals["expected"] > 0
    assert totals["lost"] == totals["dropped_users"] == 0
    assert totals["churn_done"] > 0 and totals["churn_failed"] == 0
    assert all(s["rss_kib"] > 0 and s["fds"] > 0 for s in report["samples"])
    assert report["fds_after_close"] <= report["fds_empty"]  # every churned connection was closed


def test_cli_ramp_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "ramp.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "fanout", "--servers", "ours", "--port", "0", "--no-pin", "--no-plot",
         "--users", "10", "--senders", "2", "--rates", "2000,4000", "--step-secs", "0.5", "--json", str(out)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "| hanchat |" in result.stdout
    assert out.exists()



def test_generator_speaks_irc(binary: Path) -> None:
    with run_ngircd(0) as irc, Agent(irc.port, "irc", prefix="t", max_secs=60, binary=binary) as agent:
        joined = agent.connect(10, 5, 20.0, wait_notices=True, accept_window=irc.accept_window(5))
        assert joined["joined"] == 10
        step = agent.step(StepSpec(rate=100.0, secs=0.5, senders=2, probes=2, drain_secs=5.0, quiet_ms=300))
        assert step["delivered"] == step["expected"] > 0
        assert step["samples"] > 0


def test_generator_speaks_websocket_through_the_gateway(binary: Path) -> None:
    with run_gateway(0) as gw, Agent(gw.port, "ws", prefix="t", max_secs=60, binary=binary) as agent:
        joined = agent.connect(10, 5, 20.0, wait_notices=True)
        assert joined["joined"] == 10
        assert joined["notices"] == joined["notices_expected"] == 10 * 9 // 2  # every user_joined event counted
        step = agent.step(StepSpec(rate=100.0, secs=0.5, senders=2, probes=2, drain_secs=5.0, quiet_ms=300))
        assert step["delivered"] == step["expected"] > 0
        assert step["lost"] == step["dropped_users"] == 0
        assert step["samples"] > 0
        whisper = agent.step(StepSpec(mode="whisper", rate=100.0, secs=0.5, senders=2, parse_all=True,
                                      drain_secs=5.0, quiet_ms=300))
        assert whisper["delivered"] == whisper["expected"] == whisper["samples"] > 0


def test_the_parked_sessions_benchmark_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.parked", "--parked", "0,10", "--messages", "20"],
                            capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[1].split()[0] == "10" and "us per message" in lines[1]


def test_the_history_scenario_runs(tmp_path: Path) -> None:
    """chat-bench history on a small SQLite room: fill, serve, join, page and search over real sockets."""
    out = tmp_path / "history.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "history", "--databases", "sqlite", "--messages", "3000", "--joins", "3",
         "--pages", "3", "--searches", "1", "--no-pin", "--json", str(out)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "| join (001 → 111 × 50, 141) |" in result.stdout
    import json

    report = json.loads(out.read_text())["reports"][0]
    assert report["counts"]["join 111 lines"] == 50 and report["counts"]["page 140 lines"] == 50
    assert report["ops"]["deeper pages (016, 50, chained)"]["n"] == 3


def test_the_crash_scenario_finds_nothing_missing(tmp_path: Path) -> None:
    """chat-bench crash, one short run on SQLite: kill -9 under load, restart, nothing received is missing."""
    out = tmp_path / "crash.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "crash", "--databases", "sqlite", "--runs", "1", "--users", "10",
         "--senders", "2", "--rate", "5000", "--no-pin", "--json", str(out)],
        capture_output=True, text=True, timeout=90, cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    import json

    run = json.loads(out.read_text())["reports"][0]["runs"][0]
    assert run["received"] > 0 and run["stored"] >= run["received"]
    assert run["missing"] == 0


def test_the_durable_kinds_report_their_store(tmp_path: Path) -> None:
    """ours-durable and ours-durable-pg (a private cluster, removed after): bytes on disk per message, commits."""
    out = tmp_path / "durable.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "fanout", "--servers", "ours-durable,ours-durable-pg", "--port", "0",
         "--no-pin", "--no-plot", "--users", "10", "--senders", "2", "--rates", "2000", "--step-secs", "0.5",
         "--json", str(out)],
        capture_output=True, text=True, timeout=90, cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    import json

    sqlite, pg = json.loads(out.read_text())["reports"]
    for report in (sqlite, pg):
        assert report["steps"][0]["lost"] == 0
        assert report["messages_sent"] > 0 and report["store_bytes_per_message"] > 0
    assert pg["steps"][0]["store_commits_per_s"] > 0
    assert "database" in pg["steps"][0]["cpu_split"]


def test_the_store_cost_benchmark_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.storecost", "--databases", "sqlite", "--batches", "1,10",
                             "--messages", "60"],
                            capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| sqlite |")]
    assert len(rows) == 2 and all(float(r.split("|")[3].split()[0]) > 0 for r in rows)
