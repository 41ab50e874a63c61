"""Helpers for the platform tests: configs, a raw gRPC session client, record builders."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from actorwire.adapters.keysquare import keysquare_pb2 as pb
from actorwire.adapters.keysquare import keysquare_pb2_grpc as pb_grpc
from actorwire.adapters.keysquare.config import PlatformConfig, load_config
from actorwire.adapters.keysquare.server import PlatformServer, serve

RESTRICTED_TOML = """
[platform]
name = "test platform"
heartbeat_interval = 1.0
heartbeat_deadline = 5.0
max_record_bytes = 4096

[[applications]]
name = "demo"
api_key = "demo-secret-key"
read = ["*"]
publish = ["*"]

[[applications]]
name = "reader"
api_key = "reader-secret-key"
read = ["Price", "markets.Trade"]
publish = []

[[applications]]
name = "writer"
api_key = "writer-secret-key"
read = []
publish = ["markets.Price"]

[[schemas]]
name = "markets"

[[schemas.types]]
name = "Price"
fields = { symbol = "string", bid = "float", ask = "float", volume = "int" }

[[schemas.types]]
name = "Trade"
fields = { symbol = "string", price = "float", quantity = "int" }

[[schemas]]
name = "refdata"

[[schemas.types]]
name = "Instrument"
fields = { symbol = "string", currency = "string" }

[[schemas.types]]
name = "Trade"
fields = { trade_id = "string" }
"""

WAIT = 10.0


def write_config(tmp_path: Path, text: str, name: str = "platform.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def restricted_config(tmp_path: Path) -> PlatformConfig:
    return load_config(write_config(tmp_path, RESTRICTED_TOML))


@pytest.fixture
def server(restricted_config: PlatformConfig) -> Iterator[PlatformServer]:
    srv = serve(port=0, config=restricted_config)
    try:
        yield srv
    finally:
        srv.stop()


def record(
    data_type: str = "Price",
    id: str = "AAPL",
    data: dict[str, Any] | bytes | None = None,
    schema: str = "markets",
    source: str = "src",
    group: str = "g",
    voided: bool = False,
) -> pb.Record:
    raw = data if isinstance(data, bytes) else json.dumps(data or {}).encode()
    return pb.Record(
        header=pb.KeyHeader(
            schema=schema, data_type=data_type, source=source, group=group, id=id, voided=voided
        ),
        data=raw,
    )


def topic(data_type: str = "", schema: str = "", **kw: str) -> pb.Topic:
    return pb.Topic(schema=schema, data_type=data_type, **kw)


class Client:
    """A raw KeyAccess client: a registered session and (after ``open``) its Session stream,
    read by a thread into a queue."""

    def __init__(self, server: PlatformServer, app: str = "demo", key: str | None = None):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        self.stub = pb_grpc.KeyAccessStub(self.channel)
        reply = self.stub.Register(
            pb.RegisterRequest(application_name=app, api_key=key or f"{app}-secret-key"),
            timeout=WAIT,
        )
        self.session_id = reply.session_id
        self.reply = reply
        self._out: queue.Queue[pb.ClientMessage | None] = queue.Queue()
        self.inbox: queue.Queue[pb.ServerMessage | grpc.RpcError | None] = queue.Queue()
        self.call: Any = None
        self.ended = threading.Event()
        self.error: grpc.RpcError | None = None
        self._request_id = 0

    def _requests(self) -> Iterator[pb.ClientMessage]:
        while True:
            message = self._out.get()
            if message is None:
                return
            yield message

    def open(self, hello: pb.ClientMessage | None = None, read: bool = True) -> Client:
        """Open the Session stream and send Hello (or ``hello``)."""
        self._out.put(hello or pb.ClientMessage(hello=pb.Hello(session_id=self.session_id)))
        self.call = self.stub.Session(self._requests())
        if read:
            threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        try:
            for message in self.call:
                if message.WhichOneof("body") == "batch":  # several writes' worth at once
                    for inner in message.batch.messages:
                        self.inbox.put(inner)
                else:
                    self.inbox.put(message)
            self.inbox.put(None)
        except grpc.RpcError as exc:
            self.error = exc
            self.inbox.put(exc)
        finally:
            self.ended.set()

    def send(self, message: pb.ClientMessage) -> None:
        self._out.put(message)

    def recv(self, timeout: float = WAIT) -> pb.ServerMessage:
        item = self.inbox.get(timeout=timeout)
        if not isinstance(item, pb.ServerMessage):
            raise AssertionError(f"stream ended: {item!r}")
        return item

    def expect(self, kind: str, timeout: float = WAIT) -> Any:
        message = self.recv(timeout)
        assert message.WhichOneof("body") == kind, message
        return getattr(message, kind)

    def welcome(self) -> pb.Welcome:
        welcome: pb.Welcome = self.expect("welcome")
        return welcome

    def publish(self, *records: pb.Record, store: bool = False) -> int:
        self._request_id += 1
        self.send(
            pb.ClientMessage(
                publish=pb.Publish(request_id=self._request_id, records=records, store=store)
            )
        )
        return self._request_id

    def publish_ok(self, *records: pb.Record, store: bool = False) -> pb.Ack:
        """Publish and wait for the ack (this session must not subscribe to the records)."""
        request_id = self.publish(*records, store=store)
        ack: pb.Ack = self.expect("ack")
        assert ack.request_id == request_id and ack.status == "OK", ack
        return ack

    def subscribe(self, sub_id: int, pattern: pb.Topic, cached: bool = True) -> pb.SubscribeReply:
        self.send(
            pb.ClientMessage(subscribe=pb.Subscribe(sub_id=sub_id, topic=pattern, cached=cached))
        )
        reply: pb.SubscribeReply = self.expect("subscribed")
        assert reply.sub_id == sub_id
        return reply

    def snapshot_deliveries(self, sub_id: int) -> list[pb.Record]:
        """Collect cached Delivery batches until snapshot_done."""
        records: list[pb.Record] = []
        while True:
            delivery: pb.Delivery = self.expect("delivery")
            assert delivery.sub_id == sub_id
            records.extend(delivery.records)
            if delivery.snapshot_done:
                return records

    def half_close(self) -> None:
        """End the request stream (the client is done sending)."""
        self._out.put(None)

    def close(self) -> None:
        self._out.put(None)
        if self.call is not None:
            self.call.cancel()
        self.channel.close()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """Collects clients made in a test and closes them at the end."""
    made: list[Client] = []
    yield made
    for client in made:
        client.close()
