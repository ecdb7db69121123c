"""``chat-client [HOST] [PORT] [--id ID]``: interactive on a terminal, scriptable otherwise."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from .config import ClientConfig, parse_config


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now, so prompt_toolkit's patch_stdout puts
    diagnostics above the prompt instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


def _setup_logging(level: str) -> None:
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())


def _color_for(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


async def _interactive(config: ClientConfig) -> int:
    from prompt_toolkit.patch_stdout import patch_stdout

    from .interactive import run_interactive

    with patch_stdout(raw=True):
        return await run_interactive(config)


async def _script(config: ClientConfig) -> int:
    from .script import LineSource, run_script

    lines = LineSource(sys.stdin.fileno())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lines.close)  # leave cleanly, as at the end of input
    color = config.color and _color_for(sys.stdout)
    return await run_script(config, lines, sys.stdout, sys.stderr, color)


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    _setup_logging(config.log_level)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        code = asyncio.run(_interactive(config) if interactive else _script(config))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
