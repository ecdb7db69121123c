"""Accounts with --redis, the room's load and the periodic sync (real redis-server, real SQLite/PostgreSQL):

- a node started after an account logged in knows that member is an account (its ``107``'s ``132``);
- a node's periodic reload of the accounts table, read before a ``chat-admin account delete``, does not
  bring the deleted key back: not into its own registry, not into Redis's ``P accounts`` (a tombstone).
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tcp_server.accounts.registry import AccountRegistry
from tcp_server.protocol import UserList
from tcp_server.protocol.frames import AccountList, Registered
from tcp_server.protocol.ids import id_key
from tcp_server.room.redis_settings import ACCOUNT_TOMBSTONE_MS
from tcp_server.store import parse_database
from tcp_server.store.accounts import AccountStore
from tcp_server.store.db import MessageStore
from tests.helpers import TIMEOUT
from tests.redis_fixtures import Connect, MakeNode, Node

PASSWORD = "Redis # account-77"


async def test_a_node_started_after_a_login_marks_that_member_an_account(
    make_node: MakeNode, node_clients: Connect, postgres_url: str,
) -> None:
    a = await make_node(database=postgres_url)
    guest = await node_clients(a)
    await guest.join("Hana")
    await guest.send(f"019#{PASSWORD}")
    await guest.recv_until(Registered)
    await guest.send("004#Hana")
    await guest.closed()
    owner = await node_clients(a)
    await owner.send(f"018#hana#{PASSWORD}")
    assert (await owner.recv_until(AccountList))[-1] == AccountList(("Hana",))
    plain = await node_clients(a)
    await plain.join("Ilse")  # a guest online too: not in the 132
    b = await make_node(database=postgres_url)  # started after both joined: its room comes from the load
    newcomer = await node_clients(b)
    frames = await newcomer.join("Jae")
    users = frames[-1]
    assert isinstance(users, UserList) and {"Hana", "Ilse", "Jae"} <= set(users.ids)
    await newcomer.send("006#done")
    after = await newcomer.recv_until(lambda f: getattr(f, "token", None) == "done")
    assert [f for f in after if isinstance(f, AccountList)] == [AccountList(("Hana",))]
    assert b.room.bus.marked == {id_key("Hana")}


async def eventually(check: Callable[[], Awaitable[object]], what: str) -> None:
    """Wait until ``check()`` (a Redis read) answers something true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not await asyncio.wait_for(check(), TIMEOUT):
        if loop.time() > deadline:
            raise TimeoutError(f"waited too long for {what}")
        await asyncio.sleep(0.02)  # polling Redis for a state (there is no event to wait on)


async def settle(node: Node, key: str, value: str) -> None:
    """Wait until ``P accounts`` holds ``key`` as ``value``: the node's writer did what was queued before."""
    link = node.room.link

    async def holds() -> bool:
        return bool(await link.client.hget(link.keys.accounts, key) == value)

    await eventually(holds, f"{key} in P accounts")


async def test_a_sync_read_before_a_deletion_does_not_add_the_key_back(make_node: MakeNode) -> None:
    a = await make_node()
    b = await make_node()
    link, other = a.room.link, b.room.link
    k = link.keys
    link.save_account("gone", "Gone")
    await settle(a, "gone", "Gone")
    other.save_account("gone", None)  # a deletion on node b ...
    await eventually(lambda: link.client.hexists(k.accounts_gone, "gone"), "the tombstone")
    link.sync_accounts({"gone": "Gone", "fresh": "Fresh"})  # ... then node a's reload, read before it
    await settle(a, "fresh", "Fresh")  # (the sync ran)
    assert await link.client.hget(k.accounts, "gone") is None
    # registered again: the registration clears the tombstone, and a later sync keeps it
    other.save_account("gone", "Gone")
    await settle(b, "gone", "Gone")
    assert not await link.client.hexists(k.accounts_gone, "gone")
    link.save_account("fresh", None)
    await eventually(lambda: link.client.hexists(k.accounts_gone, "fresh"), "the second tombstone")
    link.sync_accounts({"gone": "Gone", "fresh": "Fresh", "third": "Third"})
    await settle(a, "third", "Third")
    assert await link.client.hget(k.accounts, "gone") == "Gone"
    assert await link.client.hget(k.accounts, "fresh") is None
    # a tombstone older than the window is dropped by the next sync, and the key may be added again
    await link.client.hset(k.accounts_gone, "old", 1)  # deleted in 1970
    link.sync_accounts({"old": "Old"})
    await settle(a, "old", "Old")
    assert not await link.client.hexists(k.accounts_gone, "old")
    assert await link.client.hexists(k.accounts_gone, "fresh")  # (young: kept)
    assert ACCOUNT_TOMBSTONE_MS >= 60_000


class PausedStore(AccountStore):
    """The real store; :meth:`keys` reads the table, then waits for the test before answering: a reload
    whose read comes before a change made meanwhile."""

    def __init__(self, store: MessageStore) -> None:
        super().__init__(store.engine)
        self.read = asyncio.Event()
        self.go_on = asyncio.Event()

    async def keys(self) -> dict[str, str]:
        found = await super().keys()
        self.read.set()
        await asyncio.wait_for(self.go_on.wait(), TIMEOUT)
        return found


@pytest.fixture
async def sqlite_store(tmp_path: pathlib.Path) -> AsyncIterator[MessageStore]:
    opened = await MessageStore.open(parse_database(f"sqlite:///{tmp_path / 'chat.db'}"))
    yield opened
    await opened.close()


async def test_a_reload_keeps_the_changes_made_while_it_read(sqlite_store: MessageStore) -> None:
    store = PausedStore(sqlite_store)
    await store.create("old", "Old", "h")
    await store.create("kept", "Kept", "h")
    registry = AccountRegistry(store)
    shared: list[tuple[str, str | None]] = []
    synced: list[dict[str, str]] = []
    registry.shared = lambda key, name, holder: shared.append((key, name))
    registry.synced = synced.append
    store.go_on.set()
    await registry.refresh()
    assert registry.snapshot() == {"old": "Old", "kept": "Kept"}
    store.go_on.clear()
    store.read.clear()
    reload = asyncio.ensure_future(registry.refresh())
    await asyncio.wait_for(store.read.wait(), TIMEOUT)  # the table is read: "old" is still in it
    await store.delete("old")
    registry.remove("old")  # chat-admin account delete, meanwhile
    registry.learn("new", "New")  # another node's registration, heard from Redis meanwhile
    store.go_on.set()
    await asyncio.wait_for(reload, TIMEOUT)
    assert registry.snapshot() == {"kept": "Kept", "new": "New"}
    assert synced[-1] == {"kept": "Kept", "new": "New"}  # nor shared with Redis
    assert shared == [("old", None)]
    store.go_on.set()
    await registry.refresh()  # the next reload: the table's word again
    assert registry.snapshot() == {"kept": "Kept"}
