"""The shared room's events on the Redis channel: one table, one codec.

Every node of a room (and every Lua script in :mod:`.redis_lua`) speaks these
events, so they are spelled once here: one dataclass per kind, its one-letter
tag (what the wire carries, unchanged since before this table) and its fields
in wire order (the dataclass's field order). An event is the JSON array
``[tag, field...]``; trailing fields with a default may be absent (the scripts,
and older nodes, leave them out). :func:`decode` refuses anything else with
:class:`MalformedEvent`, so a node logs and skips a bad event rather than
half-handling it; ``tests/test_redis_events.py`` checks the Lua scripts build
their events in this field order.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, TypeAlias, get_args, get_type_hints


class MalformedEvent(ValueError):
    """An event that is not in the table: unknown tag, wrong arity, or a field of the wrong type."""


@dataclass(frozen=True)
class RoomMessage:
    """A message to everyone but ``exclude`` (its sender's session, or None: everyone)."""

    TAG: ClassVar[str] = "m"
    LOGGED: ClassVar[bool] = True  # in the room log (its ID heads the channel's message)
    LOADED: ClassVar[bool] = True  # a node's load of the room already holds it
    exclude: str | None
    sender: str
    text: str
    ts: int | None = None
    account: int | None = None  # 1: its sender is logged in to an account (absent from older nodes)


@dataclass(frozen=True)
class Whisper:
    """A whisper to the member ``key`` (every node gets it; only the holder's delivers it)."""

    TAG: ClassVar[str] = "w"
    LOGGED: ClassVar[bool] = True
    LOADED: ClassVar[bool] = False
    key: str
    sender: str
    text: str
    ts: int | None = None


@dataclass(frozen=True)
class Notice:
    """An operator's notice to everyone (``chat-admin notice``)."""

    TAG: ClassVar[str] = "n"
    LOGGED: ClassVar[bool] = True
    LOADED: ClassVar[bool] = False
    text: str


@dataclass(frozen=True)
class Joined:
    """``key`` took the ID ``name``; ``node`` claimed it (absent when a node registers its users again)."""

    TAG: ClassVar[str] = "j"
    LOGGED: ClassVar[bool] = True
    LOADED: ClassVar[bool] = True
    key: str
    name: str
    node: str | None = None
    account: int | None = None  # 1: an account's join (absent from older nodes and the scripts)


@dataclass(frozen=True)
class Left:
    """``key`` let the ID ``name`` go (a leave, a reaped or expired session)."""

    TAG: ClassVar[str] = "l"
    LOGGED: ClassVar[bool] = True
    LOADED: ClassVar[bool] = True
    key: str
    name: str


@dataclass(frozen=True)
class Taken:
    """The session ``key`` was resumed on ``node``; ``ref`` is the taker's (see ``Subscriber.entered``)."""

    TAG: ClassVar[str] = "x"
    LOGGED: ClassVar[bool] = False
    LOADED: ClassVar[bool] = False
    key: str
    node: str
    ref: str | None = None


@dataclass(frozen=True)
class BansChanged:
    """The ``P bans`` hash changed: every node reloads it."""

    TAG: ClassVar[str] = "b"
    LOGGED: ClassVar[bool] = False
    LOADED: ClassVar[bool] = False


@dataclass(frozen=True)
class MutesChanged:
    """The ``P mutes`` hash changed: every node reloads it."""

    TAG: ClassVar[str] = "u"
    LOGGED: ClassVar[bool] = False
    LOADED: ClassVar[bool] = False


@dataclass(frozen=True)
class Kick:
    """An operator kicked ``key``: the node holding it removes it, telling it ``reason``."""

    TAG: ClassVar[str] = "k"
    LOGGED: ClassVar[bool] = False
    LOADED: ClassVar[bool] = False
    key: str
    reason: str


@dataclass(frozen=True)
class ForgetAuthor:
    """An operator erased ``key``'s stored messages: every node's recent window forgets them too."""

    TAG: ClassVar[str] = "h"
    LOGGED: ClassVar[bool] = False
    LOADED: ClassVar[bool] = False
    key: str


@dataclass(frozen=True)
class KeptFrame:
    """A frame kept for a parked session (``P missed:KEY`` only, never on the channel): its protocol line."""

    TAG: ClassVar[str] = "f"
    LOGGED: ClassVar[bool] = False
    LOADED: ClassVar[bool] = False
    line: str


@dataclass(frozen=True)
class AccountChanged:
    """The ``P accounts`` hash changed: ``key`` was registered as ``name``, or deleted (``name`` None).

    Every node's registry follows it at once (``001`` refuses a registered ID on every node)."""

    TAG: ClassVar[str] = "a"
    LOGGED: ClassVar[bool] = False
    LOADED: ClassVar[bool] = False
    key: str
    name: str | None
    account: int | None = None  # 1: its online holder registered it (019): every node tells its members (132)


RoomEvent: TypeAlias = (
    RoomMessage | Whisper | Notice | Joined | Left | Taken | BansChanged | MutesChanged | Kick | ForgetAuthor
    | KeptFrame | AccountChanged
)
"""Every event kind; a ``match`` over it ends in ``assert_never`` so mypy names a kind left unhandled."""

EVENTS: tuple[type[RoomEvent], ...] = (
    RoomMessage, Whisper, Notice, Joined, Left, Taken, BansChanged, MutesChanged, Kick, ForgetAuthor, KeptFrame,
    AccountChanged,
)
BY_TAG: dict[str, type[RoomEvent]] = {cls.TAG: cls for cls in EVENTS}
LOGGED_TAGS = frozenset(cls.TAG for cls in EVENTS if cls.LOGGED)
"""Events that have an entry in the room log (their IDs head the channel's message, in order)."""
LOADED_TAGS = frozenset(cls.TAG for cls in EVENTS if cls.LOADED)
"""Logged events whose effect a node's load of the room already holds (the others are delivered anyway)."""


def field_names(cls: type[RoomEvent]) -> tuple[str, ...]:
    """The event's fields in wire order (after the tag)."""
    return tuple(f.name for f in fields(cls))


def arity(cls: type[RoomEvent]) -> tuple[int, int]:
    """How many fields (after the tag) an event of ``cls`` may have: the required ones, up to all."""
    all_fields = fields(cls)
    required = sum(1 for f in all_fields if f.default is MISSING)
    return required, len(all_fields)


def to_list(event: RoomEvent) -> list[Any]:
    """``[tag, field...]``, every field written but a trailing ``account`` that is None: a guest's event
    keeps the spelling older nodes know (other absent trailing fields are only for decoding)."""
    values = [getattr(event, name) for name in field_names(type(event))]
    if field_names(type(event))[-1:] == ("account",) and values[-1] is None:
        values.pop()
    return [event.TAG, *values]


def encode(event: RoomEvent) -> str:
    """The event as the channel, the room log and the history streams carry it."""
    return json.dumps(to_list(event), ensure_ascii=False)


def from_list(raw: Any) -> RoomEvent:
    """An event from its decoded JSON array; :class:`MalformedEvent` when it is not one of the table's."""
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise MalformedEvent(f"not an event: {raw!r}"[:200])
    cls = BY_TAG.get(raw[0])
    if cls is None:
        raise MalformedEvent(f"unknown room event {raw[0]!r}")
    least, most = arity(cls)
    values = raw[1:]
    if not least <= len(values) <= most:
        raise MalformedEvent(f"room event {raw[0]!r} with {len(values)} fields (wants {least}..{most})")
    for at, (name, value) in enumerate(zip(field_names(cls), values, strict=False)):
        if not _fits(cls, at, value):
            raise MalformedEvent(f"room event {raw[0]!r}: field {name} is {value!r}"[:200])
    return cls(*values)


def decode(text: str) -> RoomEvent:
    """One event from its JSON text (:class:`MalformedEvent` for bad JSON too)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise MalformedEvent(f"not JSON: {text[:200]!r}") from exc
    return from_list(raw)


def _spec(cls: type[RoomEvent]) -> tuple[tuple[bool, bool], ...]:
    """Per field, from its annotation: may it be null, is it a number (else a string)."""
    hints = get_type_hints(cls)
    out = []
    for name in field_names(cls):
        allowed = get_args(hints[name]) or (hints[name],)
        out.append((type(None) in allowed, int in allowed))
    return tuple(out)


_SPECS = {cls: _spec(cls) for cls in EVENTS}


def _fits(cls: type[RoomEvent], at: int, value: Any) -> bool:
    nullable, number = _SPECS[cls][at]
    if value is None:
        return nullable
    if number:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def publish_kind(event: RoomMessage | Whisper | Notice) -> str:
    """How the ``PUBLISH`` script (:mod:`.redis_lua`) counts an event: ``m``, ``m EXCLUDE``, ``n`` or ``w KEY``."""
    if isinstance(event, RoomMessage):
        return "m" if event.exclude is None else f"m {event.exclude}"
    if isinstance(event, Whisper):
        return f"w {event.key}"
    return "n"
