"""The page's strings in Korean and English, and the choice between them, pure.

Every sentence the seed had comes from ``tcp_server.protocol.texts`` so the
browser says exactly what the terminal says; the rest (buttons, labels, the
connection state) is the page's own. Placeholders like ``{id}`` are filled in
by the page's script, as text, never as HTML.
"""

from __future__ import annotations

from tcp_server.protocol import ErrorReason
from tcp_server.protocol.texts import LANGS, USER_LIST_HEADER, Lang, reason_text, text

_SEED_KEYS = ("joined", "id_taken", "left", "user_joined", "user_left", "message", "whisper",
              "no_such_user", "error", "bad_input")

_PAGE: dict[str, dict[Lang, str]] = {
    "title": {"ko": "채팅", "en": "Chat"},
    "id_label": {"ko": "사용자 ID", "en": "User ID"},
    "id_hint": {"ko": "1–32자, 공백과 # 없이", "en": "1–32 characters, no spaces or #"},
    "join": {"ko": "입장", "en": "Join"},
    "leave": {"ko": "퇴장", "en": "Leave"},
    "send": {"ko": "보내기", "en": "Send"},
    "message_label": {"ko": "메시지", "en": "Message"},
    "message_hint": {
        "ko": "/m ID 메시지: 귓속말, /b 메시지: 전체, /who: 접속자, /q: 퇴장",
        "en": "/m ID text: whisper, /b text: everyone, /who: users, /q: leave",
    },
    "users": {"ko": "접속자", "en": "Users online"},
    "users_hint": {"ko": "이름을 누르면 귓속말", "en": "Click a name to whisper"},
    "log_label": {"ko": "대화", "en": "Messages"},
    "me": {"ko": "나", "en": "me"},
    "you_whisper": {"ko": "{to}님에게 귓속말 : {message}", "en": "to {to} : {message}"},
    "state_connecting": {"ko": "연결 중…", "en": "Connecting…"},
    "state_connected": {"ko": "연결됨", "en": "Connected"},
    "state_disconnected": {"ko": "연결 끊김 — {seconds}초 후 다시 연결",
                           "en": "Disconnected — retrying in {seconds} s"},
    "state_shutdown": {"ko": "게이트웨이가 종료되었습니다 — 다시 연결 중", "en": "The gateway stopped — reconnecting"},
    "state_label": {"ko": "연결 상태", "en": "Connection"},
    "rejoined": {"ko": "다시 연결되어 {id}(으)로 입장하였습니다.", "en": "Reconnected and rejoined as {id}."},
    "rate_limited": {
        "ko": "메시지를 너무 빨리 보내고 있습니다. 잠시 기다린 뒤 다시 보내주세요. (보내지 않은 메시지: {message})",
        "en": "You are sending too fast. Wait a moment, then send again. (Not sent: {message})",
    },
    "rate_limited_short": {
        "ko": "메시지를 너무 빨리 보내고 있어 전달되지 않았습니다. 잠시 기다려주세요.",
        "en": "You are sending too fast; that message was not delivered. Wait a moment.",
    },
    "id_invalid": {"ko": "사용할 수 없는 ID입니다. (1–32자, 공백·#·제어 문자 없이)",
                   "en": "That ID is not allowed (1–32 characters, no spaces, # or control characters)."},
    "language": {"ko": "언어", "en": "Language"},
    "whisper_to": {"ko": "{id}에게 귓속말", "en": "Whisper to {id}"},
}

# Reasons the gateway itself gives (the server's come from texts.reason_text).
_GATEWAY_REASONS: dict[str, dict[Lang, str]] = {
    "bad-json": {"ko": "잘못된 요청입니다.", "en": "Bad request."},
    "unknown-type": {"ko": "알 수 없는 요청입니다.", "en": "Unknown request."},
    "backend-unavailable": {
        "ko": "채팅 서버에 연결할 수 없습니다. 다시 연결을 시도합니다.",
        "en": "The chat server cannot be reached; trying again.",
    },
}


def page_strings(lang: Lang) -> dict[str, str]:
    """Every string the page shows, in ``lang``; reasons under ``reason:<name>``."""
    placeholders = {"id": "{id}", "sender": "{sender}", "message": "{message}", "text": "{text}"}
    out = {key: text(key, lang, **placeholders) for key in _SEED_KEYS}
    out.update({key: value[lang] for key, value in _PAGE.items()})
    out["users_header"] = USER_LIST_HEADER[lang]
    for reason in ErrorReason:
        out[f"reason:{reason}"] = reason_text(reason, lang)
    for name, value in _GATEWAY_REASONS.items():
        out[f"reason:{name}"] = value[lang]
    return out


def all_strings() -> dict[str, dict[str, str]]:
    return {lang: page_strings(lang) for lang in LANGS}


def pick_lang(accept_language: str | None, default: Lang, requested: str | None = None) -> Lang:
    """``requested`` (``?lang=``) if it is one of ours, else the best of Accept-Language, else ``default``."""
    if requested in LANGS:
        return "ko" if requested == "ko" else "en"
    if not accept_language:
        return default
    best: Lang | None = None
    best_rank = (0.0, 0)
    for pos, item in enumerate(accept_language.split(",")):
        tag, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.split("-")[0].lower()
        rank = (q, -pos)
        if q > 0 and (best is None or rank > best_rank):
            if primary == "ko":
                best, best_rank = "ko", rank
            elif primary == "en":
                best, best_rank = "en", rank
    return best or default
