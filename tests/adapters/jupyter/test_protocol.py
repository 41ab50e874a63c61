"""The sans-I/O core with bytes: framing, signing, replay history, JSON, dates; fuzzed."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pytest
from actorwire.adapters.jupyter.protocol import (
    DELIM,
    Codec,
    DigestHistory,
    MessageError,
    ReplayError,
    SignatureError,
    Signer,
    digest_name,
    extract_dates,
    json_default,
    json_packer,
    json_unpacker,
    orjson_packer,
    orjson_unpacker,
    parse_date,
    split_identities,
    squash_dates,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEY = b"test-key-0123456789"
NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def make_msg(msg_id: str = "id-1", content: dict[str, Any] | None = None) -> dict[str, Any]:
    header = {
        "msg_id": msg_id,
        "msg_type": "execute_request",
        "username": "alice",
        "session": "s-1",
        "date": NOW,
        "version": "5.4",
    }
    return {
        "header": header,
        "msg_id": msg_id,
        "msg_type": "execute_request",
        "parent_header": {},
        "metadata": {},
        "content": {"code": "1+1"} if content is None else content,
    }


def codec(key: bytes = KEY, scheme: str = "hmac-sha256", history: int = 2**16) -> Codec:
    return Codec(Signer(key, scheme), history=DigestHistory(history))


def wire(msg: dict[str, Any], c: Codec | None = None) -> list[bytes]:
    """The frames after the delimiter, as deserialize takes them."""
    frames = (c or codec()).serialize(msg)
    return frames[frames.index(DELIM) + 1 :]


# -- signing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme", ["hmac-sha256", "hmac-sha1", "hmac-sha512", "hmac-md5", "hmac-sha3_256"]
)
def test_sign_is_hex_hmac_of_the_four_frames(scheme: str) -> None:
    parts = [b'{"a":1}', b"{}", b"{}", b'{"code":"x"}']
    expected = hmac.new(KEY, b"".join(parts), getattr(hashlib, scheme[5:])).hexdigest()
    assert Signer(KEY, scheme).sign(parts) == expected.encode()


def test_sign_accepts_memoryviews() -> None:
    parts = [b"a", b"b", b"c", b"d"]
    signer = Signer(KEY)
    assert signer.sign([memoryview(p) for p in parts]) == signer.sign(parts)


def test_empty_key_signs_nothing() -> None:
    signer = Signer(b"")
    assert not signer.enabled
    assert signer.sign([b"a", b"b", b"c", b"d"]) == b""


@pytest.mark.parametrize("scheme", ["hmac-nosuchhash", "sha256", "hmac-", "hmac-shake_128", ""])
def test_unknown_scheme_is_a_value_error_naming_it(scheme: str) -> None:
    with pytest.raises(ValueError, match="signature_scheme") as info:
        Signer(KEY, scheme)
    assert repr(scheme) in str(info.value)


@pytest.mark.parametrize(
    ("scheme", "length"),
    [("hmac-sha256", 64), ("hmac-sha1", 40), ("hmac-sha512", 128), ("hmac-md5", 32)],
)
def test_signature_length_is_that_of_the_signatures(scheme: str, length: int) -> None:
    signer = Signer(KEY, scheme)
    assert signer.signature_length == length == len(signer.sign([b"a"]))
    assert Signer(b"", scheme).signature_length == 0


def test_digest_name_returns_the_hash_name() -> None:
    assert digest_name("hmac-sha512") == "sha512"


def test_signer_repr_hides_the_key() -> None:
    signer = Signer(KEY)
    assert KEY.decode() not in repr(signer)
    assert repr(signer) == "Signer('hmac-sha256', keyed)"


def test_check_accepts_the_right_signature_only() -> None:
    signer = Signer(KEY)
    parts = [b"a", b"b", b"c", b"d"]
    sig = signer.sign(parts)
    other = sig[:-1] + (b"1" if sig.endswith(b"0") else b"0")
    assert signer.check(sig, parts)
    assert not signer.check(other, parts)


# -- replay history ------------------------------------------------------------------------


def test_history_is_bounded_and_forgets_the_oldest() -> None:
    history = DigestHistory(3)
    for sig in (b"a", b"b", b"c", b"d"):
        history.add(sig)
    assert len(history) == 3
    assert b"a" not in history
    assert all(s in history for s in (b"b", b"c", b"d"))


def test_history_of_size_zero_keeps_nothing() -> None:
    history = DigestHistory(0)
    history.add(b"a")
    assert b"a" not in history
    assert len(history) == 0


def test_shrinking_history_trims_it() -> None:
    history = DigestHistory(10)
    for i in range(10):
        history.add(bytes([i]))
    history.size = 4
    assert len(history) == 4
    assert bytes([9]) in history
    assert bytes([5]) not in history


def test_history_copy_is_independent() -> None:
    history = DigestHistory(10)
    history.add(b"a")
    copy = history.copy()
    copy.add(b"b")
    assert b"a" in copy
    assert b"b" not in history


@pytest.mark.parametrize("size", [-1, 1.5, "10", True])
def test_history_size_must_be_a_non_negative_int(size: Any) -> None:
    with pytest.raises(ValueError, match="digest_history_size"):
        DigestHistory(size)


# -- framing -------------------------------------------------------------------------------


def test_split_identities_at_the_delimiter() -> None:
    idents, rest = split_identities([b"id1", b"id2", DELIM, b"sig", b"h"])
    assert idents == [b"id1", b"id2"]
    assert rest == [b"sig", b"h"]


def test_split_identities_takes_memoryviews_and_returns_bytes_idents() -> None:
    idents, rest = split_identities([memoryview(b"id1"), memoryview(DELIM), b"x"])
    assert idents == [b"id1"]
    assert type(idents[0]) is bytes
    assert rest == [b"x"]


def test_split_identities_without_delimiter_is_a_message_error() -> None:
    with pytest.raises(MessageError, match="no <IDS\\|MSG> delimiter"):
        split_identities([b"a", b"b"])


def test_split_identities_rejects_a_frame_that_is_not_bytes_like() -> None:
    with pytest.raises(MessageError, match="not bytes-like"):
        split_identities([12345, DELIM])


@pytest.mark.parametrize("key", [KEY, b""])
def test_strip_identities_of_a_whole_message(key: bytes) -> None:
    c = codec(key)
    for ident, idents in ((None, []), (b"r", [b"r"]), ([b"r1", b"x" * 64], [b"r1", b"x" * 64])):
        frames = [*c.serialize(make_msg(), ident), b"buf"]
        got, rest = c.strip_identities(frames)
        assert got == idents
        assert rest == frames[len(idents) + 1 :]
    views = [memoryview(f) for f in c.serialize(make_msg(), b"r")]
    got, _ = c.strip_identities(views)
    assert got == [b"r"] and type(got[0]) is bytes


@pytest.mark.parametrize("key", [KEY, b""])
def test_strip_identities_leaves_the_frames_after_the_delimiter(key: bytes) -> None:
    c = codec(key)
    frames = wire(make_msg(), c)
    got, rest = c.strip_identities(frames)
    assert got is None and rest is frames
    # the signature of another scheme or peer, no delimiter: left for deserialize to judge
    other = wire(make_msg(), codec(KEY, "hmac-sha512"))
    assert c.strip_identities(other) == (None, other)
    assert c.strip_identities([]) == (None, [])
    odd: list[Any] = [12345, b"x"]
    assert c.strip_identities(odd) == (None, odd)


def test_serialize_lays_out_the_frames() -> None:
    c = codec()
    msg = make_msg()
    frames = c.serialize(msg, [b"r1", b"r2"])
    assert frames[:3] == [b"r1", b"r2", DELIM]
    parts = frames[4:]
    assert len(parts) == 4
    assert frames[3] == hmac.new(KEY, b"".join(parts), hashlib.sha256).hexdigest().encode()
    assert orjson.loads(parts[0])["date"] == "2024-05-06T07:08:09.123456Z"
    assert orjson.loads(parts[3]) == {"code": "1+1"}


@pytest.mark.parametrize(
    ("ident", "prefix"), [(None, []), (b"one", [b"one"]), ([b"a", b"b"], [b"a", b"b"])]
)
def test_serialize_ident_forms(ident: Any, prefix: list[bytes]) -> None:
    frames = codec().serialize(make_msg(), ident)
    assert frames[: len(prefix)] == prefix
    assert frames[len(prefix)] == DELIM


@pytest.mark.parametrize(
    ("content", "packed"), [(None, b"{}"), (b'{"x":1}', b'{"x":1}'), ('{"y":2}', b'{"y":2}')]
)
def test_serialize_content_forms(content: Any, packed: bytes) -> None:
    msg = make_msg()
    msg["content"] = content
    assert codec().serialize(msg)[-1] == packed


def test_serialize_rejects_other_content() -> None:
    msg = make_msg()
    msg["content"] = 42
    with pytest.raises(TypeError, match="content must be a dict, bytes or str, got int"):
        codec().serialize(msg)


def test_round_trip_parses_header_dates() -> None:
    c = codec()
    msg = make_msg()
    msg["parent_header"] = dict(make_msg("parent")["header"])
    got = c.deserialize([*wire(msg, c), b"buf"])
    assert got["header"] == msg["header"]
    assert got["header"]["date"] == NOW
    assert got["header"]["date"].tzinfo is not None
    assert got["parent_header"]["date"] == NOW
    assert got["msg_id"] == "id-1"
    assert got["msg_type"] == "execute_request"
    assert got["content"] == {"code": "1+1"}
    assert got["metadata"] == {}
    assert [bytes(b) for b in got["buffers"]] == [b"buf"]
    assert all(isinstance(b, memoryview) for b in got["buffers"])


def test_content_dates_stay_strings() -> None:
    c = codec()
    got = c.deserialize(wire(make_msg(content={"when": NOW}), c))
    assert got["content"] == {"when": "2024-05-06T07:08:09.123456Z"}


def test_header_without_date_gets_one() -> None:
    c = Codec(Signer(KEY), now=lambda: NOW)
    msg = make_msg()
    del msg["header"]["date"]
    assert c.deserialize(wire(msg, c))["header"]["date"] == NOW


def test_buffers_without_copy_are_views_of_the_given_frames() -> None:
    c = codec()
    buf = bytearray(b"zero-copy")
    got = c.deserialize([*wire(make_msg(), c), buf], copy=False)
    buf[0:4] = b"ZERO"
    assert bytes(got["buffers"][0]) == b"ZERO-copy"


def test_buffers_with_copy_do_not_alias_the_given_frames() -> None:
    c = codec()
    buf = bytearray(b"copied")
    got = c.deserialize([*wire(make_msg(), c), buf], copy=True)
    buf[0:1] = b"C"
    assert bytes(got["buffers"][0]) == b"copied"


def test_content_false_leaves_content_packed_and_does_not_record() -> None:
    c = codec()
    frames = wire(make_msg(), c)
    peeked = c.deserialize(frames, content=False)
    assert peeked["content"] == b'{"code":"1+1"}'
    assert c.deserialize(frames)["content"] == {"code": "1+1"}


def test_too_few_frames_is_a_message_error() -> None:
    with pytest.raises(MessageError, match="3 frame\\(s\\) after the <IDS\\|MSG> delimiter"):
        codec().deserialize([b"sig", b"{}", b"{}"])


def test_empty_signature_is_rejected_when_keyed() -> None:
    c = codec()
    frames = wire(make_msg(), c)
    with pytest.raises(SignatureError, match="unsigned message"):
        codec().deserialize([b"", *frames[1:]])


def test_wrong_key_is_rejected() -> None:
    frames = wire(make_msg(), codec(b"other-key"))
    with pytest.raises(SignatureError, match="invalid signature") as info:
        codec().deserialize(frames)
    assert KEY.decode() not in str(info.value)
    assert "other-key" not in str(info.value)


def test_wrong_scheme_is_rejected() -> None:
    frames = wire(make_msg(), codec(scheme="hmac-sha512"))
    with pytest.raises(SignatureError):
        codec().deserialize(frames)


@pytest.mark.parametrize("index", [1, 2, 3, 4])
def test_altered_frame_is_rejected(index: int) -> None:
    frames = wire(make_msg(), codec())
    frames[index] = frames[index].replace(b"}", b" }", 1)
    with pytest.raises(SignatureError, match="invalid signature"):
        codec().deserialize(frames)


def test_replay_is_rejected() -> None:
    c = codec()
    frames = wire(make_msg(), c)
    c.deserialize(frames)
    with pytest.raises(ReplayError, match="duplicate signature"):
        c.deserialize(frames)


def test_replay_accepted_without_history() -> None:
    c = codec(history=0)
    frames = wire(make_msg(), c)
    c.deserialize(frames)
    assert c.deserialize(frames)["msg_id"] == "id-1"


def test_unsigned_codec_ignores_signatures() -> None:
    c = codec(b"")
    frames = wire(make_msg(), codec())  # signed by a keyed peer
    assert c.deserialize(frames)["msg_id"] == "id-1"
    assert c.serialize(make_msg())[1] == b""


def signed(parts: list[bytes], key: bytes = KEY) -> list[bytes]:
    return [Signer(key).sign(parts), *parts]


@pytest.mark.parametrize(
    ("parts", "match"),
    [
        ([b"not json", b"{}", b"{}", b"{}"], "malformed header frame"),
        ([b'{"msg_id":"a","msg_type":"t"}', b"[1]", b"{}", b"{}"], "parent_header frame"),
        ([b'{"msg_id":"a","msg_type":"t"}', b"{}", b"null", b"{}"], "metadata frame"),
        ([b'{"msg_id":"a","msg_type":"t"}', b"{}", b"{}", b'"s"'], "content frame"),
        ([b'{"msg_type":"t"}', b"{}", b"{}", b"{}"], "msg_id and msg_type are required"),
        ([b"[" * 5000, b"{}", b"{}", b"{}"], "malformed header frame"),
    ],
)
def test_malformed_dict_frames_are_message_errors(parts: list[bytes], match: str) -> None:
    with pytest.raises(MessageError, match=match):
        codec().deserialize(signed(parts))


def test_error_classes() -> None:
    assert issubclass(MessageError, ValueError)
    assert issubclass(SignatureError, MessageError)
    assert issubclass(ReplayError, SignatureError)


# -- JSON ----------------------------------------------------------------------------------


def test_json_default_dates() -> None:
    assert json_default(NOW) == "2024-05-06T07:08:09.123456Z"
    plus2 = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert json_default(plus2) == "2024-01-01T12:00:00+02:00"
    assert json_default(date(2024, 1, 2)) == "2024-01-02"


def test_json_default_takes_naive_datetimes_as_local_time() -> None:
    naive = datetime(2024, 1, 1, 12, 0)
    assert json_default(naive) == naive.astimezone().isoformat().replace("+00:00", "Z")


def test_json_default_bytes_numpy_iterables_numbers() -> None:
    assert json_default(b"\x00\xff") == "AP8="
    assert json_default(np.arange(3)) == [0, 1, 2]
    assert json_default(np.array([[1.5], [2.5]])) == [[1.5], [2.5]]
    assert json_default(np.float32(0.5)) == 0.5
    assert json_default(np.int64(7)) == 7
    assert type(json_default(np.int64(7))) is int
    assert json_default({3}) == [3]


def test_json_default_refuses_the_rest_naming_the_type() -> None:
    with pytest.raises(TypeError, match="Decimal is not JSON serializable"):
        json_default(Decimal("1.5"))


def test_packers_write_dates_bytes_and_numpy() -> None:
    value = {"d": NOW, "b": b"hi", "a": np.arange(2), "n": np.float64(1.5)}
    expected = {"d": "2024-05-06T07:08:09.123456Z", "b": "aGk=", "a": [0, 1], "n": 1.5}
    assert json.loads(orjson_packer(value)) == expected
    assert json.loads(json_packer(value)) == expected


def test_orjson_packer_falls_back_for_what_orjson_refuses() -> None:
    assert orjson_packer({1: "a"}) == b'{"1": "a"}'
    assert json.loads(orjson_packer({"big": 2**70})) == {"big": 2**70}


def test_orjson_packer_writes_nan_as_null_like_jupyter_client() -> None:
    assert orjson_packer({"x": float("nan")}) == b'{"x":null}'


def test_unpackers_fall_back_and_replace_bad_utf8() -> None:
    assert math.isnan(orjson_unpacker(b'{"x": NaN}')["x"])
    assert orjson_unpacker(b'{"x": "\xff"}') == {"x": "\ufffd"}
    assert json_unpacker(memoryview(b"[1]")) == [1]
    assert orjson_unpacker(memoryview(b"[2]")) == [2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-06T07:08:09.123456Z", NOW),
        ("2024-05-06T07:08:09.123456+00:00", NOW),
        ("2024-05-06T09:08:09.123456+0200", NOW),
        ("2024-05-06T07:08:09Z", NOW.replace(microsecond=0)),
        ("2024-05-06T07:08:09.1Z", NOW.replace(microsecond=100000)),
    ],
)
def test_parse_date(text: str, expected: datetime) -> None:
    assert parse_date(text) == expected


def test_parse_date_naive_is_local() -> None:
    got = parse_date("2024-05-06T07:08:09")
    assert got == datetime(2024, 5, 6, 7, 8, 9).astimezone()
    assert got.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    ["2024-13-45T99:99:99Z", "2024-05-06T07:08:09\n", "not a date", "2024-05-06", "", None, 5],
)
def test_parse_date_leaves_the_rest(text: Any) -> None:
    assert parse_date(text) == text


def test_extract_and_squash_dates() -> None:
    tree = {"a": ["2024-05-06T07:08:09.123456Z", {"b": "x"}], "c": ("2024-05-06T07:08:09Z",)}
    got = extract_dates(tree)
    assert got["a"][0] == NOW
    assert got["a"][1] == {"b": "x"}
    assert isinstance(got["c"][0], datetime)
    assert tree["a"][0] == "2024-05-06T07:08:09.123456Z"  # the input is not changed
    assert squash_dates({"t": [NOW]}) == {"t": [NOW.isoformat()]}


# -- fuzzing -------------------------------------------------------------------------------

frames_strategy = st.lists(st.binary(max_size=64), max_size=10)
fuzz_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@fuzz_settings
@given(frames=frames_strategy)
def test_fuzz_split_identities_raises_only_message_error(frames: list[bytes]) -> None:
    try:
        idents, rest = split_identities(frames)
    except MessageError:
        assert DELIM not in frames
    else:
        assert [*idents, DELIM, *rest] == frames[: len(idents) + 1 + len(rest)]


@fuzz_settings
@given(frames=frames_strategy, keyed=st.booleans())
def test_fuzz_deserialize_raises_only_message_errors(frames: list[bytes], keyed: bool) -> None:
    c = codec(KEY if keyed else b"")
    try:
        msg = c.deserialize(frames)
    except MessageError:
        return
    assert isinstance(msg["header"], dict)


@fuzz_settings
@given(frames=frames_strategy, keyed=st.booleans())
def test_fuzz_strip_identities_never_raises(frames: list[bytes], keyed: bool) -> None:
    idents, rest = codec(KEY if keyed else b"").strip_identities(frames)
    if idents is None:
        assert rest is frames
    else:
        assert [*idents, DELIM, *rest] == frames


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
dict_frame = st.one_of(
    st.binary(max_size=80),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=8), json_values, max_size=6).map(
        lambda d: json.dumps({"msg_id": "m", "msg_type": "t", **d}).encode()
    ),
)


@fuzz_settings
@given(
    parts=st.lists(dict_frame, min_size=4, max_size=4),
    buffers=st.lists(st.binary(max_size=16), max_size=3),
    content=st.booleans(),
)
def test_fuzz_correctly_signed_garbage_raises_only_message_errors(
    parts: list[bytes], buffers: list[bytes], content: bool
) -> None:
    c = codec(history=0)
    try:
        msg = c.deserialize([*signed(parts), *buffers], content=content)
    except MessageError:
        return
    assert [bytes(b) for b in msg["buffers"]] == buffers
