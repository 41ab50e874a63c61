"""Every Python block in the README runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]], capture_output=True, text=True, timeout=50
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_readme_actor_example_output() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKS[0]], capture_output=True, text=True, timeout=50
    )
    assert proc.stdout.splitlines()[0] == "42"


def test_readme_link_example_output() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKS[1]], capture_output=True, text=True, timeout=50
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("prices ")]
    assert lines == ["prices 1 prices-1", "prices 2 prices-2", "prices 3 prices-3"]


def test_readme_shows_the_quickstart_definition_as_it_is() -> None:
    quickstart = (README.parent / "examples" / "quickstart.toml").read_text()
    body = quickstart[quickstart.index("[pipeline]") :]
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert body in blocks


def test_readme_kdb_quickstart_output() -> None:
    (block,) = [b for b in BLOCKS if "GatewayClient(gateway.url" in b]
    proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "{'ccyPair': ['EUR/USD'], 'val': [1.0842]}" in lines
    assert lines[-2:] == ["1.0851", "NO_SUCH_TOPIC 63"]
