"""The client's own sentences (Korean and English); the seed's live in tcp_server.protocol.texts.

Kept apart from the shared texts because only this client says them: local
echoes, hints, reconnect notices and the help screen.
"""

from __future__ import annotations

from tcp_server.protocol.texts import Lang

_TEXTS: dict[str, dict[Lang, str]] = {
    "echo_say": {"ko": "나 : {message}", "en": "me : {message}"},
    "ask_password": {"ko": "비밀번호 : ", "en": "Password : "},
    "ask_new_password": {"ko": "새 비밀번호 : ", "en": "New password : "},
    "ask_password_again": {"ko": "비밀번호 확인 : ", "en": "Password again : "},
    "password_mismatch": {
        "ko": "두 비밀번호가 다릅니다. 아무것도 보내지 않았습니다.",
        "en": "The two passwords differ: nothing was sent.",
    },
    "echo_whisper": {"ko": "나 → {to} : {message}", "en": "me → {to} : {message}"},
    "hint": {"ko": "명령어 목록은 /help 를 입력하세요.", "en": "Type /help for the list of commands."},
    "usage_m": {"ko": "사용법: /m ID 메시지", "en": "Usage: /m ID MESSAGE"},
    "usage_b": {"ko": "사용법: /b 메시지", "en": "Usage: /b MESSAGE"},
    "usage_search": {
        "ko": "사용법: /search 찾을말 (두 글자 이상)",
        "en": "Usage: /search TEXT (at least 2 characters)",
    },
    "no_more": {"ko": "더 이전 메시지는 없습니다.", "en": "There are no earlier messages."},
    "no_scrollback": {
        "ko": "이 서버는 이전 메시지를 보관하지 않습니다.",
        "en": "This server keeps no earlier messages.",
    },
    "bad_target": {"ko": "사용할 수 없는 ID입니다: {to}", "en": "Not a valid ID: {to}"},
    "control_chars": {
        "ko": "메시지에 제어 문자를 넣을 수 없습니다.",
        "en": "Messages cannot contain control characters.",
    },
    "too_long": {
        "ko": "메시지가 너무 깁니다 (최대 {limit}바이트).",
        "en": "The message is too long (at most {limit} bytes).",
    },
    "bad_port": {
        "ko": "포트 번호는 1~65535 사이의 숫자여야 합니다.",
        "en": "The port must be a number from 1 to 65535.",
    },
    "network_error_detail": {
        "ko": "네트워크 오류가 발생하였습니다. ({where}: {why})",
        "en": "A network error occurred. ({where}: {why})",
    },
    "lost": {"ko": "서버와의 연결이 끊어졌습니다.", "en": "The connection to the server was lost."},
    "dead": {
        "ko": "서버가 {seconds}초 동안 응답하지 않습니다.",
        "en": "The server did not answer for {seconds} seconds.",
    },
    "reconnecting": {"ko": "{seconds}초 후에 다시 연결합니다...", "en": "Reconnecting in {seconds} s..."},
    "gap": {
        "ko": "이전 대화를 이어갈 수 없어 새로 입장합니다. 연결이 끊긴 동안의 메시지가 빠졌을 수 있습니다.",
        "en": "Could not resume the session; joining afresh. Lines said while disconnected may be missing.",
    },
    "reconnected": {"ko": "서버에 다시 연결되었습니다.", "en": "Reconnected to the server."},
    "not_connected": {
        "ko": "서버에 연결되어 있지 않아 보내지 못했습니다.",
        "en": "Not connected to the server: nothing was sent.",
    },
    "id_refused": {
        "ko": "ID {id}(으)로 입장할 수 없습니다.",
        "en": "Could not join as {id}.",
    },
    "help": {
        "ko": (
            "명령어:\n"
            "  /m ID 메시지   ID에게 귓속말 (Tab: 명령어와 접속자 ID 자동 완성)\n"
            "  /b 메시지      모두에게 (그냥 입력해도 모두에게 보냅니다)\n"
            "  /who           접속자 리스트\n"
            "  /more          이전 메시지 더 보기\n"
            "  /search 찾을말 저장된 메시지 검색\n"
            "  /register      지금 ID를 계정으로 등록 (비밀번호를 묻습니다)\n"
            "  /passwd        비밀번호 변경 (로그인한 경우)\n"
            "  /q             퇴장 (Ctrl-C, Ctrl-D도 같습니다)\n"
            "  /help          이 도움말\n"
            "/로 시작하는 메시지는 /b 로 보내세요."
        ),
        "en": (
            "Commands:\n"
            "  /m ID MESSAGE  whisper to ID (Tab completes commands and online IDs)\n"
            "  /b MESSAGE     to everyone (plain text goes to everyone too)\n"
            "  /who           list the users online\n"
            "  /more          show earlier messages\n"
            "  /search TEXT   search the stored messages\n"
            "  /register      keep this ID as your account (asks for a password)\n"
            "  /passwd        change your password (when logged in)\n"
            "  /q             leave (so do Ctrl-C and Ctrl-D)\n"
            "  /help          this help\n"
            "Send a message that starts with / with /b."
        ),
    },
}


def msg(key: str, lang: Lang = "ko", **fields: object) -> str:
    """The client's sentence ``key`` in ``lang`` with ``fields`` filled in."""
    return _TEXTS[key][lang].format(**fields)


def keys() -> frozenset[str]:
    return frozenset(_TEXTS)
