"""The page's strings in Korean and English, its rules, and the choice of language, pure.

Every sentence the seed had comes from ``tcp_server.protocol.texts`` so the
browser says exactly what the terminal says; the rest (buttons, labels, the
connection state) is the page's own. Placeholders like ``{id}`` are filled in
by the page's script, as text, never as HTML.

The page also gets its rules from here (:func:`page_rules`): the ID rule, the
frame limit and the characters a message may not hold, derived from the
protocol core, so ``static/app.js`` keeps no copy that could drift.
"""

from __future__ import annotations

from typing import Any

from tcp_server.protocol import MAX_ID_LENGTH, Broadcast, ErrorReason, Whisper, has_control_chars, serialize
from tcp_server.protocol.table import COUNTED_EVENTS, SERVER_SPECS, TEXT_KEYS
from tcp_server.protocol.texts import LANGS, USER_LIST_HEADER, Lang, reason_text, template

_SEED_KEYS = (*TEXT_KEYS, "bad_input")
"""The sentences of every server frame (the table's ``text_keys``), as the terminal says them, and the seed's
"enter a valid message"."""

_PAGE: dict[str, dict[Lang, str]] = {
    "title": {"ko": "채팅", "en": "Chat"},
    "welcome_title": {"ko": "hanchat에 오신 것을 환영합니다", "en": "Welcome to hanchat"},
    "welcome_text": {
        "ko": "누구나 들어올 수 있는 대화방입니다. 브라우저와 터미널 사용자가 함께 대화합니다. "
              "ID를 정하고 입장하세요.",
        "en": "One chat room for everyone, shared by browser and terminal users. Pick an ID to join.",
    },
    "online_count": {"ko": "지금 {count}명 접속 중", "en": "{count} online now"},
    "id_label": {"ko": "사용자 ID", "en": "User ID"},
    "id_hint": {"ko": "1–{max}자, 공백과 # 없이", "en": "1–{max} characters, no spaces or #"},
    "id_placeholder": {"ko": "예: 민수", "en": "e.g. alice"},
    "join": {"ko": "입장", "en": "Join"},
    "leave": {"ko": "퇴장", "en": "Leave"},
    "leave_confirm": {"ko": "채팅방에서 나갈까요?", "en": "Leave the chat room?"},
    "leave_confirm_text": {"ko": "다른 사용자에게 퇴장이 알려집니다.", "en": "The others will see that you left."},
    "cancel": {"ko": "취소", "en": "Cancel"},
    "send": {"ko": "보내기", "en": "Send"},
    "message_label": {"ko": "메시지", "en": "Message"},
    "message_placeholder": {"ko": "전체에게 메시지 보내기", "en": "Message everyone"},
    "message_hint": {
        "ko": "/m ID 메시지: 귓속말, /b 메시지: 전체, /who: 접속자, /q: 퇴장",
        "en": "/m ID text: whisper, /b text: everyone, /who: users, /q: leave",
    },
    "users": {"ko": "접속자", "en": "Users online"},
    "users_count": {"ko": "접속자 {count}명", "en": "Users online: {count}"},
    "users_hint": {"ko": "이름을 누르면 귓속말", "en": "Click a name to whisper"},
    "log_label": {"ko": "대화", "en": "Messages"},
    "me": {"ko": "나", "en": "me"},
    "you": {"ko": "나", "en": "you"},
    "whisper_from": {"ko": "{id}님의 귓속말", "en": "whisper from {id}"},
    "whisper_to_label": {"ko": "{id}님에게 귓속말", "en": "whisper to {id}"},
    "pending": {"ko": "보내는 중…", "en": "sending…"},
    "failed": {"ko": "보내지 못함", "en": "not sent"},
    "retry": {"ko": "다시 입력", "en": "edit again"},
    "new_messages": {"ko": "새 메시지 {count}개 ↓", "en": "{count} new ↓"},
    "earlier_messages": {"ko": "↑ 이전 메시지", "en": "↑ Earlier messages"},
    "more": {"ko": "↑ 이전 메시지 더 보기", "en": "↑ Load earlier messages"},
    "no_earlier": {"ko": "대화의 처음입니다.", "en": "This is the beginning of the conversation."},
    "search_label": {"ko": "메시지 검색", "en": "Search messages"},
    "search_placeholder": {"ko": "메시지 검색 (두 글자 이상)", "en": "Search messages (2+ characters)"},
    "search": {"ko": "검색", "en": "Search"},
    "search_close": {"ko": "닫기", "en": "Close"},
    "search_results": {"ko": "“{query}” 검색 결과 {count}개", "en": "{count} found for “{query}”"},
    "search_short": {"ko": "두 글자 이상 입력하세요.", "en": "Type at least 2 characters."},
    "state_connecting": {"ko": "연결 중…", "en": "Connecting…"},
    "state_connected": {"ko": "연결됨", "en": "Connected"},
    "state_reconnected": {"ko": "다시 연결됨 ({id})", "en": "Reconnected as {id}"},
    "state_disconnected": {"ko": "연결 끊김 — {seconds}초 후 다시 연결",
                           "en": "Disconnected — retrying in {seconds} s"},
    "state_unavailable": {"ko": "채팅 서버에 연결할 수 없음 — {seconds}초 후 다시 시도",
                          "en": "Chat server unreachable — retrying in {seconds} s"},
    "state_shutdown": {"ko": "게이트웨이가 종료되었습니다 — 다시 연결 중", "en": "The gateway stopped — reconnecting"},
    "state_label": {"ko": "연결 상태", "en": "Connection"},
    "not_connected": {"ko": "연결되어 있지 않습니다. 다시 연결되면 보내주세요. 입력한 내용은 그대로 있습니다.",
                      "en": "Not connected. Send again once reconnected; your text is kept."},
    "rate_limited": {
        "ko": "메시지를 너무 빨리 보내고 있습니다. 잠시 기다린 뒤 다시 보내주세요. 입력한 내용은 그대로 있습니다.",
        "en": "You are sending too fast. Wait a moment, then send again; your text is kept.",
    },
    "too_long": {"ko": "메시지가 너무 깁니다: {bytes} / {limit}바이트. 줄여서 다시 보내주세요.",
                 "en": "Message too long: {bytes} of {limit} bytes. Shorten it and send again."},
    "control_chars": {"ko": "메시지에 보낼 수 없는 제어 문자가 있습니다. 지우고 다시 보내주세요.",
                      "en": "The message holds control characters that cannot be sent. Remove them and send again."},
    "not_sent": {"ko": "보내지 못했습니다: {reason}", "en": "Not sent: {reason}"},
    "id_invalid": {"ko": "사용할 수 없는 ID입니다. (1–{max}자, 공백·#·제어 문자 없이)",
                   "en": "That ID is not allowed (1–{max} characters, no spaces, # or control characters)."},
    "language": {"ko": "언어", "en": "Language"},
    "whisper_to": {"ko": "{id}에게 귓속말", "en": "Whisper to {id}"},
    "notify": {"ko": "알림 켜기", "en": "Notifications"},
    "notify_on": {"ko": "알림 켜짐", "en": "Notifications on"},
    "notify_title": {"ko": "{id}님의 메시지", "en": "Message from {id}"},
    "resume_gap": {
        "ko": "이전 대화를 이어갈 수 없어 새로 입장했습니다. 자리를 비운 동안의 메시지가 빠졌을 수 있습니다.",
        "en": "Could not resume the session, so you joined afresh: messages said while you were away may be missing.",
    },
    "mention": {"ko": "나를 언급함", "en": "mentions you"},
    "guest_title": {"ko": "손님으로 입장", "en": "Join as a guest"},
    "login_title": {"ko": "로그인", "en": "Log in"},
    "login": {"ko": "로그인", "en": "Log in"},
    "password_label": {"ko": "비밀번호", "en": "Password"},
    "new_password_label": {"ko": "새 비밀번호", "en": "New password"},
    "password_again_label": {"ko": "비밀번호 확인", "en": "Password again"},
    "password_empty": {"ko": "비밀번호를 입력해 주세요.", "en": "Enter your password."},
    "password_mismatch": {"ko": "두 비밀번호가 다릅니다.", "en": "The two passwords differ."},
    "account_title": {"ko": "계정", "en": "Account"},
    "register_hint": {"ko": "이 ID를 내 계정으로 등록하면 다른 사람이 쓸 수 없습니다.",
                      "en": "Keep this ID as your account: nobody else can use it then."},
    "register": {"ko": "이 ID 등록하기", "en": "Keep this ID"},
    "change_password": {"ko": "비밀번호 변경", "en": "Change password"},
    "account_badge": {"ko": "등록", "en": "registered"},
    "account_badge_label": {"ko": "등록된 사용자", "en": "registered user"},
    "registered_notice": {"ko": "ID {id}을(를) 등록했습니다.", "en": "The ID {id} is now registered."},
    "too_many_attempts": {"ko": "로그인 시도가 너무 많습니다. {seconds}초 후에 다시 시도해 주세요.",
                          "en": "Too many login attempts. Try again in {seconds} seconds."},
    "relogin": {"ko": "등록된 ID입니다. 비밀번호로 다시 로그인해 주세요.",
                "en": "This ID is registered: log in with its password again."},
}

# The password rules (tcp_server/protocol/passwords.py PasswordRule), for a weak-password error's RULE.
_PASSWORD_RULES: dict[str, dict[Lang, str]] = {
    "empty": {"ko": "비밀번호를 입력해 주세요.", "en": "Enter a password."},
    "too-short": {"ko": "비밀번호는 8자 이상이어야 합니다.", "en": "A password needs at least 8 characters."},
    "too-long": {"ko": "비밀번호는 256자까지 쓸 수 있습니다.", "en": "A password may have at most 256 characters."},
    "control": {"ko": "비밀번호에 제어 문자를 넣을 수 없습니다.",
                "en": "A password cannot contain control characters."},
    "invisible": {"ko": "비밀번호에 보이지 않는 문자가 들어 있습니다.",
                  "en": "The password contains an invisible character."},
    "not-allowed": {"ko": "비밀번호에 쓸 수 없는 문자(옛 한글 자모나 채움 문자 등)가 들어 있습니다.",
                    "en": "The password contains a character that is not allowed (an old Hangul jamo or filler)."},
    "same-as-id": {"ko": "비밀번호가 ID와 같습니다.", "en": "The password is the same as the ID."},
    "common": {"ko": "너무 흔한 비밀번호입니다. 다른 비밀번호를 쓰세요.",
               "en": "That password is one of the most common ones; choose another."},
}

# The ID rules (tcp_server/protocol/ids.py ID_RULES), for a bad-id error event's "rule".
_ID_RULES: dict[str, dict[Lang, str]] = {
    "empty": {"ko": "ID를 입력해 주세요.", "en": "Enter an ID."},
    "space": {"ko": "ID에는 공백을 넣을 수 없습니다.", "en": "An ID cannot contain spaces."},
    "control": {"ko": "ID에는 제어 문자를 넣을 수 없습니다.", "en": "An ID cannot contain control characters."},
    "invisible": {"ko": "ID에 보이지 않는 문자가 들어 있습니다.", "en": "The ID contains an invisible character."},
    "old-hangul": {"ko": "ID에 한글 채움 문자나 옛 자모가 들어 있습니다. 완성된 글자로 써 주세요.",
                   "en": "The ID contains a Hangul filler or an old jamo; write the syllable instead."},
    "compat": {"ko": "ID에 호환용 문자(ⓐ, 전각 문자, ² 같은)가 들어 있습니다. 보통 글자나 숫자로 써 주세요.",
               "en": "The ID contains a compatibility form (like ⓐ, full-width letters or ²); "
                     "write the plain letter or digit."},
    "symbol": {"ko": "ID에는 기호나 이모지를 넣을 수 없습니다.", "en": "An ID cannot contain symbols or emoji."},
    "punctuation": {"ko": "ID에는 ASCII 문장 부호만 쓸 수 있습니다.",
                    "en": "An ID may only contain ASCII punctuation."},
    "other": {"ko": "ID에 쓸 수 없는 문자가 들어 있습니다.", "en": "The ID contains a character that is not allowed."},
    "unassigned": {"ko": "ID에 아직 정의되지 않은 문자가 들어 있습니다.",
                   "en": "The ID contains a character Unicode has not assigned."},
    "bidi": {"ko": "ID에는 오른쪽에서 왼쪽으로 쓰는 글자와 왼쪽에서 오른쪽으로 쓰는 글자를 섞을 수 없습니다.",
             "en": "An ID cannot mix right-to-left and left-to-right writing."},
    "unstable": {"ko": "이 ID는 형태가 안정적이지 않습니다. 다른 ID를 써 주세요.",
                 "en": "This ID has no stable form; choose another."},
    "hash": {"ko": "ID에는 #을 넣을 수 없습니다.", "en": "An ID cannot contain #."},
    "overlay": {"ko": "ID에 글자를 덧긋는 결합 문자가 들어 있습니다.",
                "en": "The ID contains a mark that strikes through letters."},
    "scripts": {"ko": "ID에 여러 문자 체계가 섞여 있습니다(라틴 문자와 닮은 키릴·그리스 문자 같은). "
                      "한 가지 문자로 쓰거나, 라틴 문자에 한글·한자를 섞어 쓰세요.",
                "en": "The ID mixes scripts (like Cyrillic or Greek letters that look Latin); use one script, "
                      "or Latin with Hangul and Han."},
    "digits": {"ko": "ID에 서로 다른 숫자 체계를 섞을 수 없습니다.",
               "en": "An ID cannot mix digits of different number systems."},
    "too-long": {"ko": "ID가 너무 깁니다({max}자까지).", "en": "The ID is too long (at most {max} characters)."},
}

# Reasons the gateway itself gives (the server's come from texts.reason_text).
_GATEWAY_REASONS: dict[str, dict[Lang, str]] = {
    "bad-json": {"ko": "잘못된 요청입니다.", "en": "Bad request."},
    "unknown-type": {"ko": "알 수 없는 요청입니다.", "en": "Unknown request."},
    "backend-unavailable": {
        "ko": "채팅 서버에 연결할 수 없습니다. 다시 연결을 시도합니다.",
        "en": "The chat server cannot be reached; trying again.",
    },
    "bad-token": {"ko": "세션이 만료되었습니다.", "en": "The session has expired."},
}

# The ID rule of tcp_server/protocol/ids.py as a JavaScript (``u`` flag) character class: '#',
# white space, separators (Z*) and control/format/unassigned characters (C*) are refused.
_ID_FORBIDDEN_JS = r"[#\s\p{C}\p{Z}]"


def page_strings(lang: Lang) -> dict[str, str]:
    """Every string the page shows, in ``lang``; reasons under ``reason:<name>``."""
    out = {key: template(key, lang) for key in _SEED_KEYS}  # {placeholders} filled in by the page
    out.update({key: value[lang].replace("{max}", str(MAX_ID_LENGTH)) for key, value in _PAGE.items()})
    out["users_header"] = USER_LIST_HEADER[lang]
    for reason in ErrorReason:
        out[f"reason:{reason}"] = reason_text(reason, lang)
    for name, value in _GATEWAY_REASONS.items():
        out[f"reason:{name}"] = value[lang]
    for rule, value in _ID_RULES.items():
        out[f"id_rule:{rule}"] = value[lang].replace("{max}", str(MAX_ID_LENGTH))
    for rule, value in _PASSWORD_RULES.items():
        out[f"password_rule:{rule}"] = value[lang]
    return out


def all_strings() -> dict[str, dict[str, str]]:
    return {lang: page_strings(lang) for lang in LANGS}


def _char_class(chars: list[int]) -> str:
    """``[\\u0000-\\u0008…]``: consecutive code points as ranges, escaped for a JS RegExp."""
    parts: list[str] = []
    start = prev = chars[0]
    for c in [*chars[1:], -2]:
        if c != prev + 1:
            parts.append(f"\\u{start:04x}" + (f"-\\u{prev:04x}" if prev != start else ""))
            start = c
        prev = c
    return "[" + "".join(parts) + "]"


def _message_forbidden_js() -> str:
    """The core's control-character rule, after CR/LF folding (both become spaces on the way)."""
    refused = [c for c in range(0x3000) if chr(c) not in "\r\n" and has_control_chars(chr(c))]
    return _char_class(refused)


_MESSAGE_FORBIDDEN_JS = _message_forbidden_js()
# Bytes a frame adds around the text (code, own ID / recipient separators, LF); the page adds the IDs' bytes.
_SAY_OVERHEAD = len(serialize(Broadcast("a", "b"))) - 2
_WHISPER_OVERHEAD = len(serialize(Whisper("a", "b", "c"))) - 3


def page_rules(max_message: int, rate: float, burst: int) -> dict[str, Any]:
    """What the page checks before sending, so that it refuses what the gateway would."""
    return {
        "id_max": MAX_ID_LENGTH,
        "id_forbidden": _ID_FORBIDDEN_JS,
        "message_forbidden": _MESSAGE_FORBIDDEN_JS,
        "max_message": max_message,
        "say_overhead": _SAY_OVERHEAD,
        "whisper_overhead": _WHISPER_OVERHEAD,
        "rate": rate,
        "burst": burst,
        "counted": list(COUNTED_EVENTS),  # the events a resume position counts (PROTOCOL.md, 008)
        # each event's sentence: the page says an event its reducer has no handler for with it (protocol.js)
        "sentences": {spec.event: spec.text_keys[0] for spec in SERVER_SPECS if spec.event and spec.text_keys},
    }


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
