"""Checked reads from parsed TOML, for config and definition files.

Every error names the file, the key path (``stages[2].from``) and what was expected; when
the checker has the file's text it also finds the line the key is on (``tomllib`` gives
lines only for syntax errors, so the line is looked up from the key path).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from .errors import ActorwireError

__all__ = ["TomlChecker", "TomlError", "join", "kind_of", "locate", "read_toml"]


class TomlError(ActorwireError, ValueError):
    """One problem in a TOML file: ``file:line: key.path: message`` (line when known)."""

    def __init__(self, source: str, path: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.path = path
        self.message = message
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {path}: {message}" if path else f"{where}: {message}")


def kind_of(value: Any) -> str:
    """How a value reads in an error message: ``a table``, ``an array``, ``str``..."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def join(path: str, key: str) -> str:
    """``path.key`` (or ``key`` at the top)."""
    return f"{path}.{key}" if path else key


_STEP = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("?)([A-Za-z0-9_-]+)\1\s*=""")


def locate(text: str, path: str) -> int | None:
    """The 1-based line of a key path in TOML text, or None when it cannot be told.

    Understands the shapes definition files use: ``[table]``, ``[[array]]`` (the n-th
    header for ``array[n]``), dotted headers (``[servers.ks]``) and ``key = value`` lines
    under a header. An inline table or array is reported at its key's line.
    """
    steps = [(m[1], int(m[2]) if m[2] is not None else None) for m in _STEP.finditer(path)]
    if not steps:
        return None
    lines = text.splitlines()
    # Walk the headers: the longest header prefix of the path decides where to look.
    best: tuple[int, int] | None = None  # (steps matched, header line index)
    counts: dict[str, int] = {}
    for i, line in enumerate(lines):
        match = _HEADER.match(line)
        if match is None:
            continue
        name = match[1].strip()
        parts = [p.strip().strip('"') for p in name.split(".")]
        is_array = line.lstrip().startswith("[[")
        index = counts.get(name, 0)
        if is_array:
            counts[name] = index + 1
        matched = _header_match(parts, is_array, index, steps)
        if matched and (best is None or matched > best[0]):
            best = (matched, i)
    start, consumed = (best[1] + 1, best[0]) if best is not None else (0, 0)
    if consumed >= len(steps):
        return start  # the header line itself (1-based: start is the index after it)
    key = steps[consumed][0]
    for j in range(start, len(lines)):
        if _HEADER.match(lines[j]) and j != start - 1:
            break
        match = _KEY.match(lines[j])
        if match is not None and match[2] == key:
            return j + 1
    return start if best is not None else None


def _header_match(
    parts: list[str], is_array: bool, index: int, steps: list[tuple[str, int | None]]
) -> int:
    """How many path steps a header covers (0 when it is not on the path)."""
    if len(parts) > len(steps):
        return 0
    for k, part in enumerate(parts):
        name, position = steps[k]
        if part != name:
            return 0
        last = k == len(parts) - 1
        if last and is_array and position is not None and position != index:
            return 0
    return len(parts)


class TomlChecker:
    """Typed reads out of parsed TOML; failures are TomlErrors with file, path and line."""

    def __init__(self, source: str, text: str | None = None) -> None:
        self.source = source
        self.text = text

    def fail(self, path: str, message: str) -> TomlError:
        line = locate(self.text, path) if self.text is not None and path else None
        return TomlError(self.source, path, message, line)

    def table(self, value: Any, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a table, got {kind_of(value)}")
        for key in value:
            if key not in allowed:
                expected = ", ".join(allowed)
                raise self.fail(join(path, key), f"unknown key (expected one of {expected})")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be an array, got {kind_of(value)}")
        return value

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string, got {value!r}")
        if value != value.strip() or "." in value:
            raise self.fail(path, f"must not contain dots or surrounding spaces, got {value!r}")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, got {kind_of(value)}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {kind_of(value)} {value!r}")
        return value

    def number(self, value: Any, path: str, *, minimum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {kind_of(value)} {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be at least {minimum:g}, got {value!r}")
        return float(value)

    def positive(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {kind_of(value)} {value!r}")
        if not value > 0:
            raise self.fail(path, f"must be greater than 0, got {value!r}")
        return float(value)

    def integer(self, value: Any, path: str, *, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be an integer, got {kind_of(value)} {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be at least {minimum}, got {value!r}")
        return value

    def positive_int(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be an integer, got {kind_of(value)} {value!r}")
        if value <= 0:
            raise self.fail(path, f"must be greater than 0, got {value!r}")
        return value

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            raise self.fail(path, f"must be one of {', '.join(choices)}, got {value!r}")
        return value


def read_toml(
    path: str | Path | None, package: str | None = None
) -> tuple[str, str, dict[str, Any]]:
    """``(source, text, document)`` of a TOML config file; with ``path`` None, the
    ``default_config.toml`` packaged in ``package``. ValueError naming the file when it
    cannot be read or is not TOML."""
    if path is None:
        if package is None:
            raise ValueError("read_toml: no path and no package to take a default from")
        resource = files(package) / "default_config.toml"
        source, text = "default_config.toml", resource.read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ValueError(f"{source}: cannot read config: {reason}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: invalid TOML: {exc}") from None
    return source, text, doc
