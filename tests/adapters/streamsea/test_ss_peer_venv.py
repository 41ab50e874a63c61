"""stream-sea-client 0.7.0, the reference Python client, in its own venv as a test peer.

``tests/support/sspeer.py`` builds (once, then reuses from ``~/.cache/actorwire/peers/``) a
venv with the client installed ``--no-deps`` plus current ``requests`` and ``websockets``
(PEERS.md 2.2's recipe); ``ss_driver.py probe`` reports what the installed client offers, which
must be the 0.7.0 API PEERS.md 2.1 describes, and ``ss_driver.py calls`` makes every call of
the client, each reported on its own. No stream-sea server exists yet, so ``calls`` meets only a
closed port here: every step must report its connection error and the driver must not crash.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import peervenv, sspeer
from tests.support.sspeer import run_ss, ss_python, ss_versions

HOST = "127.0.0.1"
PROBE_TIMEOUT = 60.0
"""Seconds ``probe`` may take (under a second)."""
CALLS_TIMEOUT = 60.0
"""Seconds ``calls`` may take against a closed port (under a second: every step is refused)."""

ENDPOINT = ["remote_host", "remote_port", "secure", "client_id", "client_secret"]
"""PEERS.md 2.1's ``C``: the keyword-only parameters every HTTP function starts with."""
HTTP_PARAMETERS = {
    "publish": [*ENDPOINT, "stream", "payload"],
    "define_stream": [*ENDPOINT, "stream", "schema"],
    "describe_stream": [*ENDPOINT, "stream"],
    # No client_id: the function reads a module global of that name (PEERS.md 2.2).
    "get_schema_version": ["remote_host", "remote_port", "secure", "client_secret", "stream"],
    "get_schema_versions_vector": [*ENDPOINT, "streams"],
}
FIELD_TYPES = {
    "STRING": "string",
    "FLOAT": "float",
    "INTEGER": "integer",
    "DATE": "date",
    "STRING_ARRAY": "array<string>",
    "FLOAT_ARRAY": "array<float>",
    "INTEGER_ARRAY": "array<integer>",
    "DATE_ARRAY": "array<date>",
    "ENUM": "enum",
    "OBJECT": "object",
    "OBJECT_ARRAY": "array<object>",
}
STEPS = {
    "define_stream",
    "describe_stream",
    "get_schema_versions_vector",
    "get_schema_version",
    "publish",
    "subscribe",
}
"""What ``calls`` reports, one outcome each."""


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    """What the installed client offers, probed once for the module."""
    return run_ss(["probe"], timeout=PROBE_TIMEOUT)


def _kinds(probe: dict[str, Any], name: str) -> dict[str, str]:
    return {p["name"]: p["kind"] for p in probe["parameters"][name]}


def _defaults(probe: dict[str, Any], name: str) -> dict[str, str]:
    return {p["name"]: p["default"] for p in probe["parameters"][name] if "default" in p}


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound (so nobody else takes it) but not
    listening."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


@pytest.mark.timeout(300)
def test_the_venv_is_built_once_in_the_cache_and_holds_the_recipes_versions() -> None:
    python = ss_python()
    venv = python.parents[1]
    assert venv.parent == peervenv.peers_dir()
    version = ".".join(map(str, sys.version_info[:3]))
    assert venv.name == f"stream-sea-client-0.7.0-nodeps-requests-websockets-py{version}"
    assert python.exists()
    assert ss_python() == python  # the per-process check ran once; the same venv
    marker = json.loads((venv / sspeer.MARKER).read_text())
    versions = ss_versions()
    assert marker == {
        "client": "stream-sea-client==0.7.0",
        "no_deps": True,
        "dependencies": ["requests", "websockets"],
        "versions": versions,
    }
    assert set(versions) == {"stream-sea-client", "requests", "websockets"}
    assert versions["stream-sea-client"] == "0.7.0"
    # --no-deps kept the client's pin (websockets~=8.1) out: a current websockets, whose
    # asyncio subscribes on Python 3.11, and a requests of the 2.x line the client expects.
    assert int(versions["websockets"].split(".")[0]) >= 10, versions
    assert versions["requests"].startswith("2."), versions
    assert sspeer._check(venv) is None


@pytest.mark.timeout(300)
def test_a_cached_venv_serves_only_while_it_imports_what_its_marker_records(
    tmp_path: Path,
) -> None:
    real = ss_python().parents[1]
    fake = tmp_path / "venv"
    assert sspeer._check(fake) == "incomplete"
    # The real venv's packages seen through another venv folder, then a marker that lies.
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "python").symlink_to((real / "bin" / "python").resolve())
    shutil.copy(real / "pyvenv.cfg", fake / "pyvenv.cfg")
    (fake / "lib").symlink_to(real / "lib", target_is_directory=True)
    assert sspeer._check(fake) == "incomplete"  # imports, but no marker
    marker = json.loads((real / sspeer.MARKER).read_text())
    (fake / sspeer.MARKER).write_text(json.dumps(marker))
    assert sspeer._check(fake) is None
    other = {**marker["versions"], "websockets": "8.1"}
    (fake / sspeer.MARKER).write_text(json.dumps({**marker, "versions": other}))
    problem = sspeer._check(fake)
    assert problem is not None
    assert "built with" in problem


@pytest.mark.timeout(300)
def test_probe_reports_the_versions_the_venv_was_built_with(probe: dict[str, Any]) -> None:
    assert probe["versions"] == ss_versions()
    assert probe["python"] == ".".join(map(str, sys.version_info[:3]))


@pytest.mark.timeout(300)
def test_the_package_has_no_all_and_star_imports_its_modules(probe: dict[str, Any]) -> None:
    assert probe["all"] is None
    api = {
        "publish",
        "define_stream",
        "describe_stream",
        "get_schema_version",
        "get_schema_versions_vector",
        "FieldType",
        "SchemaDefinition",
        "StreamSeaConnection",
        "SubscriptionIterator",
        "ProtocolError",
        "CredentialsError",
    }
    assert api <= set(probe["public_names"])
    modules = probe["modules"]
    assert set(modules["stream_sea_client.api"]) >= {
        "publish",
        "define_stream",
        "describe_stream",
        "get_schema_version",
        "get_schema_versions_vector",
        "pool",  # the 4-thread pool publish posts on
    }
    assert set(modules["stream_sea_client.stream_sea_connection"]) >= {
        "StreamSeaConnection",
        "SubscriptionIterator",
        "ProtocolError",
        "CredentialsError",
    }
    assert set(modules["stream_sea_client.stream_sea_schema_definition"]) == {
        "FieldType",
        "SchemaDefinition",
    }
    # Neither module global the workarounds set exists until a caller sets it.
    assert probe["module_globals"] == {"api_base_url": False, "client_id": False}


@pytest.mark.timeout(300)
def test_the_http_functions_take_only_keywords(probe: dict[str, Any]) -> None:
    for name, parameters in HTTP_PARAMETERS.items():
        kinds = _kinds(probe, name)
        assert list(kinds) == parameters, name
        assert set(kinds.values()) == {"KEYWORD_ONLY"}, name
        assert _defaults(probe, name) == {"remote_port": "None", "secure": "False"}, name
        assert probe["signatures"][name].startswith("(*, remote_host: str, "), name
        assert not probe["coroutines"][name], name
    assert "client_id" not in probe["signatures"]["get_schema_version"]


@pytest.mark.timeout(300)
def test_field_type_has_the_eight_kinds_and_four_arrays(probe: dict[str, Any]) -> None:
    assert probe["field_type_is_enum"] is True
    assert probe["field_type"] == FIELD_TYPES


@pytest.mark.timeout(300)
def test_schema_definition_and_its_builders(probe: dict[str, Any]) -> None:
    signatures = probe["signatures"]
    # A mutable default: instances made without fields share one list (PEERS.md 2.2).
    assert signatures["SchemaDefinition"] == "(name: str, version: str, fields=[])"
    assert signatures["SchemaDefinition.add_field"] == (
        "(self, name: str, type: str, enumValues: dict = {})"
    )
    assert signatures["SchemaDefinition.add_child_field"] == (
        "(self, name: str, type: str, parentField: str, enumValues: dict = {})"
    )
    assert signatures["SchemaDefinition.json_serialize"] == "(self)"


@pytest.mark.timeout(300)
def test_stream_sea_connection_takes_the_endpoint_and_an_optional_loop(
    probe: dict[str, Any],
) -> None:
    kinds = _kinds(probe, "StreamSeaConnection")
    assert list(kinds) == [*ENDPOINT, "loop"]
    assert set(kinds.values()) == {"KEYWORD_ONLY"}
    assert _defaults(probe, "StreamSeaConnection") == {
        "remote_port": "None",
        "secure": "False",
        "loop": "None",
    }
    assert probe["signatures"]["StreamSeaConnection.subscribe"] == "(self, stream_name)"
    assert probe["coroutines"]["StreamSeaConnection.subscribe"] is True
    assert probe["exceptions"] == {
        "ProtocolError": ["Exception", "BaseException", "object"],
        "CredentialsError": ["Exception", "BaseException", "object"],
    }


@pytest.mark.timeout(300)
def test_calls_against_a_closed_port_reports_each_step_refused(closed_port: int) -> None:
    steps = run_ss(
        [
            "calls",
            "--host",
            HOST,
            "--port",
            str(closed_port),
            "--client-id",
            "ss-driver",
            "--client-secret",
            "ss-driver-secret",
        ],
        timeout=CALLS_TIMEOUT,
    )
    assert set(steps) == STEPS
    for name, outcome in steps.items():
        assert outcome["ok"] is False, (name, outcome)
        assert set(outcome) == {"ok", "error"}, (name, outcome)
        assert "refused" in outcome["error"].lower(), (name, outcome)
    for name in STEPS - {"subscribe"}:
        # requests' ConnectionError, raised by the call itself or, for publish, on the pool.
        assert steps[name]["error"].startswith("ConnectionError: "), (name, steps[name])
    assert steps["subscribe"]["error"].startswith("ConnectionRefusedError: ")
    # The workarounds took: publish and get_schema_version reached the network (no NameError),
    # at the URLs the client builds.
    assert f"port={closed_port}" in steps["publish"]["error"]
    assert "/api/v1/streams/ss-driver/publish" in steps["publish"]["error"]
    assert "/api/v1/schema-versions-vector" in steps["get_schema_version"]["error"]
