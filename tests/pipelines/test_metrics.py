"""/metrics and /healthz over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from actorwire.pipelines.metrics import MetricsServer, Snapshot


class State:
    def __init__(self) -> None:
        self.snapshot = Snapshot(
            "bars",
            stages={
                "prices": {"received": 0, "processed": 10, "mailbox_depth": 0},
                "window": {
                    "received": 10,
                    "processed": 9,
                    "dropped": 1,
                    "failed": 0,
                    "restarts": 2,
                    "mailbox_depth": 3,
                    "dead_lettered": 4,
                },
            },
            links={"prices": "CONNECTED"},
            dispatcher={"workers": 2, "blocked_workers": 1, "blocked_handoffs": 5},
        )

    def read(self) -> Snapshot:
        return self.snapshot


@pytest.fixture
def served() -> Iterator[tuple[State, MetricsServer]]:
    state = State()
    server = MetricsServer(state.read, port=0)
    try:
        yield state, server
    finally:
        server.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_expose_stage_counters_depth_restarts_and_link_states(
    served: tuple[State, MetricsServer],
) -> None:
    _, server = served
    status, text = get(server.url + "/metrics")
    assert status == 200
    assert 'actorwire_stage_processed_total{pipeline="bars",stage="window"} 9.0' in text
    assert 'actorwire_stage_dropped_total{pipeline="bars",stage="window"} 1.0' in text
    assert 'actorwire_stage_restarts_total{pipeline="bars",stage="window"} 2.0' in text
    assert 'actorwire_stage_mailbox_depth{pipeline="bars",stage="window"} 3.0' in text
    assert 'actorwire_link_state{link="prices",pipeline="bars",state="CONNECTED"} 1.0' in text
    assert 'actorwire_link_state{link="prices",pipeline="bars",state="FAILED"} 0.0' in text
    assert 'actorwire_pipeline_healthy{pipeline="bars"} 1.0' in text
    assert 'actorwire_stage_dead_lettered_total{pipeline="bars",stage="window"} 4.0' in text
    assert 'actorwire_dispatcher_workers{pipeline="bars"} 2.0' in text
    assert 'actorwire_dispatcher_blocked_workers{pipeline="bars"} 1.0' in text
    assert 'actorwire_dispatcher_blocked_handoffs_total{pipeline="bars"} 5.0' in text


def test_metrics_are_read_at_scrape_time(served: tuple[State, MetricsServer]) -> None:
    state, server = served
    state.snapshot = Snapshot("bars", stages={"window": {"processed": 42}})
    _, text = get(server.url + "/metrics")
    assert 'actorwire_stage_processed_total{pipeline="bars",stage="window"} 42.0' in text


def test_healthz_is_200_when_links_are_up(served: tuple[State, MetricsServer]) -> None:
    _, server = served
    status, body = get(server.url + "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_healthz_is_503_with_the_reason_when_a_link_is_down_or_the_pipeline_failed(
    served: tuple[State, MetricsServer],
) -> None:
    state, server = served
    state.snapshot = Snapshot("bars", links={"prices": "RECONNECTING"})
    status, body = get(server.url + "/healthz")
    assert status == 503
    assert json.loads(body)["reason"] == "link prices is RECONNECTING"
    state.snapshot = Snapshot("bars", failure="supervisor intensity exceeded")
    status, body = get(server.url + "/healthz")
    assert status == 503
    assert "pipeline failed: supervisor intensity exceeded" in json.loads(body)["reason"]


def test_unknown_paths_are_404(served: tuple[State, MetricsServer]) -> None:
    _, server = served
    assert get(server.url + "/nope")[0] == 404


def test_healthz_is_503_until_the_pipeline_runs_and_while_it_stops(
    served: tuple[State, MetricsServer],
) -> None:
    state, server = served
    for phase in ("starting", "stopping"):
        state.snapshot = Snapshot("bars", phase=phase)
        status, body = get(server.url + "/healthz")
        assert status == 503 and json.loads(body)["reason"] == f"pipeline is {phase}"
