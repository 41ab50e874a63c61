"""``actorwire serve streamsea``: a real process, a real port, a clean exit on SIGINT and
SIGTERM, and a bad config refused before anything starts."""

from __future__ import annotations

import base64
import http.client
import json
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from actorwire.adapters.streamsea.pipeline import EmbeddedStreamSea
from actorwire.pipelines.plugins import server_kinds

WAIT = 20.0
AUTH = "Basic " + base64.b64encode(b"demo:demo-secret").decode()


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "actorwire.pipelines.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line(proc: subprocess.Popen[str]) -> str:
    """The first stdout line, read on a thread so a stuck process cannot hang the test."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=WAIT)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"no output; stderr: {proc.communicate()[1]}") from None


def post(port: int, path: str, body: object) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        headers = {"Authorization": AUTH, "Content-Type": "application/json"}
        conn.request("POST", "/api/v1" + path, json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_streamsea_until_a_signal(tmp_path: Path, stop: signal.Signals) -> None:
    store = tmp_path / "s.sqlite"
    proc = run_cli("serve", "streamsea", "--port", "0", "--store", str(store))
    try:
        line = first_line(proc)
        match = re.fullmatch(r"stream-sea server listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        port = int(match.group(1))
        schema = {"name": "s", "version": 3, "fields": [{"name": "x", "type": "integer"}]}
        assert post(port, "/streams/s/define", schema) == (200, schema)
        assert post(port, "/streams/s/publish", {"payload": {"x": 1}}) == (200, {"success": True})
        assert post(port, "/schema-versions-vector", {"schemaNames": ["s", "t"]}) == (
            200,
            {"versionsVector": [3, None]},
        )
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        assert "demo-secret" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert store.exists()


@pytest.mark.timeout(60)
def test_a_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[limits]\nping_interval = 45\n")
    proc = run_cli("serve", "streamsea", "--port", "0", "--config", str(cfg))
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 2
    assert out == ""
    assert f"actorwire serve streamsea: bad config: {cfg}:2: limits.ping_interval: must be" in err


@pytest.mark.timeout(60)
def test_cert_without_key_exits_2(tmp_path: Path) -> None:
    proc = run_cli("serve", "streamsea", "--port", "0", "--cert", str(tmp_path / "c.pem"))
    out, err = proc.communicate(timeout=WAIT)
    assert (proc.returncode, out) == (2, "")
    assert "--cert and --key go together" in err


def test_the_plugin_offers_the_server_kind(tmp_path: Path) -> None:
    kind = server_kinds()["streamsea"]
    assert (kind.name, kind.default_port) == ("streamsea", 8400)
    with pytest.raises(ValueError, match=r"^servers\.ss\.config: limits\.ping_interval: must be"):
        kind.check_config({"limits": {"ping_interval": 31}}, "servers.ss.config")
    embedded = kind.build(
        "127.0.0.1", 0, {"clients": [{"id": "p", "secret": "p-s"}]}, "s.db", tmp_path
    )
    assert embedded.credentials("", "") == ("p", "p-s")
    embedded.start()
    try:
        assert isinstance(embedded, EmbeddedStreamSea) and embedded.server is not None
        assert embedded.url == f"127.0.0.1:{embedded.port}"
        assert embedded.server.store_path == str(tmp_path / "s.db")
        assert embedded.server.port > 0
    finally:
        embedded.stop()
    assert (tmp_path / "s.db").exists()
