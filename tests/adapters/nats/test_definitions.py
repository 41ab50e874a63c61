"""NATS in definitions and on the command line: ``actorwire serve nats`` as a real process
(ready line, JetStream through it, SIGTERM leaves no nats-server, ``--store`` kept across a
restart), ``[servers.x] kind = "nats"`` carrying a definition's records end to end,
``actorwire check`` naming the key path of what would lose data or is misspelt, a stream
that differs stopping ``actorwire run`` with the key and both values, and the nats stages'
link states in ``/healthz`` and ``/metrics`` across a kill and restart of nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

nats = pytest.importorskip("nats", reason="nats-py is not installed (the nats extra)")

from actorwire.adapters.nats.server import NatsEmbedded, NatsServer  # noqa: E402
from actorwire.pipelines.cli import main  # noqa: E402
from actorwire.pipelines.loader import DefinitionPipeline, load_definition  # noqa: E402
from nats.js.api import StreamConfig  # noqa: E402

from tests.support.waiting import wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(60)

WAIT = 20.0
READY = re.compile(r"nats-server listening on 127\.0\.0\.1:(\d+)\n")


# -- helpers -----------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``actorwire ARGS`` as a child process, stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "actorwire.pipelines.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
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
        raise AssertionError(f"no ready line; stderr: {proc.communicate()[1]}") from None


def end(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs and reap it (the tests' finally)."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=WAIT)


def nats_children(pid: int) -> dict[int, bytes]:
    """The nats-server processes ``pid`` started: pid -> command line."""
    out: dict[int, bytes] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.split(b"\0", 1)[0].endswith(b"nats-server"):
                out[int(child)] = cmdline
    return out


def gone(pid: int, cmdline: bytes) -> bool:
    """No process ``pid`` running ``cmdline`` (a reused pid runs something else)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() != cmdline
    except OSError:
        return True


def config_path(cmdline: bytes) -> Path:
    """The ``-c FILE`` of a nats-server command line."""
    args = cmdline.rstrip(b"\0").split(b"\0")
    return Path(args[args.index(b"-c") + 1].decode())


async def publish(url: str, stream: str, count: int) -> None:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        for i in range(count):
            ack = await js.publish(f"{stream.lower()}.x", f"m{i}".encode())
            assert (ack.stream, ack.seq) == (stream, i + 1)
    finally:
        await nc.close()


async def stored(url: str, stream: str) -> int:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.messages)
    finally:
        await nc.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    if lines and not lines[-1].endswith("}"):
        lines = lines[:-1]  # a line being written
    return [json.loads(line) for line in lines if line]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(store_dir=tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


# -- actorwire serve nats ---------------------------------------------------------------


def serve_once(store: Path, stream: str, publish_count: int) -> tuple[int, bytes, int]:
    """``actorwire serve nats --port 0 --store STORE``: publish ``publish_count`` messages
    (0: none, the stream must exist), read how many the stream holds, SIGTERM; returns
    (messages stored, nats-server's command line, its pid) once the command exited 0
    and its nats-server is gone."""
    proc = cli("serve", "nats", "--port", "0", "--store", str(store))
    try:
        line = first_line(proc)
        match = READY.fullmatch(line)
        assert match, line
        url = f"nats://127.0.0.1:{match.group(1)}"
        children = nats_children(proc.pid)
        assert len(children) == 1, children
        [(pid, cmdline)] = children.items()
        assert config_path(cmdline).is_file()
        if publish_count:
            asyncio.run(publish(url, stream, publish_count))
        count = asyncio.run(stored(url, stream))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        assert out == ""  # stdout carries the ready line only
    finally:
        end(proc)
    assert gone(pid, cmdline), f"nats-server (pid {pid}) outlived actorwire serve nats"
    assert not config_path(cmdline).parent.exists()  # its private folder is removed
    return count, cmdline, pid


def test_serve_nats_until_sigterm_leaves_no_server_and_keeps_its_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    count, cmdline, pid = serve_once(store, "KEPT", 7)
    assert count == 7
    assert (store / "jetstream").is_dir()
    again, cmdline2, pid2 = serve_once(store, "KEPT", 0)  # a new process, the same store
    assert again == 7
    assert pid2 != pid and cmdline2 != cmdline


# -- [servers.x] kind = "nats" -----------------------------------------------------------

RECORDS = 400


def test_an_embedded_server_carries_a_definitions_records_and_stops(tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = tmp_path / "out" / "prices.jsonl"
    text = f"""
[pipeline]
name = "embedded"

[servers.bus]
kind = "nats"
store = {json.dumps(str(store))}

[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = ["AAPL", "MSFT"]
rate = 4000
limit = {RECORDS}
timestamps = "derived"

[[sinks]]
name = "publish"
kind = "nats"
from = "ticks"
server = "bus"
subject = "prices.{{symbol}}"
id_fields = ["symbol", "timestamp"]
stream = {{ name = "PRICES", subjects = ["prices.>"] }}

[[sources]]
name = "prices"
kind = "nats"
server = "bus"
stream = "PRICES"
durable = "recorder"

[[sinks]]
name = "file"
kind = "jsonl_file"
from = "prices"
path = {json.dumps(str(out))}
"""
    pipeline = load_definition(text)
    assert isinstance(pipeline, DefinitionPipeline)
    embedded = pipeline.servers["bus"].server
    assert isinstance(embedded, NatsEmbedded)
    pipeline.start()
    try:
        server = embedded.server
        assert isinstance(server, NatsServer) and server.running
        pid = server.pid
        assert pid is not None
        assert server.store_dir == store
        wait_until(lambda: len(read_jsonl(out)) >= RECORDS, WAIT, what=f"{RECORDS} records")
        assert pipeline.links() == {"publish": "CONNECTED", "prices": "CONNECTED"}
    finally:
        pipeline.stop()
    assert embedded.server is None and not server.running
    assert not Path(f"/proc/{pid}").exists()  # stopped and reaped
    assert (store / "jetstream").is_dir()  # a store the definition names is kept
    got = read_jsonl(out)
    keys = [(r["symbol"], r["timestamp"]) for r in got]
    assert len(keys) == RECORDS and len(set(keys)) == RECORDS
    assert {r["symbol"] for r in got} == {"AAPL", "MSFT"}


# -- actorwire check -----------------------------------------------------------------------

CHECKED = """\
[pipeline]
name = "bars"

[servers.bus]
kind = "nats"

[[sources]]
name = "prices"
kind = "nats"
server = "bus"
stream = { name = "PRICES", subjects = ["prices.>"] }
durable = "bars"
ack_wait = 30.0

[[stages]]
name = "bar"
kind = "tumbling_window"
from = "prices"
key = "symbol"
size = 1.0
time_field = "timestamp"
aggregations = ["ohlc"]

[[sinks]]
name = "publish"
kind = "nats"
from = "bar"
server = "bus"
subject = "bars.{key}"
id_fields = ["key", "window_start"]
max_pending = 64

[sinks.stream]
name = "BARS"
subjects = ["bars.>"]
max_bytes = 1048576
"""


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, str]:
    """``actorwire check`` on ``text``: (exit code, stdout + stderr)."""
    path = tmp_path / "bars.toml"
    path.write_text(text)
    code = main(["check", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def changed(old: str, new: str) -> str:
    assert CHECKED.count(old) == 1, old
    return CHECKED.replace(old, new)


def line_of(text: str, start: str) -> int:
    """The 1-based number of the line of ``text`` that starts with ``start``."""
    [number] = [i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start)]
    return number


def test_check_accepts_the_definition_the_bad_ones_are_made_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(tmp_path, capsys, CHECKED)
    assert code == 0, out
    assert "ok (pipeline 'bars': 1 server, 1 source, 1 stage, 1 sink)" in out


def test_check_refuses_a_window_without_event_time_behind_a_nats_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = changed('time_field = "timestamp"\n', "")
    code, out = check(tmp_path, capsys, text)
    assert code == 2
    # The window's table, the source it sits behind and the key to set.
    line = line_of(text, "[[stages]]")
    assert re.search(
        rf"bars\.toml:{line}: stages\[0\]: .*nats source 'prices'.*set time_field", out
    )


def test_check_refuses_an_ack_wait_shorter_than_a_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = changed("ack_wait = 30.0", "ack_wait = 1.0")
    code, out = check(tmp_path, capsys, text)
    assert code == 2
    line = line_of(text, "ack_wait")
    assert re.search(
        rf"bars\.toml:{line}: sources\[0\]\.ack_wait: .*ack_wait \(1 s\) must exceed", out
    )


def test_check_names_an_unknown_parameter_of_the_nats_sink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = changed("max_pending = 64", "max_pendin = 64")
    code, out = check(tmp_path, capsys, text)
    assert code == 2
    line = line_of(text, "max_pendin")
    assert f"bars.toml:{line}: sinks[0].max_pendin: nats: unknown parameter 'max_pendin'" in out
    assert "did you mean 'max_pending'?" in out


def test_check_names_a_bad_key_of_the_stream_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(tmp_path, capsys, changed("max_bytes = 1048576", "max_byte = 1048576"))
    assert code == 2
    assert "sinks[0].stream.max_byte: nats sink: stream.max_byte: unknown key" in out
    assert "did you mean 'max_bytes'?" in out


def test_check_points_at_the_line_of_the_bad_key_in_the_stream_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = changed("max_bytes = 1048576", "max_byte = 1048576")
    code, out = check(tmp_path, capsys, text)
    assert code == 2
    line = line_of(text, "max_byte")
    assert f"bars.toml:{line}: sinks[0].stream.max_byte: " in out


# -- actorwire run -----------------------------------------------------------------------

RUN = """\
[pipeline]
name = "p"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
rate = 200
timestamps = "derived"
{limit}

[[sinks]]
name = "publish"
kind = "nats"
from = "ticks"
url = "${{NATS_URL}}"
subject = "prices.{{symbol}}"
id_fields = ["symbol", "timestamp"]
stream = {{ name = "PRICES", subjects = ["prices.>"], max_bytes = 2097152 }}
{more}
"""

RECORD = """
[[sources]]
name = "prices"
kind = "nats"
url = "${NATS_URL}"
stream = "PRICES"
durable = "recorder"

[[sinks]]
name = "file"
kind = "jsonl_file"
from = "prices"
path = "out.jsonl"
"""


async def create_prices(url: str, max_bytes: int) -> None:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        await nc.jetstream().add_stream(
            StreamConfig(name="PRICES", subjects=["prices.>"], max_bytes=max_bytes)
        )
    finally:
        await nc.close()


def run_env(server: NatsServer) -> dict[str, str]:
    return {**os.environ, "NATS_URL": server.url}


def test_a_stream_that_differs_stops_the_run_naming_the_key_and_both_values(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    asyncio.run(create_prices(nats_server.url, 1 << 20))
    path = tmp_path / "p.toml"
    path.write_text(RUN.format(limit="limit = 10", more=""))
    proc = cli("run", str(path), env=run_env(nats_server))
    try:
        _, err = proc.communicate(timeout=WAIT)
    finally:
        end(proc)
    assert proc.returncode == 1, err
    header, last = err.strip().splitlines()[-2:]
    assert header == "actorwire run: the pipeline could not start:", err
    assert re.fullmatch(
        r"  stage '\w+': stream\.max_bytes: the stream has 1048576, the definition says 2097152",
        last,
    ), err
    assert asyncio.run(stored(nats_server.url, "PRICES")) == 0  # nothing was published


def test_a_stream_that_differs_is_one_clear_line_without_a_traceback(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    asyncio.run(create_prices(nats_server.url, 1 << 20))
    path = tmp_path / "p.toml"
    path.write_text(RUN.format(limit="limit = 10", more=""))
    proc = cli("run", str(path), env=run_env(nats_server))
    try:
        _, err = proc.communicate(timeout=WAIT)
    finally:
        end(proc)
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert "StreamMismatch" not in err and "ActorStartError" not in err, err


def link_states(port: int) -> dict[str, str]:
    """Link -> state from /metrics (the state whose ``actorwire_link_state`` gauge is 1)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    out: dict[str, str] = {}
    for labels, value in re.findall(r"^actorwire_link_state\{(.*)\} (\S+)$", text, re.M):
        label = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        assert label["pipeline"] == "p"
        if float(value) == 1.0:
            out[label["link"]] = label["state"]
    return out


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


METRICS_PORT = ("--metrics-port", "0")


def metrics_port(log: Path) -> int | None:
    match = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log.read_text())
    return int(match.group(1)) if match else None


@pytest.mark.timeout(90)
def test_healthz_and_metrics_show_the_nats_links_through_a_server_kill(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    path = tmp_path / "p.toml"
    out = tmp_path / "out.jsonl"
    path.write_text(RUN.format(limit="", more=RECORD))
    log = tmp_path / "run.log"
    env = run_env(nats_server)
    with log.open("w") as err:  # a run logs a lot: a pipe nobody reads would block it
        proc = subprocess.Popen(
            [sys.executable, "-m", "actorwire.pipelines.cli", "run", str(path), *METRICS_PORT],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=tmp_path,
            env=env,
        )
    try:
        port = wait_until(lambda: metrics_port(log), WAIT, interval=0.05, what="the metrics line")
        connected = {"publish": "CONNECTED", "prices": "CONNECTED"}
        wait_until(lambda: link_states(port) == connected, WAIT, interval=0.05, what="CONNECTED")
        wait_until(lambda: healthz(port)[0] == 200, WAIT, interval=0.05, what="/healthz 200")
        status, body = healthz(port)
        assert body["links"] == connected and body["status"] == "ok"
        wait_until(lambda: len(read_jsonl(out)) > 10, WAIT, interval=0.05, what="records")

        nats_server.kill()
        down = {"publish": "RECONNECTING", "prices": "RECONNECTING"}
        wait_until(lambda: link_states(port) == down, WAIT, interval=0.05, what="RECONNECTING")
        status, body = healthz(port)
        assert status == 503 and body["status"] == "unhealthy"
        assert "link prices is RECONNECTING" in body["reason"]
        assert "link publish is RECONNECTING" in body["reason"]

        nats_server.restart()
        wait_until(lambda: link_states(port) == connected, WAIT, interval=0.05, what="again")
        wait_until(lambda: healthz(port)[0] == 200, WAIT, interval=0.05, what="/healthz 200")
        seen = len(read_jsonl(out))
        wait_until(lambda: len(read_jsonl(out)) > seen + 10, WAIT, interval=0.05, what="more")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0, log.read_text()[-3000:]
        # Through the kill: the publishes retried under their ids and the deliveries
        # repeated after lost acks are each recorded once.
        keys = [(r["symbol"], r["timestamp"]) for r in read_jsonl(out)]
        assert len(keys) == len(set(keys))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)
