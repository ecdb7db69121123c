"""The interactive front end: a prompt_toolkit prompt that incoming lines never break.

Server lines are printed above the prompt (``print_formatted_text`` while the
prompt runs erases it, prints, and redraws it with the half-typed line intact).
History, Tab completion of commands and of online IDs after ``/m``; Ctrl-C and
Ctrl-D leave cleanly (004, then wait for 102).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import DummyHistory, FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.shortcuts import print_formatted_text

from .aio import cancel_and_wait
from .client import ChatClient
from .completion import complete
from .config import ClientConfig
from .render import Line, format_line


class ChatCompleter(Completer):
    """Commands at the start of the line; online IDs (but yours) after ``/m``."""

    def __init__(self, online: Callable[[], list[str]]) -> None:
        self._online = online

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        for replacement, start in complete(document.text_before_cursor, self._online()):
            yield Completion(replacement, start_position=start, display=replacement.strip())


class InteractiveFrontend:
    """Shows lines above the prompt and asks through prompt_toolkit."""

    one_line = False
    echo = True

    def __init__(
        self,
        config: ClientConfig,
        *,
        pt_input: Input | None = None,
        pt_output: Output | None = None,
        sink: Callable[[Line], None] | None = None,
    ) -> None:
        self.config = config
        self._output = pt_output
        self._sink = sink
        self.online: Callable[[], list[str]] = list
        self.client: ChatClient | None = None
        """The session this front end serves, once :func:`run_interactive` started it."""
        history: History = FileHistory(config.history) if config.history else InMemoryHistory()
        self.session: PromptSession[str] = PromptSession(
            input=pt_input, output=pt_output, history=history,
            completer=ChatCompleter(lambda: self.online()), complete_while_typing=False,
        )
        self._asker: PromptSession[str] = PromptSession(input=pt_input, output=pt_output)
        # Passwords: no echo, and a history that keeps nothing (not even in memory).
        self._secret: PromptSession[str] = PromptSession(input=pt_input, output=pt_output, history=DummyHistory())

    def show(self, line: Line) -> None:
        if self._sink is not None:
            self._sink(line)
        stamp = datetime.now().strftime("%H:%M:%S") if self.config.timestamps else None
        rendered = format_line(line, color=self.config.color, stamp=stamp)
        print_formatted_text(ANSI(rendered) if self.config.color else rendered, output=self._output)

    async def ask(self, prompt: str) -> str | None:
        try:
            return await self._asker.prompt_async(prompt)
        except (EOFError, KeyboardInterrupt):
            return None

    async def ask_secret(self, prompt: str) -> str | None:
        try:
            return await self._secret.prompt_async(prompt, is_password=True)
        except (EOFError, KeyboardInterrupt):
            return None

    async def read_commands(self, client: ChatClient) -> None:
        """Prompt until the user leaves (/q, Ctrl-C, Ctrl-D)."""
        while True:
            try:
                line = await self.session.prompt_async(f"{client.name}> ")
            except (EOFError, KeyboardInterrupt):
                return
            if not await client.submit(line):
                return


async def run_interactive(config: ClientConfig, ui: InteractiveFrontend | None = None) -> int:
    """Run a whole interactive session; the exit code. Tests pass a ``ui`` on pipe input."""
    if ui is None:
        ui = InteractiveFrontend(config)
    client = ChatClient(config, ui, reask_id=True)
    ui.online = lambda: client.roster.others(client.name)
    ui.client = client
    if not await client.start():
        return client.exit_code
    relay = asyncio.create_task(client.run(), name="chat-relay")
    typing = asyncio.create_task(ui.read_commands(client), name="chat-prompt")
    try:
        done, _ = await asyncio.wait({relay, typing}, return_when=asyncio.FIRST_COMPLETED)
        if typing in done:
            typing.result()  # a bug in the prompt loop should surface
            await client.leave()
        else:
            await cancel_and_wait(typing)
        return await relay
    finally:
        # Cancelled from outside (or a bug above): the relay closes its connection as it ends.
        left = [task for task in (typing, relay) if not task.done()]
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=10)
