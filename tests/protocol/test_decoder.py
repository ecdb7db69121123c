"""The incremental decoder: framing, bounds, and properties no input can break."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tcp_server.protocol import (
    Broadcast,
    ErrorReason,
    FrameError,
    Join,
    LineDecoder,
    Message,
    client_frame_reader,
    serialize,
    server_frame_reader,
)


def feed_all(decoder: LineDecoder, chunks: list[bytes]) -> list[object]:
    out: list[object] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def test_two_frames_in_one_read() -> None:
    assert LineDecoder().feed(b"001#a\n002#a#hi\n") == ["001#a", "002#a#hi"]


def test_one_frame_byte_by_byte_with_a_split_multibyte_character() -> None:
    data = "002#a#안녕\n".encode()
    d = LineDecoder()
    out = feed_all(d, [data[i:i + 1] for i in range(len(data))])
    assert out == ["002#a#안녕"]


def test_crlf_and_empty_lines() -> None:
    assert LineDecoder().feed(b"\n\r\n001#a\r\n\n") == ["001#a"]


def test_cr_inside_a_line_is_kept_for_the_parser_to_refuse() -> None:
    assert LineDecoder().feed(b"a\rb\n") == ["a\rb"]


def test_line_at_the_limit_passes_and_one_more_byte_is_too_long() -> None:
    d = LineDecoder(max_line=10)
    assert d.feed(b"x" * 9 + b"\n") == ["x" * 9]
    out = d.feed(b"y" * 10 + b"\nok\n")
    assert isinstance(out[0], FrameError) and out[0].reason is ErrorReason.TOO_LONG
    assert out[1:] == ["ok"]


def test_too_long_without_lf_is_reported_once_and_skipped_to_the_next_lf() -> None:
    d = LineDecoder(max_line=16)
    out = feed_all(d, [b"z" * 10, b"z" * 10, b"z" * 100, b"zz\nafter\n"])
    assert len(out) == 2
    assert isinstance(out[0], FrameError) and out[0].reason is ErrorReason.TOO_LONG
    assert out[1] == "after"
    assert d.buffered == 0


def test_invalid_utf8_is_malformed_and_the_stream_goes_on() -> None:
    out = LineDecoder().feed(b"\xff\xfe\n001#a\n")
    assert isinstance(out[0], FrameError) and out[0].reason is ErrorReason.MALFORMED
    assert out[1] == "001#a"


def test_frame_reader_parses_and_reports() -> None:
    r = client_frame_reader()
    out = r.feed(b"001#a\n999\n002#a#x#y\n")
    assert out[0] == Join("a")
    assert isinstance(out[1], FrameError) and out[1].reason is ErrorReason.UNKNOWN_CODE
    assert out[2] == Broadcast("a", "x#y")


def test_thousand_frames_in_one_buffer_arrive_in_order() -> None:
    data = b"".join(serialize(Message("a", f"m{i}")) for i in range(1000))
    out = server_frame_reader().feed(data)
    assert out == [Message("a", f"m{i}") for i in range(1000)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=40), st.integers(min_value=2, max_value=64))
def test_no_byte_sequence_crashes_or_grows_the_buffer(chunks: list[bytes], limit: int) -> None:
    d = LineDecoder(max_line=limit)
    for chunk in chunks:
        for item in d.feed(chunk):
            assert isinstance(item, (str, FrameError))
            if isinstance(item, str):
                assert "\n" not in item and len(item.encode()) < limit
        assert d.buffered < limit


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=30))
def test_client_reader_never_raises(chunks: list[bytes]) -> None:
    r = client_frame_reader(256)
    for chunk in chunks:
        r.feed(chunk)
    assert r.buffered < 256


ids = st.text(alphabet=st.characters(blacklist_categories=("C", "Z"), blacklist_characters="#"),
              min_size=1, max_size=32)
messages = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=200)


@settings(max_examples=300, deadline=None)
@given(ids, messages, st.data())
def test_round_trip_through_arbitrary_chunking(sender: str, message: str, data: st.DataObject) -> None:
    wire = serialize(Broadcast(sender, message)) + serialize(Message(sender, message))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    lines = feed_all(LineDecoder(max_line=1 << 16), pieces)
    assert len(lines) == 2
    assert client_frame_reader(1 << 16).feed(wire.split(b"\n")[0] + b"\n") == [Broadcast(sender, message)]
    assert server_frame_reader().feed(wire.split(b"\n", 1)[1]) == [Message(sender, message)]
