"""``chat-admin``: the operator's command for a running chat server, over its admin socket.

    chat-admin who
    chat-admin kick ID [REASON]
    chat-admin ban ID|ADDRESS|CIDR [--for DURATION] [REASON]
    chat-admin unban ID|ADDRESS|CIDR
    chat-admin bans
    chat-admin mute ID [--for DURATION]
    chat-admin unmute ID
    chat-admin notice TEXT
    chat-admin history delete --author ID [--room R]
    chat-admin history export [--room R] [--since DATE] [--database URL]
    chat-admin account add|reset ID      (password: stdin's first line; none: one generated, printed once)
    chat-admin account list
    chat-admin account delete|lock|unlock ID

The socket (``--socket``, env ``CHAT_ADMIN_SOCKET``) is the server's ``--admin-socket``;
its file permissions decide who may use this. ``history export`` reads the database itself
(``--database``, env ``CHAT_DATABASE``, default the server's: the data directory's SQLite file),
so it works with the server stopped too (a backup); its read permission decides who may.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

TIMEOUT = 10.0


def request(path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """One request, one answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(path)
        sock.sendall((json.dumps(payload, ensure_ascii=False) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


def _when(stamp: float | None) -> str:
    return "until lifted" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def render(cmd: str, answer: dict[str, Any]) -> str:
    """The answer as lines for a person."""
    if cmd == "who":
        users = answer["users"]
        # Users of other nodes (--redis) come with their node only: the rest is known where they are.
        rows = [f"{u['id']:<32} {u.get('address', '-'):<39} {u.get('kind', '-'):<8} "
                f"{_when(u['since']) if 'since' in u else '-':<19}  {u['node']}" for u in users]
        return "\n".join([f"{'ID':<32} {'ADDRESS':<39} {'KIND':<8} {'CONNECTED SINCE':<19}  NODE", *rows,
                          f"{len(users)} user(s)"])
    if cmd == "bans":
        rows = [f"{b['kind']:<8} {b['target']:<39} {_when(b['until']):<19}  {b['by']:<10} {b['reason']}"
                for b in answer["bans"]]
        return "\n".join([f"{'KIND':<8} {'TARGET':<39} {'UNTIL':<19}  {'BY':<10} REASON", *rows,
                          f"{len(rows)} ban(s)"])
    if cmd == "ban":
        ban = answer["ban"]
        removed = ", ".join(answer["removed"]) or "nobody online"
        return f"banned {ban['kind']} {ban['target']} {_when(ban['until'])}; removed: {removed}"
    if cmd == "kick":
        return f"kicked {answer['kicked']}" + (f" on node {answer['node']}" if "node" in answer else "")
    if cmd == "unban":
        return f"lifted the ban on {answer['unbanned']['target']}"
    if cmd == "mute":
        return f"muted {answer['muted']} {_when(answer['until'])}"
    if cmd == "unmute":
        return f"unmuted {answer['unmuted']}"
    if cmd == "history-delete":
        return f"erased {answer['deleted']} stored message(s) of {answer['author']}"
    if cmd.startswith("account-"):
        return _render_account(cmd, answer)
    return f"sent: {answer['notice']}"


def _render_account(cmd: str, answer: dict[str, Any]) -> str:
    generated = f"\npassword (shown once): {answer['password']}" if "password" in answer else ""
    ended = f"; ended: {', '.join(answer['ended'])}" if answer.get("ended") else ""
    if cmd == "account-list":
        rows = [f"{a['id']:<32} {_when(a['created']):<19}  {'locked' if a['locked'] else '-'}"
                for a in answer["accounts"]]
        return "\n".join([f"{'ID':<32} {'CREATED':<19}  LOCKED", *rows, f"{len(rows)} account(s)"])
    if cmd == "account-add":
        return f"added {answer['id']}{generated}"
    if cmd == "account-reset":
        return f"reset the password of {answer['reset']}{ended}{generated}"
    if cmd == "account-delete":
        return f"deleted {answer['deleted']}{ended}"
    if cmd == "account-lock":
        return f"locked {answer['locked']}{ended}"
    return f"unlocked {answer['unlocked']}"


def read_password(stream: Any) -> str | None:
    """The first line of ``stream`` without its line ending (None: a terminal, or nothing: generate one)."""
    if stream.isatty():
        return None
    line = stream.readline()
    return line.rstrip("\r\n") or None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chat-admin", description="Moderate a running chat server.")
    p.add_argument("--socket", default=os.environ.get("CHAT_ADMIN_SOCKET"),
                   help="the server's --admin-socket (env CHAT_ADMIN_SOCKET)")
    p.add_argument("--json", action="store_true", help="print the server's JSON answer")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("who", help="who is online: ID, address, node, connected since, kind")
    kick = sub.add_parser("kick", help="remove a user (they see 109#kicked#REASON)")
    kick.add_argument("id")
    kick.add_argument("reason", nargs="*")
    ban = sub.add_parser("ban", help="ban an ID, an address or a network (and remove who matches)")
    ban.add_argument("target")
    ban.add_argument("--for", dest="duration", help="e.g. 30m, 2h, 7d (default: until lifted)")
    ban.add_argument("reason", nargs="*")
    unban = sub.add_parser("unban", help="lift a ban")
    unban.add_argument("target")
    sub.add_parser("bans", help="the bans in force")
    mute = sub.add_parser("mute", help="stop a user's messages (they see 109#muted)")
    mute.add_argument("id")
    mute.add_argument("--for", dest="duration", help="e.g. 10m (default: until unmuted)")
    unmute = sub.add_parser("unmute", help="let a muted user speak again")
    unmute.add_argument("id")
    notice = sub.add_parser("notice", help="a server notice to everyone (114)")
    notice.add_argument("text", nargs="+")
    history = sub.add_parser("history", help="the stored history: erase an author's messages, export")
    hsub = history.add_subparsers(dest="history_cmd", required=True)
    delete = hsub.add_parser("delete", help="erase an author's stored messages (through the server's socket)")
    delete.add_argument("--author", required=True, help="the author's ID (any spelling of the same ID)")
    delete.add_argument("--room", help="only in this room (default: every room)")
    account = sub.add_parser("account", help="accounts: add, list, delete, reset, lock, unlock")
    asub = account.add_subparsers(dest="account_cmd", required=True)
    for name, text in (("add", "register ID; the password is stdin's first line, or one generated and printed once"),
                       ("delete", "delete the account (its sessions end)"),
                       ("reset", "a new password (stdin's first line, or generated); the account's sessions end"),
                       ("lock", "refuse the account's logins (its sessions end)"),
                       ("unlock", "allow the account's logins again")):
        asub.add_parser(name, help=text).add_argument("id")
    asub.add_parser("list", help="every account")
    export = hsub.add_parser("export", help="stored messages as JSON lines, oldest first (reads the database)")
    export.add_argument("--room", help="only this room")
    export.add_argument("--since", help="only from this date or time on: YYYY-MM-DD or ISO 8601 (UTC unless given)")
    export.add_argument("--database", default=os.environ.get("CHAT_DATABASE"),
                        help="the server's --database (env CHAT_DATABASE; default: its SQLite file in "
                             "--data-dir)")
    export.add_argument("--data-dir", default=os.environ.get("CHAT_DATA_DIR"),
                        help="the server's --data-dir (env CHAT_DATA_DIR)")
    return p


def payload_of(ns: argparse.Namespace) -> dict[str, Any]:
    cmd = ns.cmd
    out: dict[str, Any] = {"cmd": cmd}
    if cmd in ("kick", "mute", "unmute"):
        out["id"] = ns.id
    if cmd in ("ban", "unban"):
        out["target"] = ns.target
    if cmd in ("kick", "ban"):
        out["reason"] = " ".join(ns.reason)
    if cmd in ("ban", "mute") and ns.duration:
        out["for"] = ns.duration
    if cmd == "notice":
        out["text"] = " ".join(ns.text)
    if cmd == "history":
        out = {"cmd": "history-delete", "author": ns.author}
        if ns.room is not None:
            out["room"] = ns.room
    if cmd == "account":
        out = {"cmd": f"account-{ns.account_cmd}"}
        if ns.account_cmd != "list":
            out["id"] = ns.id
    return out


def parse_since(raw: str) -> int:
    """``--since``: a date or an ISO 8601 time (UTC unless it says otherwise), as ms since the epoch."""
    try:
        when = datetime.datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"--since {raw!r}: expected YYYY-MM-DD or an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp() * 1000)


def export_lines(ns: argparse.Namespace) -> int:
    """``history export``: every stored message as a JSON line on stdout; how many."""
    import asyncio

    from .protocol.scrollback import room_key
    from .store.db import MessageStore
    from .store.urls import default_data_dir, default_database, parse_database

    url = parse_database(ns.database or default_database(ns.data_dir or default_data_dir()))
    since = parse_since(ns.since) if ns.since else None
    room = room_key(ns.room) if ns.room else None

    async def run() -> int:
        store = await MessageStore.open(url, migrate=False)
        count = 0
        try:
            async for m in store.export(room, since):
                when = datetime.datetime.fromtimestamp(m.ts / 1000, datetime.UTC).isoformat(timespec="milliseconds")
                sys.stdout.write(json.dumps({"room": m.room, "seq": m.seq, "ts": m.ts, "time": when,
                                             "from": m.author, "text": m.text}, ensure_ascii=False) + "\n")
                count += 1
        finally:
            await store.close()
        return count

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> None:
    p = parser()
    ns, extra = p.parse_known_args(argv)
    if extra and ns.cmd in ("kick", "ban") and not any(x.startswith("-") for x in extra):
        ns.reason += extra  # a reason may come before or after --for
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if ns.cmd == "history" and ns.history_cmd == "export":
        try:
            export_lines(ns)
        except Exception as exc:  # a bad URL or date, no file, a schema mismatch, the database down
            print(f"chat-admin: cannot export the history: {exc}", file=sys.stderr)
            sys.exit(2)
        return
    if not ns.socket:
        p.error("where is the server? give --socket PATH (the server's --admin-socket) or set CHAT_ADMIN_SOCKET")
    payload = payload_of(ns)
    if payload["cmd"] in ("account-add", "account-reset"):
        password = read_password(sys.stdin)
        if password is not None:
            payload["password"] = password
    try:
        answer = request(ns.socket, payload)
    except (OSError, ValueError) as exc:
        print(f"chat-admin: cannot talk to the server at {ns.socket}: {exc}", file=sys.stderr)
        sys.exit(2)
    if ns.json:
        print(json.dumps(answer, ensure_ascii=False, indent=1))
    if not answer.get("ok"):
        print(f"chat-admin: {answer.get('error', 'refused')}", file=sys.stderr)
        sys.exit(1)
    if not ns.json:
        print(render(payload["cmd"], answer))


if __name__ == "__main__":
    main()
