"""The benchmark's shared-room servers: one and two nodes on a private redis-server, every delivery counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_cli_ramp_on_one_and_two_redis_nodes(tmp_path: Path) -> None:
    out = tmp_path / "ramp.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "fanout", "--servers", "ours-redis,ours-redis2", "--port", "0", "--no-pin",
         "--no-plot", "--users", "20", "--senders", "4", "--rates", "2000", "--step-secs", "0.5",
         "--p99-limit", "10000", "--json", str(out)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "| hanchat-redis |" in result.stdout and "| hanchat-redis2 |" in result.stdout
    reports = json.loads(out.read_text())["reports"]
    assert [r["server"] for r in reports] == ["hanchat-redis", "hanchat-redis2"]
    for report in reports:
        steps = report["steps"]
        assert steps and all(s["lost"] == 0 and s["delivered"] > 0 for s in steps), steps
    # Two nodes: the messages that crossed from one node to the other are timed apart too.
    assert all(s["cross_samples"] == 0 for s in reports[0]["steps"])
    assert all(s["cross_samples"] > 0 and s["cross_p99_ms"] >= 0 for s in reports[1]["steps"])
    assert "cross-node p99 ms" in result.stdout
