"""The shipped systemd units are hardened (issue 15, item 12): systemd's own rating, offline."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest

UNITS = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "systemd"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


@pytest.mark.parametrize("unit", ["chat-server.service", "chat-gateway.service"])
def test_unit_rates_ok_or_better(unit: str) -> None:
    """They rated 8.5 EXPOSED; now 1.3 OK (0 is safest, 10 most exposed)."""
    result = subprocess.run([ANALYZE, "security", "--offline=true", str(UNITS / unit)],
                            capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) < 2.0 and found.group(2) in ("PERFECT", "SAFE", "OK"), found.group(0)


@pytest.mark.parametrize("unit", ["chat-server.service", "chat-gateway.service"])
def test_unit_has_the_settings_the_review_asked_for(unit: str) -> None:
    text = (UNITS / unit).read_text()
    for setting in ("CapabilityBoundingSet=\n", "PrivateDevices=true", "ProtectKernelTunables=true",
                    "ProtectKernelModules=true", "ProtectKernelLogs=true", "ProtectControlGroups=true",
                    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces=true",
                    "SystemCallFilter=@system-service", "MemoryMax=", "UMask=0077", "TimeoutStopSec=15"):
        assert setting in text, setting
