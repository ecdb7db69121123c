"""The gateway's own WebSocket text frames, pure: headers by table, frames read back per RFC 6455.

(Every gateway test reads them with aiohttp's client too.)
"""

from __future__ import annotations

import pytest

from web_gateway.wsframe import text_frame_header

HEADERS = [
    (0, b"\x81\x00"),
    (1, b"\x81\x01"),
    (125, b"\x81\x7d"),
    (126, b"\x81\x7e\x00\x7e"),
    (65535, b"\x81\x7e\xff\xff"),
    (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    (4 * 1024 * 1024, b"\x81\x7f\x00\x00\x00\x00\x00\x40\x00\x00"),
]


@pytest.mark.parametrize(("length", "header"), HEADERS)
def test_text_frame_header(length: int, header: bytes) -> None:
    assert text_frame_header(length) == header


def test_negative_length_is_refused() -> None:
    with pytest.raises(ValueError):
        text_frame_header(-1)


def read_frame(data: bytes) -> tuple[bool, int, bytes, bytes]:
    """RFC 6455 section 5.2, written out independently: FIN, opcode, payload, the rest."""
    fin, opcode = bool(data[0] & 0x80), data[0] & 0x0F
    assert data[0] & 0x70 == 0, "no RSV bits: the gateway never compresses"
    assert not data[1] & 0x80, "a server never masks"
    length, at = data[1] & 0x7F, 2
    if length == 126:
        length, at = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        length, at = int.from_bytes(data[2:10], "big"), 10
    return fin, opcode, data[at:at + length], data[at + length:]


def text_frame(payload: bytes | memoryview) -> bytes:
    """One whole text frame, as the bridge writes it (header, then the payload)."""
    return text_frame_header(len(payload)) + bytes(payload)


@pytest.mark.parametrize("payload", [b"", b'{"type":"left"}', "한글 ✓".encode() * 40, b"x" * 70_000])
def test_frames_read_back(payload: bytes) -> None:
    fin, opcode, body, rest = read_frame(text_frame(payload) + text_frame(memoryview(b"second")))
    assert (fin, opcode, body) == (True, 1, payload)
    assert read_frame(rest) == (True, 1, b"second", b"")
