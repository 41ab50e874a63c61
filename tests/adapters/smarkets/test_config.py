"""The exchange's config: the packaged default, the defaults of every setting, and bad files
rejected with the file, the line and the key path; passwords never in reprs or errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from actorwire.actors.tomlcheck import TomlError
from actorwire.adapters.smarkets.config import (
    AccountConfig,
    ContractConfig,
    ExchangeConfig,
    MarketConfig,
    load_config,
    parse_config,
)

ACCOUNT = """
[[accounts]]
username = "alice"
password = "alice-secret"
account_id = 7
balance = 250.5
"""

MARKET = """
[[events]]
id = 1
name = "E"

[[markets]]
id = 10
event_id = 1
name = "M"
contracts = [{ id = 11, name = "A" }, { id = 12, name = "B" }]
"""


def write(tmp_path: Path, text: str, name: str = "exchange.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_config() -> None:
    cfg = load_config(None)
    accounts = {a.username: a for a in cfg.accounts}
    assert accounts["demo"].password == "demo-password"
    assert accounts["demo2"].password == "demo2-password"
    assert accounts["demo"].balance == accounts["demo2"].balance == 10000.0
    assert accounts["demo"].account_id != accounts["demo2"].account_id
    assert len(cfg.events) == 1
    (market,) = cfg.markets
    assert (market.id, market.state, market.event_id) == (100, "open", cfg.events[0].id)
    assert [c.id for c in market.contracts] == [101, 102]
    assert (cfg.heartbeat_interval, cfg.heartbeat_timeout) == (5.0, 15.0)
    assert cfg.session_journal_bytes == 4 << 20
    assert cfg.account_journal_bytes == 16 << 20
    assert (cfg.throttle_rate, cfg.throttle_burst) == (100.0, 200)
    assert cfg.max_frame_bytes == 1 << 20


def test_every_setting_has_its_default(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ACCOUNT + MARKET))
    assert cfg == ExchangeConfig(
        accounts=(AccountConfig("alice", "alice-secret", 7, 250.5),),
        events=cfg.events,
        markets=(
            MarketConfig(10, 1, "M", "open", (ContractConfig(11, "A"), ContractConfig(12, "B"))),
        ),
    )
    assert load_config(None).max_open_orders == ExchangeConfig().max_open_orders


def test_settings_are_read(tmp_path: Path) -> None:
    text = (
        "[exchange]\nheartbeat_interval = 1\nheartbeat_timeout = 2.5\nthrottle_rate = 3\n"
        "throttle_burst = 4\naccount_journal_bytes = 5000\nmax_frame_bytes = 2048\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert (cfg.heartbeat_interval, cfg.heartbeat_timeout) == (1.0, 2.5)
    assert (cfg.throttle_rate, cfg.throttle_burst) == (3.0, 4)
    assert (cfg.account_journal_bytes, cfg.max_frame_bytes) == (5000, 2048)
    assert cfg.accounts == cfg.markets == ()


def test_passwords_stay_out_of_reprs() -> None:
    cfg = load_config(None)
    assert "demo-password" not in repr(cfg)
    assert "demo2-password" not in repr(cfg)
    assert "username='demo'" in repr(cfg.accounts[0])


def test_parse_config_names_its_source() -> None:
    cfg = parse_config(
        {"accounts": [{"username": "u", "password": "p", "account_id": 1, "balance": 1}]}
    )
    assert cfg.accounts[0].balance == 1.0
    with pytest.raises(TomlError, match=r"^inline: accounts\[0\]\.balance: missing$"):
        parse_config({"accounts": [{"username": "u", "password": "p", "account_id": 1}]}, "inline")


BAD = [
    ("[exchange]\nheartbeat_interval = 0\n", 2, "exchange.heartbeat_interval: must be greater"),
    (
        "[exchange]\nheartbeat_interval = 5\nheartbeat_timeout = 5\n",
        3,
        "exchange.heartbeat_timeout: must be greater than heartbeat_interval",
    ),
    ("[exchange]\naccount_journal_bytes = 1.5\n", 2, "account_journal_bytes: must be an integer"),
    ("[exchange]\nsession_journal_bytes = 0\n", 2, "session_journal_bytes: must be greater"),
    ("[exchange]\nthrottle_burst = -1\n", 2, "exchange.throttle_burst: must be greater than 0"),
    ("[exchange]\nthrottle_rate = 'fast'\n", 2, "exchange.throttle_rate: must be a number"),
    ("[exchange]\nmax_frame_bytes = 10\n", 2, "exchange.max_frame_bytes: must be at least 1024"),
    ("[exchange]\nheartbeat_intervall = 1\n", 2, "exchange.heartbeat_intervall: unknown key"),
    ("[exchang]\n", 1, "exchang: unknown key (expected one of exchange, accounts"),
    (ACCOUNT + ACCOUNT, 9, "accounts[1].username: duplicate username 'alice' (accounts[0])"),
    (
        ACCOUNT + ACCOUNT.replace("alice", "bob"),
        11,
        "accounts[1].account_id: duplicate account id 7 (accounts[0])",
    ),
    (ACCOUNT.replace("account_id = 7", "account_id = 0"), 5, "account_id: must be at least 1"),
    (
        ACCOUNT.replace("account_id = 7", f"account_id = {1 << 64}"),
        5,
        f"accounts[0].account_id: must be at most {(1 << 64) - 1}",
    ),
    (ACCOUNT.replace("250.5", "-1.0"), 6, "accounts[0].balance: must be at least 0"),
    (ACCOUNT.replace("250.5", "inf"), 6, "accounts[0].balance: must be a finite number"),
    (ACCOUNT.replace("250.5", "nan"), 6, "accounts[0].balance: must be a finite number"),
    (ACCOUNT.replace('username = "alice"', ""), 2, "accounts[0].username: missing"),
    (ACCOUNT.replace('"alice"', '" "'), 3, "accounts[0].username: must be a non-empty string"),
    (ACCOUNT.replace('"alice-secret"', '""'), 4, "accounts[0].password: empty for account"),
    (ACCOUNT + "colour = 1\n", 7, "accounts[0].colour: unknown key"),
    (MARKET.replace("event_id = 1", "event_id = 2"), 8, "markets[0].event_id: no event 2"),
    (MARKET.replace('name = "M"', 'name = "M"\nstate = "closed"'), 10, "markets[0].state: must be"),
    (MARKET.replace("id = 12", "id = 11"), 10, "duplicate contract 11 (markets[0].contracts[0]"),
    (
        MARKET.replace("contracts = [{ id = 11", "contracts = []\n#").replace("{ id = 12", "#"),
        10,
        "markets[0].contracts: a market needs at least one contract",
    ),
    (
        MARKET + '[[markets]]\nid = 10\nevent_id = 1\nname = "N"\ncontracts = [{ id = 13, '
        'name = "C" }]\n',
        12,
        "markets[1].id: duplicate market 10 (markets[0])",
    ),
    (MARKET.replace("id = 11", f"id = {1 << 32}"), 10, "id: must be at most 4294967295"),
    (MARKET.replace("[[events]]\nid = 1", "[[events]]\nid = 'x'"), 3, "events[0].id: must be an"),
    ("markets = 3\n", 1, "markets: must be an array"),
]


@pytest.mark.parametrize(("text", "line", "expected"), BAD)
def test_bad_config_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(TomlError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert expected in message
    assert "alice-secret" not in message


def test_a_password_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, ACCOUNT.replace('"alice-secret"', "987654321"))
    with pytest.raises(TomlError) as info:
        load_config(path)
    assert "accounts[0].password: must be a string, got int" in str(info.value)
    assert "987654321" not in str(info.value)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope\.toml: cannot read config"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match=r"broken\.toml: invalid TOML"):
        load_config(write(tmp_path, "[exchange\n", "broken.toml"))
