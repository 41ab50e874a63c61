"""The installed actorwire is typed for its users: ``mypy --strict``, run the way a user runs
it (from the user's own directory, with no project configuration), finds actorwire's types
through the install and checks calls against them.

An editable install that only hooks Python's import system (setuptools' default finder) is
invisible to mypy and to IDEs: every actorwire import would be an error or ``Any``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

USER_PROGRAM = """\
from typing import Any

from actorwire.actors import Actor, ActorSystem, Address
from actorwire.adapters.feed.protocol import FeedCodec


class Echo(Actor):
    def on_receive(self, message: Any) -> Any:
        return message


def echo_once(text: str) -> str:
    with ActorSystem("user") as system:
        address: Address = system.spawn(Echo, name="echo")
        reply: str = address.ask(text, timeout=5.0)
    return reply


def subscribe_line(stream: str) -> bytes:
    return FeedCodec.encode_sub(stream, 1)


print(echo_once("hi"), subscribe_line("prices"))
"""

WRONG_CALLS = """\
from actorwire.actors import ActorSystem
from actorwire.adapters.feed.protocol import FeedCodec

system = ActorSystem(42)
line = FeedCodec.encode_sub(7, 1)
"""


def _mypy(cwd: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "MYPY_CONFIG_FILE_DIR")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(cwd / ".mypy_cache"),
            *files,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.timeout(300)
def test_mypy_strict_sees_the_installed_types_and_reports_wrong_calls(tmp_path: Path) -> None:
    (tmp_path / "user.py").write_text(USER_PROGRAM)
    (tmp_path / "wrong.py").write_text(WRONG_CALLS)
    checked = _mypy(tmp_path, "user.py", "wrong.py")
    lines = checked.stdout.splitlines()
    # Nothing in the good program is reported: its imports were found and typed.
    assert not [line for line in lines if line.startswith("user.py")], checked.stdout
    assert "import-not-found" not in checked.stdout, checked.stdout
    assert "import-untyped" not in checked.stdout, checked.stdout
    # The wrong calls are caught against actorwire's own signatures.
    assert lines == [
        'wrong.py:4: error: Argument 1 to "ActorSystem" has incompatible type "int"; '
        'expected "str"  [arg-type]',
        'wrong.py:5: error: Argument 1 to "encode_sub" of "FeedCodec" has incompatible type '
        '"int"; expected "str"  [arg-type]',
    ], checked.stdout + checked.stderr
    assert checked.returncode == 1
    alone = _mypy(tmp_path, "user.py")
    assert alone.returncode == 0, alone.stdout + alone.stderr


def test_the_checked_user_program_runs(tmp_path: Path) -> None:
    # What mypy checks above is a working program, not just a typing exercise.
    (tmp_path / "user.py").write_text(USER_PROGRAM)
    run = subprocess.run(
        [sys.executable, "user.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("hi b'")
