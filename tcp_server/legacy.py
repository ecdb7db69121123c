"""Rendering for the legacy port: frames become the seed's exact Korean text."""

from __future__ import annotations

from .protocol.codes import ErrorReason
from .protocol.frames import Error, FrameError, IdTaken, Left, Pong, parse_server
from .protocol.texts import render


def render_legacy(frame_bytes: bytes) -> str | None:
    """One wire frame as the seed's server would have sent it (None: nothing)."""
    try:
        frame = parse_server(frame_bytes.rstrip(b"\n").decode("utf-8"))
    except (FrameError, UnicodeDecodeError):  # pragma: no cover - we encode these ourselves
        return None
    if isinstance(frame, IdTaken) or (isinstance(frame, Error) and frame.reason is ErrorReason.BAD_ID):
        return "101"
    if isinstance(frame, Left):
        return "102"
    if isinstance(frame, Pong):
        return None
    return render(frame, "ko")


def render_legacy_batch(frames: list[bytes]) -> list[bytes]:
    """A loop turn's frames as writes: texts joined by LF; 101/102 alone, bare.

    The seed's client compares a whole read with '101' or '102', so those two go
    in writes of their own.
    """
    writes: list[bytes] = []
    texts: list[str] = []
    for raw in frames:
        rendered = render_legacy(raw)
        if rendered is None:
            continue
        if rendered in ("101", "102"):
            if texts:
                writes.append("\n".join(texts).encode())
                texts = []
            writes.append(rendered.encode())
        else:
            texts.append(rendered)
    if texts:
        writes.append("\n".join(texts).encode())
    return writes
