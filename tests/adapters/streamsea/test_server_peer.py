"""stream-sea-client 0.7.0, the reference Python client, against the embedded server.

The server (``serve(port=0)``, the default config: client ``demo``, secret ``demo-secret``)
runs in this process; the client runs in its own venv (``tests/support/sspeer.py``, skipped
only when the package registry cannot be reached) through ``ss_driver.py calls``, which makes
every call of the client once, with the two documented workarounds (PEERS.md 2.2): every call
must succeed, and the subscription must receive exactly what was published.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from actorwire.adapters.streamsea.server import StreamSeaServer, serve

from tests.support.sspeer import run_ss

HOST = "127.0.0.1"
CALLS_TIMEOUT = 120.0
"""Seconds the driver may take (a few seconds; the first build of the venv is not counted:
``run_ss`` builds it before it starts the clock)."""
STREAM = "peer-stream"
COUNT = 4


@pytest.fixture
def server() -> Iterator[StreamSeaServer]:
    started = serve(host=HOST, port=0)
    try:
        yield started
    finally:
        started.stop()


def calls(server: StreamSeaServer, secret: str = "demo-secret") -> dict[str, dict[str, object]]:
    args = ["calls", "--host", HOST, "--port", str(server.port), "--client-id", "demo"]
    args += ["--client-secret", secret, "--stream", STREAM, "--count", str(COUNT)]
    return run_ss(args, timeout=CALLS_TIMEOUT)


@pytest.mark.timeout(600)
def test_every_call_of_the_reference_client_works(server: StreamSeaServer) -> None:
    steps = calls(server)
    schema = {
        "name": STREAM,
        "version": 1,
        "fields": [{"name": "seq", "type": "integer"}, {"name": "text", "type": "string"}],
    }
    assert steps["define_stream"]["ok"] is True, steps["define_stream"]
    assert steps["define_stream"]["result"] == {"status": 200, "body": _compact(schema)}
    assert steps["describe_stream"] == {"ok": True, "result": schema}
    assert steps["get_schema_versions_vector"] == {"ok": True, "result": [1, None]}
    assert steps["get_schema_version"] == {"ok": True, "result": 1}
    payloads = [{"seq": n, "text": f"ss-driver payload {n}"} for n in range(COUNT)]
    assert steps["publish"] == {
        "ok": True,
        "result": {
            "returned": [None] * COUNT,
            "statuses": [200] * COUNT,
            "logged": [],
            "while_subscribed": True,
        },
    }
    # publish posts on a pool of 4 threads: the order they arrive in is theirs.
    assert steps["subscribe"]["ok"] is True, steps["subscribe"]
    received = steps["subscribe"]["result"]
    assert isinstance(received, list)
    assert sorted(received, key=lambda p: p["seq"]) == payloads
    stats = server.stats()
    assert (stats["publishes"], stats["deliveries"], stats["auth_failures"]) == (COUNT, COUNT, 0)
    assert (stats["protocol_errors"], stats["http_errors"], stats["session_errors"]) == (0, 0, 0)
    log = server.groups.logs[STREAM]
    assert log.last_seq == COUNT
    logged = [json.loads(payload) for _, payload in log.after(0)]
    assert sorted(logged, key=lambda p: p["seq"]) == payloads


@pytest.mark.timeout(600)
def test_a_wrong_secret_is_a_credentials_error(server: StreamSeaServer) -> None:
    steps = calls(server, secret="not-the-secret")
    assert steps["subscribe"] == {
        "ok": False,
        "error": "CredentialsError: Authentication unsuccessful",
    }
    assert steps["define_stream"]["ok"] is True
    assert steps["define_stream"]["result"]["status"] == 401  # type: ignore[index]
    assert steps["describe_stream"] == {"ok": True, "result": None}
    assert server.stats()["auth_failures"] >= 2
    assert server.stats()["publishes"] == 0


def _compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))
