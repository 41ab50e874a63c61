"""The sans-I/O core of the stream-sea adapter, with JSON strings only: every message's
shape both ways, the wire exactly as the reference clients send and accept it (PEERS.md 2.3,
2.4), every refusal and its message, both ends' state tables, and hypothesis round trips
and fuzzing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from actorwire.actors.errors import ActorwireError
from actorwire.adapters.streamsea.protocol import (
    MAX_ID,
    MAX_MESSAGE_SIZE,
    MESSAGE_TOO_BIG,
    POLICY_VIOLATION,
    Authenticate,
    Authenticated,
    AuthenticateReply,
    AuthResult,
    ClientConnectionState,
    ClientState,
    Close,
    CredentialsError,
    Delivered,
    Delivery,
    ErrorReply,
    Message,
    MessageTooBig,
    ProtocolError,
    Refused,
    Register,
    Send,
    ServerConnectionState,
    ServerState,
    Subscribe,
    Subscribed,
    SubscriptionReply,
    Unregister,
    Unsubscribe,
    Unsubscribed,
    UnsubscribeReply,
    decode,
    encode,
    encode_delivery,
    encode_payload,
)
from hypothesis import given, settings
from hypothesis import strategies as st

SECRET = "S3CRET-value-9f2c"
JWT = "eyJhbGciOiJSUzUxMiJ9.SECRETJWT.signature"
GROUP = "0b1e7c2a-5d3f-4e6a-9b8c-1d2e3f4a5b6c"


def sent(outputs: list[Any]) -> list[str]:
    """The text of every message an output list asks to send."""
    return [encode(o.message) for o in outputs if isinstance(o, Send)]


def events(outputs: list[Any]) -> list[Any]:
    return [o for o in outputs if not isinstance(o, Send)]


# --------------------------------------------------------------------------- message shapes

CLIENT_MESSAGES: list[Message] = [
    Authenticate("abc", client_secret="def123"),
    Authenticate("abc", jwt=JWT),
    Authenticate("", client_secret=""),
    Subscribe(2, "boiler_data"),
    Subscribe(3, "boiler_data", group_id=GROUP),
    Subscribe(4, "s", group_id=GROUP.upper(), after_seq=0, epoch=""),
    Subscribe(MAX_ID, "ünïcode ✓", after_seq=MAX_ID, epoch="e1"),
    Unsubscribe(5, 2),
]
SERVER_MESSAGES: list[Message] = [
    AuthenticateReply(True),
    AuthenticateReply(True, payload={"jailId": "some_jail"}),
    AuthenticateReply(False, error="bad credentials"),
    SubscriptionReply(2, "boiler_data"),
    SubscriptionReply(2, "boiler_data", payload=2, seq=0, epoch="e1"),
    SubscriptionReply(2, None, success=False, error="no such stream"),
    Delivery(2, {"temperature": 91, "pressure": 3001}, "boiler_data"),
    Delivery(2, {"t": 1}, "boiler_data", seq=1),
    Delivery(2, None),
    Delivery(2, [1, "two", 3.5, False, None], seq=MAX_ID),
    Delivery(2, "a string payload"),
    UnsubscribeReply(6, 2),
    ErrorReply(7, "unsubscribe: no live subscription with id 9 on this connection"),
    ErrorReply(None, "Could not decode JSON for message"),
]


@pytest.mark.parametrize("msg", CLIENT_MESSAGES, ids=repr)
def test_client_messages_round_trip(msg: Message) -> None:
    text = encode(msg)
    assert decode(text, origin="client") == msg
    assert decode(text) == msg
    assert text == json.dumps(json.loads(text), separators=(",", ":"))  # compact


@pytest.mark.parametrize("msg", SERVER_MESSAGES, ids=repr)
def test_server_messages_round_trip(msg: Message) -> None:
    text = encode(msg)
    assert decode(text, origin="server") == msg
    assert decode(text) == msg


def test_messages_carry_id_and_action() -> None:
    assert (Authenticate.id, Authenticate.action) == (1, "authenticate")
    assert (AuthenticateReply.id, AuthenticateReply.action) == (1, "authenticate")
    assert Subscribe.action == "subscribe"
    assert SubscriptionReply.action == Delivery.action == "subscription"
    assert Unsubscribe.action == UnsubscribeReply.action == "unsubscribe"
    assert ErrorReply.action == "error"
    assert Authenticate("a", jwt="x").type == "jwt"
    assert Authenticate("a", client_secret="x").type == "basic"


# --------------------------------------------------------------------------- the wire, exactly


def test_wire_as_stream_sea_client_0_7_0_sends_it() -> None:
    # stream_sea_connection.py builds these dicts and sends json.dumps(...) of them.
    auth = json.dumps(
        {
            "id": 1,
            "action": "authenticate",
            "payload": {"type": "basic", "clientId": "abc", "clientSecret": "def123"},
        }
    )
    assert auth == (
        '{"id": 1, "action": "authenticate", "payload": {"type": "basic", '
        '"clientId": "abc", "clientSecret": "def123"}}'
    )
    assert decode(auth, origin="client") == Authenticate("abc", client_secret="def123")
    sub = '{"id": 2, "action": "subscribe", "payload": "boiler_data"}'
    assert decode(sub, origin="client") == Subscribe(2, "boiler_data")
    # ... and what actorwire's client sends is the same JSON, keys in the same order.
    ours = encode(Authenticate("abc", client_secret="def123"))
    assert ours == (
        '{"id":1,"action":"authenticate","payload":'
        '{"type":"basic","clientId":"abc","clientSecret":"def123"}}'
    )
    assert list(json.loads(ours)) == list(json.loads(auth))
    assert json.loads(ours) == json.loads(auth)
    assert (
        encode(Subscribe(2, "boiler_data"))
        == '{"id":2,"action":"subscribe","payload":"boiler_data"}'
    )


def test_wire_as_the_js_client_sends_it() -> None:
    auth = '{"id":1,"action":"authenticate","payload":{"type":"jwt","clientId":"abc","jwt":"%s"}}'
    assert decode(auth % JWT, origin="client") == Authenticate("abc", jwt=JWT)
    assert encode(Authenticate("abc", jwt=JWT)) == auth % JWT
    sub = f'{{"id":2,"action":"subscribe","payload":"boiler_data","groupId":"{GROUP}"}}'
    assert decode(sub, origin="client") == Subscribe(2, "boiler_data", GROUP)
    assert encode(Subscribe(2, "boiler_data", GROUP)) == sub


SPEC_SERVER_EXAMPLES = [
    (
        """{
  "id": 1,
  "action": "authenticate",
  "success": true,
  "payload": {
    "jailId": "some_jail"
  }
}""",
        AuthenticateReply(True, payload={"jailId": "some_jail"}),
        '{"id":1,"action":"authenticate","success":true,"payload":{"jailId":"some_jail"}}',
    ),
    (
        """{
  "id": 2,
  "action": "subscription",
  "success": true,
  "streamName": "boiler_data",
  "payload":2
}""",
        SubscriptionReply(2, "boiler_data", payload=2),
        '{"id":2,"action":"subscription","success":true,"streamName":"boiler_data","payload":2}',
    ),
    (
        """{
  "id": 2,
  "action": "subscription",
  "streamName": "boiler_data",
  "payload": {
    "temperature": 91,
    "pressure": 3001
  }
}""",
        Delivery(2, {"temperature": 91, "pressure": 3001}, "boiler_data"),
        '{"id":2,"action":"subscription","streamName":"boiler_data",'
        '"payload":{"temperature":91,"pressure":3001}}',
    ),
]


@pytest.mark.parametrize(("spec", "msg", "ours"), SPEC_SERVER_EXAMPLES)
def test_spec_examples_of_server_messages(spec: str, msg: Message, ours: str) -> None:
    assert decode(spec, origin="server") == msg
    assert encode(msg) == ours
    assert json.loads(ours) == json.loads(spec)


def test_the_specs_authenticate_example_is_not_json() -> None:
    spec = """{
  "id":1,
  "action": "authenticate",
  "payload": {
    "type": "basic"
    "clientId": "abc",
    "clientSecret": "def123"
  }
}"""
    with pytest.raises(ProtocolError, match="Expecting ',' delimiter") as info:
        decode(spec)
    assert "def123" not in str(info.value)
    fixed = spec.replace('"basic"\n', '"basic",\n')
    assert decode(fixed) == Authenticate("abc", client_secret="def123")


def test_what_a_server_sends_is_what_both_clients_accept() -> None:
    # PEERS.md 2.4: the auth reply has id 1, action "authenticate", a success key; the
    # subscribe reply the subscribe's id, action "subscription", success true, streamName;
    # deliveries the subscribe's id, action "subscription", payload the user object.
    assert json.loads(encode(AuthenticateReply(True))) == {
        "id": 1,
        "action": "authenticate",
        "success": True,
    }
    assert json.loads(encode(AuthenticateReply(False, "no"))) == {
        "id": 1,
        "action": "authenticate",
        "success": False,
        "error": "no",
    }
    reply = json.loads(encode(SubscriptionReply(7, "s", seq=3, epoch="e")))
    assert {k: reply[k] for k in ("id", "action", "success", "streamName")} == {
        "id": 7,
        "action": "subscription",
        "success": True,
        "streamName": "s",
    }
    delivery = json.loads(encode(Delivery(7, {"x": 1}, "s", seq=4)))
    assert (delivery["id"], delivery["action"], delivery["payload"]) == (
        7,
        "subscription",
        {"x": 1},
    )
    # actorwire's extensions are keys 0.7.0 never reads (it reads id, action, success, payload).
    assert set(reply) - {"id", "action", "success", "payload"} == {"streamName", "seq", "epoch"}
    assert set(delivery) - {"id", "action", "success", "payload"} == {"streamName", "seq"}


def test_encode_delivery_is_encode_with_the_payload_encoded_once() -> None:
    payload = {"temperature": 92, "pressure": 3002, "name": "ü"}
    pj = encode_payload(payload)
    for stream in (None, "boiler_data", 'quote"d'):
        for seq in (None, 1, MAX_ID):
            for again in (False, True):
                msg = Delivery(9, payload, stream, seq, again)
                text = encode_delivery(9, pj, stream=stream, seq=seq, redelivered=again)
                assert text == encode(msg)
                assert decode(text) == msg
    with pytest.raises(ValueError, match=r"Delivery.id must be an int from 1"):
        encode_delivery(0, pj)
    with pytest.raises(ValueError, match=r"Delivery.seq"):
        encode_delivery(1, pj, seq=-1)


def test_optional_keys_null_or_absent_and_unknown_keys_ignored() -> None:
    text = (
        '{"id":2,"action":"subscribe","payload":"s","groupId":null,"afterSeq":null,'
        '"epoch":null,"future":{"x":1}}'
    )
    assert decode(text, origin="client") == Subscribe(2, "s")
    text = '{"id":2,"action":"subscription","payload":1,"streamName":null,"seq":null,"z":0}'
    assert decode(text, origin="server") == Delivery(2, 1)
    assert decode('{"id":1,"action":"authenticate","success":true,"error":null}') == (
        AuthenticateReply(True)
    )


def test_origin_none_tells_requests_from_replies_by_success() -> None:
    assert isinstance(decode('{"id":1,"action":"authenticate","success":false}'), AuthenticateReply)
    assert decode('{"id":4,"action":"unsubscribe","payload":2}') == Unsubscribe(4, 2)
    assert decode('{"id":4,"action":"unsubscribe","payload":2,"success":true}') == (
        UnsubscribeReply(4, 2)
    )
    assert decode('{"id":2,"action":"subscription","payload":0}') == Delivery(2, 0)
    assert decode('{"id":2,"action":"subscription","success":true}') == SubscriptionReply(2, None)


# --------------------------------------------------------------------------- refusals

AUTH = '{"id":1,"action":"authenticate","payload":%s}'

REFUSALS: list[tuple[str, str | None, str, int | None]] = [
    # (text, origin, what the message says, message_id)
    ("", None, "Could not decode JSON for message: Expecting value at character 0", None),
    ("{'id': 1}", None, "Expecting property name enclosed in double quotes", None),
    ('{"id":1,"action":"subscribe"', None, "Could not decode JSON", None),
    ('{"id":2,"action":"subscription","payload":NaN}', None, "NaN is not a JSON value", None),
    ('{"id":2,"action":"subscription","payload":-Infinity}', None, "-Infinity is not a JSON", None),
    ('{"id":2,"payload":"\x01"}', None, "Invalid control character", None),
    ("[" * 100_000 + "]" * 100_000, None, "nested too deeply", None),
    ('{"id":2,"action":"subscription","payload":' + "9" * 5000 + "}", None, "4300 digits", None),
    ("[1, 2]", None, 'must be a JSON object with "id" and "action", got an array', None),
    ('"text"', None, "got a string", None),
    ("null", None, "got null", None),
    ('{"action":"subscribe","payload":"s"}', None, "Message must have an id", None),
    ('{"id":0,"action":"subscribe","payload":"s"}', None, "from 1 to 2**53 - 1, got 0", None),
    ('{"id":-3,"action":"subscribe","payload":"s"}', None, "got -3", None),
    ('{"id":2.0,"action":"subscribe","payload":"s"}', None, "got 2.0", None),
    ('{"id":"2","action":"subscribe","payload":"s"}', None, "got '2'", None),
    ('{"id":true,"action":"subscribe","payload":"s"}', None, "got True", None),
    ('{"id":null,"action":"subscribe","payload":"s"}', None, "got None", None),
    ('{"id":9007199254740992,"action":"subscribe","payload":"s"}', None, "2**53 - 1", None),
    ('{"id":1' + "0" * 40 + ',"action":"subscribe"}', None, "got a very large integer", None),
    ('{"id":2,"payload":"s"}', None, 'message id 2 has no "action"', 2),
    ('{"id":2,"action":7}', None, 'must have a string, not a number, as "action"', 2),
    ('{"id":2,"action":"subscibe"}', "client", "(did you mean 'subscribe'?)", 2),
    ('{"id":2,"action":"fly"}', None, "unknown action 'fly'; expected one of", 2),
    ('{"id":2,"action":"subscription","payload":1}', "client", "'subscription' from a client", 2),
    ('{"id":2,"action":"error","error":"x"}', "client", "unknown action 'error' from a client", 2),
    (
        '{"id":2,"action":"subscribe","success":true,"streamName":"s"}',
        "server",
        "unknown action 'subscribe' from a server; expected one of 'authenticate', "
        "'subscription', 'unsubscribe', 'error' (a subscribe reply and each delivery have "
        "action 'subscription': stream-sea-client 0.7.0 refuses 'subscribe', whatever the "
        "spec's prose says)",
        2,
    ),
    # authenticate
    ('{"id":2,"action":"authenticate","payload":{}}', "client", "only the first message, id 1", 2),
    ('{"id":1,"action":"authenticate"}', "client", '"payload" must be an object, got null', 1),
    (AUTH % '"x"', "client", '"payload" must be an object, got a string', 1),
    (AUTH % '{"type":"basic","clientSecret":"x"}', "client", '"payload.clientId" must be', 1),
    (AUTH % '{"type":"basic","clientId":"a"}', "client", '"payload.clientSecret" must be', 1),
    (AUTH % '{"type":"jwt","clientId":"a","clientSecret":"x"}', "client", '"payload.jwt"', 1),
    (AUTH % '{"type":"oauth","clientId":"a"}', "client", '"basic" or "jwt", got \'oauth\'', 1),
    (AUTH % '{"clientId":"a","clientSecret":"x"}', "client", '"basic" or "jwt", got None', 1),
    # subscribe
    ('{"id":2,"action":"subscribe"}', "client", "the stream's name, a non-empty string", 2),
    ('{"id":2,"action":"subscribe","payload":""}', "client", "non-empty string, got ''", 2),
    ('{"id":2,"action":"subscribe","payload":{"s":1}}', "client", "got an object", 2),
    ('{"id":2,"action":"subscribe","payload":"s","groupId":"g1"}', "client", "8-4-4-4-12", 2),
    ('{"id":2,"action":"subscribe","payload":"s","groupId":5}', "client", "UUID", 2),
    ('{"id":2,"action":"subscribe","payload":"s","afterSeq":-1}', "client", '"afterSeq"', 2),
    ('{"id":2,"action":"subscribe","payload":"s","afterSeq":"7"}', "client", '"afterSeq"', 2),
    ('{"id":2,"action":"subscribe","payload":"s","epoch":1}', "client", '"epoch" must be', 2),
    # unsubscribe
    ('{"id":3,"action":"unsubscribe"}', "client", '"payload" must be the subscribe\'s id', 3),
    ('{"id":3,"action":"unsubscribe","payload":"2"}', "client", "got '2'", 3),
    ('{"id":3,"action":"unsubscribe","payload":0}', "client", "got 0", 3),
    # authenticate reply
    ('{"id":2,"action":"authenticate","success":true}', "server", "must have an id of 1", 2),
    ('{"id":1,"action":"authenticate"}', "server", "does not have a success field", 1),
    ('{"id":1,"action":"authenticate","success":1}', "server", "true or false, got 1", 1),
    ('{"id":1,"action":"authenticate","success":false,"error":{}}', "server", '"error"', 1),
    # subscription reply and delivery
    ('{"id":2,"action":"subscription"}', "server", 'a delivery (no "success") must have', 2),
    ('{"id":2,"action":"subscription","payload":1,"seq":0}', "server", '"seq" must be', 2),
    ('{"id":2,"action":"subscription","payload":1,"seq":1.5}', "server", "got 1.5", 2),
    ('{"id":2,"action":"subscription","payload":1,"streamName":3}', "server", '"streamName"', 2),
    ('{"id":2,"action":"subscription","success":"yes"}', "server", "got 'yes'", 2),
    ('{"id":2,"action":"subscription","success":true,"seq":-2}', "server", '"seq"', 2),
    ('{"id":2,"action":"subscription","success":true,"epoch":[]}', "server", "got an array", 2),
    # unsubscribe reply, error reply
    ('{"id":3,"action":"unsubscribe","success":false,"payload":2}', "server", "refusal", 3),
    ('{"id":3,"action":"unsubscribe","success":true}', "server", "subscribe's id", 3),
    ('{"id":3,"action":"error"}', "server", '"error" must be a string, got None', 3),
    ('{"action":"error","error":"x"}', "server", "Message must have an id", None),
    ('{"id":0,"action":"error","error":"x"}', "server", "got 0", None),
]


@pytest.mark.parametrize(("text", "origin", "says", "mid"), REFUSALS)
def test_decode_refuses(text: str, origin: Any, says: str, mid: int | None) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(text, origin=origin)
    assert says in str(info.value)
    assert info.value.message_id == mid
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_refusals_name_the_action_of_a_bad_body() -> None:
    with pytest.raises(ProtocolError) as info:
        decode(AUTH % '{"type":"oauth","clientId":"a"}')
    assert (info.value.message_id, info.value.action) == (1, "authenticate")
    assert str(info.value).startswith("authenticate (id 1): ")


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "basic", "clientId": "a", "clientSecret": 12345678},
        {"type": "basic", "clientId": ["SECRET-ish"], "clientSecret": SECRET},
        {"type": "jwt", "clientId": "a", "jwt": {"k": JWT}},
        {"type": "jwt", "clientId": 5, "jwt": JWT},
        {"type": "kerberos", "clientId": "a", "clientSecret": SECRET, "jwt": JWT},
    ],
)
def test_refusals_never_show_a_secret(payload: dict[str, Any]) -> None:
    for text in (
        json.dumps({"id": 1, "action": "authenticate", "payload": payload}),
        json.dumps({"id": 1, "action": "authenticate", "payload": payload}) + "}",  # not JSON
        json.dumps({"id": 1, "action": "authenticate", "payload": payload, "x": float("nan")}),
    ):
        with pytest.raises(ProtocolError) as info:
            decode(text, origin="client")
        for shown in (str(info.value), repr(info.value)):
            assert SECRET not in shown and JWT not in shown and "12345678" not in shown


def test_reprs_never_show_a_secret() -> None:
    for msg in (Authenticate("abc", client_secret=SECRET), Authenticate("abc", jwt=JWT)):
        assert SECRET not in repr(msg) and JWT not in repr(msg) and SECRET not in str(msg)
        assert "client_id='abc'" in repr(msg) and "***" in repr(msg)
    for state in (
        ClientConnectionState("abc", client_secret=SECRET),
        ClientConnectionState("abc", jwt=JWT),
    ):
        state.connect()
        assert SECRET not in repr(state) and JWT not in repr(state)


def test_a_binary_message_is_refused() -> None:
    with pytest.raises(ProtocolError, match="a binary message: stream-sea messages are JSON text"):
        decode(b'{"id":1,"action":"authenticate"}')
    with pytest.raises(TypeError, match="text must be a str, got int"):
        decode(5)  # type: ignore[call-overload]


def test_the_size_limit_counts_utf8_bytes() -> None:
    def delivery(payload: str) -> str:
        return '{"id":2,"action":"subscription","payload":"' + payload + '"}'

    head = len(delivery(""))
    assert decode(delivery("x" * (100 - head)), max_size=100) == Delivery(2, "x" * (100 - head))
    with pytest.raises(MessageTooBig, match="message of 101 characters is over the limit of 100"):
        decode(delivery("x" * (101 - head)), max_size=100)
    # 30 characters of 3 bytes each: under the limit in characters, over it in bytes.
    with pytest.raises(MessageTooBig, match="message of 135 bytes is over the limit of 100 bytes"):
        decode(delivery("€" * 30), max_size=100)
    assert isinstance(MessageTooBig("x"), ProtocolError)
    big = delivery("x" * MAX_MESSAGE_SIZE)
    with pytest.raises(MessageTooBig):
        decode(big)


def test_error_types() -> None:
    assert issubclass(ProtocolError, ActorwireError) and issubclass(ProtocolError, ValueError)
    assert issubclass(CredentialsError, ActorwireError)
    assert issubclass(CredentialsError, PermissionError)
    assert ProtocolError("x").message_id is None and ProtocolError("x").action is None


ENCODE_REFUSALS: list[tuple[Any, type[Exception], str]] = [
    (Authenticate("a"), ValueError, "exactly one of client_secret (basic) or jwt"),
    (Authenticate("a", client_secret=SECRET, jwt=JWT), ValueError, "exactly one of"),
    (Authenticate("a", client_secret=12345678), TypeError, "client_secret must be a str, got"),
    (Authenticate("a", jwt=b"SECRETJWT"), TypeError, "jwt must be a str, got bytes"),
    (Authenticate(5, client_secret=SECRET), TypeError, "client_id must be a str, got 5"),
    (Subscribe(0, "s"), ValueError, "Subscribe.id must be an int from 1 to 2**53 - 1, got 0"),
    (Subscribe(True, "s"), ValueError, "Subscribe.id must be an int"),
    (Subscribe(2, ""), ValueError, "Subscribe.stream must be a non-empty str, got ''"),
    (Subscribe(2, "s", group_id="g"), ValueError, "Subscribe.group_id must be a UUID"),
    (Subscribe(2, "s", after_seq=-1), ValueError, "Subscribe.after_seq must be an int from 0"),
    (Subscribe(2, "s", epoch=3), TypeError, "Subscribe.epoch must be a str, got 3"),
    (Delivery(2, float("nan")), ValueError, "Delivery.payload is not JSON"),
    (Delivery(2, {"when": object()}), TypeError, "Delivery.payload is not JSON"),
    (Delivery(2, 1, seq=0), ValueError, "Delivery.seq must be an int from 1"),
    (Delivery(2, 1, stream=b"s"), TypeError, "Delivery.stream must be a str"),
    (AuthenticateReply("yes"), TypeError, "AuthenticateReply.success must be a bool"),
    (AuthenticateReply(False, error=5), TypeError, "AuthenticateReply.error must be a str"),
    (SubscriptionReply(2, "s", seq=2.5), ValueError, "SubscriptionReply.seq"),
    (SubscriptionReply(2, 5), TypeError, "SubscriptionReply.stream must be a str"),
    (Unsubscribe(3, 0), ValueError, "Unsubscribe.subscription_id must be an int from 1"),
    (UnsubscribeReply(3, None), ValueError, "UnsubscribeReply.subscription_id"),
    (ErrorReply(0, "x"), ValueError, "ErrorReply.id must be an int from 1"),
    (ErrorReply(None, None), TypeError, "ErrorReply.error must be a str"),
    ("not a message", TypeError, "is not a stream-sea message"),
]


@pytest.mark.parametrize(("msg", "kind", "says"), ENCODE_REFUSALS)
def test_encode_refuses_what_does_not_fit_the_wire(
    msg: Any, kind: type[Exception], says: str
) -> None:
    with pytest.raises(kind) as info:
        encode(msg)
    assert says in str(info.value)
    assert SECRET not in str(info.value) and "12345678" not in str(info.value)
    assert "SECRETJWT" not in str(info.value)


def test_encode_payload() -> None:
    assert encode_payload({"a": [1, 2.5, None, "é"]}) == '{"a":[1,2.5,null,"\\u00e9"]}'
    with pytest.raises(ValueError, match="payload is not JSON: Out of range float"):
        encode_payload(float("inf"))
    with pytest.raises(TypeError, match="payload is not JSON: Object of type set"):
        encode_payload({1, 2})


# --------------------------------------------------------------------------- server


def check(auth: Authenticate, now: float) -> AuthResult:
    if auth.client_id == "demo" and auth.client_secret == "demo-secret":
        return AuthResult(True, payload={"jailId": "jail-1"})
    if auth.client_id == "demo" and auth.jwt == "good-jwt":
        return AuthResult(True, expires_at=100.0)
    return AuthResult(False, error=f"client {auth.client_id!r}: unknown client or bad secret")


BASIC = (
    '{"id": 1, "action": "authenticate", "payload": '
    '{"type": "basic", "clientId": "demo", "clientSecret": "demo-secret"}}'
)


def starts(sub: Subscribe, client_id: str) -> int:
    return sub.after_seq if sub.after_seq is not None else 40


def server(now: float = 0.0, **kw: Any) -> ServerConnectionState:
    kw.setdefault("start", starts)
    kw.setdefault("epoch", "e1")
    return ServerConnectionState(check, now=now, **kw)


def authed(**kw: Any) -> ServerConnectionState:
    s = server(**kw)
    assert s.receive(BASIC, 1.0) == [Send(AuthenticateReply(True, payload={"jailId": "jail-1"}))]
    return s


def test_server_authenticates_then_subscribes_and_unsubscribes() -> None:
    s = server()
    assert s.state is ServerState.AWAITING_AUTH and s.deadline == 10.0
    out = s.receive(BASIC, 1.0)
    assert sent(out) == [
        '{"id":1,"action":"authenticate","success":true,"payload":{"jailId":"jail-1"}}'
    ]
    assert (s.state, s.client_id, s.last_id, s.deadline) == (
        ServerState.AUTHENTICATED,
        "demo",
        1,
        None,
    )

    out = s.receive('{"id": 2, "action": "subscribe", "payload": "boiler_data"}', 2.0)
    reg = Register(2, "boiler_data", None, "demo", start_seq=40)
    assert out == [Send(SubscriptionReply(2, "boiler_data", seq=40, epoch="e1")), reg]
    assert sent(out) == [
        '{"id":2,"action":"subscription","success":true,"streamName":"boiler_data",'
        '"seq":40,"epoch":"e1"}'
    ]
    out = s.receive(
        f'{{"id":3,"action":"subscribe","payload":"b","groupId":"{GROUP}","afterSeq":7,"epoch":"e1"}}',
        2.0,
    )
    assert out[1] == Register(3, "b", GROUP, "demo", start_seq=7, after_seq=7, epoch="e1")
    assert set(s.subscriptions) == {2, 3}

    out = s.receive('{"id":4,"action":"unsubscribe","payload":2}', 3.0)
    assert out == [Unregister(2), Send(UnsubscribeReply(4, 2))]
    assert sent(out) == ['{"id":4,"action":"unsubscribe","success":true,"payload":2}']
    assert set(s.subscriptions) == {3} and s.errors == 0


def test_server_without_start_or_epoch_sends_a_plain_reply() -> None:
    s = ServerConnectionState(check, now=0.0)
    s.receive(BASIC, 0.0)
    out = s.receive('{"id":2,"action":"subscribe","payload":"s"}', 0.0)
    assert sent(out) == ['{"id":2,"action":"subscription","success":true,"streamName":"s"}']
    assert out[1] == Register(2, "s", None, "demo")


def test_server_jwt_login_and_expiry() -> None:
    s = server()
    jwt = AUTH % '{"type":"jwt","clientId":"demo","jwt":"good-jwt"}'
    assert s.receive(jwt, 1.0) == [Send(AuthenticateReply(True))]
    s.receive('{"id":2,"action":"subscribe","payload":"s"}', 2.0)
    assert s.deadline == 100.0 and s.tick(99.9) == []
    assert s.tick(100.0) == [Unregister(2), Close(POLICY_VIOLATION, "credentials expired")]
    assert s.state is ServerState.CLOSED and s.close_reason == "credentials expired"
    assert s.tick(200.0) == [] and s.deadline is None


def test_server_closes_expired_credentials_on_the_next_message() -> None:
    s = server()
    s.receive(
        '{"id":1,"action":"authenticate","payload":{"type":"jwt","clientId":"demo","jwt":"good-jwt"}}',
        1.0,
    )
    out = s.receive('{"id":2,"action":"subscribe","payload":"s"}', 150.0)
    assert out == [Close(POLICY_VIOLATION, "credentials expired")]


def test_server_closes_a_connection_that_does_not_authenticate_in_time() -> None:
    s = server(now=5.0, auth_timeout=2.5)
    assert s.deadline == 7.5 and s.tick(7.4) == []
    assert s.tick(7.5) == [Close(POLICY_VIOLATION, "no authenticate within 2.5 s")]
    assert s.receive(BASIC, 8.0) == []


def test_server_refuses_bad_credentials_and_closes() -> None:
    s = server()
    text = BASIC.replace("demo-secret", SECRET)
    out = s.receive(text, 1.0)
    error = "client 'demo': unknown client or bad secret"
    assert out == [
        Send(AuthenticateReply(False, error)),
        Close(POLICY_VIOLATION, "authentication failed"),
    ]
    assert sent(out) == [f'{{"id":1,"action":"authenticate","success":false,"error":"{error}"}}']
    assert s.state is ServerState.CLOSED and SECRET not in repr(out)
    # A check that refuses without a reason still gives the client one.
    s = ServerConnectionState(lambda a, now: AuthResult(False), now=0.0)
    assert s.receive(BASIC, 0.0)[0] == Send(AuthenticateReply(False, "authentication failed"))


def test_server_answers_a_malformed_authenticate_with_an_authenticate_reply() -> None:
    s = server()
    out = s.receive(AUTH % f'{{"type":"oauth","clientId":"demo","clientSecret":"{SECRET}"}}', 1.0)
    assert out == [
        Send(
            AuthenticateReply(
                False, 'authenticate (id 1): "payload.type" must be "basic" or "jwt", got \'oauth\''
            )
        ),
        Close(POLICY_VIOLATION, "authentication failed: bad authenticate"),
    ]
    assert SECRET not in repr(out) and s.errors == 1


@pytest.mark.parametrize(
    ("text", "reply", "reason"),
    [
        (
            '{"id":2,"action":"subscribe","payload":"s"}',
            ErrorReply(
                2, "the first message must be \"authenticate\" with id 1, got 'subscribe' (id 2)"
            ),
            "the first message must be \"authenticate\" with id 1, got 'subscribe' (id 2)",
        ),
        (
            '{"id":1,"action":"unsubscribe","payload":1}',
            ErrorReply(
                1, "the first message must be \"authenticate\" with id 1, got 'unsubscribe' (id 1)"
            ),
            None,
        ),
        (
            '{"id":2,"action":"authenticate","payload":{}}',
            ErrorReply(2, "authenticate (id 2): only the first message, id 1, authenticates"),
            None,
        ),
        (
            "hello",
            ErrorReply(None, "Could not decode JSON for message: Expecting value at character 0"),
            None,
        ),
        (
            '{"id":1,"action":"subscription","payload":1}',
            ErrorReply(
                1,
                "message id 1: unknown action 'subscription' from a client; expected one of "
                "'authenticate', 'subscribe', 'unsubscribe' (did you mean 'subscribe'?)",
            ),
            None,
        ),
    ],
)
def test_server_first_message_must_be_the_authenticate(
    text: str, reply: ErrorReply, reason: str | None
) -> None:
    s = server()
    out = s.receive(text, 1.0)
    assert out[0] == Send(reply)
    assert isinstance(out[1], Close) and out[1].code == POLICY_VIOLATION and len(out) == 2
    if reason is not None:
        assert out[1].reason == reason
    assert s.state is ServerState.CLOSED and s.errors == 1


def test_server_ids_must_increase_or_the_connection_closes() -> None:
    s = authed()
    s.receive('{"id":2,"action":"subscribe","payload":"a"}', 1.0)
    s.receive('{"id":5,"action":"subscribe","payload":"b"}', 1.0)  # gaps are taken
    assert s.last_id == 5
    out = s.receive('{"id":5,"action":"subscribe","payload":"c"}', 1.0)
    reason = "'subscribe' id 5 is not above the last id 5: ids must increase"
    assert out == [
        Send(ErrorReply(5, reason)),
        Unregister(2),
        Unregister(5),
        Close(POLICY_VIOLATION, reason),
    ]
    assert s.state is ServerState.CLOSED and s.subscriptions == {}
    assert s.connection_lost() == []  # unregistered once


@pytest.mark.parametrize(
    "text",
    [
        '{"id":2,"action":"unsubscribe","payload":2}',  # lower
        '{"id":3,"action":"fly"}',  # equal, and a bad action: the id rule comes first
        '{"id":3,"action":"subscribe","payload":5}',  # equal, and a bad shape
    ],
)
def test_server_repeated_or_lower_ids_close_whatever_the_message(text: str) -> None:
    s = authed()
    s.receive('{"id":3,"action":"subscribe","payload":"a"}', 1.0)
    out = s.receive(text, 1.0)
    assert isinstance(out[0], Send) and isinstance(out[0].message, ErrorReply)
    assert "ids must increase" in out[0].message.error
    assert out[-2:] == [Unregister(3), Close(POLICY_VIOLATION, out[0].message.error)]


def test_server_a_second_authenticate_closes() -> None:
    s = authed()
    out = s.receive(BASIC, 1.0)
    reason = "a second authenticate: a connection authenticates once, with id 1"
    assert out == [Send(ErrorReply(1, reason)), Close(POLICY_VIOLATION, reason)]


def test_server_a_bad_message_with_a_readable_id_is_refused_alone() -> None:
    s = authed()
    s.receive('{"id":2,"action":"subscribe","payload":"a"}', 1.0)
    out = s.receive('{"id":3,"action":"subscribe","payload":5}', 1.0)
    assert out == [
        Send(
            ErrorReply(
                3,
                'subscribe (id 3): "payload" must be the stream\'s name, a non-empty string, got 5',
            )
        )
    ]
    out = s.receive('{"id":4,"action":"ack","payload":9}', 1.0)
    assert out == [
        Send(
            ErrorReply(
                4,
                "message id 4: unknown action 'ack' from a client; expected one of "
                "'authenticate', 'subscribe', 'unsubscribe'",
            )
        )
    ]
    assert s.state is ServerState.AUTHENTICATED and s.last_id == 4 and s.errors == 2
    assert s.receive('{"id":5,"action":"unsubscribe","payload":2}', 1.0)[0] == Unregister(2)


def test_server_a_message_without_a_readable_id_closes() -> None:
    s = authed()
    s.receive('{"id":2,"action":"subscribe","payload":"a"}', 1.0)
    out = s.receive('{"id": 3, "action": "subscribe", "payload": "b"', 1.0)
    error = "Could not decode JSON for message: Expecting ',' delimiter at character 47"
    assert out == [Send(ErrorReply(None, error)), Unregister(2), Close(POLICY_VIOLATION, error)]
    assert sent(out) == [f'{{"id":null,"action":"error","error":"{error}"}}']


def test_server_an_oversize_message_closes_with_1009() -> None:
    s = authed(max_size=120)
    s.receive('{"id":2,"action":"subscribe","payload":"a"}', 1.0)
    out = s.receive('{"id":3,"action":"subscribe","payload":"' + "x" * 100 + '"}', 1.0)
    error = "message of 142 characters is over the limit of 120 bytes"
    assert out == [Send(ErrorReply(None, error)), Unregister(2), Close(MESSAGE_TOO_BIG, error)]
    # Before authentication too.
    s = server(max_size=64)
    assert s.receive("x" * 65, 0.0)[-1] == Close(
        MESSAGE_TOO_BIG, "message of 65 characters is over the limit of 64 bytes"
    )


def test_server_unsubscribe_of_no_live_subscription_is_refused_alone() -> None:
    s = authed()
    out = s.receive('{"id":2,"action":"unsubscribe","payload":7}', 1.0)
    assert out == [
        Send(ErrorReply(2, "unsubscribe: no live subscription with id 7 on this connection"))
    ]
    assert s.state is ServerState.AUTHENTICATED


def test_server_bounds_subscriptions_per_connection() -> None:
    s = authed(max_subscriptions=2)
    s.receive('{"id":2,"action":"subscribe","payload":"a"}', 1.0)
    s.receive('{"id":3,"action":"subscribe","payload":"a"}', 1.0)
    out = s.receive('{"id":4,"action":"subscribe","payload":"a"}', 1.0)
    assert out == [Send(ErrorReply(4, "subscribe refused: at most 2 subscriptions per connection"))]
    s.receive('{"id":5,"action":"unsubscribe","payload":2}', 1.0)
    assert isinstance(s.receive('{"id":6,"action":"subscribe","payload":"a"}', 1.0)[1], Register)


def test_server_connection_lost_unregisters_once_and_closed_ignores_everything() -> None:
    s = authed()
    s.receive('{"id":2,"action":"subscribe","payload":"a"}', 1.0)
    s.receive('{"id":3,"action":"subscribe","payload":"b"}', 1.0)
    assert s.connection_lost() == [Unregister(2), Unregister(3)]
    assert s.state is ServerState.CLOSED and s.close_reason == "connection lost"
    assert s.connection_lost() == []
    assert s.receive('{"id":4,"action":"subscribe","payload":"a"}', 1.0) == []
    assert s.tick(1e9) == []


def test_server_close_reasons_fit_a_websocket_close_frame() -> None:
    s = server()
    out = s.receive('{"id":2,"action":"' + "é" * 200 + '"}', 0.0)
    assert isinstance(out[-1], Close)
    reason = out[-1].reason
    assert len(reason.encode()) <= 123 and reason.endswith("...")
    assert reason.startswith("message id 2: unknown action")
    assert "did you mean" not in out[0].message.error  # type: ignore[union-attr]


def test_server_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="check must be callable"):
        ServerConnectionState(None, now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now must be a finite number of seconds, got nan"):
        ServerConnectionState(check, now=float("nan"))
    with pytest.raises(ValueError, match="auth_timeout must be a finite number of seconds > 0"):
        ServerConnectionState(check, now=0.0, auth_timeout=0)
    with pytest.raises(ValueError, match="max_size must be an int > 0, got 0"):
        ServerConnectionState(check, now=0.0, max_size=0)
    with pytest.raises(ValueError, match="max_subscriptions must be an int > 0"):
        ServerConnectionState(check, now=0.0, max_subscriptions=True)
    s = ServerConnectionState(lambda a, now: True, now=0.0)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="check must return AuthResult, got True"):
        s.receive(BASIC, 0.0)
    assert "awaiting_auth" in repr(s)


class Ref070:
    """stream-sea-client 0.7.0's checks on what a server sends (stream_sea_connection.py,
    ``__await_impl__``, ``subscribe`` and ``on_authenticated_message``), transcribed."""

    def __init__(self) -> None:
        self.replies: dict[int, dict[str, Any]] = {}
        self.delivered: dict[int, list[Any]] = {}

    def auth_reply(self, text: str) -> None:
        reply = json.loads(text)
        if not isinstance(reply, dict):
            raise AssertionError("Authentication Response must be object")
        if ("id" not in reply) or reply["id"] != 1:
            raise AssertionError("Authentication Response must have an id of 1")
        if reply["action"] != "authenticate":
            raise AssertionError("Reply to a authenticate action must be a authenticate action")
        if "success" not in reply:
            raise AssertionError("Authentication Response does not have a success field")
        if not reply["success"]:
            raise PermissionError("Authentication unsuccessful")

    def subscribed(self, msg_id: int) -> None:
        self.replies[msg_id] = {}
        self.delivered[msg_id] = []

    def message(self, text: str) -> None:
        message = json.loads(text)
        if "id" not in message:
            raise AssertionError("Message must have an id")
        msg_id = message["id"]
        if msg_id not in self.replies:
            raise AssertionError("message id could not be resolved to a request")
        if self.replies[msg_id]:
            self.delivered[msg_id].append(message["payload"])
        else:
            self.replies[msg_id] = message
            if message["action"] != "subscription":
                raise AssertionError("Reply to a subscribe action must be a subscription action")
        # The JS client: drops a falsy id, checks success on the first reply.
        assert msg_id
        assert self.replies[msg_id].get("success") is True


def test_stream_sea_client_0_7_0_accepts_what_the_server_sends() -> None:
    s = server()
    ref = Ref070()
    ref.auth_reply(sent(s.receive(BASIC, 0.0))[0])
    out = s.receive(json.dumps({"id": 2, "action": "subscribe", "payload": "boiler_data"}), 0.0)
    ref.subscribed(2)
    for text in sent(out):
        ref.message(text)
    reg = out[1]
    assert isinstance(reg, Register)
    for seq, payload in enumerate([{"temperature": 91}, {"temperature": 92}], start=41):
        ref.message(encode(Delivery(reg.subscription_id, payload, reg.stream, seq)))
        ref.message(encode_delivery(2, encode_payload(payload), stream="boiler_data", seq=seq))
    assert ref.delivered[2] == [{"temperature": 91}] * 2 + [{"temperature": 92}] * 2
    with pytest.raises(PermissionError):
        ref.auth_reply(sent(server().receive(BASIC.replace("demo-secret", "x"), 0.0))[0])


# --------------------------------------------------------------------------- client

OK = '{"id":1,"action":"authenticate","success":true,"payload":{"jailId":"some_jail"}}'


def client(**kw: Any) -> ClientConnectionState:
    kw.setdefault("client_secret", "demo-secret")
    return ClientConnectionState("demo", **kw)


def ready(*subs: tuple[str, str]) -> ClientConnectionState:
    """A READY client with each ``(key, stream)`` subscribed (ids 2, 3, ...) and confirmed
    starting after seq 10 of epoch e1."""
    c = client()
    for key, stream in subs:
        c.subscribe(key, stream)
    c.connect()
    c.receive(OK)
    for i, (_key, stream) in enumerate(subs, start=2):
        c.receive(
            f'{{"id":{i},"action":"subscription","success":true,"streamName":"{stream}",'
            f'"seq":10,"epoch":"e1"}}'
        )
    return c


def deliver(mid: int, payload: Any, seq: int | None = None, stream: str | None = "s") -> str:
    return encode(Delivery(mid, payload, stream, seq))


def test_client_authenticates_subscribes_and_receives() -> None:
    c = client()
    assert c.state is ClientState.DISCONNECTED
    assert sent(c.connect()) == [
        '{"id":1,"action":"authenticate","payload":'
        '{"type":"basic","clientId":"demo","clientSecret":"demo-secret"}}'
    ]
    assert c.state is ClientState.AUTHENTICATING and c.pending == 1
    assert c.receive(OK) == [Authenticated({"jailId": "some_jail"})]
    assert c.state is ClientState.READY and c.pending == 0
    assert sent(c.subscribe("k", "boiler_data")) == [
        '{"id":2,"action":"subscribe","payload":"boiler_data"}'
    ]
    out = c.receive(
        '{"id": 2, "action": "subscription", "success": true, "streamName": "boiler_data", '
        '"payload": 2}'
    )
    assert out == [Subscribed("k", "boiler_data")]
    out = c.receive(
        '{"id": 2, "action": "subscription", "streamName": "boiler_data", '
        '"payload": {"temperature": 91, "pressure": 3001}}'
    )
    assert out == [Delivered("k", {"temperature": 91, "pressure": 3001})]
    assert c.missing_seq == 1 and c.subscriptions == ("k",)


def test_client_jwt_authenticate() -> None:
    c = ClientConnectionState("demo", jwt=JWT)
    assert sent(c.connect()) == [
        f'{{"id":1,"action":"authenticate","payload":{{"type":"jwt","clientId":"demo","jwt":"{JWT}"}}}}'
    ]


def test_client_ids_count_up_from_1_and_restart_with_each_connection() -> None:
    c = client()
    c.subscribe("a", "s1")
    c.subscribe("b", "s2", group_id=GROUP)
    assert c.connect()[0] == Send(Authenticate("demo", client_secret="demo-secret"))
    out = c.receive(OK)
    assert sent(out) == [
        '{"id":2,"action":"subscribe","payload":"s1"}',
        f'{{"id":3,"action":"subscribe","payload":"s2","groupId":"{GROUP}"}}',
    ]
    assert sent(c.subscribe("c", "s3")) == ['{"id":4,"action":"subscribe","payload":"s3"}']
    assert sent(c.unsubscribe("c")) == ['{"id":5,"action":"unsubscribe","payload":4}']
    assert c.connection_lost() == [Unsubscribed("c")]
    assert c.state is ClientState.DISCONNECTED and c.pending == 0
    assert sent(c.connect()) == [encode(Authenticate("demo", client_secret="demo-secret"))]
    assert [m.message.id for m in c.receive(OK) if isinstance(m, Send)] == [2, 3]
    assert c.connections == 2


def test_client_refused_credentials_raise_credentials_error() -> None:
    c = client(client_secret=SECRET)
    c.subscribe("k", "s")
    c.connect()
    with pytest.raises(CredentialsError) as info:
        c.receive('{"id":1,"action":"authenticate","success":false,"error":"bad secret"}')
    assert str(info.value) == "Authentication unsuccessful: bad secret"
    assert SECRET not in repr(info.value)
    assert c.state is ClientState.DISCONNECTED and c.subscriptions == ("k",)
    assert c.connection_lost() == []
    c.connect()
    with pytest.raises(CredentialsError, match=r"^Authentication unsuccessful$"):
        c.receive('{"id":1,"action":"authenticate","success":false}')


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '{"id":1,"action":"authenticate"}',
            "Authentication Response does not have a success field",
        ),
        (
            '{"id":2,"action":"authenticate","success":true}',
            "Authentication Response must have an id of 1",
        ),
        (
            '{"id":1,"action":"subscription","success":true}',
            "Reply to a authenticate action must be a authenticate action, "
            "got 'subscription' (id 1)",
        ),
        (
            '{"id":1,"action":"error","error":"malformed"}',
            "the server refused the authenticate: malformed",
        ),
        ('{"id":null,"action":"error","error":"bye"}', "the server refused the authenticate: bye"),
        ("]", "Could not decode JSON for message"),
    ],
)
def test_client_before_authentication_only_the_authenticate_reply_is_taken(
    text: str, says: str
) -> None:
    c = client()
    c.connect()
    with pytest.raises(ProtocolError) as info:
        c.receive(text)
    assert says in str(info.value)
    assert c.state is ClientState.DISCONNECTED


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '{"id":2,"action":"subscription","payload":{"x":1}}',
            "Reply to a subscribe action must be a subscription action, got a delivery "
            "(id 2, 'subscription')",
        ),
        (
            '{"id":2,"action":"subscribe","success":true,"streamName":"s"}',
            "unknown action 'subscribe' from a server",
        ),
        (
            '{"id":2,"action":"unsubscribe","success":true,"payload":2}',
            "Reply to a subscribe action must be a subscription action, got 'unsubscribe'",
        ),
    ],
)
def test_client_the_first_reply_to_a_subscribe_must_be_a_subscription_reply(
    text: str, says: str
) -> None:
    c = ready()
    c.subscribe("k", "s")
    with pytest.raises(ProtocolError) as info:
        c.receive(text)
    assert says in str(info.value)
    assert c.state is ClientState.DISCONNECTED


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '{"id":9,"action":"subscription","payload":1}',
            "Server sent a response but the message id could not be resolved to a request "
            "(id 9, 'subscription')",
        ),
        (
            '{"id":1,"action":"authenticate","success":true}',
            "could not be resolved to a request (id 1, 'authenticate')",
        ),
        ('{"id":9,"action":"unsubscribe","success":true,"payload":2}', "could not be resolved"),
        (
            '{"id":2,"action":"subscription","success":true,"streamName":"s"}',
            "a second subscription reply for one subscribe (id 2, 'subscription')",
        ),
        (
            '{"id":2,"action":"subscription","streamName":"other","payload":1}',
            "a delivery names stream 'other', subscribed 's' (id 2",
        ),
        ('{"id":9,"action":"error","error":"boom"}', "the server reported an error: boom"),
        (
            '{"id":null,"action":"error","error":"going away"}',
            "the server reported an error: going away",
        ),
        ('{"id":2,"action":"subscription","payload":1,"seq":0}', '"seq" must be an integer'),
    ],
)
def test_client_when_ready_every_message_must_match_a_request(text: str, says: str) -> None:
    c = ready(("k", "s"))
    with pytest.raises(ProtocolError) as info:
        c.receive(text)
    assert says in str(info.value)
    assert c.state is ClientState.DISCONNECTED
    assert c.receive(deliver(2, 1, 11)) == []  # frames read after the end are ignored
    assert c.connection_lost() == [] and c.subscriptions == ("k",)


def test_client_a_reply_naming_another_stream_is_a_protocol_error() -> None:
    c = ready()
    c.subscribe("k", "s")
    with pytest.raises(ProtocolError, match="the reply names stream 'x', subscribed 's'"):
        c.receive('{"id":2,"action":"subscription","success":true,"streamName":"x"}')


def test_client_an_unsubscribe_reply_must_name_the_subscription() -> None:
    c = ready(("k", "s"))
    c.unsubscribe("k")
    with pytest.raises(
        ProtocolError, match="unsubscribe reply names subscription 5, the unsubscribe asked for 2"
    ):
        c.receive('{"id":3,"action":"unsubscribe","success":true,"payload":5}')
    c = ready(("k", "s"))
    c.unsubscribe("k")
    with pytest.raises(
        ProtocolError, match="the reply to an unsubscribe must be an unsubscribe reply"
    ):
        c.receive('{"id":3,"action":"subscription","payload":5}')


def test_client_refused_subscriptions_are_dropped() -> None:
    c = ready()
    c.subscribe("a", "s")
    c.subscribe("b", "t")
    out = c.receive('{"id":2,"action":"subscription","success":false,"error":"no such stream"}')
    assert out == [Refused("a", "no such stream")]
    out = c.receive('{"id":3,"action":"error","error":"not allowed"}')
    assert out == [Refused("b", "not allowed")]
    assert c.subscriptions == () and c.pending == 0 and c.last_seq("s") is None
    c.subscribe("c", "s")
    assert c.receive('{"id":4,"action":"subscription","success":false}') == [
        Refused("c", "success false")
    ]


def test_client_subscribes_made_before_ready_go_out_after_authentication() -> None:
    c = client()
    assert c.subscribe("k", "s", group_id=GROUP) == []
    c.connect()
    assert c.subscribe("j", "t") == []
    out = c.receive(OK)
    assert out[0] == Authenticated({"jailId": "some_jail"})
    assert [o.message for o in out[1:]] == [Subscribe(2, "s", GROUP), Subscribe(3, "t")]  # type: ignore[union-attr]


def test_client_drops_duplicates_by_seq_and_counts_them() -> None:
    c = ready(("k", "s"))
    assert c.last_seq("s") == 10
    assert c.receive(deliver(2, "old", 10)) == []  # at the start: a duplicate
    assert c.receive(deliver(2, "a", 11)) == [Delivered("k", "a", 11)]
    assert c.receive(deliver(2, "a", 11)) == []
    assert c.receive(deliver(2, "c", 13)) == [Delivered("k", "c", 13)]  # a group sees a subset
    assert c.receive(deliver(2, "b", 12)) == []
    assert c.receive(deliver(2, "d", 14, stream=None)) == [Delivered("k", "d", 14)]
    assert (c.duplicates, c.missing_seq, c.last_seq("s")) == (3, 0, 14)


def test_client_takes_a_redelivered_message_below_the_last_seq_once_marked() -> None:
    c = ready(("k", "s"))
    assert c.receive(deliver(2, "a", 14)) == [Delivered("k", "a", 14)]
    again = encode(Delivery(2, "lost", "s", 12, redelivered=True))
    assert '"redelivered":true' in again
    assert c.receive(again) == [Delivered("k", "lost", 12)]  # another member's: new here
    assert c.receive(deliver(2, "b", 12)) == []  # unmarked: a duplicate
    assert (c.redelivered, c.duplicates, c.last_seq("s")) == (1, 1, 14)
    with pytest.raises(ProtocolError, match='"redelivered" must be a boolean'):
        ready(("k", "s")).receive('{"id":2,"action":"subscription","payload":1,"redelivered":1}')


def test_an_exclusive_subscription_drops_a_redelivered_repeat() -> None:
    c = client()
    c.subscribe("k", "s", group_id=GROUP, exclusive=True)
    c.connect()
    c.receive(OK)
    c.receive('{"id":2,"action":"subscription","success":true,"streamName":"s","seq":10}')
    assert c.receive(deliver(2, "a", 14)) == [Delivered("k", "a", 14)]
    again = encode(Delivery(2, "a", "s", 14, redelivered=True))
    assert c.receive(again) == []  # alone in its group: it had this one already
    assert (c.redelivered, c.duplicates) == (0, 1)


def test_client_counts_deliveries_without_seq() -> None:
    c = ready(("k", "s"))
    assert c.receive(deliver(2, "x")) == [Delivered("k", "x", None)]
    assert c.receive(deliver(2, "x")) == [Delivered("k", "x", None)]  # cannot tell: delivered
    assert (c.missing_seq, c.duplicates) == (2, 0)


def test_client_seqs_are_per_stream_and_group() -> None:
    c = ready()
    c.subscribe("a", "s", group_id=GROUP)
    c.subscribe("b", "s")
    c.subscribe("c", "t")
    c.receive('{"id":2,"action":"subscription","success":true,"seq":5}')
    c.receive('{"id":3,"action":"subscription","success":true,"seq":7}')
    c.receive('{"id":4,"action":"subscription","success":true,"seq":0}')
    assert c.receive(deliver(2, 1, 6)) == [Delivered("a", 1, 6)]
    assert c.receive(deliver(3, 1, 6)) == []  # group None on s is at 7 already
    assert c.receive(deliver(4, 1, 1, stream="t")) == [Delivered("c", 1, 1)]
    assert (c.last_seq("s", GROUP), c.last_seq("s"), c.last_seq("t")) == (6, 7, 1)


def test_client_subscriptions_in_one_group_share_its_seqs() -> None:
    c = ready(("a", "s"), ("b", "s"))  # both in the default group: they compete
    assert c.receive(deliver(2, "x", 11)) == [Delivered("a", "x", 11)]
    assert c.receive(deliver(3, "y", 12)) == [Delivered("b", "y", 12)]
    assert c.receive(deliver(3, "x", 11)) == [] and c.duplicates == 1
    c.unsubscribe("a")
    c.receive('{"id":4,"action":"unsubscribe","success":true,"payload":2}')
    assert c.last_seq("s") == 12  # "b" still uses the track
    c.unsubscribe("b")
    c.receive('{"id":5,"action":"unsubscribe","success":true,"payload":3}')
    assert c.last_seq("s") is None


def test_client_resumes_after_the_last_seq_on_reconnect() -> None:
    c = ready(("k", "s"))
    c.receive(deliver(2, "a", 11))
    c.receive(deliver(2, "b", 12))
    assert c.connection_lost() == []
    c.connect()
    out = c.receive(OK)
    assert sent(out) == ['{"id":2,"action":"subscribe","payload":"s","afterSeq":12,"epoch":"e1"}']
    out = c.receive(
        '{"id":2,"action":"subscription","success":true,"streamName":"s","seq":12,"epoch":"e1"}'
    )
    assert out == [Subscribed("k", "s", after_seq=12, start_seq=12)]
    assert c.receive(deliver(2, "b", 12)) == []  # resent by an eager server: dropped
    assert c.receive(deliver(2, "c", 13)) == [Delivered("k", "c", 13)]
    assert (c.unknown_gaps, c.duplicates) == (0, 1)


@pytest.mark.parametrize(
    ("reply", "missed", "last"),
    [
        (
            '{"id":2,"action":"subscription","success":true,"seq":3,"epoch":"e2"}',
            "the server's logs restarted (epoch 'e1' -> 'e2'): cannot know what was missed",
            3,
        ),
        (
            '{"id":2,"action":"subscription","success":true,"streamName":"s"}',
            "the server does not number its messages: cannot know what was missed",
            12,
        ),
        (
            '{"id":2,"action":"subscription","success":true,"seq":20,"epoch":"e1"}',
            "the server resumed after seq 20, not 12: seqs 13 to 20 were not replayed",
            20,
        ),
    ],
)
def test_client_says_when_a_resubscription_may_have_missed_messages(
    reply: str, missed: str, last: int
) -> None:
    c = ready(("k", "s"))
    c.receive(deliver(2, "b", 12))
    c.connection_lost()
    c.connect()
    c.receive(OK)
    out = c.receive(reply)
    assert len(out) == 1 and isinstance(out[0], Subscribed) and out[0].missed == missed
    assert c.unknown_gaps == 1 and c.last_seq("s") == last
    assert c.epoch_changes == (1 if "epoch 'e1'" in missed else 0)


def test_client_against_a_server_without_seqs_cannot_resume() -> None:
    c = client()
    c.subscribe("k", "s")
    c.connect()
    c.receive(OK)
    c.receive('{"id":2,"action":"subscription","success":true,"streamName":"s"}')
    c.receive(deliver(2, "x"))
    c.connection_lost()
    c.connect()
    assert sent(c.receive(OK)) == ['{"id":2,"action":"subscribe","payload":"s"}']
    out = c.receive('{"id":2,"action":"subscription","success":true,"streamName":"s"}')
    assert out == [
        Subscribed(
            "k",
            "s",
            missed="no seq to resume after (none was delivered): cannot know what was missed",
        )
    ]
    assert (c.unknown_gaps, c.missing_seq) == (1, 1)


def test_client_a_subscription_never_confirmed_is_not_a_resubscription() -> None:
    c = client()
    c.subscribe("k", "s")
    c.connect()
    c.receive(OK)
    c.connection_lost()  # before the subscribe's reply
    c.connect()
    c.receive(OK)
    out = c.receive('{"id":2,"action":"subscription","success":true}')
    assert out == [Subscribed("k", "s")] and c.unknown_gaps == 0


def test_client_unsubscribe_when_ready() -> None:
    c = ready(("k", "s"))
    assert c.receive(deliver(2, "a", 11)) == [Delivered("k", "a", 11)]
    assert c.unsubscribe("k") == [Send(Unsubscribe(3, 2))]
    assert c.unsubscribe("k") == []  # already ending
    assert c.receive(deliver(2, "late", 12)) == [] and c.late == 1
    assert c.receive('{"id":3,"action":"unsubscribe","success":true,"payload":2}') == [
        Unsubscribed("k")
    ]
    assert c.subscriptions == () and c.last_seq("s") is None  # the seq track goes with it
    with pytest.raises(ProtocolError, match="could not be resolved"):
        c.receive(deliver(2, "later", 13))


def test_client_unsubscribe_before_the_subscribe_reply() -> None:
    c = ready()
    c.subscribe("k", "s")
    assert c.unsubscribe("k") == [Send(Unsubscribe(3, 2))]
    assert c.receive('{"id":2,"action":"subscription","success":true,"seq":4}') == []
    assert c.receive(deliver(2, "a", 5)) == [] and c.late == 1
    assert c.receive('{"id":3,"action":"unsubscribe","success":true,"payload":2}') == [
        Unsubscribed("k")
    ]
    # ... and when the subscribe was refused: the unsubscribe's error ends it.
    c.subscribe("j", "s")
    c.unsubscribe("j")
    assert c.receive('{"id":4,"action":"error","error":"no such stream"}') == []
    assert c.receive('{"id":5,"action":"error","error":"no live subscription"}') == [
        Unsubscribed("j")
    ]
    c.subscribe("i", "s")
    c.unsubscribe("i")
    assert c.receive('{"id":6,"action":"subscription","success":false}') == []
    assert c.receive('{"id":7,"action":"unsubscribe","success":true,"payload":6}') == [
        Unsubscribed("i")
    ]
    assert c.subscriptions == () and c.pending == 0


def test_client_unsubscribe_without_a_connection_is_at_once() -> None:
    c = client()
    c.subscribe("k", "s")
    assert c.unsubscribe("k") == [Unsubscribed("k")]
    c.subscribe("k", "s")
    c.connect()
    assert c.unsubscribe("k") == [Unsubscribed("k")]  # its subscribe was never sent
    assert sent(c.receive(OK)) == []
    with pytest.raises(ValueError, match="no subscription 'k'"):
        c.unsubscribe("k")


def test_client_unsubscribes_cut_short_end_with_the_connection() -> None:
    c = ready(("k", "s"), ("j", "t"))
    c.unsubscribe("k")
    with pytest.raises(ProtocolError):
        c.receive("garbage")
    assert c.connection_lost() == [Unsubscribed("k")]
    assert c.connection_lost() == []
    assert c.subscriptions == ("j",)


def test_client_commands_are_checked() -> None:
    c = client()
    c.connect()
    with pytest.raises(
        RuntimeError, match="the connection is authenticating; call connection_lost"
    ):
        c.connect()
    with pytest.raises(ValueError, match=r"subscribe\.stream must be a non-empty str"):
        c.subscribe("k", "")
    with pytest.raises(ValueError, match="group_id must be a UUID"):
        c.subscribe("k", "s", group_id="not-a-uuid")
    c.subscribe("k", "s")
    with pytest.raises(ValueError, match="key 'k' is already in use"):
        c.subscribe("k", "t")
    with pytest.raises(ValueError, match="ClientConnectionState: needs exactly one of"):
        ClientConnectionState("demo")
    with pytest.raises(ValueError, match="needs exactly one of"):
        ClientConnectionState("demo", client_secret=SECRET, jwt=JWT)
    with pytest.raises(TypeError, match="client_secret must be a str, got a number"):
        ClientConnectionState("demo", client_secret=12345678)  # type: ignore[arg-type]
    assert client().receive(OK) == []  # not connected: ignored


def test_client_and_server_states_talk_to_each_other_across_reconnects() -> None:
    log: list[tuple[int, str]] = []  # the stream's log: (seq, payload)

    def start(sub: Subscribe, client_id: str) -> int:
        if sub.after_seq is not None and sub.epoch == "e1":
            return sub.after_seq
        return len(log)

    c = client()
    c.subscribe("k", "s", group_id=GROUP)
    got: list[Any] = []

    def to_client(text: str, queue: list[str]) -> None:
        out = c.receive(text)
        queue += sent(out)
        got.extend(e.payload for e in out if isinstance(e, Delivered))

    for round_ in range(3):
        s = ServerConnectionState(check, now=0.0, start=start, epoch="e1")
        reg: Register | None = None
        queue = sent(c.connect())
        while queue:
            for action in s.receive(queue.pop(0), 0.0):
                if isinstance(action, Send):
                    to_client(encode(action.message), queue)
                elif isinstance(action, Register):
                    reg = action
                    # An eager server resends from its start seq: the last one again, then
                    # what was published while the client was away.
                    for seq, payload in log:
                        if seq >= (action.start_seq or 0):
                            to_client(
                                encode(Delivery(reg.subscription_id, payload, "s", seq)), queue
                            )
        assert reg is not None and reg.group_id == GROUP and reg.client_id == "demo"
        for i in range(3):  # published while connected
            log.append((len(log) + 1, f"r{round_}m{i}"))
            to_client(encode(Delivery(reg.subscription_id, log[-1][1], "s", log[-1][0])), [])
        assert c.connection_lost() == [] and s.connection_lost() == [Unregister(2)]
        log.append((len(log) + 1, f"r{round_}offline"))  # published while disconnected
    assert got == [payload for _, payload in log[:-1]]  # each once, in order
    assert (c.unknown_gaps, c.duplicates, c.connections) == (0, 2, 3)


# --------------------------------------------------------------------------- hypothesis

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
ids = st.integers(min_value=1, max_value=MAX_ID)
seqs = st.none() | st.integers(min_value=1, max_value=MAX_ID)


@settings(max_examples=200)
@given(payload=json_values, mid=ids, seq=seqs, stream=st.none() | st.text(max_size=10))
def test_any_payload_round_trips(
    payload: Any, mid: int, seq: int | None, stream: str | None
) -> None:
    msg = Delivery(mid, payload, stream, seq)
    text = encode(msg)
    assert decode(text, origin="server") == msg
    assert encode_delivery(mid, encode_payload(payload), stream=stream, seq=seq) == text
    for reply in (
        SubscriptionReply(mid, stream, payload=payload, seq=seq),
        AuthenticateReply(True, payload=payload),
    ):
        back = decode(encode(reply), origin="server")
        assert back == reply or (payload is None and back == reply)


@settings(max_examples=100)
@given(
    client_id=st.text(max_size=10),
    secret=st.text(max_size=10),
    stream=st.text(min_size=1, max_size=10),
    after=st.none() | st.integers(min_value=0, max_value=MAX_ID),
    epoch=st.none() | st.text(max_size=5),
    mid=ids,
)
def test_any_request_round_trips(
    client_id: str, secret: str, stream: str, after: int | None, epoch: str | None, mid: int
) -> None:
    for msg in (
        Authenticate(client_id, client_secret=secret),
        Authenticate(client_id, jwt=secret),
        Subscribe(mid, stream, GROUP, after, epoch),
        Unsubscribe(mid, mid),
    ):
        assert decode(encode(msg), origin="client") == msg


def _check_decode(text: str) -> None:
    for origin in (None, "client", "server"):
        try:
            msg = decode(text, origin=origin)  # type: ignore[call-overload]
        except ProtocolError as exc:
            assert str(exc)
            continue
        assert decode(encode(msg), origin=origin) == msg  # type: ignore[call-overload]


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_decode_fuzz_arbitrary_text(text: str) -> None:
    _check_decode(text)


envelopes = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(json_values, ids, st.just(0), st.just(1)),
        "action": st.one_of(
            st.sampled_from(
                ["authenticate", "subscribe", "subscription", "unsubscribe", "error", "subscibe"]
            ),
            json_values,
        ),
        "payload": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "type": st.sampled_from(["basic", "jwt", "x"]) | json_values,
                    "clientId": json_values,
                    "clientSecret": json_values,
                    "jwt": json_values,
                },
            ),
        ),
        "success": json_values,
        "error": json_values,
        "streamName": json_values,
        "groupId": st.just(GROUP) | json_values,
        "seq": seqs | json_values,
        "afterSeq": seqs | json_values,
        "epoch": json_values,
    },
)


@settings(max_examples=400)
@given(envelopes)
def test_decode_fuzz_message_like_objects(obj: dict[str, Any]) -> None:
    _check_decode(json.dumps(obj))


@settings(max_examples=100)
@given(st.lists(st.one_of(st.text(max_size=60), envelopes.map(json.dumps)), max_size=8))
def test_server_never_raises_on_what_a_client_sends(texts: list[str]) -> None:
    s = server()
    for text in [BASIC, *texts]:
        for action in s.receive(text, 1.0):
            if isinstance(action, Send):
                encode(action.message)  # everything it sends encodes
            if isinstance(action, Close):
                assert len(action.reason.encode()) <= 123
    s.connection_lost()
    assert s.state is ServerState.CLOSED and s.subscriptions == {}


@settings(max_examples=100)
@given(st.lists(st.one_of(st.text(max_size=60), envelopes.map(json.dumps)), max_size=8))
def test_client_raises_only_protocol_or_credentials_errors(texts: list[str]) -> None:
    c = client()
    c.subscribe("k", "s")
    c.connect()
    for text in [OK, '{"id":2,"action":"subscription","success":true}', *texts]:
        try:
            c.receive(text)
        except (ProtocolError, CredentialsError):
            assert c.state is ClientState.DISCONNECTED
            c.connection_lost()
            c.connect()


@settings(max_examples=200)
@given(
    start=st.integers(min_value=0, max_value=50), arrivals=st.lists(st.integers(1, 60), max_size=40)
)
def test_delivered_seqs_strictly_increase_and_every_drop_is_counted(
    start: int, arrivals: list[int]
) -> None:
    c = client()
    c.subscribe("k", "s")
    c.connect()
    c.receive(OK)
    c.receive(f'{{"id":2,"action":"subscription","success":true,"seq":{start}}}')
    got = [e.seq for seq in arrivals for e in c.receive(deliver(2, None, seq))]
    expected, last = [], start
    for seq in arrivals:
        if seq > last:
            expected.append(seq)
            last = seq
    assert got == expected
    assert c.duplicates == len(arrivals) - len(got)


def test_client_renews_its_jwt_for_the_next_connection_only() -> None:
    c = ClientConnectionState("abc", jwt="old.token.x")
    first = c.connect()
    c.connection_lost()
    c.renew(jwt="new.token.y")
    assert "old.token.x" in encode(first[0].message)  # type: ignore[attr-defined]
    second = c.connect()
    text = encode(second[0].message)  # type: ignore[attr-defined]
    assert "new.token.y" in text and "old.token.x" not in text
    assert "new.token.y" not in repr(c)
    with pytest.raises(ValueError, match="authenticates with a secret"):
        client().renew(jwt="x.y.z")
    with pytest.raises(TypeError):
        c.renew(jwt=5)  # type: ignore[arg-type]


def test_server_start_may_refuse_a_subscribe_with_an_error_reply() -> None:
    from actorwire.adapters.streamsea.protocol import SubscribeRefused

    def start(sub: Any, client_id: str) -> int:
        if sub.stream == "full":
            raise SubscribeRefused("at most 1 consumer group per stream")
        return 0

    st = ServerConnectionState(lambda a, now: AuthResult(True), now=0.0, start=start)
    st.receive(encode(Authenticate("demo", client_secret="x")), 0.0)
    out = st.receive('{"id":2,"action":"subscribe","payload":"full"}', 0.0)
    assert out == [Send(ErrorReply(2, "subscribe refused: at most 1 consumer group per stream"))]
    assert st.subscriptions == {} and st.errors == 1
    assert st.state is ServerState.AUTHENTICATED
    out = st.receive('{"id":3,"action":"subscribe","payload":"ok"}', 0.0)
    assert isinstance(out[1], Register)
