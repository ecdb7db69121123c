"""``chat-admin``: the operator's command for a running chat server, over its admin socket.

    chat-admin who
    chat-admin kick ID [REASON]
    chat-admin ban ID|ADDRESS|CIDR [--for DURATION] [REASON]
    chat-admin unban ID|ADDRESS|CIDR
    chat-admin bans
    chat-admin mute ID [--for DURATION]
    chat-admin unmute ID
    chat-admin notice TEXT

The socket (``--socket``, env ``CHAT_ADMIN_SOCKET``) is the server's ``--admin-socket``;
its file permissions decide who may use this.
"""

from __future__ import annotations

import argparse
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
    return f"sent: {answer['notice']}"


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
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = parser()
    ns, extra = p.parse_known_args(argv)
    if extra and ns.cmd in ("kick", "ban") and not any(x.startswith("-") for x in extra):
        ns.reason += extra  # a reason may come before or after --for
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if not ns.socket:
        p.error("where is the server? give --socket PATH (the server's --admin-socket) or set CHAT_ADMIN_SOCKET")
    try:
        answer = request(ns.socket, payload_of(ns))
    except (OSError, ValueError) as exc:
        print(f"chat-admin: cannot talk to the server at {ns.socket}: {exc}", file=sys.stderr)
        sys.exit(2)
    if ns.json:
        print(json.dumps(answer, ensure_ascii=False, indent=1))
    if not answer.get("ok"):
        print(f"chat-admin: {answer.get('error', 'refused')}", file=sys.stderr)
        sys.exit(1)
    if not ns.json:
        print(render(ns.cmd, answer))


if __name__ == "__main__":
    main()
