"""Command-line flags with ``CHAT_*`` environment-variable equivalents.

Shared by every program of the project, so that each flag is documented and
overridable the same way: the flag wins, then the variable, then the default.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def parse_hostport(raw: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) into a pair."""
    host, sep, port = raw.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {raw!r}")
    return host.strip("[]"), int(port)


def split_values(raw: str | Iterable[str]) -> list[str]:
    """A list flag's items: comma or space separated, in one string or several (a flag given twice)."""
    parts = [raw] if isinstance(raw, str) else list(raw)
    return [item for part in parts for item in re.split(r"[,\s]+", part) if item]


class EnvArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose options may also come from the environment."""

    def __init__(self, *args: Any, environ: dict[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self._environ = os.environ if environ is None else environ

    def add_env_argument(
        self,
        *flags: str,
        env: str,
        type: Callable[[str], Any] = str,
        default: Any = None,
        help: str,
        **kwargs: Any,
    ) -> None:
        raw = self._environ.get(env)
        if raw is not None:
            try:
                default = type(raw) if raw != "" or type is str else None
            except ValueError as exc:
                self.error(f"environment variable {env}: {exc}")
        if type is parse_bool and "action" not in kwargs:
            kwargs.setdefault("nargs", "?")
            kwargs.setdefault("const", True)
        self.add_argument(*flags, type=type, default=default, help=f"{help} (env {env})", **kwargs)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        return super().parse_args(args, namespace)
