"""The account frames in the pure session: what each case answers, and which effect asks the shell."""

from __future__ import annotations

import pytest

from tcp_server.protocol.account_rules import AccountRules, JoinedBy
from tcp_server.protocol.codes import ErrorReason
from tcp_server.protocol.frames import (
    AccountList,
    Broadcast,
    ChangePassword,
    Error,
    IdTaken,
    Join,
    Joined,
    Login,
    Message,
    PasswordChanged,
    Register,
    Registered,
    ResumeSession,
    UserJoined,
    UserList,
)
from tcp_server.protocol.guessing import GuessCounter, GuessLimits
from tcp_server.protocol.ids import id_key
from tcp_server.protocol.moderation import Moderation
from tcp_server.protocol.passwords import Password
from tcp_server.protocol.roster import Roster
from tcp_server.protocol.session import (
    LEGACY_PORT,
    LINE_PORT,
    Authenticate,
    Claim,
    Enroll,
    Enter,
    LockedOut,
    Publish,
    Reattach,
    Rekey,
    Reply,
    Session,
)
from tcp_server.protocol.states import ConnState

GOOD = "violet-Otter-trombone-41"


class Keys:
    def __init__(self, *keys: str) -> None:
        self.keys = {id_key(k) for k in keys}

    def registered(self, key: str) -> bool:
        return key in self.keys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(*registered: str, protected: bool = True, legacy: bool = False, guests: bool = True,
         registration_open: bool = True, moderation: Moderation | None = None) -> tuple[Session, AccountRules]:
    rules = AccountRules(Keys(*registered), GuessCounter(Clock(), GuessLimits()), registration_open, guests)
    return Session(Roster(), "198.51.100.7", None, moderation, None, rules, protected,
                   LEGACY_PORT if legacy else LINE_PORT), rules


def error(effects: list[object]) -> tuple[ErrorReason, str]:
    [reply] = effects
    assert isinstance(reply, Reply) and isinstance(reply.frame, Error)
    return reply.frame.reason, reply.frame.text


def joined_guest(name: str = "bob", **kw: object) -> Session:
    s, _ = make(**kw)  # type: ignore[arg-type]
    assert s.handle(Join(name)) == [Claim(name, id_key(name))]
    s.claimed((name,))
    return s


# ------------------------------------------------------------------ 001 and a registered ID

@pytest.mark.parametrize("spelling", ["alice", "Alice", "ALICE", "a1ice"])
def test_001_for_a_registered_id_any_spelling(spelling: str) -> None:
    s, _ = make("alice")
    reason, detail = error(s.handle(Join(spelling)))
    assert reason is ErrorReason.REGISTERED and "018" in detail
    assert s.state is ConnState.NEW  # the connection stays and may log in or pick another ID


def test_001_for_a_registered_id_on_the_legacy_port_is_101() -> None:
    s, _ = make("alice", legacy=True)
    assert s.handle(Join("alice")) == [Reply(IdTaken())]


@pytest.mark.parametrize("legacy", [False, True])
def test_a_claim_refused_as_registered_elsewhere_is_the_local_refusal(legacy: bool) -> None:
    """The shared directory knew the key as an account's (registered on another node): the same answer."""
    s, _ = make(legacy=legacy)
    assert s.handle(Join("Carol")) == [Claim("Carol", id_key("Carol"))]
    effects = s.registered_elsewhere()
    if legacy:
        assert effects == [Reply(IdTaken())]
    else:
        reason, detail = error(effects)
        assert reason is ErrorReason.REGISTERED and "Carol" in detail and "018" in detail
    assert s.state is ConnState.NEW and s.name is None
    assert s.handle(Join("dave")) == [Claim("dave", id_key("dave"))]  # and may pick another ID


def test_guests_no_refuses_001() -> None:
    s, _ = make(guests=False)
    assert error(s.handle(Join("bob")))[0] is ErrorReason.NEEDS_LOGIN


def test_accounts_off_refuse_018_to_020_as_unavailable() -> None:
    s = Session(Roster(), "192.0.2.1")
    assert error(s.handle(Login("alice", Password(GOOD))))[0] is ErrorReason.UNAVAILABLE
    s.handle(Join("bob"))
    s.claimed(("bob",))
    assert error(s.handle(Register(Password(GOOD))))[0] is ErrorReason.UNAVAILABLE
    assert error(s.handle(ChangePassword(Password(GOOD))))[0] is ErrorReason.UNAVAILABLE


# ------------------------------------------------------------------ 018

def test_login_asks_the_shell_then_enters_as_registered() -> None:
    s, _ = make("alice")
    [auth] = s.handle(Login("ALICE", Password(GOOD)))
    assert isinstance(auth, Authenticate) and auth.key == id_key("alice") and auth.password == Password(GOOD)
    assert s.state is ConnState.JOINING
    assert s.verified("Alice") == [Enter("Alice", id_key("alice"))]
    effects = s.claimed(("bob", "Alice"))
    assert effects[0] == Publish(UserJoined("Alice", True), id_key("alice"))
    assert isinstance(effects[0], Publish) and isinstance(effects[0].frame, UserJoined) and effects[0].frame.account
    assert effects[1:4] == [Reply(Joined("Alice")), Reply(UserList(("bob", "Alice"))),
                            Reply(AccountList(("Alice",)))]
    assert s.joined_by is JoinedBy.LOGIN and s.account
    [publish] = s.handle(Broadcast("Alice", "hi"))
    assert isinstance(publish, Publish) and isinstance(publish.frame, Message) and publish.frame.account


def test_takeover_is_silent() -> None:
    s, _ = make("alice")
    s.handle(Login("alice", Password(GOOD)))
    s.verified("Alice")
    effects = s.took_over(("Alice", "bob"))
    assert not any(isinstance(e, Publish) for e in effects)
    assert effects[0] == Reply(Joined("Alice")) and s.joined


@pytest.mark.parametrize(("protected", "raw", "reason"), [
    (False, "alice", ErrorReason.NEEDS_TLS),
    (True, "", ErrorReason.BAD_ID),
    (True, "a\x1bb", ErrorReason.BAD_ID),
    (True, "x" * 300, ErrorReason.BAD_ID),
])
def test_login_refusals_before_hashing(protected: bool, raw: str, reason: ErrorReason) -> None:
    s, _ = make("alice", protected=protected)
    got, detail = error(s.handle(Login(raw, Password(GOOD))))
    assert got is reason and GOOD not in detail
    assert s.state is ConnState.NEW


def test_bad_login_counts_and_locks_out_at_once() -> None:
    s, rules = make("alice")
    lockouts = []
    for _ in range(10):
        s.handle(Login("alice", Password("wrong-password")))
        effects = s.bad_login()
        lockouts += [e for e in effects if isinstance(e, LockedOut)]
        assert effects[-1] == Reply(Error(ErrorReason.BAD_LOGIN, "wrong ID or password"))
        assert s.state is ConnState.NEW
    assert len(lockouts) == 1 and lockouts[0].lockout.seconds == 60
    reason, detail = error(s.handle(Login("alice", Password(GOOD))))  # the right one too, while it lasts
    assert reason is ErrorReason.TOO_MANY_ATTEMPTS and detail == "60"


def test_login_refused_lets_the_connection_try_again() -> None:
    s, _ = make("alice")
    s.handle(Login("alice", Password(GOOD)))
    assert error(s.login_refused(ErrorReason.LOGIN_BUSY, "busy"))[0] is ErrorReason.LOGIN_BUSY
    assert s.state is ConnState.NEW and s.name is None
    assert isinstance(s.handle(Login("alice", Password(GOOD)))[0], Authenticate)


def test_login_of_a_banned_id() -> None:
    mod = Moderation(lambda: 0.0)
    mod.ban("alice", "spam")
    s, _ = make("alice", moderation=mod)
    assert error(s.handle(Login("Alice", Password(GOOD))))[0] is ErrorReason.BANNED


# ------------------------------------------------------------------ 019

def test_register_from_a_guest() -> None:
    s = joined_guest("bob")
    [enroll] = s.handle(Register(Password(GOOD)))
    assert isinstance(enroll, Enroll) and enroll.key == id_key("bob")
    assert s.enrolled() == [Reply(Registered("bob"))]
    assert s.account and s.joined_by is JoinedBy.LOGIN
    assert error(s.handle(Register(Password(GOOD))))[0] is ErrorReason.ALREADY_REGISTERED  # 019 twice
    assert isinstance(s.handle(ChangePassword(Password(GOOD + "x")))[0], Rekey)  # it set it: it may change it


@pytest.mark.parametrize(("password", "rule"), [
    ("", "empty"), ("s3cr.t", "too-short"), ("x" * 257, "too-long"), ("bad\x00password", "control"),
    ("bob", "too-short"), ("password123", "common"), ("bobbobbob-Zq", None),
])
def test_register_weak_passwords(password: str, rule: str | None) -> None:
    s = joined_guest("bob")
    effects = s.handle(Register(Password(password)))
    if rule is None:
        assert isinstance(effects[0], Enroll)
        return
    reason, detail = error(effects)
    assert reason is ErrorReason.WEAK_PASSWORD and detail.startswith(rule + ": ")
    assert password not in detail or not password


def test_register_same_as_id() -> None:
    s = joined_guest("longername")
    reason, detail = error(s.handle(Register(Password("LongerName"))))
    assert reason is ErrorReason.WEAK_PASSWORD and detail.startswith("same-as-id")


def test_register_refusals() -> None:
    s, _ = make()
    assert error(s.handle(Register(Password(GOOD))))[0] is ErrorReason.NOT_JOINED  # before a join
    closed = joined_guest("bob", registration_open=False)
    assert error(closed.handle(Register(Password(GOOD))))[0] is ErrorReason.REGISTRATION_CLOSED
    plain = joined_guest("bob", protected=False)
    assert error(plain.handle(Register(Password(GOOD))))[0] is ErrorReason.NEEDS_TLS
    resumed, _ = make()
    assert resumed.handle(ResumeSession("tok")) == [Reattach("tok", None)]
    resumed.resumed("bob", ("bob",), [])
    assert error(resumed.handle(Register(Password(GOOD))))[0] is ErrorReason.NEEDS_LOGIN


def test_register_an_id_registered_meanwhile() -> None:
    s, rules = make()
    s.handle(Join("bob"))
    s.claimed(("bob",))
    rules.registry.keys.add(id_key("bob"))  # type: ignore[attr-defined]
    assert error(s.handle(Register(Password(GOOD))))[0] is ErrorReason.ALREADY_REGISTERED


# ------------------------------------------------------------------ 020

def test_change_password_only_after_018() -> None:
    guest = joined_guest("bob")
    assert error(guest.handle(ChangePassword(Password(GOOD))))[0] is ErrorReason.NEEDS_LOGIN
    resumed, _ = make("alice")
    resumed.handle(ResumeSession("tok"))
    resumed.resumed("Alice", ("Alice",), [])
    assert resumed.account  # its messages are an account's
    assert error(resumed.handle(ChangePassword(Password(GOOD))))[0] is ErrorReason.NEEDS_LOGIN
    s, _ = make("alice")
    s.handle(Login("alice", Password(GOOD)))
    s.verified("Alice")
    s.claimed(("Alice",))
    reason, _ = error(s.handle(ChangePassword(Password("alice"))))
    assert reason is ErrorReason.WEAK_PASSWORD
    [rekey] = s.handle(ChangePassword(Password("another # long passphrase")))
    assert rekey == Rekey(id_key("alice"), Password("another # long passphrase"))
    assert s.rekeyed() == [Reply(PasswordChanged())]


def test_effect_reprs_hide_passwords() -> None:
    s, _ = make("alice")
    effects = s.handle(Login("alice", Password(GOOD)))
    assert GOOD not in repr(effects)
