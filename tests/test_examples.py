"""Every runnable example runs to completion and reports success."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.timeout(120)
def test_supervision_example_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "supervision.py")],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "worker handled [1, 2, 3, 4]" in proc.stdout
    assert "consumer saw 30 frames, in order: True" in proc.stdout
    assert proc.stdout.rstrip().endswith("OK")
