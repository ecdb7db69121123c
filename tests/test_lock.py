"""The lock files agree with pyproject.toml: a dependency added to, removed from or changed in one and
not the other fails here, naming it and the command that mends it (scripts/lock.sh)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
MEND = "run scripts/lock.sh and commit requirements/ with pyproject.toml"


def lock_inputs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_inputs", ROOT / "scripts" / "lock_inputs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Pin:
    """One package of a lock: its exact version, its hashes and who asked for it."""

    name: str
    version: Version
    marker: str = ""
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def parse_lock(text: str) -> dict[str, list[Pin]]:
    """uv's requirements format: `name==version ; marker \\`, hash lines, then `# via` annotations.
    A universal lock may pin one package twice, for different Pythons (each with its marker)."""
    pins: dict[str, list[Pin]] = {}
    current: Pin | None = None
    in_via = False
    for line in text.splitlines():
        if m := re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^ ;\\]+)(?: ; ([^\\]+))?", line):
            current = Pin(canonicalize_name(m.group(1)), Version(m.group(2)), (m.group(3) or "").strip())
            same = pins.setdefault(current.name, [])
            assert all(p.marker and p.marker != current.marker for p in same) and (not same or current.marker), (
                f"{current.name} is pinned twice for the same environments"
            )
            same.append(current)
            in_via = False
        elif current is not None and (h := re.match(r"^\s+--hash=(sha256:[0-9a-f]{64})", line)):
            current.hashes.append(h.group(1))
        elif current is not None and (v := re.match(r"^\s+# via ?(.*)$", line)):
            in_via = True
            if v.group(1):
                current.via.append(v.group(1).strip())
        elif current is not None and in_via and (v := re.match(r"^\s+#\s+(.+)$", line)):
            current.via.append(v.group(1).strip())
        elif line and not line.startswith("#") and not line.startswith(" "):
            raise AssertionError(f"unexpected lock line: {line!r}")
    return pins


def requirements_of(env: str) -> list[Requirement]:
    """What pyproject.toml asks for in one environment: the base, the environment's extras, the build."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in lock_inputs().ENVIRONMENTS[env]:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    reqs += [Requirement(r) for r in data["build-system"]["requires"]]
    return reqs + [Requirement("pip")]


ENVIRONMENTS = ["run", "test"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_lock_was_made_from_this_pyproject(env: str) -> None:
    text = (ROOT / "requirements" / f"{env}.txt").read_text()
    m = re.search(r"^# pyproject-fingerprint: ([0-9a-f]{64})$", text, re.M)
    assert m, f"requirements/{env}.txt has no fingerprint line: {MEND}"
    assert m.group(1) == lock_inputs().fingerprint(), (
        f"pyproject.toml's dependencies changed since requirements/{env}.txt was made: {MEND}"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_requirement_is_pinned_within_its_range(env: str) -> None:
    pins = parse_lock((ROOT / "requirements" / f"{env}.txt").read_text())
    for req in requirements_of(env):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements/{env}.txt: {MEND}"
        for pin in pins[name]:
            assert req.specifier.contains(pin.version, prereleases=True), (
                f"requirements/{env}.txt pins {name}=={pin.version}, outside pyproject's {req}: {MEND}"
            )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_direct_pin_is_still_asked_for(env: str) -> None:
    """A dependency removed from pyproject.toml but left in the lock as a direct one."""
    pins = parse_lock((ROOT / "requirements" / f"{env}.txt").read_text())
    asked = {canonicalize_name(r.name) for r in requirements_of(env)}
    direct = {n for n, same in pins.items() for p in same
              if any(v.startswith(("hanchat", "-r requirements/build.in")) for v in p.via)}
    assert direct - asked == set(), f"pinned as direct but not in pyproject.toml: {sorted(direct - asked)}: {MEND}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_pin_is_exact_and_hashed(env: str) -> None:
    text = (ROOT / "requirements" / f"{env}.txt").read_text()
    pins = parse_lock(text)
    assert len(pins) >= 10
    for pin in (p for same in pins.values() for p in same):
        assert pin.hashes, f"{pin.name} has no hash in requirements/{env}.txt"
    # Nothing but exact pins: a range or a bare name would make pip resolve again.
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            assert "==" in line, line
    # The tools the venv is built with are locked too.
    for tool in ("pip", "setuptools", "wheel"):
        assert tool in pins, f"{tool} missing from requirements/{env}.txt"


def test_build_in_is_generated_from_pyproject() -> None:
    assert (ROOT / "requirements" / "build.in").read_text() == lock_inputs().build_in(), MEND


def test_the_lock_parser_notices_a_missing_dependency() -> None:
    """The checks above can fail: a lock without aiohttp fails the range check."""
    text = (ROOT / "requirements" / "run.txt").read_text()
    pins = parse_lock(text)
    del pins["aiohttp"]
    missing = [r.name for r in requirements_of("run") if canonicalize_name(r.name) not in pins]
    assert missing == ["aiohttp"]


def test_uvloop_stays_linux_only() -> None:
    for env in ENVIRONMENTS:
        line = next(x for x in (ROOT / "requirements" / f"{env}.txt").read_text().splitlines()
                    if x.startswith("uvloop=="))
        assert "sys_platform == 'linux'" in line, line
