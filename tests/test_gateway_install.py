"""A non-editable install still serves the page's templates and static files.

Offline, with the setuptools the venv has: ``build_py`` (the step that fills a wheel with the
packages and their package data) runs on a copy of the checkout; the copy is then deleted and the
gateway started from the build alone. (A full ``pip install .`` into a fresh venv needs the build
backend from an index; README's "Deploying" does that, and it was checked by hand the same way.)
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys

import aiohttp
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
                                ".ruff_cache", ".hypothesis", ".pytest_cache", "test-artifacts", "results", "plots")


@pytest.fixture
def built_site(tmp_path: pathlib.Path) -> pathlib.Path:
    """The packages as a wheel would hold them, from a copy of the checkout that is then deleted."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=IGNORE)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
                    "--build-lib", str(site)], cwd=src, check=True, timeout=120, capture_output=True)
    for name in ("templates/index.html", "static/app.js", "static/style.css", "static/favicon.svg", "py.typed"):
        path = site / "web_gateway" / name
        assert path.is_file() and not path.is_symlink() and not path.parent.is_symlink(), name
    where = subprocess.run([sys.executable, "-c", "import web_gateway; print(web_gateway.__file__)"],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True,
                           text=True, timeout=60, check=True).stdout
    assert where.startswith(str(site)), where  # the built copy, not the checkout
    shutil.rmtree(src)  # nothing may still come from a source tree
    return site


async def test_built_package_serves_templates_and_static(built_site: pathlib.Path, tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(built_site), "CHAT_UVLOOP": "off"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web_gateway", "--port", "0", "--server", "127.0.0.1:9", cwd=tmp_path, env=env,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, "the gateway exited"
                match = re.search(r"web gateway ready: (http://\S+)", line)
                if match:
                    break
        url = match.group(1)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(url) as resp:
                assert resp.status == 200 and 'src="static/m/' in await resp.text()
            for asset in ("static/app.js", "static/style.css", "static/favicon.svg"):
                async with http.get(url + asset) as resp:
                    assert resp.status == 200, asset
            async with http.get(url + "healthz") as resp:
                assert resp.status == 503  # nothing listens on port 9
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
