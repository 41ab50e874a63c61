"""Kind registries: build a source or sink by name, with errors that name what was wrong."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

__all__ = ["check_params", "make", "param_problems", "positive_int"]

T = TypeVar("T")


def param_problems(
    factory: Callable[..., Any], params: Mapping[str, Any], given: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """``(parameter, problem)`` for each name ``factory`` does not take and each one it
    needs and lacks; ``given`` are names supplied some other way (never missing).

    A factory taking ``**kwargs`` accepts any name; ``*args`` and ``**kwargs`` are never
    required (an Actor subclass without its own ``__init__`` takes nothing).
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read: the call itself will tell
        return []
    named = {
        n: p
        for n, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    problems = []
    for key in params:
        if key not in named and not takes_any:
            close = difflib.get_close_matches(key, list(named), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                (key, f"unknown parameter {key!r}{hint}; parameters: {_describe(named)}")
            )
    supplied = set(given)
    for name, p in named.items():
        if p.default is p.empty and name not in params and name not in supplied:
            problems.append((name, f"missing parameter {name!r}; parameters: {_describe(named)}"))
    return problems


def check_params(owner: str, factory: Callable[..., Any], params: Mapping[str, Any]) -> None:
    """Raise TypeError naming the first parameter ``factory`` does not take, or needs and
    lacks, and listing what it takes: see ``param_problems``."""
    problems = param_problems(factory, params)
    if problems:
        raise TypeError(f"{owner}: {problems[0][1]}")


def _describe(named: Mapping[str, inspect.Parameter]) -> str:
    return ", ".join(named) or "none"


def positive_int(owner: str, name: str, value: object, *, allow_none: bool = False) -> int | None:
    """``value`` if it is an integer >= 1 (or None, when allowed); else ValueError naming it."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
    return value


def make(section: str, registry: Mapping[str, Callable[..., T]], kind: str, params: Any) -> T:
    """Build ``registry[kind](**params)``; ValueError for an unknown kind, TypeError for
    unknown or missing parameters (each naming the kind and what it takes)."""
    if not isinstance(kind, str):
        raise TypeError(f"{section} kind must be a string, got {kind!r}")
    factory = registry.get(kind)
    if factory is None:
        from .plugins import plugin_errors  # noqa: PLC0415 - plugins import this module's users

        close = difflib.get_close_matches(kind, list(registry), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        broken = "".join(
            f"; plugin {name!r} failed to load: {error}" for name, error in plugin_errors().items()
        )
        raise ValueError(
            f"unknown {section} kind {kind!r}{hint}; expected one of "
            f"{', '.join(sorted(registry))}{broken}"
        )
    check_params(f"{section} {kind!r}", factory, params)
    return factory(**params)
