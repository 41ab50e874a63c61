"""Many per-topic subscriptions on one session, through the real platform server."""

from __future__ import annotations

import queue
import time

import pytest
from actorwire.adapters.keysquare import keysquare_pb2 as pb
from actorwire.adapters.keysquare.server import PlatformServer

from .conftest import WAIT, Client, record, topic

TOPICS = 5_000
CHUNK = 250  # records per publish
# Subscribing, publishing and receiving all of them: about 1.5 s here with the indexed
# fan-out; matching every record against every subscription took over 30 s.
DEADLINE = 2 * WAIT


@pytest.mark.timeout(60)
def test_5000_per_topic_subscriptions_on_one_session_deliver_every_record(
    server: PlatformServer, clients: list[Client]
) -> None:
    subscriber = Client(server)
    clients.append(subscriber)
    subscriber.open().welcome()
    publisher = Client(server)
    clients.append(publisher)
    publisher.open().welcome()
    deadline = time.monotonic() + DEADLINE
    ids = [f"T{i:05d}" for i in range(TOPICS)]
    for sub_id, id_ in enumerate(ids):
        pattern = topic("Price", "markets", source="src", group="g", id=id_)
        subscriber.send(
            pb.ClientMessage(subscribe=pb.Subscribe(sub_id=sub_id, topic=pattern, cached=False))
        )
    confirmed = set()
    for _ in ids:
        reply = subscriber.expect("subscribed")
        assert reply.status == "OK", reply
        confirmed.add(reply.sub_id)
    assert confirmed == set(range(TOPICS))
    assert server.subscriptions() == TOPICS

    # The subscriber pings as it goes: a session silent for the heartbeat deadline is dropped.
    ping = pb.ClientMessage(ping=pb.Ping(n=1))
    for start in range(0, TOPICS, CHUNK):
        subscriber.send(ping)
        chunk = ids[start : start + CHUNK]
        publisher.publish_ok(*(record(id=id_, data={"bid": 1.0}) for id_ in chunk))

    got: dict[int, list[str]] = {}
    received = 0
    while received < TOPICS:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{received} of {TOPICS} records arrived in {DEADLINE} s"
        try:
            message = subscriber.recv(timeout=min(remaining, 1.0))
        except queue.Empty:
            subscriber.send(ping)
            continue
        kind = message.WhichOneof("body")
        if kind == "pong":
            continue
        assert kind == "delivery", message
        delivery = message.delivery
        got.setdefault(delivery.sub_id, []).extend(r.header.id for r in delivery.records)
        received += len(delivery.records)
    # Each subscription got its own topic's record, once.
    assert got == {sub_id: [id_] for sub_id, id_ in enumerate(ids)}
