"""Packaging choices operators rely on: uvloop by default on Linux, --no-uvloop, the `fast` alias."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

from tcp_server.__main__ import install_uvloop
from tcp_server.config import parse_config
from web_gateway.config import parse_config as parse_gateway_config
from web_gateway.launcher import parse_launcher_config

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements() -> tuple[list[Requirement], dict[str, list[Requirement]]]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    deps = [Requirement(r) for r in project["dependencies"]]
    extras = {k: [Requirement(r) for r in v] for k, v in project["optional-dependencies"].items()}
    return deps, extras


def test_uvloop_is_a_linux_default_and_fast_stays_an_alias() -> None:
    deps, extras = requirements()
    uvloop = [r for r in deps if r.name == "uvloop"]
    assert len(uvloop) == 1 and uvloop[0].marker is not None
    assert uvloop[0].marker.evaluate({"sys_platform": "linux"})
    assert not uvloop[0].marker.evaluate({"sys_platform": "win32"})
    assert [r.name for r in extras["fast"]] == ["uvloop"]
    assert {"prometheus-client"} <= {r.name for r in deps}
    assert "trustme" in {r.name for r in extras["test"]}
    assert Marker("sys_platform == 'linux'").evaluate() == sys.platform.startswith("linux")


def test_no_uvloop_turns_it_off_everywhere() -> None:
    assert parse_config([], environ={}).uvloop is True
    assert parse_config(["--no-uvloop"], environ={}).uvloop is False
    assert parse_config(["--uvloop", "off"], environ={}).uvloop is False
    assert parse_config([], environ={"CHAT_UVLOOP": "off"}).uvloop is False
    assert parse_gateway_config(["--no-uvloop"], environ={}).uvloop is False
    server, gateway = parse_launcher_config(["--no-uvloop"], environ={})
    assert server.uvloop is False and gateway.uvloop is False
    assert install_uvloop(False) is False
