"""Accounts, and whether a stored message's author was logged in.

``accounts``: one row per registered ID, keyed by the ID's key (``id_key``: every spelling with
the same key is the same account); ``display`` is the ID as registered; ``hash`` an argon2id hash
(PHC string, parameters included, so a change of parameters is seen at login and rehashed);
``locked``: an operator's lock (``chat-admin account lock``). ``messages.account``: the author had
logged in with ``018`` (or registered with ``019``) when the message was sent.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("display", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("locked", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # A plain ALTER TABLE ADD COLUMN (no batch copy on SQLite: that would drop 0002's FTS triggers).
    op.add_column("messages", sa.Column("account", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("messages", "account")  # (SQLite 3.35+: ALTER TABLE DROP COLUMN)
    op.drop_table("accounts")
