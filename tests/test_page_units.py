"""The page's unit tests (tests/js/*.test.mjs, Node's built-in runner): its reducers, parser and backoff,
without a browser. Run here so that ./test.sh and CI run them with the rest."""

from __future__ import annotations

import pathlib
import re

from tests.node_runner import ROOT, run_node, stage


def test_the_pages_unit_tests_pass(tmp_path: pathlib.Path) -> None:
    files = sorted(f"tests/js/{path.name}" for path in (ROOT / "tests" / "js").glob("*.test.mjs"))
    assert len(files) >= 4, files
    done = run_node(stage(tmp_path), "--test", "--test-reporter=tap", *files)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    counts = {name: int(value) for name, value in re.findall(r"^# (tests|pass|fail) (\d+)$", output, re.M)}
    assert counts.get("fail") == 0 and counts.get("pass", 0) >= 40 and counts["pass"] == counts["tests"], output
