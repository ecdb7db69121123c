"""The admin socket: ``chat-admin`` talks to a running node over a Unix socket.

Access control is the socket file's permissions (mode 0600 by default, so only
the user the server runs as, and root, may connect); every action is logged
with the peer's uid. One JSON object a line each way:
``{"cmd": "kick", "id": "bob", "reason": "spam"}`` →
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

Bans are written to ``--bans-file`` after every change (a temporary file, then
an atomic rename), and read back at start, so they survive a restart. With
``--redis`` every action is room-wide, through the node's :class:`SharedRoom`:
bans and mutes are kept in Redis (the store then) and every node reloads them
(removing whom a ban now keeps out, see :func:`enforce_bans`), ``who`` lists
every node's users, ``kick`` reaches a user on any node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import stat
import struct
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol

from .protocol.codes import ErrorReason
from .protocol.encoders import JSON, LEGACY
from .protocol.frames import ServerNotice, replace_control_chars
from .protocol.ids import InvalidId, id_key, normalize_id
from .protocol.moderation import Ban, Moderation, parse_duration
from .protocol.scrollback import room_key
from .protocol.session import Session
from .room import Bus, RoomUnavailable, SessionStore

if TYPE_CHECKING:
    from .accounts.service import Accounts

log = logging.getLogger("tcp_server.admin")

MAX_REQUEST = 64 * 1024
"""Longest request line; the socket is local and trusted, but every read is bounded."""
MAX_NOTICE = 1000
MAX_DEPTH = 4
"""Deepest nesting of a request (they are flat objects): checked before parsing, so bad input never
reaches the JSON parser's recursion."""


class AdminSocketInUse(OSError):
    """``--admin-socket`` names something this server must not replace: it refuses to start."""


def nesting(line: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def clear_stale_socket(path: str) -> None:
    """Remove a socket left by a server that did not stop cleanly; refuse anything else at ``path``.

    A regular file (or directory, link, ...) is someone's data, and a socket that answers is another
    running server's: neither is replaced (:class:`AdminSocketInUse`, naming the path).
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise AdminSocketInUse(f"--admin-socket {path} exists and is not a socket; not replacing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # stale: nobody listens on it
            return
        except OSError as exc:
            raise AdminSocketInUse(f"--admin-socket {path}: cannot tell whether it is in use ({exc})") from exc
    raise AdminSocketInUse(f"--admin-socket {path} is in use by another running server")


class Member(Protocol):
    """A connection, as the admin socket sees it."""

    session: Session
    connected_at: float

    @property
    def encoder(self) -> object: ...

    def remove(self, reason: ErrorReason, text: str) -> None:
        """Tell the user why, take it out of the room (the others see its leave), close."""


class SharedRoom(Protocol):
    """The room beyond this node (``--redis``), for the actions that reach every node."""

    async def everyone(self) -> list[tuple[str, str]]:
        """Every ID in the room, in join order, with the node that holds it."""

    async def holder(self, key: str) -> tuple[str, str] | None:
        """The ID that holds ``key`` and its node, if anyone does."""

    def kick(self, key: str, reason: str) -> None:
        """The node that holds ``key`` removes it, telling it ``reason``."""

    def save_ban(self, key: str, ban: dict[str, Any] | None) -> None:
        """A ban added (``ban``, as ``Moderation.load_json`` reads it) or lifted (None): every node reloads."""

    def save_mute(self, key: str, until: float | None, lifted: bool = False) -> None:
        """A mute set or lifted: kept in the shared store, every node's moderation reloads it."""

    def forget_author(self, key: str) -> None:
        """An author's stored messages were erased: every node's window of recent ones forgets them too."""


class Node(Protocol):
    """What the admin socket needs of the server node."""

    moderation: Moderation
    bus: Bus
    shared: SharedRoom | None
    sessions: SessionStore | None
    accounts: Accounts | None

    @property
    def members(self) -> Iterable[Member]: ...

    @property
    def node_name(self) -> str: ...

    async def delete_history(self, key: str, room: str | None) -> int:
        """Erase the stored messages of the author whose ID key is ``key`` (in ``room``, or all); how many.

        ValueError when the node keeps no stored history."""


def client_kind(member: Member) -> str:
    if member.encoder is LEGACY:
        return "legacy"
    if member.encoder is JSON:
        return "web"
    return "terminal"


def save_bans(path: str, moderation: Moderation) -> None:
    """Write the bans atomically: a reader (or a crash) sees the old file or the new one, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".bans-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(moderation.to_json(), out, ensure_ascii=False, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_bans(path: str, moderation: Moderation) -> int:
    """Read the bans back (a missing file is no bans); how many are in force."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return 0
    moderation.load_json(data)
    return len(moderation.bans())


def peer_uid(writer: asyncio.StreamWriter) -> str:
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        return f"uid {uid}"
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return "uid ?"


def enforce_bans(node: Node) -> list[str]:
    """Remove every member a ban in force now keeps out (told why), and end every parked session it
    matches (a drop must not be a way around a ban: no resume, its leave announced as when its grace
    ends); who was removed (a shared store's parked sessions end a round trip later, unnamed here)."""
    removed = []
    banned = node.moderation.banned
    for member in list(node.members):
        session = member.session
        ban = banned(session.key, session.address)
        if ban is not None:
            removed.append(session.name or session.address)
            member.remove(ErrorReason.BANNED, ban.reason)
    if node.sessions is not None:
        removed += node.sessions.end_banned(banned)
    return removed


def _ban_json(ban: Ban) -> dict[str, Any]:
    return {"kind": ban.kind, "target": ban.target, "reason": ban.reason, "until": ban.until, "by": ban.by,
            "at": ban.at}


class AdminServer:
    """The Unix socket and the actions behind it."""

    def __init__(self, node: Node, path: str, mode: int = 0o600, bans_file: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.path = path
        self.mode = mode
        self.bans_file = bans_file
        self.clock = clock
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        clear_stale_socket(self.path)
        old = os.umask(0o777 & ~self.mode)  # the socket is born with its mode: no window with a wider one
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path, limit=MAX_REQUEST)
        finally:
            os.umask(old)
        os.chmod(self.path, self.mode)
        log.info("admin socket on %s (mode %o)", self.path, self.mode)

    async def close(self) -> None:
        if self._server is None:
            return  # never started: whatever is at the path is not ours
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        who = peer_uid(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_REQUEST
                    writer.write(b'{"ok":false,"error":"request too long"}\n')
                    break
                if not line:
                    break
                writer.write((json.dumps(await self.handle(line, who), ensure_ascii=False) + "\n").encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def handle(self, line: bytes, who: str) -> dict[str, Any]:
        """One request; a bad request gets an error answer, our own bug is logged and answered generically."""
        try:
            if nesting(line) > MAX_DEPTH:
                raise ValueError(f"bad request: nested deeper than {MAX_DEPTH} levels")
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
                raise ValueError('expected {"cmd": ...}')
            action = _ACTIONS.get(request["cmd"])
            if action is None:
                raise ValueError(f"unknown command {request['cmd'][:32]!r}; one of: {', '.join(_ACTIONS)}")
            return {"ok": True, **await action(self, request, who)}
        except (ValueError, InvalidId, KeyError, TypeError, RoomUnavailable) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception:
            log.exception("admin request failed")
            return {"ok": False, "error": "internal error (see the server's log)"}

    # ------------------------------------------------------------ actions

    def _find(self, key: str) -> Member | None:
        for member in self.node.members:
            if member.session.key == key and member.session.joined:
                return member
        return None

    async def who(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        here = {
            m.session.key: {"id": m.session.name, "address": m.session.address, "node": self.node.node_name,
                            "since": m.connected_at, "kind": client_kind(m)}
            for m in self.node.members if m.session.joined
        }
        if self.node.shared is None:
            return {"users": list(here.values())}
        # The whole room in join order; what only the holding node knows (address, since, kind) for ours.
        everyone = await self.node.shared.everyone()
        return {"users": [{**here.get(id_key(name), {"id": name}), "node": node} for name, node in everyone]}

    async def kick(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        name, reason = str(request["id"]), _text(request.get("reason", ""))
        key = id_key(normalize_id(name))
        member = self._find(key)
        if member is not None:
            log.warning("admin %s kicked %s [%s]: %s", who, member.session.name, member.session.address,
                        reason or "-")
            member.remove(ErrorReason.KICKED, reason)
            return {"kicked": member.session.name}
        shared = self.node.shared
        found = await shared.holder(key) if shared is not None else None
        if shared is not None and found is not None:
            held, node = found
            log.warning("admin %s kicked %s on node %s: %s", who, held, node, reason or "-")
            shared.kick(key, reason)
            return {"kicked": held, "node": node}
        raise ValueError(f"{name!r} is not online" + ("" if shared is not None else " on this node"))

    async def ban(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        duration = parse_duration(str(request["for"])) if request.get("for") else None
        ban = self.node.moderation.ban(str(request["target"]), _text(request.get("reason", "")), duration, who)
        self._save(added=ban)
        removed = enforce_bans(self.node)
        log.warning("admin %s banned %s %s%s: %s (removed: %s)", who, ban.kind, ban.target,
                    f" for {request['for']}" if duration else "", ban.reason or "-", ", ".join(removed) or "nobody")
        return {"ban": _ban_json(ban), "removed": removed}

    async def unban(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        ban = self.node.moderation.unban(str(request["target"]))
        if ban is None:
            raise ValueError(f"{request['target']!r} is not banned")
        self._save(lifted=ban)
        log.warning("admin %s lifted the ban on %s %s", who, ban.kind, ban.target)
        return {"unbanned": _ban_json(ban)}

    async def bans(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        return {"bans": [_ban_json(b) for b in self.node.moderation.bans()]}

    async def mute(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        name = str(request["id"])
        duration = parse_duration(str(request["for"])) if request.get("for") else None
        until = self.node.moderation.mute(name, duration)
        if self.node.shared is not None:
            self.node.shared.save_mute(id_key(normalize_id(name)), until)
        log.warning("admin %s muted %s%s", who, name, f" for {request['for']}" if duration else "")
        return {"muted": normalize_id(name), "until": until}

    async def unmute(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        name = str(request["id"])
        if not self.node.moderation.unmute(name):
            raise ValueError(f"{name!r} is not muted")
        if self.node.shared is not None:
            self.node.shared.save_mute(id_key(normalize_id(name)), None, lifted=True)
        log.warning("admin %s unmuted %s", who, name)
        return {"unmuted": normalize_id(name)}

    async def notice(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        text = _text(request["text"])
        if not text:
            raise ValueError("empty notice")
        self.node.bus.publish(ServerNotice(text), None)
        log.warning("admin %s sent a notice: %s", who, text)
        return {"notice": text}

    async def history_delete(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        """``chat-admin history delete --author ID [--room R]``: the author's stored messages are erased."""
        name = normalize_id(str(request["author"]))
        room = request.get("room")
        deleted = await self.node.delete_history(id_key(name), None if room is None else room_key(str(room)))
        log.warning("admin %s erased %d stored message(s) of %s%s", who, deleted, name,
                    f" in {room_key(str(room))}" if room is not None else "")
        return {"author": name, "deleted": deleted}

    # ------------------------------------------------------------ accounts (never a password in a log line)

    def _accounts(self) -> Accounts:
        accounts = self.node.accounts
        if accounts is None:
            raise ValueError("this server has no accounts (they need a durable --database)")
        return accounts

    async def _hash(self, name: str, request: dict[str, Any]) -> tuple[str, str | None]:
        """The hash of the request's password, or of a generated one (returned, to be printed once)."""
        from .accounts.hasher import Busy
        from .protocol.passwords import InvalidPassword, prepare_new_password

        given = request.get("password")
        generated = None if given else secrets.token_urlsafe(15)
        password = str(given) if given else generated
        assert password is not None
        try:
            prepared = prepare_new_password(name, password)
        except InvalidPassword as exc:
            raise ValueError(f"weak password: {exc.weak.reason}: {exc.weak.text}") from None
        try:
            hashed = await asyncio.wait_for(self._accounts().hashing.hash(prepared), 60.0)
        except Busy:
            raise ValueError("the hashing queue is full; try again") from None
        return hashed, generated

    def _end_sessions(self, key: str, why: str) -> list[str]:
        """The account's connection on this node leaves (its 104), a session parked for a resume ends
        (its 104, its token dead); with --redis the holding node is told to remove it."""
        ended: list[str] = []
        member = self._find(key)
        if member is not None:
            ended.append(member.session.name or key)
            member.remove(ErrorReason.KICKED, why)
        sessions = self.node.sessions
        if sessions is not None:
            ended += sessions.end_banned(lambda k, _address: k == key)
        if not ended and self.node.shared is not None:
            self.node.shared.kick(key, why)
        return ended

    async def account_add(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        from .store.accounts import AccountExists

        name = normalize_id(str(request["id"]))
        key = id_key(name)
        accounts = self._accounts()
        hashed, generated = await self._hash(name, request)
        try:
            await asyncio.wait_for(accounts.store.create(key, name, hashed), 10.0)
        except AccountExists:
            raise ValueError(f"{name!r} is registered already") from None
        accounts.registry.add(key, name)
        ended = self._end_sessions(key, "this ID was registered; log in with its password")  # a guest holding it
        log.warning("admin %s added the account %s%s", who, name, f" (removed: {', '.join(ended)})" if ended else "")
        return {"id": name, **({"password": generated} if generated else {})}

    async def account_list(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        accounts = await asyncio.wait_for(self._accounts().store.all(), 10.0)
        return {"accounts": [{"id": a.display, "created": a.created / 1000, "updated": a.updated / 1000,
                              "locked": a.locked} for a in accounts]}

    async def account_delete(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        name = normalize_id(str(request["id"]))
        key = id_key(name)
        accounts = self._accounts()
        if not await asyncio.wait_for(accounts.store.delete(key), 10.0):
            raise ValueError(f"{name!r} is not an account")
        accounts.registry.remove(key)
        ended = self._end_sessions(key, "this account was deleted")
        log.warning("admin %s deleted the account %s (ended: %s)", who, name, ", ".join(ended) or "none")
        return {"deleted": name, "ended": ended}

    async def account_reset(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        name = normalize_id(str(request["id"]))
        key = id_key(name)
        accounts = self._accounts()
        hashed, generated = await self._hash(name, request)
        if not await asyncio.wait_for(accounts.store.set_hash(key, hashed), 10.0):
            raise ValueError(f"{name!r} is not an account")
        ended = self._end_sessions(key, "this account's password was reset")
        log.warning("admin %s reset the password of %s (ended: %s)", who, name, ", ".join(ended) or "none")
        return {"reset": name, "ended": ended, **({"password": generated} if generated else {})}

    async def _set_locked(self, request: dict[str, Any], who: str, locked: bool) -> dict[str, Any]:
        name = normalize_id(str(request["id"]))
        key = id_key(name)
        if not await asyncio.wait_for(self._accounts().store.set_locked(key, locked), 10.0):
            raise ValueError(f"{name!r} is not an account")
        ended = self._end_sessions(key, "this account was locked") if locked else []
        log.warning("admin %s %s the account %s", who, "locked" if locked else "unlocked", name)
        return {"locked" if locked else "unlocked": name, "ended": ended}

    async def account_lock(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        return await self._set_locked(request, who, True)

    async def account_unlock(self, request: dict[str, Any], who: str) -> dict[str, Any]:
        return await self._set_locked(request, who, False)

    def _save(self, added: Ban | None = None, lifted: Ban | None = None) -> None:
        if self.bans_file:
            save_bans(self.bans_file, self.node.moderation)
        shared = self.node.shared
        if shared is not None:
            if added is not None:
                shared.save_ban(added.key, asdict(added))
            if lifted is not None:
                shared.save_ban(lifted.key, None)


def _text(value: object) -> str:
    """A reason or notice: one line of at most MAX_NOTICE characters with no control characters."""
    text = replace_control_chars(str(value), " ").strip()
    if len(text) > MAX_NOTICE:
        raise ValueError(f"longer than {MAX_NOTICE} characters")
    return text


_ACTIONS: dict[str, Callable[[AdminServer, dict[str, Any], str], Awaitable[dict[str, Any]]]] = {
    "who": AdminServer.who,
    "kick": AdminServer.kick,
    "ban": AdminServer.ban,
    "unban": AdminServer.unban,
    "bans": AdminServer.bans,
    "mute": AdminServer.mute,
    "unmute": AdminServer.unmute,
    "notice": AdminServer.notice,
    "history-delete": AdminServer.history_delete,
    "account-add": AdminServer.account_add,
    "account-list": AdminServer.account_list,
    "account-delete": AdminServer.account_delete,
    "account-reset": AdminServer.account_reset,
    "account-lock": AdminServer.account_lock,
    "account-unlock": AdminServer.account_unlock,
}
