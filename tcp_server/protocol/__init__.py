"""The pure protocol core: frames, codes, IDs, limits and the room's rules.

No sockets, no asyncio, no aiohttp here (a test checks it): the server, the
gateway and the terminal client all build on this package.
"""

from .codes import ClientCode, ErrorReason, OutputFormat, ServerCode
from .decoder import (
    CLIENT_SIDE_MAX_LINE,
    DEFAULT_MAX_LINE,
    FrameReader,
    LineDecoder,
    client_frame_reader,
    server_frame_reader,
)
from .frames import (
    Broadcast,
    ClientFrame,
    Error,
    FetchOlder,
    Found,
    Frame,
    FrameError,
    GatewayHello,
    History,
    IdTaken,
    Join,
    Joined,
    Leave,
    Left,
    ListUsers,
    Message,
    NoSuchUser,
    Older,
    Page,
    Ping,
    Pong,
    Resumed,
    ResumeSession,
    Search,
    Searched,
    ServerFrame,
    ServerNotice,
    SessionToken,
    SetFormat,
    UserJoined,
    UserLeft,
    UserList,
    Whisper,
    WhisperMessage,
    has_control_chars,
)
from .ids import MAX_ID_LENGTH, InvalidId, id_key, is_valid_id, normalize_id
from .table import encode_error, fits, parse_client, parse_server, serialize

__all__ = [
    "CLIENT_SIDE_MAX_LINE", "DEFAULT_MAX_LINE", "MAX_ID_LENGTH",
    "Broadcast", "ClientCode", "ClientFrame", "Error", "ErrorReason", "FetchOlder", "Found", "Frame",
    "FrameError", "FrameReader", "GatewayHello", "History", "IdTaken", "InvalidId", "Join",
    "Joined", "Leave", "Left", "LineDecoder", "ListUsers", "Message", "NoSuchUser",
    "Older", "OutputFormat", "Page", "Ping", "Pong", "Resumed", "ResumeSession", "Search", "Searched", "ServerCode",
    "ServerFrame", "ServerNotice",
    "SessionToken", "SetFormat", "UserJoined", "UserLeft", "UserList",
    "Whisper", "WhisperMessage", "client_frame_reader", "encode_error", "fits", "has_control_chars", "id_key",
    "is_valid_id", "normalize_id", "parse_client", "parse_server", "serialize",
    "server_frame_reader",
]
