"""Passwords: which ones an account may have, and the form that is hashed.

The rule is published, not hand-made (the accounts issue; NIST SP 800-63B §3.1.1.2):

- PRECIS ``OpaqueString`` (RFC 8265 §4.2, the ``precis-i18n`` package) prepares
  the password: NFC, every space (U+3000, U+00A0 …) mapped to U+0020; controls,
  invisible (default-ignorable) characters, old Hangul jamo and unassigned code
  points refused. Spaces inside, symbols, emoji and every script are allowed,
  so a Hangul passphrase is fine. The *prepared* form is what is hashed, so
  the same password typed as NFD on one keyboard and NFC on another logs in.
- 8 to 256 characters (code points) after preparation.
- Not the account's ID, compared like IDs are (:func:`~.ids.id_key`) and case-insensitively.
- Not one of the most common passwords: the 30,000 of the ``zxcvbn`` package's
  ``passwords`` frequency list (Xato's corpus of leaked passwords, lowercased),
  compared case-insensitively; only those that pass the length rule matter.

A password must never reach a log: nothing here keeps one, the results say only
which rule was broken, and :class:`Password` wraps one whose ``repr`` hides it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import precis_i18n

from .ids import id_key

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256

_MAX_RAW_LENGTH = 4 * MAX_PASSWORD_LENGTH
"""Past this many code points the prepared form is too long whatever it is: NFC composes at most 4 code points
into one (the longest canonical decomposition, e.g. U+1F82) and OpaqueString maps nothing else to less. Such a
password is refused before PRECIS runs over all of it (a 10 KB one costs nothing)."""

_OPAQUE = precis_i18n.get_profile("OpaqueString")


class PasswordRule(StrEnum):
    """Why a password is refused (a user interface says each in its own language)."""

    EMPTY = "empty"
    TOO_SHORT = "too-short"
    TOO_LONG = "too-long"
    CONTROL = "control"
    INVISIBLE = "invisible"
    NOT_ALLOWED = "not-allowed"
    """An old Hangul jamo or filler, an unassigned code point, a lone surrogate."""
    SAME_AS_ID = "same-as-id"
    COMMON = "common"


_TEXTS = {
    PasswordRule.EMPTY: "empty password",
    PasswordRule.TOO_SHORT: f"password shorter than {MIN_PASSWORD_LENGTH} characters",
    PasswordRule.TOO_LONG: f"password longer than {MAX_PASSWORD_LENGTH} characters",
    PasswordRule.CONTROL: "password contains a control character",
    PasswordRule.INVISIBLE: "password contains an invisible character",
    PasswordRule.NOT_ALLOWED: "password contains a character that is not allowed (an old Hangul jamo or filler, "
                              "or an unassigned code point)",
    PasswordRule.SAME_AS_ID: "password is the same as the ID",
    PasswordRule.COMMON: "password is one of the most common passwords",
}

# precis-i18n's DISALLOWED/<rule> names for OpaqueString (FreeformClass) failures.
_PRECIS_RULES = {
    "empty": PasswordRule.EMPTY,
    "controls": PasswordRule.CONTROL,
    "precis_ignorable_properties": PasswordRule.INVISIBLE,
    "zero_width_joiner": PasswordRule.INVISIBLE,
    "zero_width_nonjoiner": PasswordRule.INVISIBLE,
}


@dataclass(frozen=True, slots=True)
class WeakPassword:
    """A refused password: the rule and a sentence in English. Never the password nor any character of it."""

    reason: PasswordRule
    text: str

    @classmethod
    def of(cls, reason: PasswordRule) -> WeakPassword:
        return cls(reason, _TEXTS[reason])


class InvalidPassword(ValueError):
    """The password cannot be prepared (:func:`prepare_password`); ``weak`` says why."""

    def __init__(self, weak: WeakPassword) -> None:
        super().__init__(weak.text)
        self.weak = weak


class Password:
    """A password as a frame or a call carries it: its ``repr`` and ``str`` hide it, so a log of a
    frame, an exception's locals or a debugger's listing shows ``Password(<hidden>)``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The password itself: for preparing and hashing only."""
        return self._value

    def __repr__(self) -> str:
        return "Password(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        """Equal if the same text (frames compare in tests); compared in constant time all the same."""
        if not isinstance(other, Password):
            return NotImplemented
        return hmac.compare_digest(_utf8(self._value), _utf8(other._value))

    __hash__ = None  # type: ignore[assignment]  # (no hash of a password kept in a set's table)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def prepare_password(password: str) -> str:
    """The password as it is hashed (PRECIS OpaqueString), or :class:`InvalidPassword`.

    At login this is all that applies (an old password may be shorter or common); one that cannot be
    prepared matches no account, and the caller still spends a hash on it, like on a wrong one.
    """
    if len(password) > _MAX_RAW_LENGTH:
        raise InvalidPassword(WeakPassword.of(PasswordRule.TOO_LONG))
    try:
        prepared = _OPAQUE.enforce(password)
    except UnicodeEncodeError as exc:
        rule = _PRECIS_RULES.get(exc.reason.partition("/")[2], PasswordRule.NOT_ALLOWED)
        raise InvalidPassword(WeakPassword.of(rule)) from None
    assert isinstance(prepared, str)
    return prepared


def check_password(user_id: str, password: str) -> WeakPassword | None:
    """None if ``password`` may be ``user_id``'s new password (registering, changing), else why not."""
    try:
        prepare_new_password(user_id, password)
    except InvalidPassword as exc:
        return exc.weak
    return None


def prepare_new_password(user_id: str, password: str) -> str:
    """The form of ``user_id``'s new password to hash, or :class:`InvalidPassword` saying which rule it
    breaks: :func:`check_password` and the hashable form in one pass (registering, changing)."""
    prepared = prepare_password(password)
    if len(prepared) < MIN_PASSWORD_LENGTH:
        raise InvalidPassword(WeakPassword.of(PasswordRule.TOO_SHORT))
    if len(prepared) > MAX_PASSWORD_LENGTH:
        raise InvalidPassword(WeakPassword.of(PasswordRule.TOO_LONG))
    if _is_id(user_id, prepared):
        raise InvalidPassword(WeakPassword.of(PasswordRule.SAME_AS_ID))
    if prepared.casefold() in common_passwords():
        raise InvalidPassword(WeakPassword.of(PasswordRule.COMMON))
    return prepared


def _is_id(user_id: str, prepared: str) -> bool:
    # id_key's cache is bypassed (__wrapped__) for the password, so no password stays behind in it.
    key = id_key.__wrapped__
    return prepared.casefold() == user_id.casefold() or key(prepared) == key(user_id)


@cache
def common_passwords() -> frozenset[str]:
    """The most common passwords long enough to matter, lowercased (``zxcvbn``'s list; ~11,600 of its 30,000).

    Loaded on first use or by :func:`prepare` (importing zxcvbn builds all its lists: ~50 ms).
    """
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.casefold() for p in FREQUENCY_LISTS["passwords"] if len(p) >= MIN_PASSWORD_LENGTH)


def prepare() -> None:
    """Load the common-password list and the Unicode data now (a server's start), not on the first register."""
    common_passwords()
    check_password("준비", "준비된 비밀번호입니다")
