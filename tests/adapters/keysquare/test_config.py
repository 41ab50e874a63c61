"""load_config: the packaged default, and bad files rejected with file and key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from actorwire.adapters.keysquare.config import AppConfig, TypeDef, load_config, permits

from .conftest import RESTRICTED_TOML, write_config

MINIMAL = """
[[applications]]
name = "a"
api_key = "k"
"""


def test_default_config_loads() -> None:
    cfg = load_config(None)
    assert cfg.name == "actorwire keysquare platform"
    assert (cfg.heartbeat_interval, cfg.heartbeat_deadline) == (1.0, 5.0)
    assert cfg.max_record_bytes == 65536
    assert cfg.store_path is None
    assert cfg.applications["demo"].read == ("*",)
    names = [(t.schema, t.name) for t in cfg.types]
    assert names == [("markets", "Price"), ("markets", "Trade"), ("markets", "Instrument")]
    assert cfg.types[0].fields["bid"] == "float"


def test_file_config_and_platform_defaults(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, RESTRICTED_TOML))
    assert cfg.name == "test platform"
    assert cfg.applications["reader"].read == ("Price", "markets.Trade")
    assert cfg.applications["writer"].publish == ("markets.Price",)
    assert TypeDef("refdata", "Trade", {"trade_id": "string"}) in cfg.types
    minimal = load_config(write_config(tmp_path, MINIMAL, "min.toml"))
    assert minimal.heartbeat_deadline == 5.0 and minimal.types == []


def test_app_repr_hides_the_api_key(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, RESTRICTED_TOML))
    text = repr(cfg)
    assert "demo-secret-key" not in text and "reader-secret-key" not in text
    assert "AppConfig(name='demo'" in repr(cfg.applications["demo"])


def test_permissions() -> None:
    app = AppConfig("a", "k", read=("Price", "refdata.Trade"), publish=("*",))
    assert app.can_read("markets", "Price") and app.can_read("other", "Price")
    assert app.can_read("refdata", "Trade") and not app.can_read("markets", "Trade")
    assert app.can_publish("x", "Anything")
    assert not permits((), "markets", "Price")


BAD = [
    (
        """
[[schemas]]
name = "markets"
[[schemas.types]]
name = "Price"
fields = { bid = "float" }
[[schemas.types]]
name = "Quote"
fields = { bid = "double" }
""",
        "schemas[0].types[1].fields.bid: unknown field type 'double' "
        "(expected one of string, float, int, bool, timestamp, json)",
    ),
    (
        MINIMAL + MINIMAL,
        "applications[1].name: duplicate application 'a'",
    ),
    ('[[applications]]\nname = "b"\n', "applications[0].api_key: missing for application 'b'"),
    ('[[applications]]\nname = "b"\napi_key = ""\n', "applications[0].api_key: empty"),
    (
        "[platform]\nheartbeat_interval = 2.0\nheartbeat_deadline = 2.0\n",
        "platform.heartbeat_deadline: must be greater than heartbeat_interval",
    ),
    ("[platform]\nheartbeat_interval = -1\n", "platform.heartbeat_interval: must be greater"),
    ("[platform]\nmax_record_bytes = 1.5\n", "platform.max_record_bytes: must be an integer"),
    ("[platform]\njournal_bytes = 0\n", "platform.journal_bytes: must be"),
    ("[platform]\ndedupe_window_seconds = -1\n", "platform.dedupe_window_seconds: must be"),
    ("[platform]\nheartbeat_intervall = 1\n", "platform.heartbeat_intervall: unknown key"),
    ("[plattform]\n", "plattform: unknown key (expected one of platform, applications"),
    (
        '[[schemas]]\nname = "m"\n[[schemas.types]]\nname = "T"\n[[schemas.types]]\nname = "T"\n',
        "schemas[0].types[1].name: duplicate type 'm.T'",
    ),
    ('[[schemas]]\nname = "m"\n[[schemas]]\nname = "m"\n', "schemas[1].name: duplicate schema"),
    ('[[schemas]]\nname = "m.x"\n', "schemas[0].name: must not contain dots"),
    ('[[schemas]]\n[[schemas.types]]\nname = "T"\n', "schemas[0].name: missing"),
    (
        MINIMAL + 'read = ["a.b.c"]\n',
        "applications[0].read[0]: bad permission pattern 'a.b.c'",
    ),
    (MINIMAL + "publish = [1]\n", "applications[0].publish[0]: must be a string"),
    ("applications = 3\n", "applications: must be an array"),
    ("[platform\n", "invalid TOML"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write_config(tmp_path, text, "bad.toml")
    with pytest.raises(ValueError) as info:
        load_config(path)
    message = str(info.value)
    # The file, then the line of the key when it is known (the config's text is read).
    assert re.match(rf"{re.escape(str(path))}(:\d+)?: ", message), message
    assert expected in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope\.toml: cannot read config"):
        load_config(tmp_path / "nope.toml")
