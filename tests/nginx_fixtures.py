"""Real nginx for tests: the shipped deploy/nginx/chat.conf, only names, ports and
(when asked) the read timeout changed, on an ephemeral loopback port; and the fixtures that
put it in front of a real gateway stack (registered in conftest.py)."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.gateway_fixtures import GatewayStack, JsonClient
from tests.helpers import LineClient
from web_gateway.forwarded import parse_networks

REPO = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = REPO / "deploy" / "nginx" / "chat.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Tls:
    """Turn on the shipped (commented) TLS lines: a port and a certificate chain and key (PEM files)."""

    port: int
    cert: pathlib.Path
    key: pathlib.Path


def render_config(gateway_port: int, listen_port: int, read_timeout: str | None = None, tls: Tls | None = None) -> str:
    """The shipped server block with the test's ports (and timeout, and TLS lines on); nothing else changes."""
    conf = SHIPPED.read_text()
    conf, n1 = re.subn(r"server 127\.0\.0\.1:8080;", f"server 127.0.0.1:{gateway_port};", conf)
    conf, n2 = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen_port};", conf)
    conf, n3 = re.subn(r"server_name chat\.example\.org;", "server_name 127.0.0.1;", conf)
    conf, n4 = re.subn(r"listen 80 default_server;", f"listen 127.0.0.1:{listen_port} default_server;", conf)
    assert (n1, n2, n3, n4) == (1, 1, 1, 1), "the shipped config changed shape; update this test"
    if read_timeout is not None:
        conf, n5 = re.subn(r"proxy_read_timeout \S+;", f"proxy_read_timeout {read_timeout};", conf)
        assert n5 == 1
    if tls is not None:
        swaps = [
            (r"# listen 443 ssl default_server;", f"listen 127.0.0.1:{tls.port} ssl default_server;"),
            (r"# ssl_reject_handshake on;", "ssl_reject_handshake on;"),
            (r"# listen 443 ssl;", f"listen 127.0.0.1:{tls.port} ssl;"),
            (r"# ssl_certificate +\S+;", f"ssl_certificate {tls.cert};"),
            (r"# ssl_certificate_key +\S+;", f"ssl_certificate_key {tls.key};"),
            (r"# ssl_protocols ", "ssl_protocols "),
            (r"# ssl_prefer_server_ciphers ", "ssl_prefer_server_ciphers "),
            (r"# add_header Strict-Transport-Security ", "add_header Strict-Transport-Security "),
            # clients send SNI only for a name: the certificate and the server block answer to localhost too
            (r"server_name 127\.0\.0\.1;", "server_name 127.0.0.1 localhost;"),
        ]
        for pattern, replacement in swaps:  # "http2 on;" stays off: Debian 12's nginx 1.22 predates it
            conf, n = re.subn(pattern, replacement, conf)
            assert n == 1, pattern
    return conf


@dataclass
class Nginx:
    port: int
    workdir: pathlib.Path
    proc: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text() if path.exists() else ""


def start_nginx(workdir: pathlib.Path, gateway_port: int, read_timeout: str | None = None,
                tls: Tls | None = None) -> Nginx:
    """Start nginx in the foreground on a free port; wait until it accepts connections."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / sub).mkdir(exist_ok=True)
    (workdir / "chat.conf").write_text(render_config(gateway_port, port, read_timeout, tls))
    user = "user root;\n" if os.geteuid() == 0 else ""
    (workdir / "nginx.conf").write_text(
        f"""{user}worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {workdir}/chat.conf;
}}
"""
    )
    check = subprocess.run([NGINX, "-t", "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                proc.kill()
                raise RuntimeError(f"nginx did not start: {err}") from None
            time.sleep(0.05)  # waiting for nginx to bind; no event to wait on
    return Nginx(port, workdir, proc)


def stop_nginx(nginx: Nginx) -> None:
    if nginx.proc.poll() is None:
        nginx.proc.send_signal(signal.SIGQUIT)  # graceful
        try:
            nginx.proc.wait(10)
        except subprocess.TimeoutExpired:
            nginx.proc.kill()
            nginx.proc.wait(10)
    if nginx.proc.stderr:
        nginx.proc.stderr.close()


def nginx_in_front_of(workdir: pathlib.Path, gateway_port: int, read_timeout: str | None = None) -> Iterator[Nginx]:
    """Generator for fixtures: nginx up for the test, stopped after."""
    nginx = start_nginx(workdir, gateway_port, read_timeout)
    try:
        yield nginx
    finally:
        stop_nginx(nginx)


SECRET = "nginx-test-secret-of-32-characters"
StackMaker = Callable[..., Awaitable[GatewayStack]]


async def deployed(make_gateway_stack: StackMaker, **gateway: Any) -> GatewayStack:
    """Server and gateway configured as deploy/systemd/chat.env configures them."""
    settings: dict[str, Any] = dict(base_path="/chat/", trusted_proxy=parse_networks("127.0.0.1/32"))
    settings.update(gateway)
    return await make_gateway_stack(server={"gateway_secret": SECRET}, gateway=settings)


@pytest.fixture
def nginx_for(tmp_path: pathlib.Path) -> Iterator[Callable[..., Nginx]]:
    """``nginx_for(stack, read_timeout=None)``: nginx in front of the stack's gateway, stopped after."""
    started: list[Nginx] = []

    def start(stack: GatewayStack, read_timeout: str | None = None) -> Nginx:
        nginx = start_nginx(tmp_path / f"nginx{len(started)}", stack.gateway_port, read_timeout)
        started.append(nginx)
        return nginx

    yield start
    for nginx in started:
        stop_nginx(nginx)


async def ws_through(nginx: Nginx, *, local_addr: str | None = None,
                     headers: dict[str, str] | None = None) -> JsonClient:
    """A browser-protocol client on nginx's ``/chat/ws``, optionally from another loopback address."""
    connector = aiohttp.TCPConnector(local_addr=(local_addr, 0)) if local_addr else None
    session = aiohttp.ClientSession(connector=connector)
    client = await JsonClient.connect(f"ws://127.0.0.1:{nginx.port}/chat/ws",
                                      {"Origin": nginx.base_url, **(headers or {})}, session=session)
    client.session = session  # the client closes its session with it
    return client


@pytest.fixture
async def clients() -> AsyncIterator[list[JsonClient | LineClient]]:
    opened: list[JsonClient | LineClient] = []
    yield opened
    for client in opened:
        await client.close()
