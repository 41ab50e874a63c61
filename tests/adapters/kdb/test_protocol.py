"""The sans-I/O core of the kdb Insights adapter: every message both ways (the spec's examples
made JSON), every error code from the input that triggers it, both ends' rules, ids across
reconnects, resync, chunk splitting and reassembly, and hypothesis round trips and fuzzing."""

from __future__ import annotations

import itertools
import json
import pickle
from collections.abc import Callable, Collection, Hashable
from dataclasses import replace
from typing import Any

import pytest
from actorwire.actors.errors import ActorwireError
from actorwire.adapters.kdb.protocol import (
    MAX_ID,
    MESSAGE_TOO_BIG,
    POLICY_VIOLATION,
    UNSUPPORTED_DATA,
    Chunk,
    ClientConnectionState,
    ClientOutput,
    ClientState,
    Close,
    DataMessage,
    ErrorCode,
    ErrorReply,
    GatewayConnectionState,
    GatewayError,
    Message,
    MessageTooBig,
    ProtocolError,
    Send,
    ServerAction,
    ServerState,
    Snap,
    SnapFailed,
    SnappedReply,
    SnapRequest,
    SnapResult,
    Subscribe,
    Subscribed,
    SubscribedReply,
    SubscribeRequest,
    SubscriptionError,
    SubsnappedReply,
    Table,
    UndecodableError,
    Unsubscribe,
    Unsubscribed,
    UnsubscribedReply,
    UnsubscribeRequest,
    Update,
    UpdateMessage,
    decode,
    encode,
    encode_frames,
    filter_of,
    from_dict,
    split_message,
    table_rows,
    to_dict,
)
from hypothesis import given, settings
from hypothesis import strategies as st

U1 = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
U2 = "6fa459ea-ee8a-3ca4-894e-db77e160355e"
UNKNOWN = "00000000-0000-0000-0000-00000000dead"
TRADES: Table = {"ccyPair": ["EUR/USD"] * 4, "val": [1.02, 1.01, 1.03, 1.01]}
TOPICS: dict[str, tuple[str, ...]] = {"trade": ("ccyPair", "venue"), "quote": ("sym",), "plain": ()}


def uuids() -> Callable[[], str]:
    """A deterministic subscription UUID factory."""
    n = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(n):012x}"


def gateway(**kw: Any) -> GatewayConnectionState:
    return GatewayConnectionState(TOPICS.get, new_subscription=uuids(), **kw)


def sent(outputs: list[Any]) -> list[Message]:
    return [o.message for o in outputs if isinstance(o, Send)]


def events(outputs: list[Any]) -> list[Any]:
    return [o for o in outputs if not isinstance(o, Send)]


def errors(actions: list[ServerAction]) -> list[ErrorReply]:
    return [m for m in sent(actions) if isinstance(m, ErrorReply)]


def obj(text: str | bytes) -> Any:
    return json.loads(text)


# --------------------------------------------------------------------------- messages

CLIENT_MESSAGES: list[Message] = [
    SnapRequest(1, "trade"),
    SnapRequest(2, "trade", {"ccyPair": "EUR/USD"}, response_id="r-2"),
    SnapRequest(0, "", {}),
    SubscribeRequest(3, "trade", {"ccyPair": ["EUR/USD", "GBP/USD"], "venue": 7}),
    SubscribeRequest(4, "trade", None, {"any": ["json", 1]}, with_snapshot=True),
    SubscribeRequest(MAX_ID, "ünïcode ✓", {"b": [True, 1.5, -3]}, 0, with_snapshot=True),
    UnsubscribeRequest(5, U1),
    UnsubscribeRequest(6, U2.upper(), response_id=6),
]
SERVER_MESSAGES: list[Message] = [
    SubscribedReply(1234, U1),
    SubscribedReply(1234, U1, response_id="x"),
    SnappedReply(1235, TRADES),
    SnappedReply(1235, {}, response_id=[1, 2]),
    SnappedReply(7, TRADES, chunk=Chunk(0, 2)),
    SubsnappedReply(1236, TRADES, U1),
    SubsnappedReply(1236, {"a": []}, U1, response_id=None, chunk=Chunk(4, 5)),
    UnsubscribedReply(1237, U1),
    UnsubscribedReply(1237),
    UpdateMessage(1236, TRADES, U1, "trade", {"ccyPair": "EUR/USD"}),
    UpdateMessage(1236, {"x": [None, {"nested": [1]}, "s"]}, U1, response_id="r"),
    UpdateMessage(9, TRADES, U2, chunk=Chunk(1, 3)),
    ErrorReply(1234, ErrorCode.ID_NOT_INCREASING),
    ErrorReply(None, ErrorCode.INVALID_PAYLOAD, "not JSON", "r"),
    ErrorReply(5, 99, "a code the spec does not list"),
]


@pytest.mark.parametrize("msg", CLIENT_MESSAGES, ids=repr)
def test_client_messages_round_trip(msg: Message) -> None:
    text = encode(msg)
    assert decode(text, origin="client") == msg
    assert decode(text) == msg
    assert from_dict(to_dict(msg), origin="client") == msg
    assert text == json.dumps(json.loads(text), separators=(",", ":"))  # compact ASCII


@pytest.mark.parametrize("msg", SERVER_MESSAGES, ids=repr)
def test_server_messages_round_trip(msg: Message) -> None:
    text = encode(msg)
    assert decode(text, origin="server") == msg
    assert decode(text) == msg
    assert from_dict(to_dict(msg), origin="server") == msg


# The spec's examples, made JSON: subTopic an object, "data" quoted, the update's missing
# comma put back.
SPEC_EXAMPLES: list[tuple[str, Message]] = [
    (
        '{"type":"subscribe","payload":{"topic":"trade","subTopic":{"ccyPair":"EUR/USD"}},'
        '"id":1234}',
        SubscribeRequest(1234, "trade", {"ccyPair": "EUR/USD"}),
    ),
    (
        '{"type":"subscribed","payload":{"subscription":"' + U1 + '"},"id":1234}',
        SubscribedReply(1234, U1),
    ),
    (
        '{"type":"snap","payload":{"topic":"trade","subTopic":{"ccyPair":"EUR/USD"}},"id":1235}',
        SnapRequest(1235, "trade", {"ccyPair": "EUR/USD"}),
    ),
    (
        '{"type":"snapped","payload":{"data":{"ccyPair":["EUR/USD","EUR/USD","EUR/USD",'
        '"EUR/USD"],"val":[1.02,1.01,1.03,1.01]}},"id":1235}',
        SnappedReply(1235, TRADES),
    ),
    (
        '{"type":"subsnap","payload":{"topic":"trade","subTopic":{"ccyPair":"EUR/USD"}},"id":1236}',
        SubscribeRequest(1236, "trade", {"ccyPair": "EUR/USD"}, with_snapshot=True),
    ),
    (
        '{"type":"subsnapped","payload":{"data":{"ccyPair":["EUR/USD","EUR/USD","EUR/USD",'
        '"EUR/USD"],"val":[1.02,1.01,1.03,1.01]},"subscription":"' + U1 + '"},"id":1236}',
        SubsnappedReply(1236, TRADES, U1),
    ),
    (
        '{"type":"unsubscribe","payload":{"subscription":"' + U1 + '"},"id":1237}',
        UnsubscribeRequest(1237, U1),
    ),
    (
        '{"type":"unsubscribed","payload":{"subscription":"' + U1 + '"},"id":1237}',
        UnsubscribedReply(1237, U1),
    ),
    (
        '{"type":"update","payload":{"topic":"trade","subTopic":{"ccyPair":"EUR/USD"},'
        '"data":{"ccyPair":["EUR/USD","EUR/USD","EUR/USD","EUR/USD"],'
        '"val":[1.02,1.01,1.03,1.01]},"subscription":"' + U1 + '"},"id":1236}',
        UpdateMessage(1236, TRADES, U1, "trade", {"ccyPair": "EUR/USD"}),
    ),
    ('{"type":"error","id":1234,"error":29}', ErrorReply(1234, ErrorCode.ID_NOT_INCREASING)),
]


@pytest.mark.parametrize(("text", "msg"), SPEC_EXAMPLES, ids=[m.type for _, m in SPEC_EXAMPLES])
def test_spec_examples_made_json(text: str, msg: Message) -> None:
    assert decode(text) == msg
    assert obj(encode(msg)) == obj(text)


def test_the_spec_examples_as_printed_are_refused() -> None:
    printed = '{"type":"snap","payload":{"topic":"trade","subTopic":{"ccyPair","EUR/USD"}},"id":1}'
    with pytest.raises(UndecodableError, match="not JSON"):
        decode(printed)


def test_wire_shapes() -> None:
    assert to_dict(SubscribeRequest(3, "t", {"s": ("a", "b")}, "r", True)) == {
        "type": "subsnap",
        "id": 3,
        "payload": {"topic": "t", "subTopic": {"s": ["a", "b"]}},
        "response_id": "r",
    }
    assert to_dict(UpdateMessage(2, {"v": [1]}, U1, "t", chunk=Chunk(0, 2))) == {
        "type": "update",
        "id": 2,
        "payload": {
            "topic": "t",
            "data": {"v": [1]},
            "subscription": U1,
            "chunk": {"index": 0, "count": 2},
        },
    }
    assert to_dict(ErrorReply(None, ErrorCode.BAD_ID, "why")) == {
        "type": "error",
        "id": None,
        "error": 28,
        "message": "why",
    }
    assert SubscribeRequest(1, "t").type == "subscribe"
    assert SnapRequest.type == "snap" and UpdateMessage.type == "update"


def test_unsubscribed_with_an_empty_or_no_payload_is_taken() -> None:
    # The spec's table says the payload is empty; its example carries the subscription.
    assert decode('{"type":"unsubscribed","id":3}') == UnsubscribedReply(3)
    assert decode('{"type":"unsubscribed","id":3,"payload":{}}') == UnsubscribedReply(3)


def test_integral_float_ids_and_codes_are_integers() -> None:
    # q's JSON parser makes every number a float.
    msg = decode('{"type":"snap","id":5.0,"payload":{"topic":"t"}}')
    assert msg == SnapRequest(5, "t") and type(msg.id) is int
    err = decode('{"type":"error","id":5.0,"error":63.0}')
    assert err == ErrorReply(5, ErrorCode.NO_SUCH_TOPIC)
    assert isinstance(err, ErrorReply) and err.error is ErrorCode.NO_SUCH_TOPIC


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"type":"snapped","id":1,"payload":{"data":{"a":[1],"b":[]}}}', "same length"),
        ('{"type":"snapped","id":1,"payload":{"data":{"a":1}}}', "must be a list"),
        ('{"type":"snapped","id":1,"payload":{"data":[[1]]}}', "must be an object"),
        ('{"type":"snapped","id":1,"payload":{}}', "must be an object"),
        ('{"type":"snapped","id":1}', '"payload" must be an object'),
        ('{"type":"snapped","payload":{"data":{}}}', '"id" must be an integer'),
        ('{"type":"subscribed","id":1,"payload":{"subscription":"x"}}', "UUID"),
        ('{"type":"subsnapped","id":1,"payload":{"data":{}}}', "UUID"),
        ('{"type":"update","id":1,"payload":{"data":{},"subscription":7}}', "UUID"),
        ('{"type":"update","id":1,"payload":{"topic":3,"data":{}}}', '"payload.topic"'),
        ('{"type":"update","id":1,"payload":{"subTopic":"x","data":{}}}', "subTopic"),
        ('{"type":"snapped","id":1,"payload":{"data":{},"chunk":{"index":2,"count":2}}}', "chunk"),
        ('{"type":"snapped","id":1,"payload":{"data":{},"chunk":[0,1]}}', "chunk"),
        ('{"type":"error","id":"1","error":20}', '"id" must be null'),
        ('{"type":"error","id":1,"error":"20"}', '"error" must be an integer'),
        ('{"type":"error","id":1,"error":20,"message":5}', '"message" must be a string'),
        ('{"type":"subscribd","id":1,"payload":{}}', "did you mean 'subscribed'"),
        ('{"id":1,"payload":{}}', 'no "type"'),
    ],
)
def test_gateway_messages_are_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem.replace("(", r"\(")) as info:
        decode(text, origin="server")
    assert info.value.code is None  # only a request's refusal carries a code


@pytest.mark.parametrize(
    ("frame", "error", "close"),
    [
        ("nope", "not JSON", POLICY_VIOLATION),
        (
            '{"type":"snap","id":1,"payload":{"topic":NaN}}',
            "NaN is not a JSON value",
            POLICY_VIOLATION,
        ),
        ('{"id":Infinity}', "Infinity", POLICY_VIOLATION),
        ("[1, 2]", "must be an object", POLICY_VIOLATION),
        ('"snap"', "must be an object", POLICY_VIOLATION),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply", POLICY_VIOLATION),
        (b'{"type":"snap"}', "binary frame", UNSUPPORTED_DATA),
    ],
)
def test_undecodable_frames(frame: str | bytes, error: str, close: int) -> None:
    with pytest.raises(UndecodableError, match=error) as info:
        decode(frame)
    assert info.value.close_code == close
    assert info.value.code is ErrorCode.INVALID_PAYLOAD


def test_size_limit() -> None:
    text = encode(SnapRequest(1, "x" * 100))
    assert decode(text, max_size=len(text)) == SnapRequest(1, "x" * 100)
    with pytest.raises(MessageTooBig, match=f"over the limit of {len(text) - 1} bytes") as info:
        decode(text, max_size=len(text) - 1)
    assert info.value.close_code == MESSAGE_TOO_BIG
    wide = encode(SnapRequest(1, "é" * 40))  # ASCII on the wire: \u00e9
    assert decode(wide, max_size=len(wide)).topic == "é" * 40  # type: ignore[union-attr]
    raw = '{"type":"snap","id":1,"payload":{"topic":"' + "é" * 40 + '"}}'
    with pytest.raises(MessageTooBig, match=f"{len(raw) + 40} bytes"):
        decode(raw, max_size=len(raw) + 39)  # é is 2 bytes of UTF-8


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        (SnapRequest(-1, "t"), "SnapRequest.id must be an int from 0"),
        (SnapRequest(True, "t"), "SnapRequest.id"),
        (SnapRequest(1, 5), "SnapRequest.topic must be a str"),  # type: ignore[arg-type]
        (SnapRequest(1, "t", {"c": {"x": 1}}), r"sub_topic\['c'\]"),  # type: ignore[dict-item]
        (SnapRequest(1, "t", {"c": [None]}), "must hold str, int, float or bool"),  # type: ignore[list-item]
        (SnapRequest(1, "t", ["c"]), "sub_topic must be a mapping"),  # type: ignore[arg-type]
        (UnsubscribeRequest(1, "not-a-uuid"), "UnsubscribeRequest.subscription must be a UUID"),
        (SnappedReply(1, {"a": [1], "b": [1, 2]}), "same length"),
        (SnappedReply(1, {"a": float("nan")}), "must be a list"),  # type: ignore[dict-item]
        (SnappedReply(1, {"a": [float("nan")]}), "not JSON"),
        (SnappedReply(1, {"a": [object()]}), "not JSON"),
        (SnappedReply(1, {}, chunk=Chunk(2, 2)), "0 <= index < count"),
        (ErrorReply(1, "x"), "ErrorReply.error must be an int"),  # type: ignore[arg-type]
        (SubscribeRequest(1, "t", with_snapshot=1), "with_snapshot must be a bool"),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_what_does_not_fit_the_wire(msg: Message, error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):
        encode(msg)


def test_filter_of() -> None:
    assert filter_of(None) == filter_of({}) == {}
    assert filter_of({"a": "x", "b": [1, 2], "c": ()}) == {"a": ("x",), "b": (1, 2), "c": ()}


def test_table_rows() -> None:
    assert table_rows({}) == 0 and table_rows(TRADES) == 4
    with pytest.raises(ValueError, match="same length"):
        table_rows({"a": [1], "b": []})


# --------------------------------------------------------------------------- errors


def test_every_spec_code_with_its_description() -> None:
    assert {int(c) for c in ErrorCode} == {20, 21, 22, 28, 29, 42, 43, 61, 62, 63, 64}
    assert ErrorCode(64).description == "Not all subscription topics provided as valid keyed tables"
    assert all(c.description for c in ErrorCode)


def test_gateway_error() -> None:
    err = GatewayError(63, "snap (id 3): topic 'x' does not exist")
    assert isinstance(err, ActorwireError) and err.code is ErrorCode.NO_SUCH_TOPIC
    assert str(err) == (
        "kdb gateway error 63 (Provided topic does not exist for subscription): "
        "snap (id 3): topic 'x' does not exist"
    )
    assert str(GatewayError(ErrorCode.NO_TYPE)) == "kdb gateway error 20: No type"
    unknown = GatewayError(7)
    assert unknown.code == 7 and not isinstance(unknown.code, ErrorCode)
    assert str(unknown) == "kdb gateway error 7: unknown error code"
    back = pickle.loads(pickle.dumps(err))
    assert (back.code, back.message, str(back)) == (err.code, err.message, str(err))
    assert ErrorReply(3, 42, "dup").gateway_error.code is ErrorCode.ALREADY_SUBSCRIBED


# --------------------------------------------------------------------------- gateway side


def snap(mid: int, topic: str = "trade", sub: Any = None, **extra: Any) -> str:
    payload: dict[str, Any] = {"topic": topic}
    if sub is not None:
        payload["subTopic"] = sub
    return json.dumps({"type": "snap", "id": mid, "payload": payload, **extra})


def sub(mid: int, topic: str = "trade", sub_topic: Any = None, kind: str = "subscribe") -> str:
    payload: dict[str, Any] = {"topic": topic}
    if sub_topic is not None:
        payload["subTopic"] = sub_topic
    return json.dumps({"type": kind, "id": mid, "payload": payload})


def unsub(mid: int, subscription: Any) -> str:
    return json.dumps({"type": "unsubscribe", "id": mid, "payload": {"subscription": subscription}})


# Each request alone on a fresh connection: the code, and the id the error carries.
ONE_FRAME_ERRORS: list[tuple[str, int, int | None, str]] = [
    ('{"type":"snap","payload":{"topic":"trade"}}', 28, None, 'no "id"'),
    ('{"type":"snap","id":null,"payload":{"topic":"trade"}}', 28, None, 'no "id"'),
    ('{"type":"snap","id":"1","payload":{"topic":"trade"}}', 28, None, "\"id\" '1'"),
    ('{"type":"snap","id":-1,"payload":{"topic":"trade"}}', 28, None, '"id" -1'),
    ('{"type":"snap","id":1.5,"payload":{"topic":"trade"}}', 28, None, '"id" 1.5'),
    ('{"type":"snap","id":true,"payload":{"topic":"trade"}}', 28, None, '"id" True'),
    ('{"type":"snap","id":9007199254740992,"payload":{"topic":"trade"}}', 28, None, "2**53"),
    ('{"id":1,"payload":{"topic":"trade"}}', 20, 1, 'no "type"'),
    ('{"type":null,"id":1,"payload":{"topic":"trade"}}', 20, 1, 'no "type"'),
    ('{"type":5,"id":1,"payload":{"topic":"trade"}}', 61, 1, '"type" must be a string'),
    ('{"type":"snp","id":1,"payload":{"topic":"trade"}}', 22, 1, "did you mean 'snap'"),
    ('{"type":"subscribed","id":1,"payload":{}}', 22, 1, "unknown type 'subscribed'"),
    ('{"type":"snap","id":1}', 21, 1, 'no "payload"'),
    ('{"type":"subscribe","id":1,"payload":null}', 21, 1, 'no "payload"'),
    ('{"type":"snap","id":1,"payload":"trade"}', 22, 1, '"payload" must be an object'),
    ('{"type":"unsubscribe","id":1,"payload":[]}', 22, 1, '"payload" must be an object'),
    ('{"type":"snap","id":1,"payload":{}}', 62, 1, '"payload.topic" is required'),
    ('{"type":"subsnap","id":1,"payload":{"subTopic":{}}}', 62, 1, '"payload.topic" is'),
    ('{"type":"unsubscribe","id":1,"payload":{}}', 62, 1, '"payload.subscription" is required'),
    ('{"type":"snap","id":1,"payload":{"topic":7}}', 61, 1, '"payload.topic" must be a string'),
    ('{"type":"subscribe","id":1,"payload":{"topic":["trade"]}}', 61, 1, '"payload.topic"'),
    (snap(1, sub="ccyPair"), 61, 1, '"payload.subTopic" must be an object'),
    (snap(1, sub=["ccyPair", "EUR/USD"]), 61, 1, '"payload.subTopic" must be an object'),
    (snap(1, sub={"ccyPair": {"a": 1}}), 61, 1, '"payload.subTopic.ccyPair" must be'),
    (snap(1, sub={"ccyPair": [["EUR/USD"]]}), 61, 1, "must hold strings, numbers or booleans"),
    (snap(1, sub={"ccyPair": None}), 61, 1, '"payload.subTopic.ccyPair"'),
    (unsub(1, 5), 61, 1, '"payload.subscription" must be a UUID string, got 5'),
    (unsub(1, "abc"), 61, 1, "must be a UUID string, got 'abc'"),
    (unsub(1, UNKNOWN), 43, 1, f"no subscription {UNKNOWN} on this connection"),
    (snap(1, topic="trades"), 63, 1, "topic 'trades' does not exist"),
    (sub(1, topic=""), 63, 1, "topic '' does not exist"),
    (sub(1, topic="Trade", kind="subsnap"), 63, 1, "subsnap (id 1): topic 'Trade'"),
    (snap(1, sub={"val": 1}), 64, 1, "names 'val', not a key column of topic 'trade'"),
    (sub(1, sub_topic={"ccyPair": "a", "px": 1, "q": 2}), 64, 1, "names 'px', 'q'"),
    (sub(1, "plain", {"sym": "A"}), 64, 1, "it has no key columns"),
]


@pytest.mark.parametrize(
    ("frame", "code", "mid", "message"),
    ONE_FRAME_ERRORS,
    ids=[f"{c}:{f}" for f, c, _, _ in ONE_FRAME_ERRORS],
)
def test_each_error_code_from_the_input_that_triggers_it(
    frame: str, code: int, mid: int | None, message: str
) -> None:
    g = gateway()
    actions = g.receive(frame, 1.0)
    assert len(actions) == 1
    [err] = errors(actions)
    assert (err.id, err.error, type(err.error)) == (mid, code, ErrorCode)
    assert message in (err.message or "")
    assert g.state is ServerState.OPEN and g.errors == 1
    # Also when the request came as a dict (another codec's output).
    assert errors(gateway().receive(json.loads(frame), 1.0)) == [err]


# Several requests on one connection: the last one's code.
SEQUENCE_ERRORS: list[tuple[list[str], int, str]] = [
    ([snap(5), snap(5)], 29, "id 5 is not above the last id 5 on this connection"),
    ([snap(5), snap(4)], 29, "snap (id 4): id 4 is not above the last id 5"),
    ([snap(5, topic="nope"), snap(5)], 29, "not above"),  # a refused request uses its id up
    (['{"id":5}', snap(3)], 29, "not above the last id 5"),
    ([snap(5), '{"id":2}'], 29, "message id 2: id 2 is not above"),
    ([snap(5), '{"type":"snap","id":4}'], 29, "snap (id 4)"),  # 29 before 21
    ([sub(1), sub(2)], 42, "already subscribed to topic 'trade' with this subTopic"),
    ([sub(1), sub(2, kind="subsnap")], 42, "already subscribed"),
    ([sub(1, sub_topic={}), sub(2)], 42, "already subscribed"),
    ([sub(1, sub_topic={"ccyPair": "a"}), sub(2, sub_topic={"ccyPair": ["a"]})], 42, "already"),
    (
        [
            sub(1, sub_topic={"ccyPair": ["a", "b"], "venue": 1}),
            sub(2, sub_topic={"venue": [1.0], "ccyPair": ["b", "a", "a"]}),
        ],
        42,
        "already",
    ),
    (
        [
            sub(1),
            unsub(2, "00000000-0000-4000-8000-000000000001"),
            unsub(3, "00000000-0000-4000-8000-000000000001"),
        ],
        43,
        "no subscription",
    ),
]


@pytest.mark.parametrize(("frames", "code", "message"), SEQUENCE_ERRORS)
def test_error_codes_that_need_the_connection_state(
    frames: list[str], code: int, message: str
) -> None:
    g = gateway()
    for frame in frames[:-1]:
        g.receive(frame, 1.0)
    actions = g.receive(frames[-1], 2.0)
    [err] = errors(actions)
    assert err.error == code and message in (err.message or "")
    assert g.state is ServerState.OPEN


def test_distinct_subscriptions_are_not_duplicates() -> None:
    g = gateway()
    frames = [
        sub(1),
        sub(2, sub_topic={"ccyPair": "a"}),
        sub(3, sub_topic={"ccyPair": ["a", "b"]}),
        sub(4, sub_topic={"venue": True}),
        sub(5, sub_topic={"venue": 1}),  # true is not 1
        sub(6, "quote"),
    ]
    for frame in frames:
        [action] = g.receive(frame, 0.0)
        assert isinstance(action, Subscribe)
    assert len(g.subscriptions) == 6


def test_snap_subscribe_unsubscribe_actions() -> None:
    g = gateway()
    [s] = g.receive(snap(1, sub={"ccyPair": "EUR/USD"}, response_id={"mine": 1}), 0.0)
    assert s == Snap(1, "trade", {"ccyPair": ("EUR/USD",)}, {"mine": 1}, {"ccyPair": "EUR/USD"})
    assert isinstance(s, Snap)
    assert obj(encode(s.reply(TRADES))) == {
        "type": "snapped",
        "id": 1,
        "payload": {"data": TRADES},
        "response_id": {"mine": 1},
    }
    [a] = g.receive(sub(2, sub_topic={"venue": ["x", "y"]}, kind="subsnap"), 0.0)
    assert isinstance(a, Subscribe)
    assert a == Subscribe(
        2,
        "00000000-0000-4000-8000-000000000001",
        "trade",
        {"venue": ("x", "y")},
        True,
        None,
        {"venue": ["x", "y"]},
    )
    assert a.reply(TRADES) == SubsnappedReply(2, TRADES, a.subscription)
    with pytest.raises(ValueError, match="needs the snapshot's data"):
        a.reply()
    assert a.update({"v": [1]}) == UpdateMessage(
        2, {"v": [1]}, a.subscription, "trade", {"venue": ["x", "y"]}
    )
    [b] = g.receive(sub(3, "quote"), 0.0)
    assert isinstance(b, Subscribe) and b.reply() == SubscribedReply(3, b.subscription)
    with pytest.raises(ValueError, match="takes no data"):
        b.reply({})
    # Unsubscribe names the UUID in any case; the stop comes before the reply.
    actions = g.receive(unsub(4, a.subscription.upper()), 0.0)
    assert actions == [
        Unsubscribe(a.subscription),
        Send(UnsubscribedReply(4, a.subscription.upper())),
    ]
    assert list(g.subscriptions) == [b.subscription]
    # Once unsubscribed, the same subscription may be made again.
    [again] = g.receive(sub(5, sub_topic={"venue": ["y", "x"]}, kind="subsnap"), 0.0)
    assert isinstance(again, Subscribe) and again.subscription != a.subscription
    assert g.last_id == 5 and g.last_received == 0.0


def test_every_reply_echoes_the_response_id() -> None:
    g = gateway()
    rid = ["any", {"json": 1}]
    frames = [
        {"type": "snap", "id": 1, "payload": {"topic": "trade"}, "response_id": rid},
        {"type": "subscribe", "id": 2, "payload": {"topic": "trade"}, "response_id": rid},
        {"type": "subscribe", "id": 3, "payload": {"topic": "trade"}, "response_id": rid},  # 42
        {"type": "snap", "id": 4, "payload": {"topic": "nope"}, "response_id": rid},  # 63
        {"type": "snap", "payload": {"topic": "trade"}, "response_id": rid},  # 28
        {"type": "snap", "id": 1, "payload": {"topic": "trade"}, "response_id": rid},  # 29
        {"id": 6, "response_id": rid},  # 20
        {"type": "unsubscribe", "id": 7, "payload": {"subscription": UNKNOWN}, "response_id": rid},
        {
            "type": "unsubscribe",
            "id": 8,
            "payload": {"subscription": "00000000-0000-4000-8000-000000000001"},
            "response_id": rid,
        },
    ]
    replies: list[Message] = []
    for frame in frames:
        for action in g.receive(json.dumps(frame), 0.0):
            if isinstance(action, Send):
                replies.append(action.message)
            elif isinstance(action, Snap):
                replies.append(action.reply({}))
            elif isinstance(action, Subscribe):
                replies.append(action.reply())
                replies.append(action.update({"v": [1]}))
    assert [m.type for m in replies] == [
        "snapped",
        "subscribed",
        "update",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "unsubscribed",
    ]
    assert all(obj(encode(m))["response_id"] == rid for m in replies)
    # And a request without one gets none.
    [s] = gateway().receive(snap(1), 0.0)
    assert isinstance(s, Snap) and "response_id" not in obj(encode(s.reply({})))


@pytest.mark.parametrize(
    ("frame", "close"),
    [
        ("nope", POLICY_VIOLATION),
        ("[]", POLICY_VIOLATION),
        (b"\x01\x02", UNSUPPORTED_DATA),
        ("{" + " " * 300 + "}", MESSAGE_TOO_BIG),
    ],
)
def test_undecodable_frame_answers_22_and_closes(frame: str | bytes, close: int) -> None:
    g = gateway(max_size=256)
    [live] = g.receive(sub(1), 0.0)
    assert isinstance(live, Subscribe)
    actions = g.receive(frame, 0.0)
    assert actions[0] == Send(
        ErrorReply(None, ErrorCode.INVALID_PAYLOAD, actions[0].message.message)
    )  # type: ignore[union-attr]
    assert actions[1:-1] == [Unsubscribe(live.subscription)]
    assert isinstance(actions[-1], Close) and actions[-1].code == close
    assert g.state is ServerState.CLOSED and g.subscriptions == {}
    assert g.close_reason and len(actions[-1].reason.encode()) <= 123
    assert g.receive(snap(2), 0.0) == [] and g.connection_lost() == []


def test_close_reason_is_cut_to_123_bytes() -> None:
    g = gateway()
    [_, close] = g.receive("x" * 50 + "é" * 200, 0.0)
    assert isinstance(close, Close) and len(close.reason.encode()) <= 123


def test_connection_lost_stops_every_subscription() -> None:
    g = gateway()
    g.receive(sub(1), 0.0)
    g.receive(sub(2, "quote"), 0.0)
    assert g.connection_lost() == [
        Unsubscribe("00000000-0000-4000-8000-000000000001"),
        Unsubscribe("00000000-0000-4000-8000-000000000002"),
    ]
    assert g.state is ServerState.CLOSED and g.connection_lost() == []
    assert g.receive(sub(3), 0.0) == []


def test_refuse_fails_an_action_after_the_fact() -> None:
    g = gateway()
    [a] = g.receive(sub(1, kind="subsnap"), 0.0)
    assert isinstance(a, Subscribe)
    [send] = g.refuse(a, ErrorCode.INVALID_PAYLOAD, "snapshot too large")
    assert send == Send(ErrorReply(1, ErrorCode.INVALID_PAYLOAD, "snapshot too large"))
    assert g.subscriptions == {}
    [b] = g.receive(sub(2, kind="subsnap"), 0.0)  # not a duplicate any more
    assert isinstance(b, Subscribe)


def test_max_subscriptions() -> None:
    g = gateway(max_subscriptions=1)
    g.receive(sub(1), 0.0)
    [err] = errors(g.receive(sub(2, "quote"), 0.0))
    assert err.error == 22 and "at most 1 subscriptions per connection" in (err.message or "")


def test_gateway_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="topics must be callable"):
        GatewayConnectionState({"t": ()})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_size must be an int > 0"):
        gateway(max_size=0)
    g = GatewayConnectionState(TOPICS.get, new_subscription=lambda: "same")
    with pytest.raises(ValueError, match="new_subscription gave 'same'"):
        g.receive(sub(1), 0.0)
    assert "subscriptions=0" in repr(gateway())


def test_default_subscription_ids_are_uuid4s() -> None:
    g = GatewayConnectionState(TOPICS.get)
    [a] = g.receive(sub(1), 0.0)
    [b] = g.receive(sub(2, "quote"), 0.0)
    assert isinstance(a, Subscribe) and isinstance(b, Subscribe)
    assert a.subscription != b.subscription and a.subscription[14] == "4"


# --------------------------------------------------------------------------- client side


def client(**kw: Any) -> ClientConnectionState:
    c = ClientConnectionState(**kw)
    c.connect()
    return c


def reply(msg: Message) -> str:
    return encode(msg)


def only_send(outputs: list[ClientOutput]) -> Message:
    [msg] = sent(outputs)
    return msg


def test_snap_round_trip_and_refusal() -> None:
    c = client()
    mid, send = c.snap("trade", {"ccyPair": "EUR/USD"}, response_id="r1")
    assert send == Send(SnapRequest(1, "trade", {"ccyPair": "EUR/USD"}, "r1")) and mid == 1
    assert c.receive(reply(SnappedReply(1, TRADES, "r1"))) == [SnapResult(1, TRADES)]
    mid, _ = c.snap("nope")
    [failed] = c.receive(reply(ErrorReply(2, ErrorCode.NO_SUCH_TOPIC, "no topic 'nope'")))
    assert isinstance(failed, SnapFailed) and failed.id == 2
    assert isinstance(failed.error, GatewayError) and failed.error.code is ErrorCode.NO_SUCH_TOPIC
    assert c.pending == 0


def test_subscribe_update_unsubscribe() -> None:
    c = client()
    assert only_send(c.subscribe("k", "trade", {"ccyPair": "EUR/USD"})) == SubscribeRequest(
        1, "trade", {"ccyPair": "EUR/USD"}
    )
    assert c.receive(reply(SubscribedReply(1, U1))) == [Subscribed("k", U1, None, False)]
    assert c.subscription("k") == U1
    update = UpdateMessage(1, TRADES, U1, "trade", {"ccyPair": ["EUR/USD"]})
    assert c.receive(reply(update)) == [Update("k", TRADES, False)]
    assert c.receive(reply(replace(update, topic=None, sub_topic=None))) == [Update("k", TRADES)]
    assert only_send(c.unsubscribe("k")) == UnsubscribeRequest(2, U1)
    assert c.unsubscribe("k") == []  # ending already
    assert c.receive(reply(update)) == [] and c.late == 1  # sent before the gateway saw it
    assert c.receive(reply(UnsubscribedReply(2, U1))) == [Unsubscribed("k")]
    assert c.subscriptions == ()
    with pytest.raises(ProtocolError, match="no request or subscription has this id"):
        c.receive(reply(update))  # nothing may come after unsubscribed


def test_subsnap_brings_the_snapshot() -> None:
    c = client()
    only_send(c.subscribe("k", "trade", with_snapshot=True))
    assert c.receive(reply(SubsnappedReply(1, TRADES, U1))) == [Subscribed("k", U1, TRADES, False)]


def test_ids_never_go_back_across_reconnects() -> None:
    c = ClientConnectionState(first_id=10)
    seen: list[int] = []
    for _ in range(3):
        seen += [m.id for m in sent(c.connect())]  # type: ignore[union-attr]
        seen.append(c.snap("t")[0])
        seen += [m.id for m in sent(c.subscribe(len(seen), "t", {"n": len(seen)}))]  # type: ignore[union-attr]
        c.connection_lost()
    assert seen == sorted(set(seen)) and seen[0] == 10
    assert c.next_id == seen[-1] + 1


def test_resync_after_reconnect() -> None:
    c = client()
    c.subscribe("live", "trade", {"ccyPair": "A"})
    c.subscribe("waiting", "quote")  # no reply before the connection goes
    c.receive(reply(SubscribedReply(1, U1)))
    c.receive(reply(UpdateMessage(1, TRADES, U1)))
    assert c.connection_lost() == []
    assert c.subscription("live") is None and c.state is ClientState.DISCONNECTED
    assert c.receive(reply(UpdateMessage(1, TRADES, U1))) == []  # read after the end: ignored
    again = sent(c.connect())
    # The live one comes back as a subsnap, the one never live as it was asked.
    assert again == [
        SubscribeRequest(3, "trade", {"ccyPair": "A"}, with_snapshot=True),
        SubscribeRequest(4, "quote"),
    ]
    assert c.receive(reply(SubsnappedReply(3, TRADES, U2))) == [
        Subscribed("live", U2, TRADES, resync=True)
    ]
    assert c.receive(reply(SubscribedReply(4, U1))) == [
        Subscribed("waiting", U1, None, resync=False)
    ]
    # The first update after the resync is marked, once.
    assert c.receive(reply(UpdateMessage(3, {"v": [1]}, U2))) == [
        Update("live", {"v": [1]}, resynced=True)
    ]
    assert c.receive(reply(UpdateMessage(3, {"v": [2]}, U2))) == [
        Update("live", {"v": [2]}, resynced=False)
    ]
    assert c.receive(reply(UpdateMessage(4, {"v": [3]}, U1))) == [Update("waiting", {"v": [3]})]
    with pytest.raises(ProtocolError, match="no request or subscription"):
        c.receive(reply(UpdateMessage(1, TRADES, U1)))  # the old connection's id


def test_resync_survives_a_second_drop_before_its_reply() -> None:
    c = client()
    c.subscribe("k", "trade")
    c.receive(reply(SubscribedReply(1, U1)))
    c.connection_lost()
    c.connect()
    c.connection_lost()  # before the subsnapped
    [req] = sent(c.connect())
    assert req == SubscribeRequest(3, "trade", with_snapshot=True)
    assert c.receive(reply(SubsnappedReply(3, {}, U2))) == [Subscribed("k", U2, {}, True)]
    assert c.receive(reply(UpdateMessage(3, {}, U2))) == [Update("k", {}, True)]


def test_connection_lost_fails_snaps_and_ends_unsubscribes() -> None:
    c = client()
    c.subscribe("a", "trade")
    c.subscribe("b", "quote")
    c.receive(reply(SubscribedReply(1, U1)))
    c.receive(reply(SubscribedReply(2, U2)))
    c.unsubscribe("a")  # id 3, cut short
    mid, _ = c.snap("trade")
    c.snap("quote")
    c.cancel_snap(5)  # a cancelled snap is not reported
    out = c.connection_lost()
    assert [type(e) for e in out] == [Unsubscribed, SnapFailed]
    assert out[0] == Unsubscribed("a")
    failed = out[1]
    assert isinstance(failed, SnapFailed) and failed.id == mid == 4
    assert isinstance(failed.error, ConnectionError) and "snap id 4" in str(failed.error)
    assert c.subscriptions == ("b",) and c.pending == 0
    with pytest.raises(ConnectionError, match="not connected"):
        c.snap("trade")


def test_unsubscribe_while_the_subscribe_is_in_flight() -> None:
    c = client()
    c.subscribe("k", "trade")
    assert c.unsubscribe("k") == []
    assert c.unsubscribe("k") == []
    # Its reply is not reported: the unsubscribe goes out instead.
    assert sent(c.receive(reply(SubscribedReply(1, U1)))) == [UnsubscribeRequest(2, U1)]
    assert c.receive(reply(UpdateMessage(1, {}, U1))) == [] and c.late == 1
    assert c.receive(reply(UnsubscribedReply(2))) == [Unsubscribed("k")]
    # Refused while waiting to unsubscribe: ended all the same.
    c.subscribe("j", "quote")
    c.unsubscribe("j")
    assert c.receive(reply(ErrorReply(3, ErrorCode.NO_SUCH_TOPIC))) == [Unsubscribed("j")]
    # Cut by the connection's end while waiting.
    c.subscribe("i", "plain")
    c.unsubscribe("i")
    assert c.connection_lost() == [Unsubscribed("i")] and c.subscriptions == ()


def test_unsubscribe_without_a_connection_ends_at_once() -> None:
    c = ClientConnectionState()
    assert c.subscribe("k", "trade") == []  # sent at connect()
    assert c.unsubscribe("k") == [Unsubscribed("k")]
    assert c.connect() == []
    with pytest.raises(ValueError, match="no subscription 'k'"):
        c.unsubscribe("k")


def test_refused_subscribe_is_dropped() -> None:
    c = client()
    c.subscribe("k", "nope")
    [event] = c.receive(reply(ErrorReply(1, ErrorCode.NO_SUCH_TOPIC, "no topic")))
    assert isinstance(event, SubscriptionError) and event.ended and event.key == "k"
    assert event.error.code is ErrorCode.NO_SUCH_TOPIC and c.subscriptions == ()
    assert c.connection_lost() == [] and c.connect() == []  # not made again


def test_error_on_a_live_subscription() -> None:
    c = client()
    c.subscribe("k", "trade")
    c.receive(reply(SubscribedReply(1, U1)))
    [event] = c.receive(reply(ErrorReply(1, 61, "bad data")))
    assert isinstance(event, SubscriptionError) and not event.ended
    assert c.subscriptions == ("k",)
    [event] = c.receive(reply(ErrorReply(1, 99)))
    assert isinstance(event, SubscriptionError) and event.error.code == 99


def test_error_to_an_unsubscribe_ends_the_subscription() -> None:
    c = client()
    c.subscribe("k", "trade")
    c.receive(reply(SubscribedReply(1, U1)))
    c.unsubscribe("k")
    assert c.receive(reply(ErrorReply(2, ErrorCode.NOT_SUBSCRIBED))) == [Unsubscribed("k")]


def test_cancelled_snap_reply_is_dropped() -> None:
    c = client()
    mid, _ = c.snap("trade")
    c.cancel_snap(mid)
    c.cancel_snap(999)  # not a waiting snap: nothing
    assert c.receive(reply(SnappedReply(mid, TRADES))) == [] and c.pending == 0
    mid, _ = c.snap("trade")
    c.cancel_snap(mid)
    assert c.receive(reply(ErrorReply(mid, 63))) == []


# What a client takes as a ProtocolError (then it is DISCONNECTED).
def _client_with_everything() -> ClientConnectionState:
    c = client()
    c.subscribe("plain", "trade")  # 1
    c.subscribe("snapshot", "quote", with_snapshot=True)  # 2
    c.snap("trade", response_id="r")  # 3
    c.receive(reply(SubscribedReply(1, U1)))
    c.subscribe("waiting", "plain")  # 4
    return c


BAD_REPLIES: list[tuple[Message, str]] = [
    (SubsnappedReply(4, {}, U2), "the reply to a subscribe must be 'subscribed' or 'error'"),
    (SubscribedReply(2, U2), "the reply to a subsnap must be 'subsnapped'"),
    (SnappedReply(1, {}), "a second reply to a subscribe already answered"),
    (SnappedReply(2, {}), "the reply to a subsnap must be"),
    (SubscribedReply(3, U2, "r"), "the reply to a snap must be 'snapped' or 'error'"),
    (SnappedReply(3, {}), "response_id None is not the request's 'r'"),
    (SnappedReply(3, {}, "other"), "response_id 'other' is not the request's 'r'"),
    (UnsubscribedReply(4, U1), "the reply to a subscribe must be"),
    (SnappedReply(99, {}), "no request or subscription has this id"),
    (ErrorReply(None, 22, "not JSON"), "the gateway reported an error for no request"),
    (ErrorReply(99, 22), "for no request"),
    (UpdateMessage(4, {}, U2), "the reply to a subscribe must be"),  # before its reply
    (UpdateMessage(1, {}, U2), f"an update for subscription {U2}, not {U1}"),
    (UpdateMessage(1, {}, U1, "quote"), "an update for topic 'quote', not 'trade'"),
    (UpdateMessage(1, {}, U1, sub_topic={"a": 1}), "subTopic is not the subscription's"),
    (UpdateMessage(1, {}, U1, response_id=1), "an update with response_id 1"),
    (SubscribedReply(4, U1.upper()), "is another subscription's"),
]


@pytest.mark.parametrize(("msg", "error"), BAD_REPLIES, ids=[e for _, e in BAD_REPLIES])
def test_mismatched_replies_are_protocol_errors(msg: Message, error: str) -> None:
    c = _client_with_everything()
    with pytest.raises(ProtocolError, match=error.replace("(", r"\(")):
        c.receive(reply(msg))
    assert c.state is ClientState.DISCONNECTED
    assert c.receive(reply(msg)) == []
    out = c.connection_lost()
    assert [type(e) for e in out] == [SnapFailed]
    assert [m.type for m in sent(c.connect())] == [
        "subsnap",
        "subsnap",
        "subscribe",
    ]  # the live one resyncs


def test_unsubscribed_naming_another_subscription() -> None:
    c = client()
    c.subscribe("k", "trade")
    c.receive(reply(SubscribedReply(1, U1)))
    c.unsubscribe("k")
    with pytest.raises(ProtocolError, match=f"unsubscribed names subscription {U2}"):
        c.receive(reply(UnsubscribedReply(2, U2)))


def test_client_arguments_are_checked() -> None:
    c = client()
    with pytest.raises(ValueError, match="topic must be a non-empty str, got ''"):
        c.snap("")
    with pytest.raises(TypeError, match="sub_topic must be a mapping"):
        c.subscribe("k", "t", "sym")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="with_snapshot must be a bool"):
        c.subscribe("k", "t", with_snapshot="yes")  # type: ignore[arg-type]
    c.subscribe("k", "t", {"s": ["a", "b"]})
    with pytest.raises(ValueError, match="key 'k' is already in use"):
        c.subscribe("k", "u")
    with pytest.raises(ValueError, match="the gateway refuses a second such subscription"):
        c.subscribe("j", "t", {"s": ("b", "a")})
    with pytest.raises(RuntimeError, match="already connected"):
        c.connect()
    with pytest.raises(ValueError, match="first_id"):
        ClientConnectionState(first_id=-1)
    assert "next_id=2" in repr(c)


def test_client_bounds() -> None:
    c = client(max_pending=2, max_subscriptions=1)
    c.snap("t")
    c.snap("t")
    with pytest.raises(RuntimeError, match="2 snaps already wait"):
        c.snap("t")
    c.receive(reply(SnappedReply(1, {})))
    c.snap("t")
    c.subscribe("a", "t")
    with pytest.raises(RuntimeError, match="already 1 subscriptions"):
        c.subscribe("b", "u")


def test_client_takes_dicts_and_messages() -> None:
    c = client()
    c.snap("t")
    c.snap("t")
    assert c.receive({"type": "snapped", "id": 1, "payload": {"data": {"a": [1]}}}) == [
        SnapResult(1, {"a": [1]})
    ]
    assert c.receive(SnappedReply(2, {})) == [SnapResult(2, {})]


# --------------------------------------------------------------------------- chunks


def test_small_messages_are_one_frame_without_a_chunk() -> None:
    msg = SnappedReply(3, TRADES, "r")
    assert encode_frames(msg) == [encode(msg)]
    assert split_message(msg) == [msg]


def test_split_and_reassemble_a_subsnap() -> None:
    data: Table = {"sym": [f"S{i % 7}" for i in range(500)], "px": [i / 3 for i in range(500)]}
    msg = SubsnappedReply(1, data, U1, None)
    frames = encode_frames(msg, 1000)
    assert len(frames) > 10 and all(len(f) <= 1000 for f in frames)
    parts = [decode(f, origin="server") for f in frames]
    assert [p.chunk for p in parts] == [Chunk(i, len(frames)) for i in range(len(frames))]  # type: ignore[union-attr]
    c = client()
    c.subscribe("k", "trade", with_snapshot=True)
    out: list[ClientOutput] = []
    for f in frames:
        out += c.receive(f)
    assert out == [Subscribed("k", U1, data, False)]
    assert c.receive(reply(UpdateMessage(1, {"sym": [], "px": []}, U1))) == [
        Update("k", {"sym": [], "px": []})
    ]


def test_a_row_too_big_for_any_frame() -> None:
    msg = SnappedReply(1, {"a": ["x", "y" * 500, "z"]})
    with pytest.raises(ValueError, match="row 1 alone does not fit 300 bytes"):
        encode_frames(msg, 300)
    with pytest.raises(ValueError, match="does not fit 40 bytes even without rows"):
        encode_frames(msg, 40)
    with pytest.raises(ValueError, match="max_size must be an int > 0"):
        encode_frames(msg, 0)
    with pytest.raises(ValueError, match="is a chunk already"):
        encode_frames(replace(msg, chunk=Chunk(0, 2)), 100)


def _chunked(msg: DataMessage, size: int) -> list[str]:
    frames = [str(f) for f in encode_frames(msg, size)]
    assert len(frames) >= 3
    return frames


BIG = SnappedReply(1, {"n": list(range(100))})


def test_chunks_out_of_order_or_missing() -> None:
    frames = _chunked(BIG, 120)
    c = client()
    c.snap("t")
    with pytest.raises(
        ProtocolError, match=r"chunk 1 of \d+ came first: chunks come in order from 0"
    ):
        c.receive(frames[1])
    c = client()
    c.snap("t")
    c.receive(frames[0])
    with pytest.raises(
        ProtocolError, match=r"chunk 2 of \d+ after chunk 0 of \d+: chunk 1 is missing or out of"
    ):
        c.receive(frames[2])
    c = client()
    c.snap("t")
    c.receive(frames[0])
    with pytest.raises(
        ProtocolError, match=r"chunks 1 to \d+ of the snapped with this id are missing: 'error'"
    ):
        c.receive(reply(ErrorReply(1, 22)))
    c = client()
    c.snap("t")
    c.receive(frames[0])
    with pytest.raises(ProtocolError, match="are missing: 'snapped' came instead"):
        c.receive(reply(SnappedReply(1, {"n": [1]})))
    c.connection_lost()  # the partial message goes with the connection
    c.connect()
    mid, _ = c.snap("t")
    out: list[ClientOutput] = []
    for f in _chunked(replace(BIG, id=mid), 120):
        out += c.receive(f)
    assert out == [SnapResult(mid, BIG.data)]


def test_chunks_of_another_message_are_refused() -> None:
    c = client()
    c.subscribe("k", "t", with_snapshot=True)
    frames = _chunked(SubsnappedReply(1, BIG.data, U1), 200)
    c.receive(frames[0])
    with pytest.raises(ProtocolError, match="is not of the message chunk 0 began"):
        c.receive(encode(SubsnappedReply(1, {"n": [1]}, U2, chunk=Chunk(1, len(frames)))))
    c = client()
    c.subscribe("k", "t", with_snapshot=True)
    c.receive(frames[0])
    with pytest.raises(ProtocolError, match="has other columns than chunk 0"):
        c.receive(encode(SubsnappedReply(1, {"m": [1]}, U1, chunk=Chunk(1, len(frames)))))


def test_interleaved_chunked_messages_of_different_ids() -> None:
    c = client()
    c.snap("t")
    c.snap("t")
    a = _chunked(BIG, 150)
    b = _chunked(replace(BIG, id=2, data={"n": list(range(100, 160))}), 150)
    out: list[ClientOutput] = []
    for x, y in itertools.zip_longest(a, b):
        out += c.receive(x) if x else []
        out += c.receive(y) if y else []
    assert sorted(out, key=lambda e: e.id) == [  # type: ignore[union-attr]
        SnapResult(1, BIG.data),
        SnapResult(2, {"n": list(range(100, 160))}),
    ]


def test_a_single_chunk_of_one() -> None:
    c = client()
    c.snap("t")
    assert c.receive(reply(SnappedReply(1, {"a": [1]}, chunk=Chunk(0, 1)))) == [
        SnapResult(1, {"a": [1]})
    ]


def test_reassembly_is_bounded_in_bytes() -> None:
    frames = _chunked(BIG, 120)
    c = client(max_chunk_bytes=2 * 120)
    c.snap("t")
    c.receive(frames[0])
    c.receive(frames[1])
    with pytest.raises(ProtocolError, match="over the limit of 240"):
        c.receive(frames[2])
    # Given as dicts the size is the caller's, or estimated.
    c = client(max_chunk_bytes=100)
    c.snap("t")
    with pytest.raises(ProtocolError, match="over the limit of 100"):
        c.receive(json.loads(frames[0]), size=101)
    c = client(max_chunk_bytes=20)
    c.snap("t")
    with pytest.raises(ProtocolError, match="over the limit of 20"):
        c.receive(json.loads(frames[0]))


class BinaryJson:
    """A stand-in for a binary codec (UTF-8 bytes of JSON, so rows of multi-byte text are
    larger than the average row says)."""

    name = "bjson"
    binary = True

    def dumps(self, obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, frame: str | bytes, max_size: int) -> Any:
        if len(frame) > max_size:
            raise MessageTooBig("too big")
        try:
            return json.loads(frame)
        except ValueError as exc:
            raise UndecodableError(f"not bjson: {exc}") from None


def test_another_codec_plugs_in() -> None:
    codec = BinaryJson()
    msg = UpdateMessage(1, {"s": ["ü" * (i % 20) for i in range(300)]}, U1)
    frames = encode_frames(msg, 500, codec)
    assert all(isinstance(f, bytes) and len(f) <= 500 for f in frames) and len(frames) > 3
    assert [m.chunk.index for m in split_message(msg, 500, codec)] == list(range(len(frames)))  # type: ignore[union-attr]
    c = client(codec=codec)
    c.subscribe("k", "t")
    c.receive(encode(SubscribedReply(1, U1), codec))
    out: list[ClientOutput] = []
    for f in frames:
        out += c.receive(f)
    assert out == [Update("k", msg.data)]
    g = GatewayConnectionState(TOPICS.get, codec=codec)
    [action] = g.receive(sub(1).encode(), 0.0)
    assert isinstance(action, Subscribe)
    err, stop, close = g.receive(b"\xff", 0.0)
    assert err == Send(ErrorReply(None, ErrorCode.INVALID_PAYLOAD, close.reason))  # type: ignore[union-attr]
    assert stop == Unsubscribe(action.subscription)
    assert isinstance(close, Close) and "not bjson" in close.reason


tables = st.integers(min_value=0, max_value=4).flatmap(
    lambda ncols: st.integers(min_value=0, max_value=25).flatmap(
        lambda nrows: st.dictionaries(
            st.text(max_size=6),
            st.lists(
                st.none()
                | st.booleans()
                | st.integers(-(2**60), 2**60)
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=30),
                min_size=nrows,
                max_size=nrows,
            ),
            min_size=ncols,
            max_size=ncols,
        )
    )
)


@settings(max_examples=150, deadline=None)
@given(
    data=tables,
    slack=st.integers(min_value=0, max_value=2000),
    kind=st.sampled_from(["snapped", "subsnapped", "update"]),
)
def test_any_table_split_under_any_budget_reassembles(data: Table, slack: int, kind: str) -> None:
    msg: DataMessage
    if kind == "snapped":
        msg = SnappedReply(7, data, "rid")
    elif kind == "subsnapped":
        msg = SubsnappedReply(7, data, U1)
    else:
        msg = UpdateMessage(7, data, U1, "trade")
    rows = table_rows(data)
    # The smallest budget that must work: the largest single row with the widest chunk key.
    floor = max(
        len(
            encode(
                replace(
                    msg,
                    data={c: v[i : i + 1] for c, v in data.items()},
                    chunk=Chunk(rows, rows + 1),
                )
            )
        )
        for i in range(max(rows, 1))
    )
    budget = floor + slack
    frames = encode_frames(msg, budget)
    assert all(len(f) <= budget for f in frames)
    parts = [from_dict(json.loads(f), origin="server") for f in frames]
    if len(parts) > 1:
        assert [p.chunk for p in parts] == [Chunk(i, len(parts)) for i in range(len(parts))]  # type: ignore[union-attr]
    c = client()
    if kind == "snapped":
        c._next_id = 7
        c.snap("trade", response_id="rid")
    else:
        c._next_id = 7
        c.subscribe("k", "trade", with_snapshot=kind == "subsnapped")
        if kind == "update":
            c.receive(reply(SubscribedReply(7, U1)))
    out: list[ClientOutput] = []
    for f in frames:
        out += c.receive(f)
    [event] = out
    got = event.snapshot if isinstance(event, Subscribed) else event.data  # type: ignore[union-attr]
    assert got == data and list(got) == list(data)


# --------------------------------------------------------------------------- both ends together


class Gateway:
    """A test gateway around GatewayConnectionState: one table per topic, keyed by 'sym'."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {"trade": [], "quote": []}
        self.conn = GatewayConnectionState(
            lambda t: ("sym",) if t in self.rows else None, new_subscription=uuids()
        )
        self.live: dict[str, Subscribe] = {}
        self.ids: list[int] = []

    def select(self, topic: str, flt: Any) -> Table:
        rows = [r for r in self.rows[topic] if all(r[c] in v for c, v in flt.items())]
        return {"sym": [r["sym"] for r in rows], "v": [r["v"] for r in rows]}

    def handle(self, frame: str) -> list[str]:
        self.ids.append(json.loads(frame)["id"])
        out: list[str] = []
        for action in self.conn.receive(frame, 0.0):
            if isinstance(action, Send):
                out.append(encode(action.message))
            elif isinstance(action, Snap):
                out += [
                    str(f)
                    for f in encode_frames(
                        action.reply(self.select(action.topic, action.filter)), 400
                    )
                ]
            elif isinstance(action, Subscribe):
                data = self.select(action.topic, action.filter) if action.with_snapshot else None
                out += [str(f) for f in encode_frames(action.reply(data), 400)]
                self.live[action.subscription] = action
            elif isinstance(action, Unsubscribe):
                del self.live[action.subscription]
        return out

    def publish(self, topic: str, sym: str, v: int) -> list[str]:
        self.rows[topic].append({"sym": sym, "v": v})
        out: list[str] = []
        for s in self.live.values():
            if s.topic == topic and all(sym in vals for vals in s.filter.values()):
                out += [str(f) for f in encode_frames(s.update({"sym": [sym], "v": [v]}), 400)]
        return out


ops = st.lists(
    st.one_of(
        st.tuples(st.just("snap"), st.sampled_from(["trade", "quote", "nope"])),
        st.tuples(
            st.just("subscribe"),
            st.sampled_from(["trade", "quote", "nope"]),
            st.sampled_from([None, "A", "B"]),
            st.booleans(),
        ),
        st.tuples(st.just("unsubscribe"), st.integers(0, 5)),
        st.tuples(
            st.just("publish"),
            st.sampled_from(["trade", "quote"]),
            st.sampled_from(["A", "B", "C"]),
        ),
        st.tuples(st.just("drop")),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_client_and_gateway_together(script: list[tuple[Any, ...]]) -> None:
    c = ClientConnectionState()
    gw = Gateway()
    all_ids: list[int] = []
    keys: list[Hashable] = []
    state: dict[Hashable, dict[str, Any]] = {}  # what the user sees per subscription

    def run(outputs: list[ClientOutput]) -> None:
        queue = list(outputs)
        while queue:
            item = queue.pop(0)
            if isinstance(item, Send):
                frame = encode(item.message)
                all_ids.append(item.message.id)  # type: ignore[arg-type]
                for back in gw.handle(frame):
                    queue += c.receive(back)
            elif isinstance(item, Subscribed):
                assert item.resync == state.get(item.key, {}).get("was", False)
                snapshot = item.snapshot
                state[item.key] = {
                    "was": True,
                    "complete": snapshot is not None,  # a subscribe sees only what follows
                    "v": [] if snapshot is None else list(snapshot["v"]),
                }
            elif isinstance(item, Update):
                state[item.key]["v"] += item.data["v"]
            elif isinstance(item, SubscriptionError):
                assert item.ended and item.error.code is ErrorCode.NO_SUCH_TOPIC
            elif isinstance(item, SnapFailed):
                assert (
                    isinstance(item.error, GatewayError)
                    and item.error.code is ErrorCode.NO_SUCH_TOPIC
                )

    run(c.connect())
    for n, op in enumerate(script):
        if op[0] == "snap":
            run([c.snap(op[1])[1]])
        elif op[0] == "subscribe":
            key = f"k{n}"
            try:
                out = c.subscribe(key, op[1], None if op[2] is None else {"sym": op[2]}, op[3])
            except ValueError:
                continue  # the same subscription as another key
            keys.append(key)
            run(out)
        elif op[0] == "unsubscribe" and keys:
            key = keys[op[1] % len(keys)]
            if key in c.subscriptions:
                run(c.unsubscribe(key))
        elif op[0] == "publish":
            for back in gw.publish(op[1], op[2], n):
                run(c.receive(back))
        elif op[0] == "drop":
            run(c.connection_lost())
            gw.conn.connection_lost()
            gw.live.clear()
            gw.conn = GatewayConnectionState(gw.conn._topics, new_subscription=uuids())
            run(c.connect())
    assert all_ids == sorted(set(all_ids))  # never reused, never back, across every drop
    assert gw.ids == all_ids[len(all_ids) - len(gw.ids) :]
    for key in c.subscriptions:
        if state.get(key, {}).get("complete") and c.subscription(key) is not None:
            sub_ = gw.conn.subscriptions[c.subscription(key).lower()]  # type: ignore[union-attr]
            # What the user holds is the gateway's table through the filter: nothing lost,
            # nothing twice, across resyncs.
            assert state[key]["v"] == gw.select(sub_.topic, sub_.filter)["v"]


# --------------------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
types = st.sampled_from(
    [
        "snap",
        "subscribe",
        "subsnap",
        "unsubscribe",
        "subscribed",
        "snapped",
        "subsnapped",
        "unsubscribed",
        "update",
        "error",
        "snp",
    ]
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "topic": st.sampled_from(["trade", "quote", "nope"]) | json_values,
        "subTopic": st.dictionaries(
            st.sampled_from(["ccyPair", "venue", "x"]), json_values, max_size=2
        )
        | json_values,
        "subscription": st.sampled_from([U1, "00000000-0000-4000-8000-000000000001"]) | json_values,
        "data": st.dictionaries(st.text(max_size=3), st.lists(json_values, max_size=3), max_size=3)
        | json_values,
        "chunk": st.fixed_dictionaries({"index": st.integers(-1, 3), "count": st.integers(0, 3)})
        | json_values,
    },
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "type": types | json_values,
        "id": st.integers(0, 6) | json_values,
        "payload": payloads | json_values,
        "response_id": json_values,
        "error": st.integers(0, 70) | json_values,
        "message": json_values,
    },
)


def _check_decode(frame: str) -> None:
    for origin in (None, "client", "server"):
        try:
            msg = decode(frame, origin=origin)  # type: ignore[call-overload]
        except ProtocolError as exc:
            assert str(exc)
            continue
        assert decode(encode(msg), origin=origin) == msg  # type: ignore[call-overload]


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_decode_fuzz_arbitrary_text(text: str) -> None:
    _check_decode(text)


@settings(max_examples=250)
@given(envelopes)
def test_decode_fuzz_message_like_objects(envelope: dict[str, Any]) -> None:
    _check_decode(json.dumps(envelope))


frames = st.one_of(st.text(max_size=60), envelopes.map(json.dumps), st.binary(max_size=10))


@settings(max_examples=100)
@given(st.lists(frames, max_size=10))
def test_gateway_never_raises_on_what_a_client_sends(inputs: list[str | bytes]) -> None:
    g = gateway()
    for frame in [sub(0), *inputs]:
        for action in g.receive(frame, 1.0):
            if isinstance(action, Send):
                encode(action.message)  # everything it sends encodes
                assert (
                    isinstance(action.message, ErrorReply) or action.message.type == "unsubscribed"
                )
            elif isinstance(action, Close):
                assert len(action.reason.encode()) <= 123
    g.connection_lost()
    assert g.state is ServerState.CLOSED and g.subscriptions == {}


@settings(max_examples=100)
@given(st.lists(frames, max_size=10))
def test_client_raises_only_protocol_errors(inputs: list[str | bytes]) -> None:
    c = client()
    c.subscribe("k", "trade")
    c.snap("trade")
    for frame in [reply(SubscribedReply(1, U1)), *inputs]:
        try:
            c.receive(frame)
        except ProtocolError:
            assert c.state is ClientState.DISCONNECTED
            c.connection_lost()
            c.connect()


@settings(max_examples=100)
@given(
    mid=st.integers(0, MAX_ID),
    topic=st.text(max_size=10),
    sub_topic=st.none()
    | st.dictionaries(
        st.text(max_size=5),
        st.text(max_size=5) | st.integers() | st.lists(st.booleans(), max_size=3),
        max_size=3,
    ),
    rid=json_values,
    snapshot=st.booleans(),
)
def test_any_request_round_trips(
    mid: int, topic: str, sub_topic: Any, rid: Any, snapshot: bool
) -> None:
    for msg in (
        SnapRequest(mid, topic, sub_topic, rid),
        SubscribeRequest(mid, topic, sub_topic, rid, snapshot),
        UnsubscribeRequest(mid, U1, rid),
    ):
        assert decode(encode(msg), origin="client") == msg


def test_nothing_here_holds_a_token() -> None:
    # The token rides in the websocket's header: the transport's business, never the core's.
    c = ClientConnectionState()
    assert not any("token" in name for name in ClientConnectionState.__slots__)
    assert not any("token" in name for name in GatewayConnectionState.__slots__)
    assert "token" not in repr(c).lower()


def test_topic_lookup_may_be_any_callable() -> None:
    def lookup(topic: str) -> Collection[str] | None:
        return frozenset({"sym"}) if topic.startswith("t") else None

    g = GatewayConnectionState(lookup, new_subscription=uuids())
    [a] = g.receive(snap(1, "tape", {"sym": "A"}), 0.0)
    assert isinstance(a, Snap)
    [err] = errors(g.receive(snap(2, "quote"), 0.0))
    assert err.error is ErrorCode.NO_SUCH_TOPIC
