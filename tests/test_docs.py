"""The documentation site (mkdocs.yml, docs/) builds with warnings as errors, as `make docs`
does, and holds the home page, a page per adapter and the API reference read from the
docstrings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ADAPTER_PAGES = ("keysquare", "smarkets", "jupyter", "streamsea", "kdb", "nats")
GUIDE_PAGES = (
    "getting-started",
    "runtime",
    "pipelines",
    "operators",
    "definitions",
    "adapters",
    "operations",
    "delivery",
    "benchmarks",
)
# API page -> a name its rendered docstrings must show.
API_PAGES = {
    "actors": "ActorSystem",
    "link": "LinkMachine",
    "pipelines": "load_definition",
    "keysquare": "KeySession",
    "smarkets": "StreamingAPIClient",
    "jupyter": "KernelClient",
    "streamsea": "StreamSeaConnection",
    "kdb": "GatewayClient",
    "nats": "NatsSink",
    "feed": "FeedServer",
}


@pytest.mark.timeout(120)
def test_the_site_builds_strict_with_every_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    mkdocs = Path(sys.executable).parent / "mkdocs"
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # the theme's banner, not a build warning
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert not warnings, warnings

    expected = [site / "index.html"]
    expected += [site / page / "index.html" for page in GUIDE_PAGES]
    expected += [site / "adapters" / name / "index.html" for name in ADAPTER_PAGES]
    expected += [site / "api" / "index.html"]
    missing = [str(p.relative_to(site)) for p in expected if not p.is_file()]
    assert not missing, f"pages not built: {missing}"

    for page, name in API_PAGES.items():
        html = (site / "api" / page / "index.html").read_text(encoding="utf-8")
        assert 'class="doc doc-heading"' in html, f"api/{page}: no object rendered"
        assert name in html, f"api/{page}: {name} not rendered from the docstrings"
