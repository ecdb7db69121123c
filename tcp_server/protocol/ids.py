"""User IDs: what is allowed, how an ID is shown, and the key under which it is unique.

The rule is a published profile, not a hand-made list (PROTOCOL.md, "IDs"):

- PRECIS ``UsernameCaseMapped`` (RFC 8265, the ``precis-i18n`` package) decides
  which characters are allowed: letters and digits of every script, ASCII
  punctuation; no spaces, symbols, emoji, controls, compatibility forms or
  invisible (default-ignorable) characters, and the bidi rule. Full-width
  letters are mapped to their plain form.
- UTS #39 on top: at most the script mixing of the "Highly Restrictive" level
  (Latin may go with Han + Hangul, Han + kana or Han + Bopomofo, as Korean,
  Japanese and Chinese users write; Latin + Cyrillic may not), digits of one
  number system, and no overlay marks (U+0334–U+0338 …) that strike through
  letters.
- ``#`` separates the fields of a frame, so it is refused too.

An ID is shown as ``UsernameCasePreserved`` gives it (NFC, width-mapped, case
kept) and compared by :func:`id_key`: the case-mapped form, case-folded, then
reduced to its UTS #39 confusable skeleton, so ``Alice``, ``ALICE`` and
``аlice`` (Cyrillic а) are one ID and cannot be online together.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import precis_i18n

from .uts39 import highly_restrictive, mixed_digits, scripts_of, skeleton

MAX_ID_LENGTH = 32

_CASE_MAPPED = precis_i18n.get_profile("UsernameCaseMapped")
_CASE_PRESERVED = precis_i18n.get_profile("UsernameCasePreserved")

# precis-i18n's DISALLOWED/<rule> names: the rule's code (ID_RULES) and words a user can act on.
_PRECIS_REASONS = {
    "empty": ("empty", "empty ID"),
    "spaces": ("space", "ID contains a space"),
    "controls": ("control", "ID contains a control character"),
    "precis_ignorable_properties": ("invisible", "ID contains an invisible character"),
    "zero_width_joiner": ("invisible", "ID contains an invisible character"),
    "zero_width_nonjoiner": ("invisible", "ID contains an invisible character"),
    "old_hangul_jamo": ("old-hangul", "ID contains a Hangul filler or an old jamo (write the syllable instead)"),
    "has_compat": ("compat", "ID contains a compatibility form (write the plain letter or digit instead)"),
    "symbols": ("symbol", "ID contains a symbol or emoji"),
    "punctuation": ("punctuation", "ID contains punctuation other than ASCII"),
    "other_letter_digits": ("other", "ID contains a character that is not a plain letter or digit"),
    "unassigned": ("unassigned", "ID contains an unassigned code point"),
    "bidi_rule": ("bidi", "ID mixes right-to-left and left-to-right writing"),
    "not_idempotent": ("unstable", "ID does not have a stable form"),
}

ID_RULES = (
    "empty", "space", "control", "invisible", "old-hangul", "compat", "symbol", "punctuation", "other",
    "unassigned", "bidi", "unstable", "hash", "overlay", "scripts", "digits", "too-long",
)
"""Every rule an ID can break, as :attr:`InvalidId.rule` names it (a page says each in its own language)."""


class InvalidId(ValueError):
    """The ID breaks a rule; ``str(exc)`` says which, in English (sent as ``109#bad-id``'s text).

    ``rule`` is one of :data:`ID_RULES`, ``char`` the offending character as ``U+XXXX`` when there is one:
    what a user interface needs to say it in the user's language.
    """

    def __init__(self, text: str, rule: str = "other", char: str | None = None) -> None:
        super().__init__(text)
        self.rule = rule
        self.char = char


def _precis_error(exc: UnicodeEncodeError) -> InvalidId:
    precis_rule = exc.reason.partition("/")[2]
    rule, text = _PRECIS_REASONS.get(precis_rule, ("other", f"ID not allowed ({precis_rule})"))
    if precis_rule in ("empty", "bidi_rule", "not_idempotent"):
        return InvalidId(text, rule)
    value = exc.object
    char = None
    if 0 <= exc.start < len(value):
        ch = value[exc.start]
        if unicodedata.category(ch).startswith("Z"):  # U+3000, U+00A0: spaces with a compatibility form
            rule, text = _PRECIS_REASONS["spaces"]
        char = f"U+{ord(ch):04X}"
        text += f": {char}"
    return InvalidId(text, rule, char)


def _enforce(profile: precis_i18n.profile.Profile, raw: str) -> str:
    try:
        result = profile.enforce(raw)
    except UnicodeEncodeError as exc:
        raise _precis_error(exc) from None
    assert isinstance(result, str)
    return result


def _check_uts39(name: str) -> None:
    for ch in name:
        if ch == "#":
            raise InvalidId("ID contains '#', which separates the fields of a frame", "hash")
        if unicodedata.combining(ch) == 1:  # canonical combining class 1: overlays
            char = f"U+{ord(ch):04X}"
            raise InvalidId(f"ID contains an overlay mark that strikes through letters: {char}", "overlay", char)
    if not highly_restrictive(name):
        used = ", ".join(sorted(s.title() for s in scripts_of(name)))
        raise InvalidId(f"ID mixes scripts ({used}); one script only, or Latin with Hangul and Han, "
                        "with kana and Han, or with Bopomofo and Han", "scripts")
    if mixed_digits(name):
        raise InvalidId("ID mixes digits of different number systems", "digits")


_PLAIN = re.compile("[!-~\uac00-\ud7a3]+")
"""What PRECIS leaves as it is: printable ASCII but the space (RFC 8264 ``ASCII7``, all PVALID; nothing to
map but case) and precomposed Hangul syllables (letters, NFC already, no case, no width form); Latin with
Hangul is a script mix UTS #39's Highly Restrictive level allows. Such an ID skips the profile's
per-character rules (~250 µs a join here, most of a join's own cost in a join storm);
tests/protocol/test_ids.py compares both paths on every such ASCII character and a sample of syllables."""


@lru_cache(maxsize=4096)
def normalize_id(raw: str) -> str:
    """The ID as it is shown (PRECIS UsernameCasePreserved), or :class:`InvalidId` saying why not."""
    if not raw:
        raise InvalidId("empty ID", "empty")
    if "#" in raw:  # before PRECIS, which would let it through
        raise InvalidId("ID contains '#', which separates the fields of a frame", "hash")
    if _PLAIN.fullmatch(raw):
        return _fits(raw)  # Latin and Hangul (and Common), ASCII digits, no marks: the UTS #39 checks pass too
    return _normalize_precis(raw)


def _normalize_precis(raw: str) -> str:
    """:func:`normalize_id` by the whole profile (every ID with more than printable ASCII and Hangul)."""
    _enforce(_CASE_MAPPED, raw)  # what is allowed; its errors name the first offending character
    name = _fits(_enforce(_CASE_PRESERVED, raw))
    _check_uts39(name)
    return name


def _fits(name: str) -> str:
    if len(name) > MAX_ID_LENGTH:
        raise InvalidId(f"ID longer than {MAX_ID_LENGTH} characters", "too-long")
    return name


@lru_cache(maxsize=4096)
def id_key(name: str) -> str:
    """The key under which an ID is unique: ``id_key(a) == id_key(b)`` means a and b may not both be online.

    Case-mapped (PRECIS), case-folded, then the UTS #39 skeleton. Takes any
    string: one that is not a valid ID still gets a key (of its NFKC form), so
    looking up a bad whisper target just finds nobody.
    """
    if _PLAIN.fullmatch(name):
        return skeleton(name.lower())  # what the profile's case mapping and casefold give these
    return _key_precis(name)


def _key_precis(name: str) -> str:
    """:func:`id_key` by the whole profile."""
    try:
        mapped = _CASE_MAPPED.enforce(name)
    except UnicodeEncodeError:
        mapped = unicodedata.normalize("NFKC", name)
    return skeleton(str(mapped).casefold())


def prepare() -> None:
    """Load the Unicode data the checks use now (a server's start), not on the first join (~30 ms here)."""
    _key_precis(_normalize_precis("준비"))  # not ASCII: the whole profile, every table


def is_valid_id(raw: str) -> bool:
    try:
        normalize_id(raw)
    except InvalidId:
        return False
    return True
