"""The gateway's relay of a backend's reads, pure: whole lines, first frames, joined and session."""

from __future__ import annotations

import json

import pytest

from web_gateway.relay import EventRelay, LineTooLong


def lines(out: bytes | memoryview | None) -> list[dict[str, object]]:
    assert out is not None
    return [json.loads(line) for line in bytes(out).split(b"\n")]


def test_whole_lines_go_on_and_a_cut_line_waits_for_its_end() -> None:
    relay = EventRelay(1000)
    assert relay.feed(b'{"type":"user_joined","id":"bob"}\n{"type":"mess') == b'{"type":"user_joined","id":"bob"}'
    assert relay.feed(b'age","from":"bob",') is None
    assert lines(relay.feed(b'"text":"hi"}\n')) == [{"type": "message", "from": "bob", "text": "hi"}]
    assert relay.partial == b""


def test_frames_before_the_first_event_are_translated() -> None:
    relay = EventRelay(1000)
    assert lines(relay.feed(b"109#busy#too many connections\n")) == [
        {"type": "error", "reason": "busy", "text": "too many connections"}]
    assert not relay.events_seen
    relay.feed(b'{"type":"joined","id":"alice"}\n')
    assert relay.events_seen
    # after the switch every line is an event, whatever it looks like: no second translation
    assert relay.feed(b"110#x\n") == b"110#x"


def test_an_unreadable_first_line_becomes_a_generic_error() -> None:
    assert lines(EventRelay(1000).feed(b"999#what\n")) == [
        {"type": "error", "reason": "internal", "text": "the gateway could not read a server frame"}]


@pytest.mark.parametrize("chunks", [
    [b'{"type":"joined","id":"\\uae40"}\n{"type":"users","ids":[]}\n{"type":"session","token":"t"}\n'],
    [b'{"type":"joi', b'ned","id":"\\uae40"}\n{"type":"users","ids":[]}\n{"type":"sess', b'ion","token":"t"}\n'],
])
def test_joined_and_session_are_found_however_the_reads_fall(chunks: list[bytes]) -> None:
    relay = EventRelay(1000)
    for chunk in chunks:
        relay.feed(chunk)
    assert relay.confirmed_id == "김" and relay.resumable


@pytest.mark.parametrize("text", ['{"type":"joined","id":"x"}', '{"type":"session","token":"t"}'])
def test_a_message_that_looks_like_an_event_is_only_a_message(text: str) -> None:
    relay = EventRelay(1000)
    relay.feed(json.dumps({"type": "message", "from": "eve", "text": text}).encode() + b"\n")
    assert relay.confirmed_id is None and not relay.resumable


def test_a_line_longer_than_the_bound_is_refused_and_forgotten() -> None:
    relay = EventRelay(100)
    with pytest.raises(LineTooLong):
        relay.feed(b"{" + b"x" * 200)
    assert relay.partial == b""


def test_the_reason_of_a_refusal_before_the_join_is_noted() -> None:
    relay = EventRelay(4096)
    relay.feed(b"109#busy#too many connections\n")  # before 007#json took effect: a frame
    assert relay.refusal == "busy"
    relay = EventRelay(4096)
    relay.feed(b'{"type":"error","reason":"address-limit","text":"too many connections from your address"}\n')
    assert relay.refusal == "address-limit"
