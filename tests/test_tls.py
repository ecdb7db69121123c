"""TLS on the line port: trustme certificates, the real server, chat-client and gateway."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import trustme

from tcp_server import ChatServer
from tcp_server.protocol import Error, ErrorReason, Joined, Pong, UserJoined
from tcp_server.tls import client_context
from tests.gateway_fixtures import GatewayStack, JsonClient
from tests.helpers import TIMEOUT, LineClient, wait_until
from tests.test_client_script import run as run_client
from tests.test_server_cli import free_port


@dataclass
class Pki:
    """A throwaway CA and a certificate for ``localhost`` it signed, as files."""

    ca: trustme.CA
    ca_file: str
    cert_file: str
    key_file: str


def make_pki(directory: Path, name: str = "pki", host: str = "localhost") -> Pki:
    ca = trustme.CA()
    cert = ca.issue_cert(host)  # the name only: 127.0.0.1 is a wrong host name for it
    ca_file, cert_file, key_file = (str(directory / f"{name}-{part}.pem") for part in ("ca", "cert", "key"))
    ca.cert_pem.write_to_path(ca_file)
    cert.private_key_pem.write_to_path(key_file)
    with open(cert_file, "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return Pki(ca, ca_file, cert_file, key_file)


def renew(pki: Pki, renewed: Pki) -> None:
    """Put ``renewed``'s certificate and key where ``pki``'s were, as a certificate renewal does."""
    Path(pki.cert_file).write_bytes(Path(renewed.cert_file).read_bytes())
    Path(pki.key_file).write_bytes(Path(renewed.key_file).read_bytes())


def break_certificate(pki: Pki) -> None:
    Path(pki.cert_file).write_text("not a certificate\n")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


async def tls_client(port: int, ca_file: str, host: str = "localhost") -> LineClient:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=client_context(ca_file)), TIMEOUT)
    return LineClient(reader, writer)


async def close_tls(client: LineClient) -> None:
    """Close a TLS test client: the server's last frames may cross our close_notify, which is no error here."""
    client.writer.close()
    with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError):
        await asyncio.wait_for(client.writer.wait_closed(), TIMEOUT)


@pytest.fixture
async def tls_server(make_server: Callable[..., Awaitable[ChatServer]], pki: Pki) -> ChatServer:
    return await make_server(tls_port=0, tls_cert=pki.cert_file, tls_key=pki.key_file, tls_handshake_timeout=1.0)


async def test_the_tls_port_speaks_the_same_protocol_in_the_same_room(tls_server: ChatServer, pki: Pki) -> None:
    assert tls_server.tls_port
    plain = await LineClient.connect("127.0.0.1", tls_server.port)
    secure = await tls_client(tls_server.tls_port, pki.ca_file)
    try:
        await plain.join("bob")
        await secure.join("alice")
        assert await plain.recv() == UserJoined("alice")
        version = secure.writer.get_extra_info("ssl_object").version()
        assert version in ("TLSv1.2", "TLSv1.3")
    finally:
        await close_tls(secure)
        await plain.close()


def test_the_server_context_refuses_anything_older_than_tls_1_2(pki: Pki) -> None:
    from tcp_server.tls import ServerTLS

    assert ServerTLS(pki.cert_file, pki.key_file).context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context(pki.ca_file).minimum_version == ssl.TLSVersion.TLSv1_2


async def test_chat_client_over_tls_with_a_private_ca(tls_server: ChatServer, pki: Pki) -> None:
    bob = await LineClient.connect("127.0.0.1", tls_server.port)
    try:
        await bob.join("bob")
        code, out, err = await run_client("/b over tls\n/q\n", "localhost", str(tls_server.tls_port), "--id",
                                          "carol", "--lang", "en", "--tls-ca", pki.ca_file)
        assert code == 0, err
        frames = await bob.sync()
        assert UserJoined("carol") in frames
        assert any(getattr(f, "message", None) == "over tls" for f in frames)
    finally:
        await bob.close()


@pytest.mark.parametrize("case", ["wrong-address", "wrong-name", "untrusted-ca", "system-store"])
async def test_chat_client_refuses_a_bad_certificate_with_one_clear_line(
    make_server: Callable[..., Awaitable[ChatServer]], tls_server: ChatServer, pki: Pki, tmp_path: Path, case: str,
) -> None:
    if case == "wrong-address":  # the certificate names localhost only
        args = ["127.0.0.1", str(tls_server.tls_port), "--tls-ca", pki.ca_file]
        expected = "not valid for the name '127.0.0.1'"
    elif case == "wrong-name":  # a certificate for another host
        elsewhere = make_pki(tmp_path, "elsewhere", host="chat.example.org")
        other_server = await make_server(tls_port=0, tls_cert=elsewhere.cert_file, tls_key=elsewhere.key_file)
        args = ["localhost", str(other_server.tls_port), "--tls-ca", elsewhere.ca_file]
        expected = "not valid for the name 'localhost'"
    elif case == "untrusted-ca":
        other = make_pki(tmp_path, "other")
        args = ["localhost", str(tls_server.tls_port), "--tls-ca", other.ca_file]
        expected = "not signed by a trusted CA"
    else:  # no --tls-ca: the system's CAs do not know trustme's
        args = ["localhost", str(tls_server.tls_port), "--tls"]
        expected = "not signed by a trusted CA"
    code, out, err = await run_client("/q\n", *args, "--id", "dave", "--lang", "en")
    assert code != 0
    assert expected in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "TLS" in line]) == 1
    assert "dave" not in tls_server.room.roster.names()


async def test_chat_client_says_when_the_port_is_not_tls(tls_server: ChatServer, pki: Pki) -> None:
    code, out, err = await run_client("/q\n", "localhost", str(tls_server.port), "--tls-ca", pki.ca_file,
                                      "--id", "erin", "--lang", "en", "--connect-timeout", "3")
    assert code != 0
    assert "TLS" in err and "Traceback" not in err


async def test_a_silent_handshake_does_not_hold_up_others_and_times_out(tls_server: ChatServer, pki: Pki) -> None:
    assert tls_server.tls_port
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", tls_server.tls_port), TIMEOUT)
    try:
        # While that socket says nothing, another client finishes its handshake and chats.
        other = await tls_client(tls_server.tls_port, pki.ca_file)
        await other.join("frank")
        assert await other.sync() == []
        await close_tls(other)
        # The silent one is dropped once the handshake timeout (1 s here) passes.
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    finally:
        writer.close()


@pytest.fixture
async def server_process(pki: Pki) -> AsyncIterator[Callable[..., Awaitable[tuple[asyncio.subprocess.Process, int,
                                                                                      int]]]]:
    """chat-server as a subprocess with a TLS port; (process, line port, TLS port). Killed after the test."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(*extra: str) -> tuple[asyncio.subprocess.Process, int, int]:
        port, tls_port = free_port(), free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tcp_server", "--port", str(port), "--tls-port", str(tls_port),
            "--tls-cert", pki.cert_file, "--tls-key", pki.key_file, "--lang", "en", *extra,
            stderr=asyncio.subprocess.PIPE,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}, "CHAT_LOG_LEVEL": "INFO"},
        )
        procs.append(proc)
        await read_log_until(proc, b"Chat server ready")
        return proc, port, tls_port

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read_log_until(proc: asyncio.subprocess.Process, marker: bytes) -> bytes:
    assert proc.stderr is not None
    log = b""
    while marker not in log:
        line = await asyncio.wait_for(proc.stderr.readline(), TIMEOUT * 4)
        if not line:
            raise AssertionError(f"server exited before {marker!r}: {log.decode(errors='replace')}")
        log += line
    return log


async def stop_and_read_log(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), TIMEOUT * 2) == 0
    return (await asyncio.wait_for(proc.stderr.read(), TIMEOUT)).decode(errors="replace")


async def test_a_plain_text_client_on_the_tls_port_is_dropped_without_a_traceback(
    server_process: Callable[..., Awaitable[tuple[asyncio.subprocess.Process, int, int]]],
) -> None:
    proc, port, tls_port = await server_process("--log-level", "DEBUG")
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", tls_port), TIMEOUT)
    writer.write(b"001#mallory\n002#hello\n")
    # At most a TLS alert comes back, then the end: never a frame of the protocol.
    rest = await asyncio.wait_for(reader.read(), TIMEOUT)
    assert b"#" not in rest
    writer.close()
    # The server still serves others.
    client = await LineClient.connect("127.0.0.1", port)
    await client.join("grace")
    await close_tls(client)
    log = await stop_and_read_log(proc)
    assert "Traceback" not in log and "mallory" not in log
    assert " ERROR " not in log


async def test_sighup_reloads_the_certificate_without_dropping_anyone(
    server_process: Callable[..., Awaitable[tuple[asyncio.subprocess.Process, int, int]]],
    pki: Pki, tmp_path: Path,
) -> None:
    proc, port, tls_port = await server_process()
    old = await tls_client(tls_port, pki.ca_file)
    await old.join("heidi")
    # A renewed certificate, here from another CA so that which one is presented shows.
    renewed = make_pki(tmp_path, "renewed")
    renew(pki, renewed)
    proc.send_signal(signal.SIGHUP)
    await read_log_until(proc, b"TLS certificate reloaded")
    # New connections get the new certificate: only the renewed CA verifies it, the old one does not.
    with pytest.raises(ssl.SSLCertVerificationError):
        await tls_client(tls_port, pki.ca_file)
    new = await tls_client(tls_port, renewed.ca_file)
    await new.join("ivan")
    # The user connected before the reload is still there and hears the newcomer.
    assert (await old.recv_until(UserJoined("ivan")))[-1] == UserJoined("ivan")
    await old.send("006#still-here")
    assert await old.recv() == Pong("still-here")
    await close_tls(new)
    await close_tls(old)
    log = await stop_and_read_log(proc)
    assert "Traceback" not in log


async def test_sighup_with_a_broken_certificate_keeps_the_old_one(
    server_process: Callable[..., Awaitable[tuple[asyncio.subprocess.Process, int, int]]], pki: Pki,
) -> None:
    proc, port, tls_port = await server_process()
    break_certificate(pki)
    proc.send_signal(signal.SIGHUP)
    await read_log_until(proc, b"TLS certificate not reloaded")
    client = await tls_client(tls_port, pki.ca_file)  # still the old, good one
    await client.join("judy")
    await close_tls(client)
    await stop_and_read_log(proc)


async def test_gateway_backend_over_tls(
    make_gateway_stack: Callable[..., Awaitable[GatewayStack]], pki: Pki,
) -> None:
    stack = await make_gateway_stack(server={"tls_port": 0, "tls_cert": pki.cert_file, "tls_key": pki.key_file})
    await stack.runner.cleanup()  # the stack's own gateway talks plain TCP; start one that uses TLS
    from dataclasses import replace

    from web_gateway.__main__ import start_gateway

    assert stack.server.tls_port
    cfg = replace(stack.config, port=0, server=("localhost", stack.server.tls_port), server_tls=True,
                  server_ca=pki.ca_file)
    runner, gw_port = await start_gateway(cfg)
    try:
        bob = await LineClient.connect("127.0.0.1", stack.server.port)
        await bob.join("bob")
        page = await JsonClient.connect(f"ws://127.0.0.1:{gw_port}/ws")
        await page.join("kim")
        assert await bob.recv() == UserJoined("kim")
        tls_conns = [c for c in stack.server.connections
                     if c.transport is not None and c.transport.get_extra_info("ssl_object") is not None]
        assert len(tls_conns) == 1
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{gw_port}/healthz") as resp:
                assert resp.status == 200, await resp.text()
        await page.close()
        await bob.close()
    finally:
        await runner.cleanup()


async def test_gateway_refuses_a_backend_certificate_it_cannot_verify(
    make_gateway_stack: Callable[..., Awaitable[GatewayStack]], pki: Pki, tmp_path: Path,
) -> None:
    other = make_pki(tmp_path, "other")
    stack = await make_gateway_stack(server={"tls_port": 0, "tls_cert": pki.cert_file, "tls_key": pki.key_file})
    await stack.runner.cleanup()
    from dataclasses import replace

    from web_gateway.__main__ import start_gateway

    assert stack.server.tls_port
    cfg = replace(stack.config, port=0, server=("localhost", stack.server.tls_port), server_tls=True,
                  server_ca=other.ca_file)
    runner, gw_port = await start_gateway(cfg)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{gw_port}/healthz") as resp:
                assert resp.status == 503
                assert "cannot be reached" in await resp.text()
        page = await JsonClient.connect(f"ws://127.0.0.1:{gw_port}/ws")
        await page.send({"type": "join", "id": "lee"})
        events = await page.recv_until(lambda e: e.get("state") == "disconnected")
        assert any(e.get("reason") == "backend-unavailable" for e in events), events
        await page.close()
        assert stack.server.room.roster.names() == []
    finally:
        await runner.cleanup()


def test_tls_flags_need_their_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tcp_server.config import parse_config
    from web_gateway.config import parse_config as parse_gateway_config

    with pytest.raises(SystemExit):
        parse_config(["--tls-port", "9443"], environ={})
    assert "--tls-port needs --tls-cert and --tls-key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_gateway_config(["--server-ca", str(tmp_path / "missing.pem")], environ={})
    assert "--server-ca" in capsys.readouterr().err
    from chat_client.config import parse_config as parse_client_config

    with pytest.raises(SystemExit):
        parse_client_config(["--tls-ca", str(tmp_path / "missing.pem")], environ={})
    assert "--tls-ca" in capsys.readouterr().err


async def silent_sockets(port: int, count: int, local: str = "127.0.0.1") -> list[tuple[asyncio.StreamReader,
                                                                                    asyncio.StreamWriter]]:
    """TCP connections to the TLS port that never send a ClientHello."""
    return [await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0)), TIMEOUT)
            for _ in range(count)]


async def test_pending_handshakes_are_counted_and_refused_at_accept_time(
    make_server: Callable[..., Awaitable[ChatServer]], pki: Pki,
) -> None:
    """200 silent sockets were all held for the handshake timeout: the limits counted only after it."""
    server = await make_server(tls_port=0, tls_cert=pki.cert_file, tls_key=pki.key_file,
                               tls_handshake_timeout=60.0, max_per_address=5)
    assert server.tls_port
    silent = await silent_sockets(server.tls_port, 30)
    try:
        # Past the per-address limit the sockets are closed at once, not after the 60 s handshake timeout.
        ends = await asyncio.gather(*(asyncio.wait_for(reader.read(), TIMEOUT) for reader, _ in silent[5:]))
        assert ends == [b""] * 25
        assert server.address_limits.open_count("127.0.0.1") == 5 and len(server.connections) == 5
        # Another address is not held up: it completes its handshake and chats.
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", server.tls_port, ssl=client_context(pki.ca_file), server_hostname="localhost",
            local_addr=("127.0.0.2", 0)), TIMEOUT)
        other = LineClient(reader, writer)
        assert (await other.join("grace"))[0] == Joined("grace")
        await close_tls(other)
    finally:
        for _, w in silent:
            w.close()
    await wait_until(lambda: server.address_limits.open_count("127.0.0.1") == 0, what="the counts given back")


async def test_pending_handshakes_count_toward_max_clients(
    make_server: Callable[..., Awaitable[ChatServer]], pki: Pki,
) -> None:
    server = await make_server(tls_port=0, tls_cert=pki.cert_file, tls_key=pki.key_file,
                               tls_handshake_timeout=60.0, max_clients=4)
    assert server.tls_port
    silent = [*await silent_sockets(server.tls_port, 3, "127.0.0.3"), *await silent_sockets(server.tls_port, 3,
                                                                                             "127.0.0.4")]
    try:
        ends = await asyncio.gather(*(asyncio.wait_for(reader.read(), TIMEOUT) for reader, _ in silent[4:]))
        assert ends == [b""] * 2
        assert len(server.connections) == 4
        late = await LineClient.connect("127.0.0.1", server.port)  # the line port sees the same count
        assert await late.recv() == Error(ErrorReason.BUSY, "too many connections")
        await late.close()
    finally:
        for _, w in silent:
            w.close()
    await wait_until(lambda: not server.connections, what="every count given back")
