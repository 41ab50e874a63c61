"""``actorwire serve keysquare``: a real process, a real port, a clean exit on SIGTERM."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from actorwire.adapters.keysquare import keysquare_pb2 as pb
from actorwire.adapters.keysquare import keysquare_pb2_grpc as pb_grpc
from actorwire.pipelines.cli import main

from .conftest import write_config

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


def test_serve_keysquare_until_sigterm(tmp_path: Path) -> None:
    proc = run_cli("serve", "keysquare", "--port", "0", "--store", str(tmp_path / "s.sqlite"))
    try:
        line = first_line(proc)
        match = re.fullmatch(r"keysquare platform listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        with grpc.insecure_channel(f"127.0.0.1:{match.group(1)}") as channel:
            reply = pb_grpc.KeyAccessStub(channel).Register(
                pb.RegisterRequest(application_name="demo", api_key="demo-key"), timeout=WAIT
            )
        assert reply.session_id
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        assert "demo-key" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "[platform]\nheartbeat_deadline = 0.5\n", "bad.toml")
    proc = run_cli("serve", "keysquare", "--port", "0", "--config", str(cfg))
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 2
    assert out == ""
    assert f"{cfg}:2: platform.heartbeat_deadline: must be greater than heartbeat_interval" in err


def test_unknown_adapter_lists_the_available_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown adapter 'nope' (available: kdb, keysquare, nats, smarkets, streamsea)" in err


def test_usage_errors_return_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["serve", "keysquare", "--port", "70000"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err
    assert main(["--help"]) == 0
