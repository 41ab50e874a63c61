"""actorwire and smk-python-sdk 9.4.4 write the same frames, and each reads the other's.

The real SDK runs in its own venv (``tests/support/smkpeer.py``) under ``sdk_driver.py``:
``encode`` makes its ``Session``/``StreamingAPIClient`` write LOGIN, PING, a HEARTBEAT
answer, LOGOUT and ``send()``s of orders to a recording listener on 127.0.0.1; ``decode``
parses frames with its ``frame_decode_all`` and names them with its client's dispatch. Each
direction is one SDK run for the whole module.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from actorwire.adapters.smarkets import (
    IMMEDIATE_OR_CANCEL,
    SIDE_BID,
    SIDE_OFFER,
    eto,
    frame_encode,
    seto,
)
from actorwire.adapters.smarkets.protocol import (
    CALLBACKS,
    Frame,
    SmarketsCodec,
    eto_payload,
    gapfill,
    heartbeat,
    login,
    login_response,
    logout,
    payload_name,
    ping,
    pong,
    replay,
    throttle_exceeded,
    wrap,
)
from google.protobuf import text_format
from google.protobuf.message import Message

from tests.support.smkpeer import run_sdk

SDK_TIMEOUT = 120.0
"""Seconds one driver run may take (about a fifth of a second)."""

# What sdk_driver.py's clients send: the demo credentials, and the order it sends.
USERNAME, PASSWORD, TOKEN = "demo", "demo-password", "demo-token"
LOGIN_RESET = 2
"""The ``reset`` in the driver listener's login_response: the SDK's next outgoing seq."""


def order_create() -> seto.OrderCreate:
    return seto.OrderCreate(
        side=SIDE_BID, quantity=10000, price=2500, market_id=100, contract_id=101, reference=42
    )


# name -> (the payload actorwire builds for it, the seq the SDK stamps, the SDK's dispatch name)
CLIENT_FRAMES: dict[str, tuple[Callable[[], seto.Payload], int, str]] = {
    "login": (lambda: login(1, username=USERNAME, password=PASSWORD), 1, "seto.login"),
    "login_token": (lambda: login(1, cookie=TOKEN), 1, "seto.login"),
    "login_resume": (
        lambda: login(1, username=USERNAME, password=PASSWORD, account_sequence=7),
        1,
        "seto.login",
    ),
    "ping": (lambda: ping(2), 2, "eto.ping"),
    "heartbeat": (lambda: heartbeat(3), 3, "eto.heartbeat"),
    "order_create": (lambda: wrap(order_create(), 4), 4, "seto.order_create"),
    "order_cancel": (lambda: wrap(seto.OrderCancel(order_id=5), 5), 5, "seto.order_cancel"),
    "market_subscribe": (
        lambda: wrap(seto.MarketSubscribe(market_id=100), 6),
        6,
        "seto.market_subscribe",
    ),
    "order_cancel_all": (lambda: wrap(seto.OrderCancelAll(), 7), 7, "seto.order_cancel_all"),
    "logout": (lambda: logout(8, eto.LOGOUT_NONE), 8, "eto.logout"),
}
TRADING = (
    "login",
    "ping",
    "heartbeat",
    "order_create",
    "order_cancel",
    "market_subscribe",
    "order_cancel_all",
    "logout",
)
"""The frames of the driver's trading session, in the order the SDK wrote them."""


def text(message: Message) -> str:
    """``message`` in text format as ``sdk_driver.describe`` prints it (``str()`` differs
    across protobuf versions: 1234.0 prints as 1234 in newer ones)."""
    return text_format.MessageToString(message, as_utf8=True)


def frame(payload: seto.Payload) -> bytes:
    """``payload`` framed with actorwire's framing (partial: some cases lack required fields)."""
    buf = bytearray()
    frame_encode(buf, payload.SerializePartialToString())
    return bytes(buf)


def fields(message: Message) -> dict[str, Any]:
    """The set fields of ``message`` as ``sdk_driver.fields`` renders them (nested messages
    as dicts, bytes as hex, enums as numbers)."""
    out: dict[str, Any] = {}
    for descriptor, value in message.ListFields():
        if descriptor.is_repeated:
            out[descriptor.name] = [_field_value(descriptor, item) for item in value]
        else:
            out[descriptor.name] = _field_value(descriptor, value)
    return out


def _field_value(descriptor: Any, value: Any) -> Any:
    if descriptor.type == descriptor.TYPE_MESSAGE:
        return fields(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


# --------------------------------------------------------------------------- actorwire -> SDK


def replayed(payload: seto.Payload) -> seto.Payload:
    payload.eto_payload.is_replay = True
    return payload


SERVER_FRAMES: dict[str, tuple[seto.Payload, str]] = {
    "login_response": (login_response(1, "session-1", reset=2), "eto.login_response"),
    "pong": (pong(2), "eto.pong"),
    "heartbeat": (heartbeat(3), "eto.heartbeat"),
    "logout_unauthorised": (logout(4, eto.LOGOUT_UNAUTHORISED), "eto.logout"),
    "replay": (replay(5, from_seq=2), "eto.replay"),
    "gapfill": (replayed(gapfill(6)), "eto.gapfill"),
    "throttle_exceeded": (throttle_exceeded(7), "eto.throttle_exceeded"),
    "none": (eto_payload(eto.PAYLOAD_NONE, 8), "eto.none"),
    "order_accepted": (
        wrap(
            seto.OrderAccepted(
                seq=4,
                reference=42,
                price=2500,
                quantity=10000,
                order_id=2**64 - 1,
                account_sequence_64=2**40 + 3,
                available_balance=1234.0,
                exposure=-12.25,
                contract_id=101,
                side=SIDE_BID,
                market_id=100,
                label="caf\u00e9 \u2603",
            ),
            9,
        ),
        "seto.order_accepted",
    ),
    "order_accepted_replayed": (
        replayed(wrap(seto.OrderAccepted(seq=4, order_id=77), 10)),
        "seto.order_accepted",
    ),
    "order_rejected": (
        wrap(
            seto.OrderRejected(
                seq=4, reason=seto.ORDER_REJECTED_INSUFFICIENT_FUNDS, reference=43, label="x"
            ),
            11,
        ),
        "seto.order_rejected",
    ),
    "order_executed": (
        wrap(
            seto.OrderExecuted(
                price=2500,
                quantity=4000,
                order_id=77,
                side=SIDE_OFFER,
                market_id=100,
                contract_id=101,
                total_executed_quantity=4000,
                executed_avg_price=2490,
                available_quantity=6000,
                exposure=0.5,
            ),
            12,
        ),
        "seto.order_executed",
    ),
    "order_cancelled": (
        wrap(seto.OrderCancelled(reason=seto.ORDER_CANCELLED_MEMBER_REQUESTED, order_id=77), 13),
        "seto.order_cancelled",
    ),
    "order_cancel_rejected": (
        wrap(
            seto.OrderCancelRejected(reason=seto.ORDER_CANCEL_REJECTED_NOT_LIVE, order_id=78),
            14,
        ),
        "seto.order_cancel_rejected",
    ),
    "order_invalid": (
        wrap(
            seto.OrderInvalid(
                seq=5,
                reasons=[seto.ORDER_INVALID_INVALID_PRICE, seto.ORDER_INVALID_INVALID_QUANTITY],
                reference=44,
            ),
            15,
        ),
        "seto.order_invalid",
    ),
    "market_quotes": (
        wrap(
            seto.MarketQuotes(
                market_id=100,
                executed_volume=123456,
                contract_quotes=[
                    seto.ContractQuotes(
                        market_id=100,
                        contract_id=101,
                        bids=[seto.Quote(price=2500, quantity=10000)],
                        offers=[
                            seto.Quote(price=2600, quantity=5000),
                            seto.Quote(price=2700, quantity=1),
                        ],
                        last_execution=seto.Execution(
                            price=2550, quantity=10, liquidity=SIDE_BID, microseconds=2**50
                        ),
                        high_price=2700,
                        low_price=2400,
                    ),
                    seto.ContractQuotes(market_id=100, contract_id=102),
                ],
            ),
            16,
        ),
        "seto.market_quotes",
    ),
    "market_state": (
        wrap(
            seto.MarketState(
                state=seto.MARKET_STATE_OPEN,
                market_id=100,
                contracts=[
                    seto.ContractState(contract_id=101, state=seto.CONTRACT_STATE_OPEN),
                    seto.ContractState(contract_id=102, state=seto.CONTRACT_STATE_HALTED),
                ],
            ),
            17,
        ),
        "seto.market_state",
    ),
    "balance_changed": (
        wrap(seto.BalanceChanged(reason="order", available_balance=99.5, exposure=0.25), 18),
        "seto.balance_changed",
    ),
    "order_cancel_all_accepted": (
        wrap(seto.OrderCancelAllAccepted(reference=45, account_sequence_64=9), 19),
        "seto.order_cancel_all_accepted",
    ),
    "order_execute_voided": (
        wrap(seto.OrderExecutedVoid(price=2500, quantity=10, order_id=77), 20),
        "seto.order_execute_voided",
    ),
    "throttle_limits_changed": (
        wrap(seto.ThrottleLimitsChanged(average_rate_ps=50, burst_size=100, tick_ms=20), 21),
        "seto.throttle_limits_changed",
    ),
    "settings_accepted": (
        wrap(seto.SettingsAccepted(cancel_all_on_failure=True), 22),
        "seto.settings_accepted",
    ),
    "order_create_extremes": (
        wrap(
            seto.OrderCreate(
                side=SIDE_OFFER,
                quantity=2**64 - 1,
                price=2**32 - 1,
                tif=IMMEDIATE_OR_CANCEL,
                reference=2**64 - 1,
                market_id=2**32 - 1,
                contract_id=0,
                label="\u00fcber",
            ),
            2**64 - 1,
        ),
        "seto.order_create",
    ),
}


def every_payload_type() -> list[seto.Payload]:
    """One payload per ETO type and per seto type (with its body present and empty)."""
    out = [eto_payload(value, 1) for value in eto.PayloadType.values()]
    for field in seto.Payload.DESCRIPTOR.fields:
        if field.message_type is not None and field.name != "eto_payload":
            out.append(wrap(getattr(seto, field.message_type.name)(), 1))
    return out


def random_payloads(count: int, seed: int = 20190117) -> list[seto.Payload]:
    """``count`` order messages with random values over each field's whole range."""
    rng = random.Random(seed)

    def u(bits: int) -> int:
        value: int = rng.choice([0, 1, 2 ** (bits - 1), 2**bits - 1, rng.getrandbits(bits)])
        return value

    def label() -> str:
        return "".join(rng.choice("ab\u00e9\u2603\U0001f40d\x00") for _ in range(rng.randrange(6)))

    makers: list[Callable[[], Message]] = [
        lambda: seto.OrderCreate(
            side=rng.choice([SIDE_BID, SIDE_OFFER]),
            quantity=u(64),
            price=u(32),
            reference=u(64),
            market_id=u(32),
            contract_id=u(32),
            label=label(),
        ),
        lambda: seto.OrderAccepted(
            seq=u(64),
            order_id=u(64),
            reference=u(64),
            price=u(32),
            quantity=u(64),
            account_sequence_64=u(64),
            available_balance=rng.uniform(-1e12, 1e12) + 0.5,
            label=label(),
        ),
        lambda: seto.OrderCancel(order_id=u(64), reference=u(64)),
        lambda: seto.MarketSubscribe(market_id=u(32)),
    ]
    return [wrap(rng.choice(makers)(), u(64)) for _ in range(count)]


RANDOM = random_payloads(200)
ALL_TYPES = every_payload_type()
PARTIAL = bytes.fromhex("0a0801120208")  # the start of a frame whose payload is 10 bytes long


@pytest.fixture(scope="module")
def sdk_written() -> dict[str, Any]:
    """The SDK's ``encode`` run: the frames it wrote, by name."""
    frames: dict[str, Any] = run_sdk(["encode"], timeout=SDK_TIMEOUT)["frames"]
    return frames


@pytest.fixture(scope="module")
def sdk_read() -> dict[str, Any]:
    """The SDK's ``decode`` run over every frame this module builds with actorwire."""
    blobs = {
        "client": [frame(build()) for build, _, _ in CLIENT_FRAMES.values()],
        "server": [frame(payload) for payload, _ in SERVER_FRAMES.values()],
        "types": [frame(payload) for payload in ALL_TYPES],
        "random": [frame(payload) for payload in RANDOM],
    }
    # One blob holding a stream: every server frame, an empty payload (a padded 4-byte
    # frame) and the start of one more.
    stream = b"".join(blobs["server"]) + frame(seto.Payload()) + PARTIAL
    order = [(group, i) for group, items in blobs.items() for i in range(len(items))]
    hexes = [blob.hex() for items in blobs.values() for blob in items] + [stream.hex()]
    result = run_sdk(["decode"], timeout=SDK_TIMEOUT, stdin=json.dumps({"frames": hexes}))
    out: dict[str, Any] = {group: [] for group in blobs}
    for (group, _), decoded in zip(order, result["frames"][:-1], strict=True):
        assert decoded["remaining"] == "", decoded
        assert len(decoded["messages"]) == 1, decoded
        out[group].append(decoded["messages"][0])
    out["stream"] = result["frames"][-1]
    out["callbacks"] = result["callbacks"]
    return out


# --------------------------------------------------------------------------- SDK -> actorwire


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", CLIENT_FRAMES)
def test_actorwire_builds_the_frame_the_sdk_writes(sdk_written: dict[str, Any], name: str) -> None:
    build, seq, dispatch_name = CLIENT_FRAMES[name]
    sdk = sdk_written[name]
    assert sdk["seq"] == seq  # the SDK's sequencing: LOGIN 1, then the login_response's reset
    payload = build()
    assert frame(payload).hex() == sdk["hex"]
    assert payload.SerializeToString() == bytes.fromhex(sdk["reserialized"])  # all required set
    assert sdk["name"] == dispatch_name == payload_name(payload)
    assert sdk["has_handler"] and dispatch_name in CALLBACKS


@pytest.mark.timeout(300)
def test_the_codec_stamps_the_seqs_the_sdk_stamps(sdk_written: dict[str, Any]) -> None:
    codec = SmarketsCodec()
    wire = codec.encode(login(0, username=USERNAME, password=PASSWORD))
    codec.reset_outseq(LOGIN_RESET)  # as the client does on the login_response
    for message in (
        ping(0),
        heartbeat(0),
        wrap(order_create()),
        wrap(seto.OrderCancel(order_id=5)),
        wrap(seto.MarketSubscribe(market_id=100)),
        wrap(seto.OrderCancelAll()),
        logout(0),
    ):
        wire += codec.encode(message)
    assert wire == b"".join(bytes.fromhex(sdk_written[name]["hex"]) for name in TRADING)
    assert codec.outseq == CLIENT_FRAMES["logout"][1] + 1


@pytest.mark.timeout(300)
def test_actorwire_reads_the_sdks_frames_as_the_sdk_does(sdk_written: dict[str, Any]) -> None:
    codec = SmarketsCodec()
    codec.receive_data(b"".join(bytes.fromhex(sdk_written[name]["hex"]) for name in TRADING))
    frames = [event for event in codec.events() if isinstance(event, Frame)]
    assert codec.garbage == 0
    assert [payload_name(f.protobuf) for f in frames] == [sdk_written[n]["name"] for n in TRADING]
    for name, got in zip(TRADING, frames, strict=True):
        assert fields(got.protobuf) == sdk_written[name]["fields"], name
        assert text(got.protobuf) == sdk_written[name]["text"], name


# --------------------------------------------------------------------------- actorwire -> SDK


def assert_read_alike(sdk: dict[str, Any], payload: seto.Payload, what: str) -> None:
    """The SDK parsed ``payload`` to the same fields and bytes, knowing every field."""
    assert sdk["fields"] == fields(payload), what
    assert sdk["seq"] == payload.eto_payload.seq, what
    assert not sdk["unknown_fields"], what
    assert sdk["reserialized"] == payload.SerializePartialToString().hex(), what
    assert sdk["name"] == payload_name(payload), what


@pytest.mark.timeout(300)
def test_the_sdk_reads_actorwires_client_frames(sdk_read: dict[str, Any]) -> None:
    for (name, (build, _, dispatch_name)), sdk in zip(
        CLIENT_FRAMES.items(), sdk_read["client"], strict=True
    ):
        payload = build()
        assert_read_alike(sdk, payload, name)
        assert sdk["text"] == text(payload), name
        assert sdk["name"] == dispatch_name and sdk["initialized"], name


@pytest.mark.timeout(300)
def test_the_sdk_reads_actorwires_server_frames(sdk_read: dict[str, Any]) -> None:
    for (name, (payload, dispatch_name)), sdk in zip(
        SERVER_FRAMES.items(), sdk_read["server"], strict=True
    ):
        assert_read_alike(sdk, payload, name)
        assert sdk["text"] == text(payload), name
        assert sdk["name"] == dispatch_name and sdk["has_handler"], name
        assert sdk["initialized"] == payload.IsInitialized(), name
    # The replay flag crosses: the SDK sees is_replay on replayed payloads.
    replays = [sdk["fields"]["eto_payload"].get("is_replay") for sdk in sdk_read["server"]]
    assert replays.count(True) == 2


@pytest.mark.timeout(300)
def test_every_payload_type_has_the_sdks_dispatch_name(sdk_read: dict[str, Any]) -> None:
    names = [sdk["name"] for sdk in sdk_read["types"]]
    assert names == [payload_name(payload) for payload in ALL_TYPES]
    # Every handler name but "seto.eto" is some payload's: ETO payloads go to "eto.<type>".
    assert sorted(names) == sorted(set(CALLBACKS) - {"seto.eto"}) and len(names) == 50
    assert all(sdk["has_handler"] for sdk in sdk_read["types"])
    assert list(CALLBACKS) == sdk_read["callbacks"]  # the same names, in the SDK's order


@pytest.mark.timeout(300)
def test_the_sdk_reads_random_order_messages_as_actorwire_wrote_them(
    sdk_read: dict[str, Any],
) -> None:
    # Fields, not text: protobuf 3.20 prints a NUL in a string raw, later versions escape it.
    for i, (payload, sdk) in enumerate(zip(RANDOM, sdk_read["random"], strict=True)):
        assert_read_alike(sdk, payload, f"random payload {i}: {payload}")


@pytest.mark.timeout(300)
def test_the_sdk_splits_a_stream_of_actorwire_frames(sdk_read: dict[str, Any]) -> None:
    stream = sdk_read["stream"]
    messages = stream["messages"]
    assert [m["name"] for m in messages] == [
        *(dispatch_name for _, dispatch_name in SERVER_FRAMES.values()),
        "eto.none",  # an empty payload: type and eto type read as their first values
    ]
    assert messages[-1]["reserialized"] == "" and not messages[-1]["initialized"]
    assert payload_name(seto.Payload()) == "eto.none"
    assert [m["fields"] for m in messages[:-1]] == [fields(p) for p, _ in SERVER_FRAMES.values()]
    assert stream["remaining"] == PARTIAL.hex()
