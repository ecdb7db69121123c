"""The stored history's tables (SQLAlchemy Core): what the migrations create, and what the queries name.

One row per message to a room (never a whisper). ``seq`` is the order the room delivered,
per room, assigned by the node that delivered it; ``ts`` is informative. ``folded`` is the
text in the form searches compare (NFC, case folded): folding once on write keeps search a
plain literal substring test on both databases.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# SQLite's rowid alias must be INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
_ID = BigInteger().with_variant(Integer(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("room", String(200), nullable=False),  # the room's key (the lobby: "lobby")
    Column("seq", BigInteger, nullable=False),  # the room's delivery order
    Column("ts", BigInteger, nullable=False),  # ms since the epoch, UTC
    Column("author", Text, nullable=False),  # the ID as shown
    Column("author_key", Text, nullable=False),  # the ID's key (chat-admin history delete --author)
    Column("body", Text, nullable=False),
    Column("folded", Text, nullable=False),  # NFC + casefold of body, for search
    Column("account", Boolean, nullable=False, server_default=false()),  # its author had logged in (0003)
    UniqueConstraint("room", "seq", name="uq_messages_room_seq"),
    Index("ix_messages_author_key", "author_key"),
    Index("ix_messages_room_ts", "room", "ts"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("key", Text, primary_key=True),  # the ID's key (id_key): every spelling of it is this account
    Column("display", Text, nullable=False),  # the ID as registered
    Column("hash", Text, nullable=False),  # argon2id, PHC string (its parameters included)
    Column("created", BigInteger, nullable=False),  # ms since the epoch, UTC
    Column("updated", BigInteger, nullable=False),
    Column("locked", Boolean, nullable=False, server_default=false()),  # an operator's lock
)
