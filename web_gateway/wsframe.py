"""WebSocket frames the gateway writes itself (RFC 6455, section 5.2), pure.

The hot path writes a backend read to the page as one unmasked text frame,
header and payload in one buffer and one ``transport.write``; aiohttp's own
writer splits large frames into two writes and is a coroutine. Everything else
(pings, close, the handshake) stays with aiohttp. The gateway never offers
compression (``compress=False``), so RSV1 is always clear.
"""

from __future__ import annotations

import struct

FIN_TEXT = 0x81
"""FIN set, opcode 1 (text)."""

_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")


def text_frame_header(length: int) -> bytes:
    """The header of a final, unmasked text frame carrying ``length`` payload bytes."""
    if length < 0:
        raise ValueError("negative length")
    if length < 126:
        return bytes((FIN_TEXT, length))
    if length < 1 << 16:
        return _LEN16.pack(FIN_TEXT, 126, length)
    return _LEN64.pack(FIN_TEXT, 127, length)
