"""Human texts: the seed's Korean sentences and their English equivalents.

The terminal client renders every server frame with :func:`render`; the legacy
port sends the Korean rendering verbatim, because the seed's client prints
what it receives. The server's console log uses :func:`log_text`.
"""

from __future__ import annotations

import locale
import os
from typing import Literal, assert_never

from .codes import ErrorReason
from .frames import (
    AccountList,
    Error,
    Found,
    History,
    IdTaken,
    Joined,
    Left,
    Message,
    NoSuchUser,
    Older,
    Page,
    PasswordChanged,
    Pong,
    Registered,
    Resumed,
    RoomListed,
    RoomsListed,
    Searched,
    ServerFrame,
    ServerNotice,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
)

Lang = Literal["ko", "en"]
LANGS: tuple[Lang, ...] = ("ko", "en")

USER_LIST_HEADER = {"ko": "=== 접속자 리스트 ===", "en": "=== Users online ==="}
USER_LIST_FOOTER = "====================="

_TEXTS: dict[str, dict[Lang, str]] = {
    "joined": {"ko": "채팅방에 입장하였습니다.", "en": "You joined the chat room."},
    "id_taken": {
        "ko": "중복된 ID입니다. ID를 다시 입력해주세요.",
        "en": "That ID is taken. Please enter another ID.",
    },
    "left": {"ko": "채팅방 접속이 해제되었습니다.", "en": "You have left the chat room."},
    "user_joined": {"ko": "[공지]{id} 사용자가 접속하였습니다.", "en": "[Notice] {id} joined."},
    "user_left": {"ko": "[공지]{id} 사용자가 퇴장하였습니다.", "en": "[Notice] {id} left."},
    "message": {"ko": "{sender} : {message}", "en": "{sender} : {message}"},
    "whisper": {"ko": "{sender}님의 귓속말 : {message}", "en": "{sender} whispers : {message}"},
    "no_such_user": {"ko": "해당 사용자가 존재하지 않습니다.", "en": "No such user is online."},
    "pong": {"ko": "응답 {token}", "en": "pong {token}"},
    "error": {"ko": "[오류] {text}", "en": "[Error] {text}"},
    "server_notice": {"ko": "[서버 공지] {text}", "en": "[Server notice] {text}"},
    "session": {"ko": "연결이 끊겨도 이 대화를 이어갈 수 있습니다.",
                "en": "This conversation can be resumed if the connection drops."},
    "page": {"ko": "이전 메시지 {count}개를 표시했습니다.", "en": "{count} earlier message(s) shown."},
    "page_end": {"ko": "더 이전 메시지는 없습니다.", "en": "There are no earlier messages."},
    "searched": {"ko": "검색 결과 {count}개.", "en": "{count} message(s) found."},
    "resumed": {"ko": "다시 연결되었습니다. 놓친 메시지 {missed}개를 위에 표시했습니다.",
                "en": "Reconnected: {missed} missed message(s) shown above."},
    "registered": {"ko": "ID {id}을(를) 등록했습니다. 이제 비밀번호로 로그인할 수 있습니다.",
                   "en": "The ID {id} is now registered: log in with your password from now on."},
    "password_changed": {"ko": "비밀번호를 변경했습니다.", "en": "Your password was changed."},
    "room_listed": {"ko": "[방] {room} ({count}명) {topic}", "en": "[Room] {room} ({count}) {topic}"},
    "rooms_listed": {"ko": "방 {total}개", "en": "{total} room(s)"},
    "accounts": {"ko": "[등록 사용자] {ids}", "en": "[Registered users] {ids}"},
    # log lines, as the seed's server console printed them
    "log_connected": {"ko": "{id} 사용자가 연결되었습니다.", "en": "{id} connected."},
    "log_disconnected": {"ko": "{id} 사용자가 접속을 해제하였습니다.", "en": "{id} disconnected."},
    # client-side prompts and messages
    "ask_host": {"ko": "Enter server IP : ", "en": "Enter server IP : "},
    "ask_port": {"ko": "Enter server Port : ", "en": "Enter server Port : "},
    "ask_id": {"ko": "사용자 ID : ", "en": "User ID : "},
    "network_error": {"ko": "네트워크 오류가 발생하였습니다.", "en": "A network error occurred."},
    "connection_error": {"ko": "접속 오류가 발생하였습니다.", "en": "The connection failed."},
    "bad_input": {"ko": "메시지를 정상적으로 입력해주세요.", "en": "Please enter a valid message."},
}

_REASONS: dict[ErrorReason, dict[Lang, str]] = {
    ErrorReason.BAD_ID: {"ko": "사용할 수 없는 ID입니다.", "en": "That ID is not allowed."},
    ErrorReason.NOT_JOINED: {"ko": "먼저 채팅방에 입장해야 합니다.", "en": "Join the room first."},
    ErrorReason.ALREADY_JOINED: {"ko": "이미 입장하였습니다.", "en": "You have already joined."},
    ErrorReason.ID_MISMATCH: {"ko": "자신의 ID로만 보낼 수 있습니다.", "en": "You can only send as yourself."},
    ErrorReason.UNKNOWN_CODE: {"ko": "알 수 없는 명령입니다.", "en": "Unknown command code."},
    ErrorReason.MALFORMED: {"ko": "잘못된 형식의 메시지입니다.", "en": "Malformed message."},
    ErrorReason.TOO_LONG: {"ko": "메시지가 너무 깁니다.", "en": "Message too long."},
    ErrorReason.FLOOD: {"ko": "메시지를 너무 빨리 보내고 있습니다.", "en": "You are sending too fast."},
    ErrorReason.FORBIDDEN: {"ko": "허용되지 않은 요청입니다.", "en": "Forbidden."},
    ErrorReason.BUSY: {
        "ko": "서버가 혼잡합니다. 잠시 후 다시 시도해주세요.",
        "en": "The server is busy; try again later.",
    },
    ErrorReason.ADDRESS_LIMIT: {
        "ko": "같은 주소에서 연결이 너무 많습니다. 잠시 후 다시 시도해주세요.",
        "en": "Too many connections from your address; try again later.",
    },
    ErrorReason.SHUTDOWN: {"ko": "서버가 종료됩니다.", "en": "The server is shutting down."},
    ErrorReason.INTERNAL: {"ko": "서버 내부 오류입니다.", "en": "Internal server error."},
    ErrorReason.KICKED: {"ko": "운영자가 채팅방에서 내보냈습니다.", "en": "An operator removed you from the chat."},
    ErrorReason.BANNED: {"ko": "운영자가 입장을 금지했습니다.", "en": "An operator has banned you from the chat."},
    ErrorReason.MUTED: {
        "ko": "운영자가 발언을 금지하여 메시지가 전달되지 않았습니다.",
        "en": "An operator has muted you; your message was not delivered.",
    },
    ErrorReason.BAD_TOKEN: {
        "ko": "이전 대화를 이어갈 수 없습니다. 다시 입장해주세요.",
        "en": "That session cannot be resumed; join again.",
    },
    ErrorReason.GAP: {
        "ko": "놓친 메시지가 너무 많아 이어갈 수 없습니다. 새로 입장해주세요.",
        "en": "Too much was missed to resume; join again.",
    },
    ErrorReason.REPLACED: {
        "ko": "다른 연결이 이 대화를 이어받았습니다.",
        "en": "Another connection took over this session.",
    },
    ErrorReason.BAD_CURSOR: {
        "ko": "이 채팅방에서 받은 커서가 아닙니다.",
        "en": "That is not a cursor this server gave for that room.",
    },
    ErrorReason.NOT_IN_ROOM: {
        "ko": "들어가 있지 않은 채팅방입니다.",
        "en": "You are not in that room.",
    },
    ErrorReason.UNAVAILABLE: {
        "ko": "채팅방을 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도해주세요.",
        "en": "The chat room is unavailable right now; try again later.",
    },
    ErrorReason.BAD_LOGIN: {"ko": "ID 또는 비밀번호가 올바르지 않습니다.", "en": "Wrong ID or password."},
    ErrorReason.TOO_MANY_ATTEMPTS: {
        "ko": "로그인 시도가 너무 많습니다. 표시된 시간(초) 후에 다시 시도해주세요.",
        "en": "Too many login attempts; try again after the seconds shown.",
    },
    ErrorReason.NEEDS_TLS: {
        "ko": "암호화된 연결(TLS)에서만 비밀번호를 보낼 수 있습니다.",
        "en": "Passwords may only be sent over an encrypted (TLS) connection.",
    },
    ErrorReason.ACCOUNT_LOCKED: {"ko": "운영자가 이 계정을 잠갔습니다.", "en": "An operator has locked this account."},
    ErrorReason.LOGIN_BUSY: {
        "ko": "로그인 요청이 많습니다. 잠시 후 다시 시도해주세요.",
        "en": "Too many logins right now; try again in a moment.",
    },
    ErrorReason.ALREADY_REGISTERED: {"ko": "이미 등록된 ID입니다.", "en": "That ID is already registered."},
    ErrorReason.WEAK_PASSWORD: {"ko": "사용할 수 없는 비밀번호입니다.", "en": "That password cannot be used."},
    ErrorReason.REGISTRATION_CLOSED: {
        "ko": "이 서버에서는 운영자만 계정을 만들 수 있습니다.",
        "en": "On this server only an operator can create accounts.",
    },
    ErrorReason.NEEDS_LOGIN: {
        "ko": "비밀번호로 로그인한 연결에서만 할 수 있습니다.",
        "en": "Only a connection that logged in with its password can do that.",
    },
    ErrorReason.REGISTERED: {
        "ko": "등록된 ID입니다. 비밀번호로 로그인해주세요.",
        "en": "That ID is registered; log in with its password.",
    },
}


def text(key: str, lang: Lang = "ko", **fields: str) -> str:
    """The sentence ``key`` in ``lang`` with ``fields`` filled in."""
    return _TEXTS[key][lang].format(**fields)


def template(key: str, lang: Lang = "ko") -> str:
    """The sentence ``key`` in ``lang`` with its ``{placeholders}`` left for a page's script to fill in."""
    return _TEXTS[key][lang]


def reason_text(reason: ErrorReason, lang: Lang = "ko") -> str:
    """A short explanation of a 109 REASON."""
    return _REASONS[reason][lang]


def render(frame: ServerFrame, lang: Lang = "ko") -> str:
    """The seed's text for a server frame (PROTOCOL.md's table); may span lines (107)."""
    match frame:
        case (Message(sender, message) | History(_, sender, message) | Older(_, _, sender, message)
              | Found(_, _, sender, message)):
            return text("message", lang, sender=sender, message=message)
        case WhisperMessage(sender, message):
            return text("whisper", lang, sender=sender, message=message)
        case UserJoined(name):
            return text("user_joined", lang, id=name)
        case UserLeft(name):
            return text("user_left", lang, id=name)
        case UserList(ids):
            return "\n".join((USER_LIST_HEADER[lang], *ids, USER_LIST_FOOTER))
        case Joined():
            return text("joined", lang)
        case IdTaken():
            return text("id_taken", lang)
        case Left():
            return text("left", lang)
        case NoSuchUser():
            return text("no_such_user", lang)
        case Error(reason, detail):
            explanation = reason_text(reason, lang)
            return text("error", lang, text=explanation + (f" ({detail})" if detail else ""))
        case Pong(token):
            return text("pong", lang, token=token)
        case SessionToken():
            return text("session", lang)
        case Resumed(missed):
            return text("resumed", lang, missed=str(missed))
        case ServerNotice(notice):
            return text("server_notice", lang, text=notice)
        case Page(_, count, cursor):
            return text("page", lang, count=str(count)) + ("" if cursor else " " + text("page_end", lang))
        case Searched(_, count):
            return text("searched", lang, count=str(count))
        case Registered(name):
            return text("registered", lang, id=name)
        case PasswordChanged():
            return text("password_changed", lang)
        case RoomListed(room, count, topic):
            return text("room_listed", lang, room=room, count=str(count), topic=topic).rstrip()
        case RoomsListed(total):
            return text("rooms_listed", lang, total=str(total))
        case AccountList(ids):
            return text("accounts", lang, ids=" ".join(ids))
        case _:
            assert_never(frame)


def default_lang(environ: dict[str, str] | None = None) -> Lang:
    """``ko`` when the locale is Korean, else ``en``; CHAT_LANG wins when set."""
    env = os.environ if environ is None else environ
    explicit = env.get("CHAT_LANG", "")
    if explicit in LANGS:
        return explicit
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var)
        if value:
            return "ko" if value.lower().startswith("ko") else "en"
    if environ is None:
        loc = locale.getlocale()[0] or ""
        return "ko" if loc.lower().startswith("ko") else "en"
    return "en"
