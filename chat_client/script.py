"""The scriptable front end: commands from a non-terminal stdin, one printed line per server frame.

``printf '/b hi\\n/q\\n' | chat-client 127.0.0.1 9000 --id bot``. Server frames go
to stdout, one line each (a 107 too); the client's own news (prompts, errors,
hints) goes to stderr, so a script's stdout holds only what the server said.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from datetime import datetime
from typing import TextIO

from .client import ChatClient
from .config import ClientConfig
from .render import Line, format_line


class LineSource:
    """Lines from a file descriptor, read by a daemon thread so that the event loop
    never blocks and exit never waits on a read. :meth:`close` ends it early.

    The thread uses ``os.read`` on the descriptor, not ``sys.stdin``: a daemon thread
    blocked inside a buffered reader would hold its lock when the interpreter exits.
    """

    def __init__(self, fd: int) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, args=(fd,), name="chat-stdin", daemon=True)
        self._thread.start()

    def _put(self, item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _read(self, fd: int) -> None:
        pending = b""
        try:
            while chunk := os.read(fd, 65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    self._put(raw.decode("utf-8", errors="replace").rstrip("\r"))
        except OSError:
            pass
        if pending:
            self._put(pending.decode("utf-8", errors="replace").rstrip("\r"))
        self._put(None)

    @property
    def reading(self) -> bool:
        """Whether the thread still reads (it stops at the end of the input)."""
        return self._thread.is_alive()

    def close(self) -> None:
        """End of input from now on (a signal asked to leave)."""
        self._queue.put_nowait(None)

    async def readline(self) -> str | None:
        """The next line without its end, or None at the end of input (and ever after)."""
        line = await self._queue.get()
        if line is None:
            self._queue.put_nowait(None)
        return line


class ScriptFrontend:
    """Prints server lines to ``out`` and the client's own to ``err``; asks on ``err``."""

    one_line = True
    echo = False

    def __init__(self, config: ClientConfig, lines: LineSource, out: TextIO, err: TextIO, color: bool) -> None:
        self.config = config
        self.lines = lines
        self.out = out
        self.err = err
        self.color = color

    def show(self, line: Line) -> None:
        stamp = datetime.now().strftime("%H:%M:%S") if self.config.timestamps else None
        stream = self.err if line.local else self.out
        stream.write(format_line(line, color=self.color, stamp=stamp) + "\n")
        stream.flush()

    async def ask(self, prompt: str) -> str | None:
        self.err.write(prompt)
        self.err.flush()
        answer = await self.lines.readline()
        self.err.write("\n")
        self.err.flush()
        return answer

    async def ask_secret(self, prompt: str) -> str | None:
        """The next input line (a script's), never written anywhere."""
        self.err.write(prompt + "\n")
        self.err.flush()
        return await self.lines.readline()


async def run_script(config: ClientConfig, lines: LineSource, out: TextIO, err: TextIO, color: bool) -> int:
    """Run a session driven by ``lines``; leaves (004, wait for 102) after /q or at their end."""
    ui = ScriptFrontend(config, lines, out, err, color)
    # An ID given on the command line cannot be asked for again: the next line is a command.
    client = ChatClient(config, ui, reask_id=config.id is None)
    if not await client.start():
        return client.exit_code
    relay = asyncio.create_task(client.run(), name="chat-relay")
    while True:
        next_line = asyncio.ensure_future(lines.readline())
        done, _ = await asyncio.wait({relay, next_line}, return_when=asyncio.FIRST_COMPLETED)
        if relay in done:
            next_line.cancel()
            return relay.result()
        line = next_line.result()
        if line is None or not await client.submit(line):
            break
    await client.leave()
    return await relay
