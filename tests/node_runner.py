"""Node.js for the page's tests: the page's modules are plain ES modules that Node runs as they are."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
NODE_TIMEOUT = 60.0
MIN_NODE = (20, 19)
"""Node 20.19 runs a ``.js`` file with ``import`` as an ES module without a package.json (syntax detection)."""


def node() -> str:
    """The ``node`` program; a clear failure (not a skip) when it is missing or too old."""
    exe = shutil.which("node")
    assert exe is not None, "node is not installed: scripts/install-system-deps.sh test installs Debian's nodejs"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=NODE_TIMEOUT).stdout.strip()
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    assert (major, minor) >= MIN_NODE, f"node {version} is older than {MIN_NODE}: the page's tests need ES module detection"
    return exe


def run_node(*args: str) -> subprocess.CompletedProcess[str]:
    """``node ARGS`` in the repository, its output captured; never longer than NODE_TIMEOUT."""
    return subprocess.run([node(), *args], cwd=ROOT, capture_output=True, text=True, timeout=NODE_TIMEOUT,
                          env={**os.environ, "NO_COLOR": "1", "NODE_OPTIONS": ""})
