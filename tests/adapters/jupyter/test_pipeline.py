"""Jupyter in pipelines, against real ipykernels: the ``jupyter`` server kind (starts a
kernel, runs its setup, stops it with no process left; refuses a setup that raises or a bad
config), and the JupyterSignal stage (a setup-defined function's value on every record of
a definition's bars; a code error gives None and is counted; a dead kernel lets records
through with None and shows in the stage's link state; after a restart the setup runs
again)."""

from __future__ import annotations

import importlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actorwire.actors import Backoff
from actorwire.adapters.jupyter import KernelClient, KernelState, start_kernel
from actorwire.adapters.jupyter.pipeline import (
    EmbeddedKernel,
    JupyterSignal,
    SignalCode,
    parse_config,
)
from actorwire.adapters.jupyter.pipeline import plugin as jupyter_plugin
from actorwire.pipelines import DefinitionError, Pipeline, load_definition, parse_definition

from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(60)

# The module, not the function ``actorwire.pipelines.plugins`` that shadows its name.
plugins_module = importlib.import_module("actorwire.pipelines.plugins")

SETUP = "def signal(bar): return 'BUY' if bar['close'] > bar['open'] else 'SELL'"


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The jupyter plugin as if installed (its entry point is in the package metadata)."""
    loaded = plugins_module.plugins()
    monkeypatch.setattr(plugins_module, "_loaded", {**loaded, "jupyter": jupyter_plugin()})


@pytest.fixture
def kernels() -> Iterator[list[Any]]:
    """Kernels (clients or embedded servers) a test started: closed whatever happened."""
    made: list[Any] = []
    yield made
    for kernel in made:
        (kernel.close if isinstance(kernel, KernelClient) else kernel.stop)()


@pytest.fixture
def pipelines() -> Iterator[list[Pipeline]]:
    made: list[Pipeline] = []
    yield made
    for p in made:
        p.stop(drain=False)


class Collected:
    """A callback sink's records, with a wait for a count."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.records: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.records) >= count, timeout)
            got = list(self.records)
        assert ok, f"expected {count} records within {timeout}s, got {len(got)}"
        return got


def embedded(config: dict[str, Any] | None = None) -> EmbeddedKernel:
    return EmbeddedKernel("127.0.0.1", 0, config, None, Path("."))


def signal_pipeline(made: list[Pipeline], kernel: Any, out: Collected, **params: Any) -> Pipeline:
    p = Pipeline("signals")
    params.setdefault("code", "signal(bar)")
    params.setdefault("variable", "bar")
    p.source("inlet", name="in").then(JupyterSignal, name="signal", kernel=kernel, **params).to(
        out, name="out"
    )
    made.append(p)
    return p.start()


# -- the server kind ------------------------------------------------------------------------


def test_the_server_kind_starts_a_kernel_runs_its_setup_and_stops_it() -> None:
    server = embedded({"setup": "answer = 41 + 1"})
    server.start()
    try:
        client = server.client
        assert isinstance(client, KernelClient) and client.state is KernelState.ALIVE
        assert client.execute("answer").result == "42"
        assert server.url == client.connection_file
        process = client.kernel
        assert process is not None and process.pid is not None
        pid = process.pid
    finally:
        server.stop()
    assert server.client is None
    wait_until(lambda: gone(pid), timeout=10, what="the kernel process to end")
    assert client.state is KernelState.CLOSED


def test_a_setup_that_raises_refuses_the_start_and_leaves_no_kernel() -> None:
    server = embedded({"setup": "import no_such_module_here"})
    with pytest.raises(RuntimeError, match="setup raised ModuleNotFoundError: No module named"):
        server.start()
    assert server.client is None  # no_leaks checks that no process is left


def test_config_problems_are_named_at_their_key_path(tmp_path: Path, registered: None) -> None:
    with pytest.raises(ValueError, match="kernel_nam: unknown key"):
        parse_config({"kernel_nam": "python3"})
    with pytest.raises(ValueError, match="setup: is not valid Python"):
        parse_config({"setup": "def f(:"})
    with pytest.raises(ValueError, match="setup_file: cannot read"):
        parse_config({"setup_file": "missing.py"}, "p.toml", tmp_path)
    (tmp_path / "signals.py").write_text(SETUP + "\n")
    config = parse_config({"setup": "x = 1", "setup_file": "signals.py"}, "p.toml", tmp_path)
    assert config.setup == "x = 1\n" + SETUP + "\n" and config.kernel_name == "python3"
    text = (
        '[pipeline]\nname = "p"\n\n[servers.kernel]\nkind = "jupyter"\n'
        'config = { setup = "x = (" }\n\n[[sources]]\nname = "in"\nkind = "inlet"\n'
    )
    with pytest.raises(DefinitionError) as refused:
        parse_definition(text)
    assert [e.path for e in refused.value.errors] == ["servers.kernel.config.setup"]


def test_signal_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="code must be one Python expression"):
        SignalCode("x = 1")
    with pytest.raises(ValueError, match="variable must be a Python identifier"):
        SignalCode("signal(bar)", variable="for")
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
        SignalCode("1", timeout=0)
    with pytest.raises(ValueError, match="max_batch must be an integer >= 1"):
        SignalCode("1", max_batch=0)
    with pytest.raises(ValueError, match='no kernel: give server = "<name>"'):
        JupyterSignal("1")


# -- the stage ------------------------------------------------------------------------------

DEFINITION = """\
[pipeline]
name = "kernel-signals"

[servers.kernel]
kind = "jupyter"
config = {{ setup = "{setup}" }}

[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = ["AAPL", "MSFT"]
rate = 4000
limit = 600
timestamps = "derived"

[[stages]]
name = "bars"
kind = "tumbling_window"
from = "ticks"
size = 0.05
key = "symbol"
time_field = "timestamp"
aggregations = ["ohlc", "vwap"]

[[stages]]
name = "signal"
kind = "actorwire.adapters.jupyter.pipeline:JupyterSignal"
from = "bars"
server = "kernel"
code = "signal(bar)"
variable = "bar"
timeout = {timeout}

[[sinks]]
name = "record"
kind = "jsonl_file"
from = "signal"
path = "{path}"
"""


def test_a_definition_computes_a_signal_on_every_bar(tmp_path: Path, registered: None) -> None:
    recorded = tmp_path / "signals.jsonl"
    p = load_definition(DEFINITION.format(setup=SETUP, timeout=10, path=recorded.as_posix()))
    p.start()
    try:
        assert p.links() == {"signal": "CONNECTED"}
    finally:
        p.run(duration=30)  # the source ends after 600 records; run drains and returns
    bars = [json.loads(line) for line in recorded.read_text().splitlines()]
    assert len(bars) >= 4
    for bar in bars:
        assert bar["signal"] == ("BUY" if bar["close"] > bar["open"] else "SELL"), bar
    stats = p.stats()["signal"]
    assert stats["op_signals"] == len(bars) and stats["op_errors"] == 0
    assert stats["op_executes"] <= len(bars)
    assert p.links() == {"signal": "CLOSED"}


def test_a_definition_with_a_bad_signal_parameter_is_refused_at_its_key_path(
    tmp_path: Path, registered: None
) -> None:
    text = DEFINITION.format(setup=SETUP, timeout=-1, path=(tmp_path / "x").as_posix())
    with pytest.raises(DefinitionError) as refused:
        load_definition(text)
    [error] = refused.value.errors
    # Checked by the server's stage_params, before anything starts (the loader names the
    # stage's server line: its message starts "server 'kernel': ").
    assert error.path.startswith("stages[1]")
    assert "timeout must be a number of seconds > 0, got -1" in error.message


def test_a_code_error_gives_none_is_counted_and_logged_once(
    kernels: list[Any], pipelines: list[Pipeline], json_log: Any
) -> None:
    client = start_kernel()
    kernels.append(client)
    out = Collected()
    p = signal_pipeline(pipelines, client, out, code="1 / bar['x']", error_field="error")
    p.address("in").tell_many([{"x": 2}, {"x": 0}, {"x": "a"}, {"x": 0}, {"x": 4}])
    got = out.wait_for(5)  # in order
    assert [r["signal"] for r in got] == [0.5, None, None, None, 0.25]
    assert got[1]["error"] == "ZeroDivisionError: division by zero"
    assert got[0]["error"] is None
    assert got[2]["error"].startswith("TypeError: unsupported operand")
    stats = p.stats()["signal"]
    assert stats["op_errors"] == 3 and stats["op_signals"] == 2 and stats["failed"] == 0
    logged = [
        json.loads(line)
        for line in json_log.getvalue().splitlines()
        if "jupyter signal failed" in line
    ]
    assert sorted(e["error"].split(":")[0] for e in logged) == ["TypeError", "ZeroDivisionError"]


def test_values_come_back_as_json_values_or_their_repr(
    kernels: list[Any], pipelines: list[Pipeline]
) -> None:
    client = start_kernel()
    kernels.append(client)
    out = Collected()
    p = signal_pipeline(pipelines, client, out, code="(bar['n'], {'n': bar['n']}, object)")
    p.address("in").tell_many([{"n": 1}])
    [record] = out.wait_for(1)
    assert record["signal"] == [1, {"n": 1}, "<class 'object'>"]
    assert record["n"] == 1
    p.stop()


@pytest.mark.timeout(90)
def test_a_dead_kernel_lets_records_through_and_the_setup_runs_again_after_its_restart(
    kernels: list[Any], pipelines: list[Pipeline]
) -> None:
    server = embedded({"setup": SETUP})
    server.start()
    kernels.append(server)
    client = server.client
    assert client is not None and client.kernel is not None
    out = Collected()
    p = signal_pipeline(pipelines, server, out)
    p.address("in").tell_many([{"open": 1.0, "close": 2.0}])
    assert out.wait_for(1)[0]["signal"] == "BUY"
    pid = client.kernel.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: p.links()["signal"] == "RECONNECTING", timeout=15, what="RECONNECTING")
    wait_until(lambda: p.links()["signal"] == "CONNECTED", timeout=30, what="CONNECTED again")
    p.address("in").tell_many([{"open": 2.0, "close": 1.0}])
    assert out.wait_for(2)[1]["signal"] == "SELL"  # signal() defined again in the new kernel
    assert client.kernel.pid != pid


@pytest.mark.timeout(60)
def test_a_failed_kernel_passes_records_on_with_none_and_the_link_failed(
    kernels: list[Any], pipelines: list[Pipeline]
) -> None:
    client = start_kernel(max_restarts=0, restart_backoff=Backoff(min=0.01, max=0.05))
    kernels.append(client)
    client.execute(SETUP)
    out = Collected()
    p = signal_pipeline(pipelines, client, out)
    assert client.kernel is not None and client.kernel.pid is not None
    os.kill(client.kernel.pid, signal.SIGKILL)
    assert client.wait_for_state(KernelState.FAILED, timeout=20)
    p.address("in").tell_many([{"open": 1.0, "close": 2.0}, {"open": 2.0, "close": 1.0}])
    got = out.wait_for(2)
    assert [r["signal"] for r in got] == [None, None]
    assert p.links()["signal"] == "FAILED"
    stats = p.stats()["signal"]
    assert stats["op_unavailable"] == 2 and stats["processed"] == 2 and stats["failed"] == 0
