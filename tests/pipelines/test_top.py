"""``actorwire top``: the Prometheus parser on MetricsServer's real output, ``/latest``, and
the command against a MetricsServer and against a running ``actorwire run`` (real HTTP on
127.0.0.1, real processes)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actorwire.pipelines.cli import main
from actorwire.pipelines.metrics import MetricsServer, Snapshot
from actorwire.pipelines.top import (
    MetricsFormatError,
    Sample,
    base_url,
    parse_prometheus,
    run_top,
    scrape,
    snapshot_from_samples,
)

from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(20)

CLI = [sys.executable, "-m", "actorwire.pipelines.cli"]

STAGES: dict[str, dict[str, int]] = {
    "prices": {
        "received": 0,
        "processed": 0,
        "emitted": 120,
        "mailbox_depth": 0,
        "source_reconnects": 2,
        "source_gaps": 1,
        "source_missed": 0,
    },
    "bars": {"received": 120, "processed": 119, "failed": 1, "emitted": 12, "op_late": 3},
    "publish": {"received": 240, "dropped": 4, "restarts": 1, "sink_reconnects": 5},
}
BARS = [
    {
        "key": "AAPL",
        "window_start": 1_700_000_000.0,
        "window_end": 1_700_000_001.0,
        "open": 100.0,
        "high": 101.0,
        "low": 99.5,
        "close": 100.25,
        "volume": 900,
        "vwap": 100.1,
    }
]


class State:
    def __init__(self) -> None:
        self.reads = 0
        self.snapshot = Snapshot(
            "quickstart",
            stages=STAGES,
            links={"prices": "RECONNECTING", "publish": "CONNECTED"},
            dispatcher={"workers": 2, "blocked_workers": 0, "blocked_handoffs": 1, "run_queue": 3},
            latest=BARS,
            uptime=75.0,
        )

    def read(self) -> Snapshot:
        self.reads += 1
        return self.snapshot


@pytest.fixture
def served() -> Iterator[tuple[State, MetricsServer]]:
    state = State()
    server = MetricsServer(state.read, port=0)
    try:
        yield state, server
    finally:
        server.stop()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the parser and the exported families ------------------------------------------------


def test_metrics_export_component_stats_as_stage_stat(
    served: tuple[State, MetricsServer],
) -> None:
    _, server = served
    text = get(server.url + "/metrics")[1].decode()
    stat = 'actorwire_stage_stat{pipeline="quickstart",stage="%s",stat="%s"} %s'
    assert stat % ("prices", "source_reconnects", "2.0") in text
    assert stat % ("publish", "sink_reconnects", "5.0") in text
    assert stat % ("bars", "emitted", "12.0") in text
    assert 'stat="received"' not in text  # the counters keep their own families
    assert 'actorwire_pipeline_uptime_seconds{pipeline="quickstart"} 75.0' in text
    assert "AAPL" not in text  # records stay out of /metrics


def test_the_parser_reads_back_every_family_metrics_server_emits(
    served: tuple[State, MetricsServer],
) -> None:
    _, server = served
    samples = parse_prometheus(get(server.url + "/metrics")[1].decode())
    assert Sample("actorwire_pipeline_healthy", {"pipeline": "quickstart"}, 0.0) in samples
    snapshot, healthy = snapshot_from_samples(samples)
    assert snapshot.pipeline == "quickstart" and healthy is False
    expected = {
        stage: {"dropped": 0, "failed": 0, "dead_lettered": 0, "restarts": 0, "received": 0}
        | {"processed": 0, "mailbox_depth": 0}
        | stats
        for stage, stats in STAGES.items()
    }
    assert snapshot.stages == expected
    assert snapshot.links == {"prices": "RECONNECTING", "publish": "CONNECTED"}
    assert snapshot.dispatcher == {
        "workers": 2,
        "blocked_workers": 0,
        "blocked_handoffs": 1,
        "run_queue": 3,
    }
    assert snapshot.uptime == 75.0


def test_the_parser_handles_escapes_comments_specials_and_names_bad_lines() -> None:
    text = (
        "# HELP x a help line\n"
        "# TYPE x gauge\n"
        "\n"
        'x{a="q\\"uote",b="back\\\\slash",c="new\\nline",} 1.5 1700000000000\n'
        "y +Inf\n"
        "z{} NaN\n"
    )
    x, y, z = parse_prometheus(text)
    assert x == Sample("x", {"a": 'q"uote', "b": "back\\slash", "c": "new\nline"}, 1.5)
    assert (y.name, y.value, z.labels) == ("y", float("inf"), {})
    with pytest.raises(MetricsFormatError, match="line 2: expected a number, got 'one'"):
        parse_prometheus("ok 1\nbad one\n")
    with pytest.raises(MetricsFormatError, match='line 1: expected label="value"'):
        parse_prometheus("bad{a=1} 2\n")
    with pytest.raises(MetricsFormatError, match="line 1: unterminated value of label 'a'"):
        parse_prometheus('bad{a="x 2\n')
    with pytest.raises(MetricsFormatError, match="line 1: expected 'name value'"):
        parse_prometheus("lonely\n")


@pytest.mark.parametrize(
    ("typed", "base"),
    [
        ("http://127.0.0.1:9464", "http://127.0.0.1:9464"),
        ("http://127.0.0.1:9464/", "http://127.0.0.1:9464"),
        ("http://127.0.0.1:9464/metrics", "http://127.0.0.1:9464"),
        ("127.0.0.1:9464/metrics/", "http://127.0.0.1:9464"),
    ],
)
def test_base_url(typed: str, base: str) -> None:
    assert base_url(typed) == base


# -- /latest ------------------------------------------------------------------------------


def test_latest_serves_the_snapshot_rows_as_json(served: tuple[State, MetricsServer]) -> None:
    state, server = served
    status, body = get(server.url + "/latest")
    assert status == 200 and json.loads(body) == {"pipeline": "quickstart", "latest": BARS}
    state.snapshot = Snapshot("plain", stages={"a": {"received": 1}})  # no latest: empty
    assert json.loads(get(server.url + "/latest")[1]) == {"pipeline": "plain", "latest": []}
    state.snapshot = Snapshot("odd", latest=[{"key": "k", "when": object}])
    assert json.loads(get(server.url + "/latest")[1])["latest"] == [
        {"key": "k", "when": repr(object)}
    ]
    status, body = get(server.url + "/nothing")
    assert status == 404 and b"/latest" in body


def test_scrape_reads_metrics_health_and_latest(served: tuple[State, MetricsServer]) -> None:
    _, server = served
    got = scrape(server.url)
    assert got.health.ok is False
    assert got.health.body["reason"] == "link prices is RECONNECTING"
    assert got.snapshot.latest == BARS and got.snapshot.phase == "running"


# -- the command --------------------------------------------------------------------------


def test_top_once_draws_the_links_stages_bars_and_health(
    served: tuple[State, MetricsServer], capsys: pytest.CaptureFixture[str]
) -> None:
    _, server = served
    assert main(["top", server.url + "/metrics", "--once", "--interval", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "─ prices ─" in out and "─ publish ─" in out
    assert "RECONNECTING" in out and "1 (missed 0)" in out
    assert "AAPL" in out and "22:13:20-22:13:21" in out and "100.25" in out
    assert "pipeline quickstart" in out and "up 0:01:15" in out
    assert "unhealthy: link prices is RECONNECTING" in out


def test_top_redraws_until_stopped(served: tuple[State, MetricsServer]) -> None:
    state, server = served
    stop = threading.Event()
    out = io.StringIO()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(run_top(server.url, 0.01, stream=out, width=120, stop=stop))
    )
    thread.start()
    try:
        wait_until(lambda: state.reads >= 3 * 5, timeout=10, what="five reads")
        state.snapshot = Snapshot("quickstart", links={"prices": "FAILED"})
        wait_until(lambda: state.reads >= 3 * 7, timeout=10, what="two more reads")
    finally:
        stop.set()
        thread.join(10)
    assert codes == [0]
    assert "FAILED" in out.getvalue()  # the frame drawn last, on a stream that is no terminal


def test_top_exits_0_on_ctrl_c(served: tuple[State, MetricsServer]) -> None:
    state, server = served
    proc = subprocess.Popen(
        [*CLI, "top", server.url, "--interval", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: state.reads >= 3 * 2, timeout=15, what="top reading the metrics")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_top_of_an_unreachable_url_exits_1_with_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [*CLI, "top", url, "--once"], capture_output=True, text=True, timeout=15, check=False
    )
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"actorwire top: cannot read {url}/metrics: ")
    assert "refused" in line.lower()


def test_top_refuses_a_bad_interval(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["top", "http://127.0.0.1:1", "--interval", "0"]) == 2
    assert "--interval must be > 0 seconds, got 0.0" in capsys.readouterr().err


def test_top_of_a_url_that_serves_no_pipeline_exits_1(
    served: tuple[State, MetricsServer], capsys: pytest.CaptureFixture[str]
) -> None:
    state, server = served
    assert main(["top", server.url + "/elsewhere", "--once"]) == 1
    assert capsys.readouterr().err == (
        f"actorwire top: {server.url}/elsewhere/metrics answered HTTP 404, expected 200\n"
    )
    state.snapshot = Snapshot("")  # no stage, no link: nothing of a pipeline to show
    assert main(["top", server.url, "--once"]) == 1
    assert capsys.readouterr().err == (
        f"actorwire top: {server.url}/metrics has no actorwire pipeline metrics\n"
    )


# -- against a running ``actorwire run`` ------------------------------------------------------

DEFINITION = """\
[pipeline]
name = "watched"

[servers.platform]
kind = "keysquare"
host = "127.0.0.1"
port = 0

[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = ["AAPL", "MSFT"]
rate = 200
seed = 3

[[sinks]]
name = "publish"
kind = "keysquare_publish"
from = "ticks"
server = "platform"
data_type = "Price"
id_field = "symbol"

[[sources]]
name = "prices"
kind = "keysquare"
server = "platform"
data_type = "Price"
subscription_type = "LIVE_ONLY"

[[stages]]
name = "bars"
kind = "tumbling_window"
from = "prices"
size = 0.2
key = "symbol"
time_field = "timestamp"
aggregations = ["ohlc", "vwap"]

[[sinks]]
name = "record"
kind = "jsonl_file"
from = "bars"
path = "bars.jsonl"

[logging]
level = "warning"
"""


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    (tmp_path / "watched.toml").write_text(DEFINITION, encoding="utf-8")
    err = tmp_path / "stderr.txt"
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [*CLI, "run", "watched.toml", "--metrics-port", "0", "--duration", "60"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        yield proc, err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _metrics_base(err: Path) -> str | None:
    for line in err.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("metrics on "):
            return line.split()[2].removesuffix("/metrics")
    return None


@pytest.mark.timeout(40)
def test_top_once_against_a_running_pipeline_shows_its_links_and_stages(
    running: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, err = running
    base: str = wait_until(lambda: _metrics_base(err), timeout=20, what="the metrics line")
    wait_until(lambda: get(base + "/healthz")[0] == 200, timeout=20, what="a healthy pipeline")
    env: dict[str, Any] = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [*CLI, "top", base, "--once", "--interval", "0.3"],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "─ prices ─" in out and "─ publish ─" in out  # the two links' panels
    assert out.count("CONNECTED") >= 2
    for stage in ("ticks", "bars", "record"):
        assert stage in out
    assert "pipeline watched" in out and "healthy" in out and "unhealthy" not in out
    rates = [line for line in out.splitlines() if "│ ticks " in line]
    assert rates and "/s" in rates[0] and "-" not in rates[0].split("│")[2]  # a measured rate
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, err.read_text()
