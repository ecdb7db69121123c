"""How a connection's frames become bytes: the wire's frames, JSON events, or the seed's text.

Each connection owns one encoder. The room hands out frame objects, and the
server encodes each room frame once per flush for all connections of one
encoder (a memo per encoder), so a broadcast costs one encoding per kind of
reader, not one per reader. ``007#json`` is "this connection's encoder is JSON";
the legacy port's connections have the seed's encoder. Pure.
"""

from __future__ import annotations

from json.encoder import encode_basestring  # what json.dumps(str, ensure_ascii=False) uses, in C
from typing import Protocol

from .codes import ErrorReason, OutputFormat
from .events import encode_event, to_event
from .frames import Error, IdTaken, Left, Message, ServerFrame, UserJoined
from .table import BY_CLASS, serialize
from .texts import render


class Encoder(Protocol):
    """What a connection's output is made of."""

    name: str
    shareable: bool
    """``batch(chunks)`` is always ``[b"".join(chunks)]``: one joined log serves every reader."""

    def encode(self, frame: ServerFrame) -> bytes:
        """One frame's bytes (may be empty: nothing to show)."""

    def batch(self, chunks: list[bytes]) -> list[bytes]:
        """Encoded frames, in order, as the writes that carry them."""


class FramesEncoder:
    """The wire protocol's own lines."""

    name = "frames"
    shareable = True

    @staticmethod
    def encode(frame: ServerFrame) -> bytes:
        if type(frame) is Message:  # the hot path: a broadcast, already validated when parsed
            return f"105#{frame.sender}#{frame.message}\n".encode()
        if type(frame) is UserJoined and frame.account:  # 103 keeps its seed meaning; 132 marks the account
            return f"103#{frame.id}\n132#{frame.id}\n".encode()
        return serialize(frame)

    @staticmethod
    def batch(chunks: list[bytes]) -> list[bytes]:
        return [chunks[0] if len(chunks) == 1 else b"".join(chunks)]


class JsonEncoder:
    """The browser's NDJSON events, one line per frame (PROTOCOL.md, "JSON output")."""

    name = "json"
    shareable = True

    @staticmethod
    def encode(frame: ServerFrame) -> bytes:
        if type(frame) is Message:  # the same bytes as the generic path, without building a dict
            ts = "" if frame.ts is None else f',"ts":{frame.ts}'
            account = ',"account":true' if frame.account else ""
            return (f'{{"type":"message","from":{encode_basestring(frame.sender)},'
                    f'"text":{encode_basestring(frame.message)}{ts}{account}}}\n').encode()
        return (encode_event(to_event(frame)) + "\n").encode()

    @staticmethod
    def batch(chunks: list[bytes]) -> list[bytes]:
        return FramesEncoder.batch(chunks)


class LegacyEncoder:
    """The seed's client: Korean text, no framing; ``101`` and ``102`` bare, in writes of their own.

    History (``111``) reads as the messages it was (``FROM : MESSAGE``).

    The seed's client compares a whole read with '101' or '102', and an invalid
    ID must make it ask again, so ``109#bad-id`` is also a bare ``101``.
    """

    name = "legacy"
    shareable = False
    _ALONE = (b"101", b"102")

    @staticmethod
    def encode(frame: ServerFrame) -> bytes:
        if isinstance(frame, IdTaken) or (isinstance(frame, Error) and frame.reason is ErrorReason.BAD_ID):
            return b"101"
        if isinstance(frame, Left):
            return b"102"
        if not BY_CLASS[type(frame)].legacy:  # (the table's: what the seed's client cannot use)
            return b""
        return render(frame, "ko").encode()

    @classmethod
    def batch(cls, chunks: list[bytes]) -> list[bytes]:
        writes: list[bytes] = []
        texts: list[bytes] = []
        for chunk in chunks:
            if not chunk:
                continue
            if chunk in cls._ALONE:
                if texts:
                    writes.append(b"\n".join(texts))
                    texts = []
                writes.append(chunk)
            else:
                texts.append(chunk)
        if texts:
            writes.append(b"\n".join(texts))
        return writes


FRAMES = FramesEncoder()
JSON = JsonEncoder()
LEGACY = LegacyEncoder()

BY_FORMAT: dict[OutputFormat, Encoder] = {OutputFormat.FRAMES: FRAMES, OutputFormat.JSON: JSON}
