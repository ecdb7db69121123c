"""The core stays pure: no sockets, no asyncio, no aiohttp, in source or at import time."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import tcp_server.protocol

FORBIDDEN = {"asyncio", "socket", "aiohttp", "selectors", "ssl", "threading", "uvloop"}
CORE = pathlib.Path(tcp_server.protocol.__file__).parent


def test_core_sources_import_nothing_forbidden() -> None:
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_importing_the_core_loads_nothing_forbidden() -> None:
    code = (
        "import sys, tcp_server.protocol, tcp_server.protocol.session, tcp_server.protocol.texts, "
        "tcp_server.protocol.limits, tcp_server.protocol.roster, tcp_server.protocol.events, "
        "tcp_server.protocol.table, tcp_server.protocol.encoders, tcp_server.protocol.states, "
        "tcp_server.protocol.passwords, tcp_server.protocol.guessing, tcp_server.protocol.client_side;"
        # the common-password list (the zxcvbn package) is loaded on first use: it must be as clean
        "tcp_server.protocol.passwords.common_passwords();"
        f"bad = sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules); print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
