"""Definition files with the wrong shape: servers, sections, entries, stage options,
supervision, logging and metrics that are not what they should be, each reported at its key
path with what was expected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from actorwire.pipelines.definition import DefinitionError, parse_definition


def ticks(rate: float = 10.0) -> Any:
    return None


def scale(factor: float = 1.0) -> Any:
    return None


def printer(label: str = "") -> Any:
    return None


REGISTRIES: dict[str, dict[str, Callable[..., Any]]] = {
    "sources": {"ticks": ticks},
    "stages": {"scale": scale},
    "sinks": {"printer": printer},
}

HEAD = '[pipeline]\nname = "x"\n'
WIRED = HEAD + (
    '[[sources]]\nname = "a"\nkind = "ticks"\n[[sinks]]\nname = "s"\nkind = "printer"\nfrom = "a"\n'
)


def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, REGISTRIES)
    return [(e.path, e.message) for e in info.value.errors]


# A top-level key goes before [pipeline]: after it, it would be one of the pipeline's keys.
BAD = [
    ("servers = 3\n" + HEAD, "servers", "must be a table, got int"),
    (HEAD + "[servers.k]\nport = 1\n", "servers.k.kind", "missing (one of jupyter, kdb, keysquare"),
    (
        HEAD + '[servers.k]\nkind = "keysquare"\nport = 70000\n',
        "servers.k.port",
        "must be at most 65535, got 70000",
    ),
    (
        HEAD + '[servers.k]\nkind = "keysquare"\nconfig = 5\n',
        "servers.k.config",
        "must be a file path or a table, got int",
    ),
    ("servers.k = 1\n" + HEAD, "servers.k", "must be a table"),
    ("sources = 3\n" + HEAD, "sources", "must be an array of tables ([[sources]]), got int"),
    ("sources = [1]\n" + HEAD, "sources[0]", "must be a table, got int"),
    (HEAD + '[[sources]]\nkind = "ticks"\n', "sources[0].name", "missing (every entry needs"),
    (
        HEAD + '[[sources]]\nname = "a"\nkind = "ticks"\nfrom = "b"\n',
        "sources[0].from",
        "a source takes no inputs",
    ),
    (
        WIRED.replace('from = "a"', "from = []"),
        "sinks[0].from",
        "must be a name or a non-empty list of names, got []",
    ),
    (
        WIRED.replace('from = "a"', "from = [1]"),
        "sinks[0].from",
        "must be a name or a non-empty list of names, got [1]",
    ),
    (WIRED + "put_timeout = -1\n", "sinks[0].put_timeout", "must be"),
    (
        WIRED + 'mailbox_key = "symbol"\n',
        "sinks[0].mailbox_key",
        'only used with overflow = "conflate" (the field to conflate by)',
    ),
    ("supervision = 3\n" + HEAD, "supervision", "must be a table, got int"),
    (
        HEAD + "[supervision.backoff]\njitter = 2\n",
        "supervision.backoff.jitter",
        "must be at most 1, got 2",
    ),
    (
        HEAD + "[supervision.backoff]\nmin = 2.0\nmax = 1.0\n",
        "supervision.backoff.max",
        "must be at least min (1.0 < 2.0)",
    ),
    ("logging = 3\n" + HEAD, "logging", "must be a table, got int"),
    (HEAD + '[logging]\nformat = "xml"\n', "logging.format", "must be one of console, json"),
    ("metrics = []\n" + HEAD, "metrics", "must be a table, got an array"),
    (HEAD + "[pipeline.extra]\n", "pipeline.extra", "unknown key"),
]


@pytest.mark.parametrize(("text", "path", "expected"), BAD)
def test_a_wrongly_shaped_definition_is_refused_at_the_key(
    text: str, path: str, expected: str
) -> None:
    problems = errors_of(text)
    assert any(p == path and expected in m for p, m in problems), problems


def test_a_conflating_stage_takes_its_mailbox_key() -> None:
    text = WIRED + 'overflow = "conflate"\ncapacity = 10\nmailbox_key = "symbol"\nput_timeout = 2\n'
    (sink,) = parse_definition(text, REGISTRIES).sinks
    assert sink.options() == {
        "capacity": 10,
        "overflow": "conflate",
        "put_timeout": 2,
        "mailbox_key": "symbol",
    }


def test_missing_optional_sections_take_their_defaults() -> None:
    definition = parse_definition(WIRED, REGISTRIES)
    assert definition.supervision.strategy == "one_for_one"
    assert (definition.logging.level, definition.logging.format) == ("info", "console")
    assert (definition.metrics.host, definition.metrics.port) == ("127.0.0.1", None)
    assert definition.servers == ()


def test_an_entry_without_a_name_or_kind_is_still_checked_for_everything_else() -> None:
    text = HEAD + '[[sources]]\nkind = "ticks"\ncapacity = 0\n[[sources]]\nname = "b"\n'
    problems = dict(errors_of(text))
    assert "sources[0].name" in problems
    assert problems["sources[0].capacity"] == "must be at least 1, got 0"
    assert problems["sources[1].kind"] == "missing (one of ticks)"
