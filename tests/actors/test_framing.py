"""Framers, sans-I/O: byte vectors, any chunking, size limits and malformed headers."""

from __future__ import annotations

import pytest
from actorwire.actors.framing import (
    FrameError,
    IncompleteULEB128,
    Leb128Framer,
    LengthPrefixFramer,
    LineFramer,
    OversizeLine,
    uleb128_decode,
    uleb128_encode,
)
from hypothesis import given
from hypothesis import strategies as st

SMARKETS_VECTORS = [
    (b"", bytes.fromhex("00 00 00 00")),
    (b"a", bytes.fromhex("01 61 00 00")),
    (b"ab", bytes.fromhex("02 61 62 00")),
    (b"abc", bytes.fromhex("03 61 62 63")),
]


@pytest.mark.parametrize(("payload", "frame"), SMARKETS_VECTORS)
def test_leb128_frames_match_the_published_vectors(payload: bytes, frame: bytes) -> None:
    framer = Leb128Framer(min_frame_size=4)
    assert framer.encode(payload) == frame
    framer.receive_data(frame)
    assert framer.frames() == [payload]
    assert framer.buffered == 0


def test_uleb128_of_624485_is_e5_8e_26() -> None:
    assert uleb128_encode(624485) == bytes.fromhex("E5 8E 26")
    assert uleb128_decode(bytes.fromhex("E5 8E 26 FF"), 0) == (624485, 3)
    with pytest.raises(IncompleteULEB128):
        uleb128_decode(bytes.fromhex("E5 8E"))
    with pytest.raises(ValueError, match=">= 0"):
        uleb128_encode(-1)


def test_a_decoder_waits_for_the_minimum_frame_size() -> None:
    framer = Leb128Framer(min_frame_size=4)
    framer.receive_data(b"\x01a\x00")
    assert framer.frames() == []  # three bytes: not yet a frame
    framer.receive_data(b"\x00")
    assert framer.frames() == [b"a"]


def test_a_long_frame_needs_no_padding() -> None:
    framer = Leb128Framer(min_frame_size=4)
    payload = b"x" * 300
    frame = framer.encode(payload)
    assert frame[:2] == uleb128_encode(300) and len(frame) == 302
    framer.receive_data(frame)
    assert framer.frames() == [payload]


def framers() -> st.SearchStrategy[object]:
    return st.sampled_from(
        [
            lambda: Leb128Framer(min_frame_size=4, max_frame_size=10_000),
            lambda: Leb128Framer(max_frame_size=10_000),
            lambda: LengthPrefixFramer(4, max_frame_size=10_000),
            lambda: LengthPrefixFramer(2, "little", max_frame_size=10_000),
        ]
    )


@given(
    make=framers(),
    payloads=st.lists(st.binary(max_size=600), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=30),
)
def test_any_chunking_gives_back_every_payload_once_in_order(
    make: object, payloads: list[bytes], cuts: list[int]
) -> None:
    framer = make()  # type: ignore[operator]
    stream = b"".join(framer.encode(p) for p in payloads)
    got: list[bytes] = []
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        framer.receive_data(stream[start:cut])
        got.extend(framer.frames())
        start = cut
    assert got == payloads
    assert framer.buffered == 0


@given(
    lines=st.lists(st.binary(max_size=200).filter(lambda b: b"\n" not in b and b"\r" not in b)),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_lines_come_back_whatever_the_chunking(lines: list[bytes], cuts: list[int]) -> None:
    framer = LineFramer()
    stream = b"".join(line + b"\r\n" for line in lines)
    got: list[bytes] = []
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        framer.receive_data(stream[start:cut])
        got.extend(framer.frames())
        start = cut
    assert got == lines


@pytest.mark.parametrize(
    "framer",
    [Leb128Framer(max_frame_size=100), LengthPrefixFramer(max_frame_size=100)],
    ids=["leb128", "prefix"],
)
def test_an_oversize_frame_is_refused_before_it_is_buffered_whole(framer: object) -> None:
    good = framer.encode(b"ok")  # type: ignore[attr-defined]
    big = (
        LengthPrefixFramer(max_frame_size=10**6)
        if isinstance(framer, LengthPrefixFramer)
        else (Leb128Framer(max_frame_size=10**6))
    )
    header = big.encode(b"x" * 1000)[:4]  # only the header of a 1,000-byte frame
    framer.receive_data(good + header)  # type: ignore[attr-defined]
    assert framer.frames() == [b"ok"]  # type: ignore[attr-defined]  # the good one first
    with pytest.raises(FrameError, match="over the limit of 100"):
        framer.frames()  # type: ignore[attr-defined]
    with pytest.raises(FrameError):
        framer.receive_data(b"more")  # type: ignore[attr-defined]  # broken for good
    with pytest.raises(FrameError):
        framer.encode(b"x" * 101)  # type: ignore[attr-defined]


def test_a_malformed_leb128_length_is_an_error() -> None:
    framer = Leb128Framer()
    framer.receive_data(b"\xff" * 11)
    with pytest.raises(FrameError, match="malformed LEB128"):
        framer.frames()


def test_a_line_over_the_limit_is_an_error_even_without_its_newline() -> None:
    framer = LineFramer(max_frame_size=10)
    framer.receive_data(b"x" * 11)
    with pytest.raises(FrameError, match="over the limit"):
        framer.frames()
    with pytest.raises(FrameError, match="newline"):
        LineFramer().encode(b"a\nb")


def test_bad_framer_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        LengthPrefixFramer(3)
    with pytest.raises(ValueError, match="byteorder"):
        LengthPrefixFramer(4, "middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_frame_size"):
        LineFramer(0)
    with pytest.raises(ValueError, match="min_frame_size"):
        Leb128Framer(min_frame_size=-1)


def test_a_skipping_line_framer_hands_over_an_oversize_line_and_carries_on() -> None:
    framer = LineFramer(8, skip_oversize=True)
    framer.receive_data(b"short\n" + b"x" * 20)  # the long line's newline is still to come
    first = framer.frames()
    assert first == [b"short", b"x" * 9] and type(first[1]) is OversizeLine
    framer.receive_data(b"x" * 5000 + b"\nnext\n" + b"y" * 12 + b"\nlast\n")
    rest = framer.frames()
    assert rest == [b"next", b"y" * 9, b"last"] and type(rest[1]) is OversizeLine
    assert framer.oversize_lines == 2 and framer.buffered == 0


@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=30))
def test_a_skipping_line_framer_keeps_every_short_line_in_order(lines: list[bytes]) -> None:
    framer = LineFramer(10, skip_oversize=True, strip_cr=False)
    for line in lines:
        framer.receive_data(line + b"\n")
    got = framer.frames()
    assert [bytes(g) for g in got if type(g) is not OversizeLine] == [
        line for line in lines if len(line) <= 10
    ]
    assert sum(type(g) is OversizeLine for g in got) == sum(len(line) > 10 for line in lines)


def test_strip_cr_false_keeps_a_carriage_return_in_the_line() -> None:
    framer = LineFramer(strip_cr=False)
    framer.receive_data(b"PING 1\r\n")
    assert framer.frames() == [b"PING 1\r"]
