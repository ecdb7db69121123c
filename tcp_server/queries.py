"""What a session asks of the store (016, 017) and of the accounts (018-020), and the answers it gets.

Each function awaits one request and hands its outcome to the session, which says what to send; the
connection runs them as tasks with reading paused (``ChatConnection._query``), so nothing here
touches the socket.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Union, assert_never

from .protocol.codes import ErrorReason
from .protocol.frames import Error
from .protocol.passwords import Password
from .protocol.scrollback import SEARCH_LIMIT
from .protocol.session import Authenticate, Effect, Enroll, FetchPage, FindText, Rekey, Reply, Session
from .protocol.states import ConnState
from .stats import ServerStats

if TYPE_CHECKING:
    from .accounts.service import Accounts
    from .node import Node
    from .store.db import MessageStore

log = logging.getLogger("tcp_server")

QUERY_TIMEOUT = 10.0
"""Seconds a 016/017 may wait for the store before it is answered 109#unavailable."""
ACCOUNT_TIMEOUT = 90.0
"""Seconds an 018-020 may take in all (the hashing queue, the hash, the database), each step bounded too."""


async def fetch(store: MessageStore, session: Session, room: str, before: int | None, limit: int) -> list[Effect]:
    rows = await store.before(room, before, limit)
    return session.paged(room, [(m.seq, m.ts, m.author, m.text) for m in rows], limit, [m.account for m in rows])


async def find(store: MessageStore, session: Session, room: str, query: str) -> list[Effect]:
    rows = await store.search(room, query, SEARCH_LIMIT)
    return session.found([(m.seq, m.ts, m.author, m.text) for m in rows], [m.account for m in rows])


Query = Union[FetchPage, FindText, Authenticate, Enroll, Rekey]
"""The effects that wait for the store or the accounts."""


def start(node: Node, session: Session, effect: Query) -> tuple[Coroutine[Any, Any, list[Effect]], float]:
    """The work ``effect`` asks for, and how long it may take."""
    if isinstance(effect, (FetchPage, FindText)):
        assert node.store is not None
        if isinstance(effect, FetchPage):
            return fetch(node.store, session, effect.room, effect.before, effect.limit), QUERY_TIMEOUT
        return find(node.store, session, effect.room, effect.query), QUERY_TIMEOUT
    accounts = node.accounts
    assert accounts is not None
    match effect:
        case Authenticate(_, key, password):
            return authenticate(accounts, node.stats, session, key, password), ACCOUNT_TIMEOUT
        case Enroll(name, key, password):
            return enroll(accounts, node.stats, session, name, key, password), ACCOUNT_TIMEOUT
        case Rekey(key, password):
            return rekey(accounts, session, key, password), ACCOUNT_TIMEOUT
        case _:
            assert_never(effect)


def failed(session: Session, exc: BaseException) -> list[Effect]:
    """A query that did not finish: ``109#unavailable`` (a login that did not, and the connection stays)."""
    orig = getattr(exc, "orig", None)  # its kind only: a driver's message may quote a stored row
    log.warning("a store query failed: %s (%s)", type(exc).__name__, type(orig).__name__ if orig else "-")
    detail = "the database cannot be used right now"
    if session.state is ConnState.JOINING:
        return session.login_refused(ErrorReason.UNAVAILABLE, detail)
    return [Reply(Error(ErrorReason.UNAVAILABLE, detail))]


async def authenticate(accounts: Accounts, stats: ServerStats, session: Session, key: str,
                       password: Password) -> list[Effect]:
    from .accounts.service import Outcome

    answer = await accounts.login(key, password)
    if session.state is not ConnState.JOINING:  # gone meanwhile
        return []
    match answer.outcome:
        case Outcome.OK:
            stats.logins += 1
            return session.verified(answer.display)
        case Outcome.BAD:
            stats.login_failures += 1
            log.info("failed login to %s [%s]", key, session.address)
            return session.bad_login()
        case Outcome.LOCKED:
            return session.login_refused(ErrorReason.ACCOUNT_LOCKED, "an operator locked this account")
        case Outcome.BUSY:
            return session.login_refused(ErrorReason.LOGIN_BUSY, "too many logins at once; try again")
        case _:
            return session.login_refused(ErrorReason.UNAVAILABLE, "accounts cannot be used right now")


async def enroll(accounts: Accounts, stats: ServerStats, session: Session, name: str, key: str,
                 password: Password) -> list[Effect]:
    from .accounts.service import Outcome

    answer = await accounts.register(key, name, password)
    match answer.outcome:
        case Outcome.OK:
            stats.registrations += 1
            log.info("%s registered [%s]", name, session.address)
            return session.enrolled()
        case Outcome.EXISTS:
            return session.account_refused(ErrorReason.ALREADY_REGISTERED, f"{name} is registered already")
        case Outcome.BUSY:
            return session.account_refused(ErrorReason.LOGIN_BUSY, "too many password requests; try again")
        case Outcome.WEAK:
            return session.account_refused(ErrorReason.WEAK_PASSWORD, "the password cannot be used")
        case _:
            return session.account_refused(ErrorReason.UNAVAILABLE, "accounts cannot be used right now")


async def rekey(accounts: Accounts, session: Session, key: str, password: Password) -> list[Effect]:
    from .accounts.service import Outcome

    answer = await accounts.change(key, session.name or key, password)
    match answer.outcome:
        case Outcome.OK:
            log.info("%s changed its password [%s]", session.name, session.address)
            return session.rekeyed()
        case Outcome.BUSY:
            return session.account_refused(ErrorReason.LOGIN_BUSY, "too many password requests; try again")
        case Outcome.WEAK:
            return session.account_refused(ErrorReason.WEAK_PASSWORD, "the password cannot be used")
        case Outcome.BAD:
            return session.account_refused(ErrorReason.NEEDS_LOGIN, "this account no longer exists")
        case _:
            return session.account_refused(ErrorReason.UNAVAILABLE, "accounts cannot be used right now")
