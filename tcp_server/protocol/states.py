"""A connection's states and the moves between them, as a table (like h11's ``_state.py``).

The session is the only writer of its state and moves only along this table;
the I/O shell reads the state (is this connection in the room?) but never sets it.
"""

from __future__ import annotations

from enum import Enum, auto


class ConnState(Enum):
    NEW = auto()
    """Connected; nothing decided yet."""
    GATEWAY = auto()
    """A trusted gateway named the real user's address (``000``); it may still choose JSON and join."""
    JOINING = auto()
    """``001`` was accepted as a request; the directory is deciding whether the ID is free."""
    JOINED = auto()
    """In the room."""
    CLOSED = auto()
    """Left (``004``), refused for good, or gone; nothing more is handled."""


class Move(Enum):
    """What happened to the connection."""

    GATEWAY = auto()
    JOIN = auto()
    CLAIMED = auto()
    TAKEN = auto()
    LEAVE = auto()
    CLOSE = auto()


TRANSITIONS: dict[tuple[ConnState, Move], ConnState] = {
    (ConnState.NEW, Move.GATEWAY): ConnState.GATEWAY,
    (ConnState.NEW, Move.JOIN): ConnState.JOINING,
    (ConnState.GATEWAY, Move.JOIN): ConnState.JOINING,
    (ConnState.JOINING, Move.CLAIMED): ConnState.JOINED,
    (ConnState.JOINED, Move.LEAVE): ConnState.CLOSED,
    # A refused claim goes back to where the join came from: the session remembers which.
    (ConnState.NEW, Move.CLOSE): ConnState.CLOSED,
    (ConnState.GATEWAY, Move.CLOSE): ConnState.CLOSED,
    (ConnState.JOINING, Move.CLOSE): ConnState.CLOSED,
    (ConnState.JOINED, Move.CLOSE): ConnState.CLOSED,
}


class BadTransition(RuntimeError):
    """Our bug: the session tried a move the table does not have."""


def next_state(state: ConnState, move: Move, before_join: ConnState = ConnState.NEW) -> ConnState:
    """The state after ``move``; ``before_join`` is where a refused claim returns to."""
    if state is ConnState.JOINING and move is Move.TAKEN:
        return before_join
    try:
        return TRANSITIONS[(state, move)]
    except KeyError:
        raise BadTransition(f"{move.name} in {state.name}") from None
