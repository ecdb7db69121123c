from tcp_server.protocol import Joined, Message, UserList


async def test_two_clients_chat(connect):
    a = await connect()
    b = await connect()
    assert (await a.join("alice"))[:2] == [Joined("alice"), UserList(("alice",))]
    await b.join("bob")
    await a.send("002#alice#hello # world")
    assert await b.recv() == Message("alice", "hello # world")
