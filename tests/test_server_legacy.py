"""The seed's original client, unmodified, on the legacy port, in one room with line users."""

from __future__ import annotations

import asyncio
import pathlib
import sys

from tcp_server import ChatServer
from tcp_server.protocol import Message, UserJoined, UserLeft, WhisperMessage
from tests.clients import Receiver
from tests.helpers import TIMEOUT, LineClient

SEED_CLIENT = pathlib.Path(__file__).with_name("seed_client.py")


class SeedClient(Receiver[str]):
    """The seed's client as a subprocess: type lines, read what it prints."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__()
        self.proc = proc
        self.output = ""  # printed, not yet matched by expect()

    @classmethod
    async def start(cls) -> SeedClient:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-u", str(SEED_CLIENT),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        return cls(proc)

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await asyncio.wait_for(self.proc.stdin.drain(), TIMEOUT)

    async def read_items(self, timeout: float) -> list[str]:
        assert self.proc.stdout is not None
        chunk = await asyncio.wait_for(self.proc.stdout.read(4096), timeout)
        if not chunk:
            raise ConnectionError(f"seed client ended; output: {self.output!r}")
        return [chunk.decode()]

    async def expect(self, needle: str) -> str:
        """Read printed output until ``needle`` shows up; the text up to it."""
        while needle not in self.output:
            self.output += await self.recv()
        head, _, self.output = self.output.partition(needle)
        return head + needle

    async def stop(self) -> None:
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), TIMEOUT)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def test_seed_client_chats_with_a_line_client(server: ChatServer) -> None:
    assert server.legacy_port is not None
    line = await LineClient.connect("127.0.0.1", server.port)
    seed = await SeedClient.start()
    try:
        await line.join("bob")
        await seed.type("127.0.0.1")
        await seed.type(str(server.legacy_port))
        await seed.expect("사용자 ID : ")
        await seed.type("BOB")  # taken (case-insensitively): 101, the seed asks again
        await seed.expect("중복된 ID입니다. ID를 다시 입력해주세요.")
        await seed.type("bad id")  # invalid: also 101, so the seed client asks again
        await seed.expect("중복된 ID입니다. ID를 다시 입력해주세요.")
        await seed.type("철수")
        await seed.expect("채팅방에 입장하였습니다.")
        await seed.expect("=== 접속자 리스트 ===\nbob\n철수\n=====================")
        assert await line.recv() == UserJoined("철수")

        await seed.type("/b 안녕 # 하세요")  # the seed's server would cut this at '#'
        assert await line.recv() == Message("철수", "안녕 # 하세요 ")
        await line.send("002#bob#반가워요 # 철수님")
        await seed.expect("bob : 반가워요 # 철수님")
        await seed.type("/m bob 비밀")
        assert await line.recv() == WhisperMessage("철수", "비밀 ")
        await line.send("003#bob#철수#귓속말")
        await seed.expect("bob님의 귓속말 : 귓속말")
        await line.send("003#bob#nobody#x")
        await seed.type("/m nobody x")
        await seed.expect("해당 사용자가 존재하지 않습니다.")
        await seed.type("/who")
        await seed.expect("=== 접속자 리스트 ===\nbob\n철수\n=====================")
        await seed.type("hello without a command")
        await seed.expect("메시지를 정상적으로 입력해주세요.")

        carol = await LineClient.connect("127.0.0.1", server.port)
        await carol.join("carol")
        await seed.expect("[공지]carol 사용자가 접속하였습니다.")
        await carol.send("004#carol")
        await seed.expect("[공지]carol 사용자가 퇴장하였습니다.")
        await carol.close()

        await seed.type("/q")
        await seed.expect("채팅방 접속이 해제되었습니다.")
        assert await line.recv_until(UserLeft("철수"))
    finally:
        await seed.stop()
        await line.close()


async def test_legacy_reads_are_frames_and_spoofing_is_refused(server: ChatServer) -> None:
    assert server.legacy_port is not None
    line = await LineClient.connect("127.0.0.1", server.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.legacy_port)
    try:
        await line.join("bob")
        writer.write("001#레거시".encode())
        await writer.drain()
        first = (await asyncio.wait_for(reader.read(4096), TIMEOUT)).decode()
        assert first.startswith("채팅방에 입장하였습니다.")
        await line.recv()
        writer.write(b"002#bob#spoof")
        await writer.drain()
        err = (await asyncio.wait_for(reader.read(4096), TIMEOUT)).decode()
        assert err.startswith("[오류]")
        writer.write("002#레거시#hello\n".encode())  # an LF at the end, as nc sends it
        await writer.drain()
        assert await line.recv() == Message("레거시", "hello")
        assert await line.sync() == []
    finally:
        writer.close()
        await line.close()
