"""Framing as smk-python-sdk 9.4.4 names it, byte-identical to the protocol's vectors; the
eto/seto messages with the SDK's packages, names and field numbers; the generated code is
what ``make proto`` makes of the .proto files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from actorwire.adapters import smarkets
from actorwire.adapters.smarkets import (
    MIN_FRAME_SIZE,
    IncompleteULEB128,
    eto,
    frame_decode_all,
    frame_encode,
    seto,
    uleb128_decode,
    uleb128_encode,
)
from hypothesis import given
from hypothesis import strategies as st

PACKAGE = Path(smarkets.__file__).parent


@pytest.mark.parametrize(
    ("payload", "frame"),
    [
        (b"", "00 00 00 00"),
        (b"a", "01 61 00 00"),
        (b"ab", "02 61 62 00"),
        (b"abc", "03 61 62 63"),
        (b"abcd", "04 61 62 63 64"),
    ],
)
def test_frames_match_the_vectors(payload: bytes, frame: str) -> None:
    buf = bytearray(b"prefix")
    frame_encode(buf, payload)
    assert bytes(buf) == b"prefix" + bytes.fromhex(frame)
    assert frame_decode_all(bytes.fromhex(frame)) == ([payload], b"")


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (127, "7f"), (128, "80 01"), (300, "ac 02"), (624485, "e5 8e 26")],
)
def test_uleb128_matches_the_vectors(value: int, encoded: str) -> None:
    assert uleb128_encode(value) == bytearray.fromhex(encoded)
    assert isinstance(uleb128_encode(value), bytearray)
    assert uleb128_decode(bytes.fromhex(encoded) + b"\xff") == (value, len(bytes.fromhex(encoded)))


def test_an_incomplete_number_raises_and_a_partial_frame_waits() -> None:
    with pytest.raises(IncompleteULEB128):
        uleb128_decode(b"\x80\x80")
    assert MIN_FRAME_SIZE == 4
    buf = bytearray()
    frame_encode(buf, b"x" * 300)
    assert frame_decode_all(bytes(buf[:-1])) == ([], bytes(buf[:-1]))
    assert frame_decode_all(b"\x00\x00") == ([], b"\x00\x00")  # under the minimum size


@given(st.lists(st.binary(max_size=400), max_size=20), st.integers(min_value=0, max_value=50))
def test_any_frames_split_anywhere_decode_to_their_payloads(
    payloads: list[bytes], cut: int
) -> None:
    buf = bytearray()
    for payload in payloads:
        frame_encode(buf, payload)
    cut = min(cut, len(buf))
    first, rest = frame_decode_all(bytes(buf[: len(buf) - cut]))
    second, left = frame_decode_all(rest + bytes(buf[len(buf) - cut :]))
    assert first + second == payloads and left == b""


def test_messages_have_the_sdks_packages_names_and_field_numbers() -> None:
    assert eto.DESCRIPTOR.package == "smarkets.eto"
    assert seto.DESCRIPTOR.package == "smarkets.seto"
    assert eto.PAYLOAD_LOGIN == 7 and eto.LOGOUT_UNAUTHORISED == 7
    assert seto.PAYLOAD_ORDER_CREATE == 3 and seto.PAYLOAD_ORDER_CANCEL_REPLACE_REJECTED == 44
    # The body for type value N is field N + 1.
    fields = seto.Payload.DESCRIPTOR.fields_by_name
    for value in seto.PayloadType.DESCRIPTOR.values:
        if value.name == "PAYLOAD_ETO":
            assert fields["eto_payload"].number == 2
            continue
        name = value.name.removeprefix("PAYLOAD_").lower()
        name = "order_execute_voided" if name == "order_execute_voided" else name
        assert fields[name].number == value.number + 1, name
    order = seto.OrderCreate.DESCRIPTOR.fields_by_name
    assert {n: f.number for n, f in order.items()} == {
        "type": 1,
        "side": 4,
        "quantity_type": 5,
        "quantity": 6,
        "price_type": 7,
        "price": 8,
        "maq": 9,
        "tif": 10,
        "reference": 11,
        "market_id": 12,
        "contract_id": 13,
        "label": 14,
    }
    assert smarkets.SIDE_BID == seto.SIDE_BUY == 1 and smarkets.SIDE_OFFER == 2
    assert smarkets.GOOD_TIL_CANCELLED == 1 and smarkets.IMMEDIATE_OR_CANCEL == 2


def test_a_payload_round_trips() -> None:
    payload = seto.Payload(type=seto.PAYLOAD_ORDER_CREATE)
    payload.eto_payload.seq = 3
    payload.order_create.side = seto.SIDE_BUY
    payload.order_create.quantity = 10000
    payload.order_create.price = 2500
    payload.order_create.market_id = 100
    payload.order_create.contract_id = 101
    buf = bytearray()
    frame_encode(buf, payload.SerializeToString())
    (raw,), rest = frame_decode_all(bytes(buf))
    assert rest == b"" and seto.Payload.FromString(raw) == payload


@pytest.mark.timeout(60)
def test_the_generated_code_is_what_make_proto_makes(tmp_path: Path) -> None:
    for name in ("eto.proto", "seto.proto"):
        (tmp_path / name).write_bytes((PACKAGE / name).read_bytes())
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I.",
            "--python_out=.",
            "--pyi_out=.",
            "eto.proto",
            "seto.proto",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    for name in ("eto_pb2.py", "eto_pb2.pyi", "seto_pb2.py", "seto_pb2.pyi"):
        made = (
            (tmp_path / name).read_text().replace("import eto_pb2 as", "from . import eto_pb2 as")
        )
        assert made == (PACKAGE / name).read_text(), f"{name} is stale: run make proto"
