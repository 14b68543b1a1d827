"""ws.frames.FrameParser: RFC 6455 server frames cut out of arbitrary chunks (pure)."""

from __future__ import annotations

import pytest

from okx_sync.ws.frames import (
    CLOSE_INVALID_DATA,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_TOO_BIG,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameParser,
    encode_frame,
)


def text(payload: bytes, fin: bool = True) -> bytes:
    return encode_frame(OP_TEXT, payload, fin=fin)


def feed_all(parser: FrameParser, chunks: list[bytes]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for c in chunks:
        out.extend(parser.feed(c))
    return out


# A stream with every kind of frame: 7-bit and 16-bit lengths, a fragmented text
# message (a 2-byte UTF-8 character split across fragments) with a ping and a pong
# between its fragments, a fragmented binary message, and a close at the end.
STREAM_MESSAGES = [
    (OP_TEXT, b'{"arg":{"channel":"books"},"data":[]}'),
    (OP_TEXT, b""),
    (OP_PING, b"hb"),
    (OP_TEXT, b"x" * 300),
    (OP_PING, b"p1"),
    (OP_PONG, b""),
    (OP_TEXT, "prix: 12 \u20ac".encode() + b"y" * 130),
    (OP_BINARY, bytes(range(256))),
    (OP_TEXT, b"pong"),
    (OP_CLOSE, (4004).to_bytes(2, "big") + b"No data received in 30s."),
]
_EURO = "prix: 12 \u20ac".encode()
STREAM = b"".join(
    [
        text(STREAM_MESSAGES[0][1]),
        text(b""),
        encode_frame(OP_PING, b"hb"),
        text(b"x" * 300),
        text(_EURO[:-1], fin=False),  # the euro sign's last byte in the next fragment
        encode_frame(OP_PING, b"p1"),
        encode_frame(OP_CONT, _EURO[-1:] + b"y" * 10, fin=False),
        encode_frame(OP_PONG, b""),
        encode_frame(OP_CONT, b"y" * 120, fin=True),
        encode_frame(OP_BINARY, bytes(range(100)), fin=False),
        encode_frame(OP_CONT, bytes(range(100, 256))),
        text(b"pong"),
        encode_frame(OP_CLOSE, (4004).to_bytes(2, "big") + b"No data received in 30s."),
    ]
)
# the ping and pong inside the fragmented text come out when they arrive, before it
EXPECTED = list(STREAM_MESSAGES)


def test_whole_stream_in_one_chunk():
    parser = FrameParser()
    assert parser.feed(STREAM) == EXPECTED
    assert parser.closed and parser.error is None and parser.buffered == 0


def test_split_at_every_byte_boundary():
    for cut in range(len(STREAM) + 1):
        parser = FrameParser()
        assert feed_all(parser, [STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_split_in_three_at_many_boundaries():
    n = len(STREAM)
    for a in range(0, n, 7):
        for b in range(a, n, 53):
            parser = FrameParser()
            assert feed_all(parser, [STREAM[:a], STREAM[a:b], STREAM[b:]]) == EXPECTED, (a, b)


def test_one_byte_at_a_time():
    parser = FrameParser()
    assert feed_all(parser, [STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
def test_length_encodings(size):
    payload = bytes([97 + i % 26 for i in range(size)])
    frame = text(payload)
    if size < 126:
        assert frame[1] == size
    elif size < 65536:
        assert frame[1] == 126 and len(frame) == size + 4
    else:
        assert frame[1] == 127 and len(frame) == size + 10
    parser = FrameParser()
    assert parser.feed(frame + text(b"next")) == [(OP_TEXT, payload), (OP_TEXT, b"next")]


def test_large_frame_collected_in_parts_until_complete():
    payload = b"z" * 200_000
    first, big = text(b"before"), text(payload)
    stream = first + big + text(b"after")
    parser = FrameParser()
    outs, held = [], []
    for i in range(0, len(stream), 1000):
        outs.append(parser.feed(stream[i : i + 1000]))
        held.append(parser.buffered)
    done = (len(first) + len(big) - 1) // 1000  # the chunk that completes the big frame
    assert outs[0] == [(OP_TEXT, b"before")]
    assert all(out == [] for out in outs[1:done])
    assert held[1:done] == sorted(held[1:done]) and held[done - 1] > 190_000
    assert [m for out in outs for m in out] == [
        (OP_TEXT, b"before"),
        (OP_TEXT, payload),
        (OP_TEXT, b"after"),
    ]
    assert parser.buffered == 0


def test_header_split_inside_the_64_bit_length():
    frame = text(b"q" * 70_000)
    for cut in range(1, 11):
        parser = FrameParser()
        assert parser.feed(frame[:cut]) == []
        assert parser.feed(frame[cut:]) == [(OP_TEXT, b"q" * 70_000)]


def test_continuation_without_a_start_is_a_protocol_error():
    parser = FrameParser()
    assert parser.feed(text(b"ok") + encode_frame(OP_CONT, b"stray")) == [(OP_TEXT, b"ok")]
    assert parser.error is not None and parser.error.close_code == CLOSE_PROTOCOL_ERROR
    with pytest.raises(FrameError, match="continuation"):
        parser.feed(text(b"more"))


def test_new_message_inside_a_fragmented_one_is_a_protocol_error():
    parser = FrameParser()
    parser.feed(text(b"part", fin=False) + text(b"whole"))
    assert parser.error is not None and "before the fragmented one ended" in str(parser.error)
    parser = FrameParser()
    parser.feed(text(b"part", fin=False) + encode_frame(OP_BINARY, b"b"))
    assert parser.error is not None and parser.error.close_code == CLOSE_PROTOCOL_ERROR


@pytest.mark.parametrize(
    "frame, match",
    [
        (encode_frame(OP_PING, b"x" * 126), "over 125"),
        (encode_frame(OP_PING, b"x", fin=False), "fragmented"),
        (encode_frame(OP_CLOSE, b"\x03"), "1-byte"),
        (encode_frame(OP_TEXT, b"hi", mask=b"abcd"), "masked"),
        (bytes([0x80 | 0x40 | OP_TEXT, 2]) + b"hi", "RSV"),
        (bytes([0x80 | 0x3, 0]), "unknown opcode"),
        (bytes([0x80 | 0xB, 0]), "unknown opcode"),
    ],
)
def test_protocol_errors(frame, match):
    parser = FrameParser()
    assert parser.feed(text(b"first") + frame + text(b"never")) == [(OP_TEXT, b"first")]
    assert parser.error is not None and parser.error.close_code == CLOSE_PROTOCOL_ERROR
    assert match in str(parser.error)
    with pytest.raises(FrameError):
        parser.feed(b"")


def test_control_frames_between_fragments_come_out_at_once():
    parser = FrameParser()
    assert parser.feed(text(b"a", fin=False) + encode_frame(OP_PING, b"1")) == [(OP_PING, b"1")]
    assert parser.feed(encode_frame(OP_CONT, b"b", fin=False)) == []
    assert parser.feed(encode_frame(OP_PONG, b"2") + encode_frame(OP_CONT, b"c")) == [
        (OP_PONG, b"2"),
        (OP_TEXT, b"abc"),
    ]


def test_close_frame_ends_parsing():
    close = encode_frame(OP_CLOSE, (1009).to_bytes(2, "big") + b"too big")
    parser = FrameParser()
    got = parser.feed(text(b"a") + close + text(b"after close"))
    assert got == [(OP_TEXT, b"a"), (OP_CLOSE, b"\x03\xf1too big")]
    assert parser.closed and parser.feed(text(b"more")) == []
    empty = FrameParser()
    assert empty.feed(encode_frame(OP_CLOSE, b"")) == [(OP_CLOSE, b"")]


def test_close_reason_must_be_utf8():
    parser = FrameParser()
    parser.feed(encode_frame(OP_CLOSE, b"\x03\xe8\xff\xfe"))
    assert parser.error is not None and parser.error.close_code == CLOSE_INVALID_DATA


def test_oversized_frame_refused_from_its_header():
    parser = FrameParser(max_size=1000)
    header_only = text(b"x" * 5000)[:4]  # 16-bit length: 5000
    assert parser.feed(text(b"ok") + header_only) == [(OP_TEXT, b"ok")]
    assert parser.error is not None and parser.error.close_code == CLOSE_TOO_BIG
    assert parser.buffered == 0
    huge = bytes([0x81, 127]) + (1 << 62).to_bytes(8, "big")
    parser = FrameParser()
    parser.feed(huge)
    assert parser.error is not None and parser.error.close_code == CLOSE_TOO_BIG


def test_oversized_fragmented_message_refused():
    parser = FrameParser(max_size=1000)
    frames = text(b"a" * 600, fin=False) + encode_frame(OP_CONT, b"b" * 600)
    assert parser.feed(frames) == []
    assert parser.error is not None and parser.error.close_code == CLOSE_TOO_BIG
    ok = FrameParser(max_size=1008)  # 1000 bytes of payload and two 4-byte headers
    assert ok.feed(text(b"a" * 500, fin=False) + encode_frame(OP_CONT, b"b" * 500)) == [
        (OP_TEXT, b"a" * 500 + b"b" * 500)
    ]


def test_invalid_utf8_text_is_an_error_binary_is_not():
    parser = FrameParser()
    assert parser.feed(text("caf\u00e9".encode()) + text(b"bad \xc3\x28 utf8")) == [
        (OP_TEXT, "caf\u00e9".encode())
    ]
    assert parser.error is not None and parser.error.close_code == CLOSE_INVALID_DATA
    frag = FrameParser()
    frag.feed(text(b"ok \xe2\x82", fin=False) + encode_frame(OP_CONT, b"\x28 broken"))
    assert frag.error is not None and frag.error.close_code == CLOSE_INVALID_DATA
    binary = FrameParser()
    assert binary.feed(encode_frame(OP_BINARY, b"\xff\xfe")) == [(OP_BINARY, b"\xff\xfe")]


def test_bad_arguments():
    with pytest.raises(ValueError):
        FrameParser(max_size=10)
    with pytest.raises(ValueError):
        encode_frame(16, b"")
    with pytest.raises(ValueError):
        encode_frame(OP_TEXT, b"", mask=b"ab")
