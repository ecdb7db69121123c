"""The protocol table reaches every edge: each place that must know a frame is checked against the table.

One test per edge, each over every code, each failing with the code and the place that forgot it, so a
new frame that is only half wired fails here before it can fail silently (the way ``114`` once reached
nobody under ``--redis``). Where the edge is generated from the table (the gateway's browser messages,
the byte marks, the page's sentences, the resume positions), the test checks the generation; where it
must stay hand-written (a sentence, a colour, a Redis event), it checks that the code is handled.
"""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from chat_client.render import kind_of, render_frame
from tcp_server.protocol import codes, table, texts
from tcp_server.protocol.encoders import FRAMES, JSON, LEGACY
from tcp_server.protocol.events import JOINED_MARK, encode_event, event_mark, to_event
from tcp_server.protocol.frames import ClientFrame, ServerFrame, WhisperMessage
from tcp_server.protocol.session import RoomFrame
from tcp_server.protocol.table import (
    BROWSER,
    CLIENT_SPECS,
    COUNTED_EVENTS,
    SELF,
    SERVER_SPECS,
    TEXT_KEYS,
    Delivery,
    FieldCheck,
    FrameSpec,
    parse_client,
    parse_server,
    serialize,
)
from tcp_server.room import redis_events, redis_recall
from tcp_server.room.recall import InMemorySessionStore
from web_gateway.i18n import page_strings
from web_gateway.translate import BROWSER_FIELDS, to_frame

# One wire value per kind of field: what a sample frame of any code is built from (and parsed back).
_WIRE: dict[FieldCheck, str] = {
    table.raw: "alice",
    table.non_empty: "alice",
    table.text: "hi #1 안녕",
    table.token: "t1",
    table.resume_token: "tok-EN_1",
    table.count: "7",
    table.room: "lobby",
    table.cursor: "",
    table.address: "192.0.2.1",
    table.password: "correct horse",
    table.output_format: "json",
    table.reason: "malformed",
}

# The JSON value a browser sends for each kind of field, for the frame built from _WIRE.
_BROWSER_VALUE: dict[FieldCheck, Any] = {
    table.raw: "alice", table.non_empty: "alice", table.text: "hi #1 안녕", table.token: "t1",
    table.resume_token: "tok-EN_1", table.count: 7, table.room: "lobby", table.cursor: "",
    table.password: "correct horse",
}

GATEWAY_ONLY = {"000", "007"}
"""Client frames a page never sends: the gateway's own hello and its choice of JSON output."""


def sample_line(spec: FrameSpec) -> str:
    if spec.variadic:
        return f"{spec.code}#alice#bob"
    values = [_WIRE[check] for check in spec.fields]
    if spec in SERVER_SPECS and spec.tail and spec.fields[-1] is table.raw:
        values[-1] = "a #tail# kept"
    return "#".join((spec.code, *values)) if values else spec.code


def sample(spec: FrameSpec) -> Any:
    line = sample_line(spec)
    return parse_server(line) if spec in SERVER_SPECS else parse_client(line)


def _ids(specs: tuple[FrameSpec, ...]) -> list[str]:
    return [spec.code for spec in specs]


# ------------------------------------------------------------------ the table itself


@pytest.mark.parametrize("spec", CLIENT_SPECS + SERVER_SPECS, ids=_ids(CLIENT_SPECS + SERVER_SPECS))
def test_every_code_parses_and_serializes_its_sample(spec: FrameSpec) -> None:
    frame = sample(spec)
    assert type(frame) is spec.cls and frame.CODE == spec.code
    assert serialize(frame).decode() == sample_line(spec) + "\n", f"{spec.code}: parse and serialize disagree"


def test_codes_enums_match_the_table() -> None:
    assert {c.value for c in codes.ClientCode} == {s.code for s in CLIENT_SPECS}
    assert {c.value for c in codes.ServerCode} == {s.code for s in SERVER_SPECS}


def test_counted_is_what_the_room_or_a_whisper_sends() -> None:
    for spec in SERVER_SPECS:
        assert spec.counted == (spec.delivery is not Delivery.ANSWER), spec.code
    assert COUNTED_EVENTS == tuple(s.event for s in SERVER_SPECS if s.delivery is not Delivery.ANSWER)


# ------------------------------------------------------------------ the room: fan-out, Redis, parked sessions


def test_room_frames_are_the_room_seams_type() -> None:
    """``RoomFrame`` (what Session publishes, LocalRoom fans out, the Redis bus and the stores carry) is exactly
    the table's room frames: RedisBus.publish and the stores match over it with ``assert_never``."""
    room = {s.cls for s in SERVER_SPECS if s.delivery is Delivery.ROOM}
    assert set(get_args(RoomFrame)) == room, "RoomFrame in tcp_server/protocol/session.py and the table differ"
    direct = {s.cls for s in SERVER_SPECS if s.delivery is Delivery.DIRECT}
    assert direct == {WhisperMessage}, "a new direct frame needs the Bus.deliver seam (tcp_server/room/base.py)"


@pytest.mark.parametrize("spec", [s for s in SERVER_SPECS if s.counted], ids=lambda s: s.code)
async def test_a_parked_session_keeps_every_counted_frame_in_memory(spec: FrameSpec) -> None:
    store = InMemorySessionStore(grace=60, max_frames=100, max_bytes=1 << 20)  # (parking starts a grace timer)
    store.issue("bob", "bob")
    assert store.park("bob", [])
    frame = sample(spec)
    if spec.delivery is Delivery.ROOM:
        store.room_event(frame, None)
    else:
        store.whisper("bob", frame)
    try:
        assert store.since("bob", 0) == [frame], f"{spec.code}: the in-memory store (room/recall.py) did not keep it"
    finally:
        store.close()


@pytest.mark.parametrize("spec", [s for s in SERVER_SPECS if s.counted], ids=lambda s: s.code)
def test_redis_keeps_every_counted_frame(spec: FrameSpec) -> None:
    """What a Redis node keeps for a parked session (``P missed:KEY``) reads back as the same frame."""
    frame = sample(spec)
    kept = redis_recall.encode(frame, "bob")
    again = redis_recall.decode(json.loads(kept), "bob")
    assert again == frame, f"{spec.code}: tcp_server/room/redis_recall.py encode/decode lose it"
    redis_events.decode(kept)  # one of the channel's events (redis_events.py), not a private spelling


# ------------------------------------------------------------------ what every server frame looks like at the edges


@pytest.mark.parametrize("spec", SERVER_SPECS, ids=_ids(SERVER_SPECS))
def test_every_server_frame_has_its_sentences(spec: FrameSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """texts.render uses exactly the sentences the table names (the page is given those)."""
    used: list[str] = []
    real = texts.text

    def recording(key: str, lang: texts.Lang = "ko", **fields: str) -> str:
        used.append(key)
        return real(key, lang, **fields)

    monkeypatch.setattr(texts, "text", recording)
    frame = sample(spec)
    for lang in texts.LANGS:
        assert texts.render(frame, lang), f"{spec.code}: no {lang} sentence in tcp_server/protocol/texts.py"
    assert set(used) <= set(spec.text_keys) | {"page_end"}, (
        f"{spec.code}: texts.render uses {sorted(set(used))}, the table's text_keys say {spec.text_keys}")
    assert set(spec.text_keys) - {"page_end"} <= set(used), f"{spec.code}: text_keys name an unused sentence"


@pytest.mark.parametrize("spec", SERVER_SPECS, ids=_ids(SERVER_SPECS))
def test_every_server_frame_reaches_every_encoder_and_client(spec: FrameSpec) -> None:
    frame: ServerFrame = sample(spec)
    assert FRAMES.encode(frame) == serialize(frame)
    event = json.loads(JSON.encode(frame))
    assert event["type"] == spec.event, f"{spec.code}: the JSON encoder (protocol/encoders.py) gives {event}"
    assert bool(LEGACY.encode(frame)) == spec.legacy, f"{spec.code}: the legacy encoder (protocol/encoders.py)"
    assert kind_of(frame) is not None, f"{spec.code}: no colour in chat_client/render.py kind_of"
    assert render_frame(frame, "ko").text, f"{spec.code}: chat_client/render.py shows nothing"


@pytest.mark.parametrize("spec", SERVER_SPECS, ids=_ids(SERVER_SPECS))
def test_event_keys_and_marks_come_from_the_table(spec: FrameSpec) -> None:
    frame = sample(spec)
    event = to_event(frame)
    assert list(event)[:1 + len(spec.keys)] == ["type", *spec.keys]
    assert encode_event(event).encode().startswith(event_mark(spec.cls)), spec.code


def test_the_byte_marks_are_the_tables_event_types() -> None:
    assert JOINED_MARK == b'{"type":"joined"'


def test_the_page_has_every_sentence_in_both_languages() -> None:
    for lang in texts.LANGS:
        strings = page_strings(lang)
        missing = [key for key in TEXT_KEYS if not strings.get(key)]
        assert not missing, f"web_gateway/i18n.py page_strings({lang}) lacks {missing}"


# ------------------------------------------------------------------ browser messages (web_gateway/translate.py)


def test_every_client_frame_but_the_gateways_own_has_a_browser_type() -> None:
    missing = [s.code for s in CLIENT_SPECS if not s.browser and s.code not in GATEWAY_ONLY]
    assert not missing, f"client frames {missing} have no browser type in the table (protocol/table.py)"
    assert len(BROWSER) == len(CLIENT_SPECS) - len(GATEWAY_ONLY), "two client frames share a browser type"


@pytest.mark.parametrize("spec", [s for s in CLIENT_SPECS if s.browser], ids=lambda s: s.code)
def test_every_browser_message_becomes_its_frame(spec: FrameSpec) -> None:
    assert len(spec.browser_keys) == len(spec.fields), f"{spec.code}: one browser key per field"
    for check in spec.fields:
        assert check in BROWSER_FIELDS, f"{spec.code}: web_gateway/translate.py cannot read a {check.__name__} field"
    msg: dict[str, Any] = {"type": spec.browser}
    for check, key in zip(spec.fields, spec.browser_keys, strict=True):
        if key != SELF:
            msg[key] = _BROWSER_VALUE[check]
    from tcp_server.protocol.states import ConnState

    own = "alice" if ConnState.JOINED in spec.states else None
    frame = to_frame(msg, own)
    expected: ClientFrame = sample(spec)
    assert frame == expected, f"{spec.code}: the browser's {spec.browser!r} gives {frame!r}"


def test_every_tone_has_a_terminal_colour() -> None:
    from chat_client.render import Kind
    from tcp_server.protocol.table import Tone

    for tone in Tone:
        assert Kind(tone.value), f"chat_client/render.py Kind lacks {tone.value!r}"


def test_protocol_md_documents_every_code_and_json_type() -> None:
    """PROTOCOL.md is the wire contract: every code in its frame tables, every JSON type in the browser's."""
    import pathlib

    doc = (pathlib.Path(__file__).parent.parent / "PROTOCOL.md").read_text()
    browser = doc[doc.index("## Browser to gateway"):doc.index("## Gateway to browser")]
    to_browser = doc[doc.index("## Gateway to browser"):]
    client = doc[doc.index("## Client to server"):doc.index("## Server to client")]
    server = doc[doc.index("## Server to client"):doc.index("## Accounts")]
    for spec in CLIENT_SPECS:
        assert f"| `{spec.code}" in client, f"{spec.code}: not in PROTOCOL.md's 'Client to server'"
    for spec in SERVER_SPECS:
        assert f"| `{spec.code}" in server, f"{spec.code}: not in PROTOCOL.md's 'Server to client'"
    for spec in CLIENT_SPECS:
        if spec.browser:
            assert f'{{"type":"{spec.browser}"' in browser, f"{spec.code}: {spec.browser!r} not in 'Browser to gateway'"
    for spec in SERVER_SPECS:
        assert f'{{"type":"{spec.event}"' in to_browser, f"{spec.code}: {spec.event!r} not in 'Gateway to browser'"
