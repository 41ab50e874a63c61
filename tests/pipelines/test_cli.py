"""The ``actorwire`` command line itself: version, bare invocation, choice errors."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest
from actorwire.pipelines.cli import main


def test_version_names_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"actorwire {version('actorwire')}"


def test_bare_actorwire_lists_its_commands() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "actorwire.pipelines.cli"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2  # nothing was asked: a usage error, with the commands
    for command in ("serve", "run", "check"):
        assert f"    {command} " in run.stderr


@pytest.mark.parametrize(
    ("argv", "listed"),
    [
        (["run", "x.toml", "--log-level", "loud"], "'debug', 'info', 'warning', 'error'"),
        (["run", "x.toml", "--log-format", "xml"], "'console', 'json'"),
        (["nosuch"], "'serve', 'run', 'check'"),
    ],
)
def test_a_bad_choice_lists_the_valid_values(
    argv: list[str], listed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert listed in capsys.readouterr().err
