"""Rotated file names: ``file.jsonl`` fills up and becomes ``file.1.jsonl``, then
``file.2.jsonl``, ...; the parts in number order, then ``file.jsonl``, hold the records in
the order they were written."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["next_part", "rotated_parts"]


def _numbered(path: Path) -> list[tuple[int, Path]]:
    pattern = re.compile(re.escape(path.stem) + r"\.(\d+)" + re.escape(path.suffix) + "$")
    found = []
    if path.parent.is_dir():
        for candidate in path.parent.iterdir():
            match = pattern.match(candidate.name)
            if match:
                found.append((int(match.group(1)), candidate))
    return sorted(found)


def rotated_parts(path: str | Path) -> list[Path]:
    """The files of a (possibly rotated) recording at ``path``, oldest first."""
    path = Path(path)
    parts = [p for _, p in _numbered(path)]
    if path.exists():
        parts.append(path)
    return parts


def next_part(path: Path) -> Path:
    """The name ``path`` takes at its next rotation: one past the highest part number."""
    numbers = [n for n, _ in _numbered(path)]
    return path.with_name(f"{path.stem}.{max(numbers, default=0) + 1}{path.suffix}")
