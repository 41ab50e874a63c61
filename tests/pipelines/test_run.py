"""``actorwire run`` and ``actorwire check`` as a user runs them: a real process, real
signals, real files and real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_until

EXIT_TIMEOUT = 30.0


class Run:
    """``python -m actorwire.pipelines.cli ...`` in ``cwd``; stdout and stderr to files."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.out = cwd / "stdout.txt"
        self.err = cwd / "stderr.txt"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "actorwire.pipelines.cli", *args],
                cwd=cwd,
                stdout=out,
                stderr=err,
            )

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float = EXIT_TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines (``--log-format json``)."""
        out = []
        for line in self.stderr().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        run.kill()


def start(runs: list[Run], cwd: Path, *args: str) -> Run:
    run = Run(cwd, *args)
    runs.append(run)
    return run


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


RECORDER = """\
[pipeline]
name = "recorder"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = 3
rate = 2000
seed = 1

[[sinks]]
name = "file"
kind = "jsonl_file"
from = "ticks"
path = "ticks.jsonl"
"""


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]


def stopped_stats(run: Run) -> dict[str, dict[str, int]]:
    (event,) = [e for e in run.events() if e.get("event") == "pipeline stopped" and "stages" in e]
    stages: dict[str, dict[str, int]] = event["stages"]
    return stages


@pytest.mark.timeout(90)
def test_sigterm_drains_every_accepted_record(tmp_path: Path, runs: list[Run]) -> None:
    write(tmp_path / "p.toml", RECORDER)
    run = start(runs, tmp_path, "run", "p.toml", "--log-format", "json")
    out = tmp_path / "ticks.jsonl"
    wait_until(lambda: out.exists() and out.stat().st_size > 10_000, timeout=30)
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr()
    stats = stopped_stats(run)
    written = lines(out)
    # Every record the source emitted reached the file, once, in order.
    assert stats["ticks"]["emitted"] == stats["file"]["processed"] == len(written) > 0
    assert stats["file"]["failed"] == 0 and stats["file"]["dropped"] == 0
    times = [r["timestamp"] for r in written]
    assert times == sorted(times)
    assert "draining" in run.stderr()


SLOW = """\
[pipeline]
name = "slow"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = 2
rate = 5000

[[stages]]
name = "crawl"
kind = "map"
from = "ticks"
fn = "slowfns:crawl"

[[sinks]]
name = "file"
kind = "jsonl_file"
from = "crawl"
path = "out.jsonl"
"""


@pytest.mark.timeout(90)
def test_a_second_signal_exits_at_once(tmp_path: Path, runs: list[Run]) -> None:
    # A stage that takes 20 ms a record, behind thousands of queued records: draining
    # would take minutes; the second signal ends the process straight away.
    write(
        tmp_path / "slowfns.py",
        "import time\n\ndef crawl(r):\n    time.sleep(0.02)\n    return r\n",
    )
    write(tmp_path / "p.toml", SLOW)
    run = start(runs, tmp_path, "run", "p.toml")
    out = tmp_path / "out.jsonl"
    wait_until(lambda: out.exists() and out.stat().st_size > 0, timeout=30)
    run.proc.send_signal(signal.SIGINT)
    wait_until(lambda: "draining" in run.stderr(), timeout=10)
    began = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    assert run.wait(15) == 130
    assert "exiting without draining" in run.stderr()
    assert time.monotonic() - began < 10


FAILING = """\
[pipeline]
name = "failing"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
rate = 1000

[[stages]]
name = "boom"
kind = "map"
from = "ticks"
fn = "badfns:boom"
on_error = "restart"

[[sinks]]
name = "sink"
kind = "jsonl_file"
from = "boom"
path = "never.jsonl"

[supervision]
intensity = 2
period = 30.0
backoff = { min = 0.01, max = 0.05 }
"""


@pytest.mark.timeout(90)
def test_a_supervisor_that_gives_up_exits_non_zero_with_the_reason(
    tmp_path: Path, runs: list[Run]
) -> None:
    write(tmp_path / "badfns.py", "def boom(r):\n    raise RuntimeError('bad tick')\n")
    write(tmp_path / "p.toml", FAILING)
    run = start(runs, tmp_path, "run", "p.toml")
    assert run.wait(60) == 1, run.stderr()
    assert "actorwire run: pipeline failed" in run.stderr()


def test_a_bad_definition_exits_2_before_anything_starts(tmp_path: Path, runs: list[Run]) -> None:
    bad = RECORDER.replace('kind = "jsonl_file"', 'kind = "jsonl_fiel"')
    write(tmp_path / "p.toml", bad)
    run = start(runs, tmp_path, "run", "p.toml")
    assert run.wait() == 2
    err = run.stderr()
    assert "p.toml:13: sinks[0].kind: unknown sink kind 'jsonl_fiel'" in err
    assert "did you mean jsonl_file?" in err
    assert not (tmp_path / "ticks.jsonl").exists()


def test_check_exits_0_for_a_good_file_and_2_for_a_bad_one(tmp_path: Path, runs: list[Run]) -> None:
    write(tmp_path / "good.toml", RECORDER)
    good = start(runs, tmp_path, "check", "good.toml")
    assert good.wait() == 0
    assert "good.toml: ok (pipeline 'recorder': 0 servers, 1 source, 0 stages, 1 sink)" in (
        good.out.read_text()
    )
    write(tmp_path / "bad.toml", RECORDER.replace("rate = 2000", "rate = 'fast'"))
    bad = start(runs, tmp_path, "check", "bad.toml")
    assert bad.wait() == 2
    assert "bad.toml" in bad.stderr() and "rate" in bad.stderr()
    assert not (tmp_path / "ticks.jsonl").exists()


@pytest.mark.timeout(90)
def test_metrics_and_healthz_while_running(tmp_path: Path, runs: list[Run]) -> None:
    quickstart = Path(__file__).parents[2] / "examples" / "quickstart.toml"
    run = start(runs, tmp_path, "run", str(quickstart), "--metrics-port", "0")
    url = wait_until(lambda: _metrics_url(run.stderr()), timeout=30)

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url + path, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    # Healthy once both keysquare links are up.
    wait_until(lambda: get("/healthz")[0] == 200, timeout=30)
    body = json.loads(get("/healthz")[1])
    assert body["links"] == {"publish": "CONNECTED", "prices": "CONNECTED"}
    wait_until(
        lambda: (
            'actorwire_stage_processed_total{pipeline="quickstart",stage="bars"}'
            in get("/metrics")[1]
            and _counter(get("/metrics")[1], "processed", "bars") > 0
        ),
        timeout=30,
    )
    text = get("/metrics")[1]
    assert 'actorwire_link_state{link="prices",pipeline="quickstart",state="CONNECTED"} 1.0' in text
    assert 'actorwire_stage_mailbox_depth{pipeline="quickstart",stage="record"}' in text
    assert 'actorwire_dispatcher_workers{pipeline="quickstart"}' in text  # the live pool
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr()


def _metrics_url(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if line.startswith("metrics on "):
            return line.split()[2].removesuffix("/metrics")
    return None


def _counter(text: str, name: str, stage: str) -> float:
    prefix = f'actorwire_stage_{name}_total{{pipeline="quickstart",stage="{stage}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def test_help_describes_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "actorwire.pipelines.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for command in ("serve", "run", "check"):
        assert command in out
    run_help = subprocess.run(
        [sys.executable, "-m", "actorwire.pipelines.cli", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for option in ("--duration", "--metrics-port", "--log-format", "--log-level"):
        assert option in run_help


SUMMARY = """\
[pipeline]
name = "summary"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
rate = 20000
limit = 5000

[[stages]]
name = "check"
kind = "map"
from = "ticks"
fn = "fns:check"

[[sinks]]
name = "file"
kind = "jsonl_file"
from = "check"
path = "out.jsonl"
"""


def test_run_ends_with_a_summary_that_says_clean_only_when_nothing_was_lost(
    tmp_path: Path, runs: list[Run]
) -> None:
    write(tmp_path / "fns.py", "def check(r):\n    return r\n")
    write(tmp_path / "p.toml", SUMMARY)
    clean = start(runs, tmp_path, "run", "p.toml")
    assert clean.wait() == 0, clean.stderr()
    assert "run summary: clean" in clean.stderr()

    failing = tmp_path / "failing"
    failing.mkdir()
    write(
        failing / "fns.py",
        "import itertools\nn = itertools.count()\n"
        "def check(r):\n    if next(n) % 100 == 0:\n        raise ValueError('bad')\n"
        "    return r\n",
    )
    write(failing / "p.toml", SUMMARY)
    run = start(runs, failing, "run", "p.toml")
    assert run.wait() == 0, run.stderr()  # failed records are the stage's own, not lost
    err = run.stderr()
    assert "stage check: failed 50, dead lettered 0, dropped 0" in err
    assert "run summary: not clean (failed 50, dead lettered 0, dropped 0)" in err


STUCK = """\
[pipeline]
name = "stuck"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
rate = 1000
limit = 200

[[stages]]
name = "slow"
kind = "map"
from = "ticks"
fn = "fns:slow"

[[sinks]]
name = "file"
kind = "jsonl_file"
from = "slow"
path = "out.jsonl"
"""


def test_run_that_loses_accepted_records_to_dead_letters_exits_3(
    tmp_path: Path, runs: list[Run]
) -> None:
    # The stage hangs on its first record, so the drain times out and the records waiting
    # in its mailbox are never handled: lost, counted, and the exit status says so.
    write(
        tmp_path / "fns.py",
        "import threading\nforever = threading.Event()\n"
        "def slow(r):\n    forever.wait(60)\n    return r\n",
    )
    write(tmp_path / "p.toml", STUCK)
    run = start(runs, tmp_path, "run", "p.toml", "--duration", "1", "--drain-timeout", "1")
    assert run.wait() == 3, run.stderr()
    err = run.stderr()
    assert "accepted record(s) were lost to dead letters" in err
    assert "stage slow: failed 0, dead lettered " in err
    assert "run summary: not clean" in err


def test_a_start_failure_is_one_line_per_cause() -> None:
    from actorwire.actors import ActorStartError
    from actorwire.pipelines.runner import failure_lines

    class Mismatch(ValueError):
        pass

    try:
        try:
            try:
                raise Mismatch("stream.max_bytes: has 1\nstream.subjects: has a")
            except Mismatch as root:
                raise ActorStartError(f"actor 'p.out' failed in on_start: {root!r}") from root
        except ActorStartError as inner:
            raise ActorStartError(
                f"supervisor 'p': child 'p.out' failed to start: {inner}"
            ) from inner
    except ActorStartError as exc:
        lines = failure_lines(exc, "p")
    assert lines == ["stage 'out': stream.max_bytes: has 1", "stage 'out': stream.subjects: has a"]
    assert failure_lines(OSError(98, "Address already in use"), "p") == [
        "OSError: [Errno 98] Address already in use"
    ]
