"""``actorwire run`` refusing to start, or warning before it starts: values only a kind's
constructor can judge, a metrics port already taken, and definition warnings. The installed
``actorwire`` command in a real process, a real socket on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ACTORWIRE = str(Path(sys.executable).parent / "actorwire")

FEEDS_NOTHING = """\
[pipeline]
name = "spare"

[[sources]]
name = "prices"
kind = "synthetic_prices"
rate = 1000
limit = 5

[[sources]]
name = "spare"
kind = "synthetic_prices"
rate = 1000
limit = 5

[[sinks]]
name = "out"
kind = "jsonl_file"
from = "prices"
path = "out.jsonl"
"""


def actorwire(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ACTORWIRE, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_a_value_only_the_kind_can_judge_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    (tmp_path / "p.toml").write_text(
        FEEDS_NOTHING.replace("rate = 1000\nlimit = 5\n\n[[sources]]", "rate = -5\n\n[[sources]]")
    )
    run = actorwire(tmp_path, "run", "p.toml")
    assert run.returncode == 2, run.stderr
    assert "p.toml:7: sources[0].rate: synthetic_prices: rate must be a finite number > 0" in (
        run.stderr
    )
    assert not (tmp_path / "out.jsonl").exists()


def test_a_taken_metrics_port_fails_the_run_naming_the_port(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(FEEDS_NOTHING)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = actorwire(tmp_path, "run", "p.toml", "--metrics-port", str(port))
    assert run.returncode == 1, run.stderr
    assert f"actorwire run: cannot serve metrics on port {port}:" in run.stderr


def test_definition_warnings_are_logged_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(FEEDS_NOTHING)
    run = actorwire(tmp_path, "run", "p.toml", "--log-format", "json")
    assert run.returncode == 0, run.stderr
    assert '"event": "definition warning"' in run.stderr
    assert "'spare' feeds nothing" in run.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "-1"], "actorwire run: --duration must be >= 0, got -1.0"),
        (["--metrics-port", "70000"], "actorwire run: --metrics-port must be 0..65535, got 70000"),
    ],
)
def test_bad_run_options_are_refused_before_the_file_is_read(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from actorwire.pipelines.cli import main

    assert main(["run", str(tmp_path / "missing.toml"), *args]) == 2
    assert capsys.readouterr().err.strip() == message


def test_check_prints_warnings_and_still_passes_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from actorwire.pipelines.cli import main

    path = tmp_path / "p.toml"
    path.write_text(FEEDS_NOTHING)
    assert main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{path}: ok (pipeline 'spare': 0 servers, 2 sources, 0 stages, 1 sink)"
    assert err.startswith(f"warning: {path}:")
    assert "'spare' feeds nothing" in err
