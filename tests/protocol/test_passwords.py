"""The password rule (tcp_server/protocol/passwords.py): PRECIS OpaqueString, length, not the ID, not common."""

from __future__ import annotations

import unicodedata

import pytest

from tcp_server.protocol.ids import id_key
from tcp_server.protocol.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    InvalidPassword,
    Password,
    PasswordRule,
    WeakPassword,
    check_password,
    common_passwords,
    prepare,
    prepare_new_password,
    prepare_password,
)

ID = "Alice"

# (password, why it is here): each must be accepted for the ID "Alice"
ACCEPTED = [
    ("correct horse battery", "spaces inside are allowed by OpaqueString"),
    ("  leading and trailing  ", "so are spaces at either end (nothing is trimmed)"),
    ("x" * MIN_PASSWORD_LENGTH, "exactly the minimum"),
    ("y" * MAX_PASSWORD_LENGTH, "exactly the maximum"),
    ("우리집강아지이름은", "Hangul, 9 syllables"),
    ("비밀 번호 이야기", "Hangul with spaces, 9 characters"),
    ("한글と漢字とLatin", "scripts mixed freely (unlike IDs)"),
    ("🔑🔑🔑🔑🔑🔑🔑🔑", "emoji are allowed in passwords"),
    ("Ｐａｓｓｗｏｒｄ９", "full-width forms are kept (OpaqueString does no width mapping), so not the common one"),
    ("Alice2024!", "the ID with more is not the ID"),
    ("e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301", "16 code points NFD, 8 after NFC"),
    ("\u1100\u1161\u11a8" * 8, "conjoining jamo: 24 code points, 8 syllables after NFC"),
    ("p@ss w0rd is long enough", "punctuation and symbols"),
]

# (password, the rule it must break)
REFUSED = [
    ("", PasswordRule.EMPTY),
    ("x" * (MIN_PASSWORD_LENGTH - 1), PasswordRule.TOO_SHORT),
    ("우리집강아지", PasswordRule.TOO_SHORT),  # 6 Hangul syllables
    ("e\u0301" * 7, PasswordRule.TOO_SHORT),  # 14 code points typed, 7 after NFC
    ("y" * (MAX_PASSWORD_LENGTH + 1), PasswordRule.TOO_LONG),
    ("z" * 10_000, PasswordRule.TOO_LONG),  # 10 KB: refused before PRECIS looks at it
    ("한" * 10_000, PasswordRule.TOO_LONG),  # 30 KB of UTF-8
    ("long enough\x00", PasswordRule.CONTROL),
    ("long\tenough", PasswordRule.CONTROL),
    ("long enough\n", PasswordRule.CONTROL),
    ("long enough\x7f", PasswordRule.CONTROL),
    ("long\u0085enough", PasswordRule.CONTROL),  # NEL, a C1 control
    ("long\u200denough", PasswordRule.INVISIBLE),  # ZWJ outside its context
    ("long\u202eenough", PasswordRule.INVISIBLE),  # right-to-left override
    ("long\U000e0001enough", PasswordRule.INVISIBLE),  # language tag
    ("long\u115fenough", PasswordRule.NOT_ALLOWED),  # Hangul choseong filler
    ("long\u0378enough", PasswordRule.NOT_ALLOWED),  # unassigned
    ("long\ud800enough", PasswordRule.NOT_ALLOWED),  # a lone surrogate (a str from surrogateescape)
    ("password123", PasswordRule.COMMON),
    ("PASSWORD123", PasswordRule.COMMON),  # compared case-insensitively
    ("Password1", PasswordRule.COMMON),
    ("12345678", PasswordRule.COMMON),
    ("qwertyuiop", PasswordRule.COMMON),
    ("iloveyou", PasswordRule.COMMON),
    ("1q2w3e4r5t", PasswordRule.COMMON),
    ("baseball", PasswordRule.COMMON),
]


@pytest.mark.parametrize(("password", "why"), ACCEPTED)
def test_accepted(password: str, why: str) -> None:
    assert check_password(ID, password) is None, why


@pytest.mark.parametrize(("password", "rule"), REFUSED)
def test_refused(password: str, rule: PasswordRule) -> None:
    weak = check_password(ID, password)
    assert weak is not None
    assert weak.reason is rule
    assert weak.text and "password" in weak.text


@pytest.mark.parametrize(("user_id", "password"), [
    ("Alice1234", "alice1234"),  # the ID in another case
    ("Alice1234", "ALICE1234"),
    ("alice1234", "a1ice1234"),  # the same ID key (UTS #39 skeleton: 1 looks like l)
    ("김철수와영희의집", "김철수와영희의집"),  # a Hangul ID as the password
    ("Straße123", "STRASSE123"),  # case folding, as IDs compare
])
def test_the_id_itself_is_refused(user_id: str, password: str) -> None:
    weak = check_password(user_id, password)
    assert weak is not None and weak.reason is PasswordRule.SAME_AS_ID


def test_comparing_with_the_id_leaves_no_password_in_the_id_cache() -> None:
    id_key.cache_clear()
    check_password("Alice1234", "a password nobody knows")
    assert id_key.cache_info().currsize <= 1  # the ID's key at most, never the password's


def test_preparation_is_nfc_and_maps_spaces() -> None:
    nfd = unicodedata.normalize("NFD", "비밀번호입니다요")
    assert nfd != "비밀번호입니다요"
    assert prepare_password(nfd) == "비밀번호입니다요"  # NFD and NFC keyboards log in alike
    assert prepare_password("a\u3000b\u00a0c d") == "a b c d"  # every space is U+0020
    assert prepare_password("e\u0301") == "\u00e9"


def test_preparation_refuses_what_cannot_be_prepared() -> None:
    with pytest.raises(InvalidPassword) as caught:
        prepare_password("bad\x00")
    assert caught.value.weak.reason is PasswordRule.CONTROL


def test_login_preparation_does_not_apply_the_new_password_rules() -> None:
    assert prepare_password("short") == "short"  # an old password is checked against its hash only
    assert prepare_password("password123") == "password123"


def test_common_list_comes_from_the_package() -> None:
    common = common_passwords()
    assert len(common) > 10_000
    assert all(len(p) >= MIN_PASSWORD_LENGTH and p == p.casefold() for p in common)
    assert {"password", "12345678", "sunshine", "princess"} <= common


def test_results_never_hold_the_password() -> None:
    secret = "a very secret passphrase\x00"
    weak = check_password(ID, secret)
    assert isinstance(weak, WeakPassword)
    for shown in (repr(weak), str(weak), weak.text):
        assert "secret" not in shown and "passphrase" not in shown
    with pytest.raises(InvalidPassword) as caught:
        prepare_password(secret)
    assert "secret" not in repr(caught.value) and "secret" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # not PRECIS's error with it


def test_password_wrapper_hides_its_value() -> None:
    wrapped = Password("hunter2 is my password")
    for shown in (repr(wrapped), str(wrapped), f"{wrapped}", f"{wrapped!r}", repr([wrapped]), repr({"p": wrapped})):
        assert "hunter2" not in shown
        assert "hidden" in shown
    assert wrapped.reveal() == "hunter2 is my password"
    assert wrapped == Password("hunter2 is my password")
    assert wrapped != Password("something else")
    with pytest.raises(TypeError):
        hash(wrapped)


def test_a_new_password_is_checked_and_prepared_in_one_call() -> None:
    nfd = unicodedata.normalize("NFD", "새 비밀번호입니다")
    assert prepare_new_password(ID, nfd) == "새 비밀번호입니다"
    for password, rule in [("alice", PasswordRule.TOO_SHORT), ("SUNSHINE", PasswordRule.COMMON),
                           ("Alice", PasswordRule.TOO_SHORT), ("x\x00" * 8, PasswordRule.CONTROL)]:
        with pytest.raises(InvalidPassword) as caught:
            prepare_new_password(ID, password)
        assert caught.value.weak.reason is rule, password
    with pytest.raises(InvalidPassword) as caught:
        prepare_new_password("Alice2024", "ALICE2024")
    assert caught.value.weak.reason is PasswordRule.SAME_AS_ID


def test_prepare_loads_everything_at_start() -> None:
    common_passwords.cache_clear()
    prepare()
    assert common_passwords.cache_info().currsize == 1
