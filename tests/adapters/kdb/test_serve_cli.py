"""``actorwire serve kdb``: a real process, a real port, a websocket served, a clean exit on
SIGTERM, and a bad config refused before anything starts; the server kind in definitions."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from actorwire.adapters.kdb.pipeline import EmbeddedGateway
from actorwire.pipelines.plugins import server_kinds
from websockets.asyncio.client import connect

WAIT = 20.0


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


async def snap(port: int) -> dict[str, Any]:
    async with connect(
        f"ws://127.0.0.1:{port}/?in=json&out=json",
        additional_headers={"Sec-WebSocket-Protocol": "Bearer demo-token"},
        open_timeout=WAIT,
    ) as ws:
        await ws.send(json.dumps({"type": "snap", "id": 1, "payload": {"topic": "trade"}}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert isinstance(reply, dict)
        return reply


@pytest.mark.timeout(60)
def test_serve_kdb_until_sigterm() -> None:
    proc = run_cli("serve", "kdb", "--port", "0")
    try:
        line = first_line(proc)
        match = re.fullmatch(r"kdb Insights gateway listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        reply = asyncio.run(snap(int(match.group(1))))
        assert reply["type"] == "snapped" and reply["payload"]["data"]["ccyPair"][0] == "EUR/USD"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        assert "demo-token" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.timeout(60)
def test_a_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[gateway]\ntokens = ["t"]\n[limits]\nping_interval = 0\n')
    proc = run_cli("serve", "kdb", "--port", "0", "--config", str(cfg))
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 2
    assert out == ""
    assert f"actorwire serve kdb: bad config: {cfg}:4: limits.ping_interval: must be" in err


def test_the_plugin_offers_the_server_kind(tmp_path: Path) -> None:
    kind = server_kinds()["kdb"]
    assert (kind.name, kind.default_port) == ("kdb", 8500)
    with pytest.raises(ValueError, match=r"gateway\.tokens"):
        kind.check_config({"gateway": {"tokens": []}}, "servers.gw.config")
    embedded = kind.build("127.0.0.1", 0, {"gateway": {"tokens": ["tok-1"]}}, None, tmp_path)
    assert embedded.credentials("", "") == ("", "tok-1")
    embedded.start()
    try:
        assert isinstance(embedded, EmbeddedGateway) and embedded.server is not None
        assert embedded.server.port > 0
    finally:
        embedded.stop()
    open_gateway = kind.build("127.0.0.1", 0, {"gateway": {"auth": False}}, None, tmp_path)
    assert open_gateway.credentials("", "") == ("", "")
