"""Node.js for the page's tests: the page's modules are plain ES modules that Node runs as they are.

They are run from a copy (``static/*.js`` and ``tests/js/*.mjs`` beside a ``package.json`` that says
``"type": "module"``): Debian 12's nodejs (18) reads a ``.js`` file as CommonJS without one, and the page's
``static/`` holds only what the page serves.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
NODE_TIMEOUT = 60.0
MIN_NODE = 18
"""``node --test`` with the TAP reporter, ``Object.hasOwn``, ``structuredClone``."""


def node() -> str:
    """The ``node`` program; a clear failure (not a skip) when it is missing or too old."""
    exe = shutil.which("node")
    assert exe is not None, "node is not installed: scripts/install-system-deps.sh test installs Debian's nodejs"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=NODE_TIMEOUT).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= MIN_NODE, f"node {version} is older than {MIN_NODE}"
    return exe


def stage(where: pathlib.Path) -> pathlib.Path:
    """A copy of the page's modules and their tests under ``where``, laid out as in the repository."""
    for pattern, sub in (("*.js", "static"), ("*.mjs", "tests/js")):
        (where / sub).mkdir(parents=True, exist_ok=True)
        for path in (ROOT / sub).glob(pattern):
            shutil.copyfile(path, where / sub / path.name)
    (where / "package.json").write_text(json.dumps({"type": "module", "private": True}))
    return where


def run_node(where: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``node ARGS`` in a staged copy (``stage``), its output captured; never longer than NODE_TIMEOUT."""
    return subprocess.run([node(), *args], cwd=where, capture_output=True, text=True, timeout=NODE_TIMEOUT,
                          env={**os.environ, "NO_COLOR": "1", "NODE_OPTIONS": ""})
