"""The built wheel holds every subpackage and data file of the three code folders."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = {
    "actors": "actorwire/actors",
    "adapters": "actorwire/adapters",
    "pipelines": "actorwire/pipelines",
}
DATA_SUFFIXES = {".proto", ".toml", ".typed", ".json"}


def _expected_files() -> set[str]:
    expected: set[str] = set()
    for folder, target in CODE.items():
        base = ROOT / folder
        for path in base.rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix == ".py" or path.suffix in DATA_SUFFIXES or path.name == "py.typed":
                expected.add(f"{target}/{path.relative_to(base).as_posix()}")
    return expected


@pytest.mark.timeout(300)
def test_wheel_holds_every_subpackage_and_data_file(tmp_path: Path) -> None:
    # Build from a copy so the source tree gets no build/ or egg-info litter.
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name) if src.exists() else (
            src.mkdir(),
            shutil.copy2(ROOT / name, src / name),
        )
    for folder in CODE:
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wheels = list(tmp_path.glob("actorwire-*.whl"))
    assert len(wheels) == 1, wheels
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    missing = sorted(_expected_files() - names)
    assert not missing, f"missing from the wheel (add them to setup.cfg): {missing}"
    # Every subpackage with an __init__.py made it (namespace package: no actorwire/__init__).
    assert "actorwire/__init__.py" not in names
    for folder, target in CODE.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.relative_to(ROOT / folder).as_posix()
            assert f"{target}/{rel}" in names


def test_installed_names_import() -> None:
    import actorwire.actors
    import actorwire.actors.link
    import actorwire.adapters
    import actorwire.pipelines

    assert actorwire.actors.ActorSystem is not None
    assert Path(actorwire.actors.__file__).parent.name in {"actors"}
