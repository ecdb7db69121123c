"""Accounts on a real server (real sockets, a real SQLite file, the real argon2id pool): 018 log in,
019 register, 020 change password, 001 of a registered ID, takeover, guessing, and no password in
any log line (text and JSON formats, DEBUG level)."""

from __future__ import annotations

import asyncio
import io
import logging
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tcp_server import ChatServer
from tcp_server.logformat import JsonFormatter, TextFormatter
from tcp_server.protocol import Error, ErrorReason, Joined, SessionToken, UserJoined, UserList
from tcp_server.protocol.frames import AccountList, PasswordChanged, Registered
from tests.conftest import server_config
from tests.helpers import TIMEOUT, LineClient

Start = Callable[..., Awaitable[ChatServer]]
PASSWORD = "Correct#Horse#Battery-9"  # keeps '#': PASSWORD is the tail


@pytest.fixture
async def start(tmp_path: pathlib.Path) -> AsyncIterator[Start]:
    servers: list[ChatServer] = []

    async def start_(**overrides: object) -> ChatServer:
        overrides.setdefault("database", f"sqlite:///{tmp_path / 'chat.db'}")
        server = ChatServer(server_config(**overrides))
        await server.start()
        servers.append(server)
        return server

    yield start_
    for client in _OPEN:
        await client.close()
    _OPEN.clear()
    for server in servers:
        await server.close(timeout=2.0)


_OPEN: list[LineClient] = []


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every record at DEBUG, through both of the programs' formatters, into one buffer."""
    out = io.StringIO()
    handlers = [logging.StreamHandler(out), logging.StreamHandler(out)]
    handlers[0].setFormatter(TextFormatter())
    handlers[1].setFormatter(JsonFormatter())
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield out
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(old)


async def connect(server: ChatServer, host: str = "127.0.0.1") -> LineClient:
    client = await LineClient.connect(host, server.port)
    _OPEN.append(client)
    return client


async def error_of(client: LineClient) -> Error:
    frames = await client.recv_until(Error)
    error = frames[-1]
    assert isinstance(error, Error)
    return error


async def register(server: ChatServer, name: str, password: str = PASSWORD) -> LineClient:
    client = await connect(server)
    await client.join(name)
    await client.send(f"019#{password}")
    frames = await client.recv_until(Registered)
    assert frames[-1] == Registered(name)
    return client


async def test_register_then_login_elsewhere_takes_over(start: Start, logs: io.StringIO) -> None:
    server = await start(resume_grace=30)
    first = await register(server, "Alice")
    watcher = await connect(server)
    await watcher.join("bob")
    await watcher.sync()
    # 001 with any spelling of a registered ID, online or not: refused, the connection stays.
    other = await connect(server)
    for spelling in ("alice", "ALICE", "a1ice"):
        await other.send(f"001#{spelling}")
        assert (await error_of(other)).reason is ErrorReason.REGISTERED
    # A login elsewhere: the old connection is replaced, the room sees no leave and no join.
    await other.send(f"018#alice#{PASSWORD}")
    frames = await other.recv_until(SessionToken)
    assert Joined("Alice") in frames
    users = next(f for f in frames if isinstance(f, UserList))
    assert set(users.ids) == {"Alice", "bob"}
    assert AccountList(("Alice",)) in frames
    replaced = await error_of(first)
    assert replaced.reason is ErrorReason.REPLACED
    assert not [f for f in await watcher.sync() if not isinstance(f, Error)]  # no 104, no 103
    # 020 on the connection that logged in; the old password then fails, the new one works.
    await other.send("020#another long # passphrase")
    assert (await other.recv_until(PasswordChanged))[-1] == PasswordChanged()
    await other.send("004#Alice")
    await other.closed()
    again = await connect(server)
    await again.send(f"018#Alice#{PASSWORD}")
    assert (await error_of(again)).reason is ErrorReason.BAD_LOGIN
    await again.send("018#Alice#another long # passphrase")
    await again.recv_until(Joined)
    # bob sees the account's join marked: 103 then 132
    frames = await watcher.recv_until(AccountList)
    assert UserJoined("Alice") in frames and frames[-1] == AccountList(("Alice",))
    text = logs.getvalue()
    assert "Horse" not in text and "passphrase" not in text


async def test_login_refusals(start: Start, logs: io.StringIO) -> None:
    server = await start(login_per_account_address=3)
    await register(server, "carol")
    client = await connect(server)
    await client.send("018#nobody-here#whatever-password-1")  # unknown: the same answer as a wrong one
    assert (await error_of(client)).reason is ErrorReason.BAD_LOGIN
    await client.send("018#bad id with spaces\x1b#pw")
    assert (await error_of(client)).reason is ErrorReason.BAD_ID
    for bad in ("", "x" * 10240, "ctl\x07char-password", "wrong-password-1"):
        await client.send(f"018#carol#{bad}")
        error = await error_of(client)
        assert error.reason in (ErrorReason.BAD_LOGIN, ErrorReason.TOO_MANY_ATTEMPTS, ErrorReason.TOO_LONG)
    await client.send(f"018#carol#{PASSWORD}")  # locked out now: the right password too, at once
    error = await error_of(client)
    assert error.reason is ErrorReason.TOO_MANY_ATTEMPTS and error.text.isdigit()
    await client.send(b"018#carol#\xff\xfe-not-utf8\n")
    assert (await error_of(client)).reason in (ErrorReason.MALFORMED, ErrorReason.TOO_MANY_ATTEMPTS)
    assert server.stats.lockouts["account-address"] == 1
    assert "login lockout of" in logs.getvalue()
    # the connection is still usable as a guest
    assert isinstance((await client.join("dave"))[-1], UserList)
    text = logs.getvalue()
    for secret in ("wrong-password-1", "ctl\x07char", "Horse", "whatever-password"):
        assert secret not in text


async def test_register_refusals(start: Start) -> None:
    server = await start(resume_grace=30)
    client = await connect(server)
    await client.send(f"019#{PASSWORD}")  # before a join
    assert (await error_of(client)).reason is ErrorReason.NOT_JOINED
    frames = await client.join("erin")
    assert isinstance(frames[-1], UserList)
    await client.send("020#new-password-long")  # a guest
    assert (await error_of(client)).reason is ErrorReason.NEEDS_LOGIN
    await client.send("019#password")
    error = await error_of(client)
    assert error.reason is ErrorReason.WEAK_PASSWORD and error.text.startswith("common")
    await client.send("019#erin")
    assert (await error_of(client)).reason is ErrorReason.WEAK_PASSWORD
    await client.send(f"019#{PASSWORD}")
    await client.recv_until(Registered)
    await client.send(f"019#{PASSWORD}")  # twice
    assert (await error_of(client)).reason is ErrorReason.ALREADY_REGISTERED
    # a confusable of a registered ID: refused at 001 already
    other = await connect(server)
    await other.send("001#er\u0456n")  # a Cyrillic і: the same key
    error = await error_of(other)
    assert error.reason in (ErrorReason.REGISTERED, ErrorReason.BAD_ID)


async def test_resumed_sessions_may_neither_register_nor_change(start: Start) -> None:
    server = await start(resume_grace=30)
    client = await connect(server)
    await client.send(f"018#frank#{PASSWORD}")
    assert (await error_of(client)).reason is ErrorReason.BAD_LOGIN
    await register(server, "frank")
    login = await connect(server)
    await login.send(f"018#frank#{PASSWORD}")
    frames = await login.recv_until(SessionToken)
    token = frames[-1]
    assert isinstance(token, SessionToken)
    login.writer.transport.abort()  # dropped: parked for a resume
    thief = await connect(server)
    await thief.send(f"008#{token.token}")
    await thief.recv_until(SessionToken)
    await thief.send("020#thief-password-long")
    assert (await error_of(thief)).reason is ErrorReason.NEEDS_LOGIN
    await thief.send(f"019#{PASSWORD}")
    assert (await error_of(thief)).reason is ErrorReason.NEEDS_LOGIN


async def test_registration_admin_and_guests_no(start: Start) -> None:
    server = await start(registration="admin")
    client = await connect(server)
    await client.join("gina")
    await client.send(f"019#{PASSWORD}")
    assert (await error_of(client)).reason is ErrorReason.REGISTRATION_CLOSED
    await server.close(timeout=2.0)
    closed = await start(guests=False)
    client = await connect(closed)
    await client.send("001#gina")
    assert (await error_of(client)).reason is ErrorReason.NEEDS_LOGIN


async def test_accounts_off_with_memory_database(start: Start) -> None:
    server = await start(database="memory")
    assert server.accounts is None
    client = await connect(server)
    await client.send(f"018#alice#{PASSWORD}")
    assert (await error_of(client)).reason is ErrorReason.UNAVAILABLE
    await client.join("alice")
    await client.send(f"019#{PASSWORD}")
    assert (await error_of(client)).reason is ErrorReason.UNAVAILABLE


async def test_legacy_port_gets_101_for_a_registered_id(start: Start) -> None:
    server = await start()
    await register(server, "henry")
    assert server.legacy_port is not None
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server.legacy_port), TIMEOUT)
    writer.write(b"001#henry")
    await asyncio.wait_for(writer.drain(), TIMEOUT)
    assert await asyncio.wait_for(reader.read(100), TIMEOUT) == b"101"
    _OPEN.append(LineClient(reader, writer))


def _external_address() -> str | None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: the kernel picks the route's source
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_needs_tls_from_another_host_unless_allowed(start: Start) -> None:
    address = _external_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    server = await start(host="0.0.0.0")
    client = await connect(server, address)
    await client.send(f"018#ivan#{PASSWORD}")
    assert (await error_of(client)).reason is ErrorReason.NEEDS_TLS
    await server.close(timeout=2.0)
    allowed = await start(host="0.0.0.0", allow_plaintext_login=True)
    client = await connect(allowed, address)
    await client.send(f"018#ivan#{PASSWORD}")
    assert (await error_of(client)).reason is ErrorReason.BAD_LOGIN


def test_account_flags_and_envs() -> None:
    from tcp_server.config import parse_config

    cfg = parse_config(["--guests", "no", "--registration", "admin", "--allow-plaintext-login",
                        "--login-per-address", "5", "--database", "sqlite:////tmp/hanchat-flags.db"], {})
    assert (cfg.guests, cfg.registration, cfg.allow_plaintext_login, cfg.login_per_address) == (False, "admin", True, 5)
    cfg = parse_config([], {"CHAT_REGISTRATION": "admin", "CHAT_LOGIN_WORKERS": "3", "CHAT_LOGIN_LOCKOUT": "30"})
    assert (cfg.registration, cfg.login_workers, cfg.login_lockout) == ("admin", 3, 30.0)
    with pytest.raises(SystemExit):
        parse_config(["--guests", "no", "--database", "memory"], {})
    with pytest.raises(SystemExit):
        parse_config(["--login-lockout", "0"], {})


async def test_stored_messages_remember_the_account_and_history_says_it(start: Start) -> None:
    """A message from an account is stored with its mark; a newcomer's 111 (JSON: "account": true) says so."""
    import json

    server = await start(history=10)
    alice = await register(server, "Remy")
    await alice.send("002#Remy#from an account")
    guest = await connect(server)
    await guest.join("plain")
    await guest.send("002#plain#from a guest")
    await guest.sync()
    assert server.gate is not None and await server.gate.drain(TIMEOUT)
    assert server.store is not None
    rows = await server.store.before("lobby", None, 10)
    assert [(m.text, m.account) for m in rows] == [("from an account", True), ("from a guest", False)]
    raw = await connect(server)
    await raw.send("007#json")
    await raw.send("001#newcomer")
    await raw.send("006#done")
    data = await asyncio.wait_for(raw.reader.readuntil(b'"type":"pong"'), TIMEOUT)  # JSON lines, read raw
    events = [json.loads(line) for line in data.decode().splitlines() if line.endswith("}")]
    history = [e for e in events if e["type"] == "history"]
    assert [(e["text"], e.get("account", False)) for e in history] == [("from an account", True),
                                                                        ("from a guest", False)]


async def test_the_tls_port_is_a_protected_path_from_another_host(start: Start, tmp_path: pathlib.Path) -> None:
    from tcp_server.tls import client_context
    from tests.test_tls import close_tls, make_pki

    address = _external_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    pki = make_pki(tmp_path)
    server = await start(host="0.0.0.0", tls_port=0, tls_cert=pki.cert_file, tls_key=pki.key_file)
    assert server.tls_port
    plain = await connect(server, address)
    await plain.send(f"018#ivan#{PASSWORD}")
    assert (await error_of(plain)).reason is ErrorReason.NEEDS_TLS
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        address, server.tls_port, ssl=client_context(pki.ca_file), server_hostname="localhost"), TIMEOUT)
    secure = LineClient(reader, writer)
    try:
        await secure.send(f"018#ivan#{PASSWORD}")
        assert (await error_of(secure)).reason is ErrorReason.BAD_LOGIN  # verified: the path was protected
    finally:
        await close_tls(secure)


def test_login_nice_flag_env_and_bounds() -> None:
    from tcp_server.config import parse_config

    assert parse_config([], {}).login_nice == 10
    assert parse_config(["--login-nice", "0"], {}).login_nice == 0
    assert parse_config([], {"CHAT_LOGIN_NICE": "15"}).login_nice == 15
    for bad in ("-1", "20"):
        with pytest.raises(SystemExit):
            parse_config(["--login-nice", bad], {})


async def test_a_registration_is_told_to_the_room_live(start: Start) -> None:
    """019 makes an online guest an account: the others get 132#ID at once (not counted: a resume's 132
    says it again), the registrant only its 130; a later joiner's 132 lists it."""
    server = await start(resume_grace=30)
    bob = await connect(server)
    await bob.join("bob")
    alice = await register(server, "Alice")
    frames = await bob.recv_until(AccountList)
    assert frames[-2:] == [UserJoined("Alice"), AccountList(("Alice",))]
    await alice.send("006#after")
    assert not [f for f in await alice.recv_until(lambda f: getattr(f, "token", None) == "after")
                if isinstance(f, AccountList)]  # its own 130 was its answer
    carol = await connect(server)
    joined = await carol.join("carol")
    more = await carol.recv_until(SessionToken)
    assert AccountList(("Alice",)) in joined + more
