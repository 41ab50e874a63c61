"""The gateway's config: the packaged default (the demo token, the trade topic and its rows,
a 1 s update interval over the spec's 5 s default), every limit's default, topics of every
column type, auth off, and bad files rejected with the file, the line and the key path;
tokens never in reprs or errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from actorwire.actors.tomlcheck import TomlError
from actorwire.adapters.kdb.config import GatewayConfig, load_config, parse_config
from actorwire.adapters.kdb.topics import Column, TopicSpec, parse_timestamp

PACKAGED = Path(__file__).parents[3] / "adapters" / "kdb" / "default_config.toml"

MINIMAL = """
[gateway]
tokens = ["t0k3n-secret"]
"""


def write(tmp_path: Path, text: str, name: str = "gateway.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_default_config_is_the_demo() -> None:
    cfg = load_config(None)
    assert cfg == load_config(PACKAGED)
    assert cfg.tokens == ("demo-token",) and cfg.auth
    assert cfg.update_interval == 1.0  # the spec's 5 s is the library's default
    assert GatewayConfig().update_interval == 5.0
    assert cfg.topics == (
        TopicSpec(
            "trade",
            (Column("ccyPair", "symbol"),),
            (Column("val", "float"),),
            (
                {"ccyPair": "EUR/USD", "val": 1.0842},
                {"ccyPair": "GBP/USD", "val": 1.2671},
                {"ccyPair": "USD/JPY", "val": 151.37},
            ),
        ),
    )
    assert cfg.topic("trade") is cfg.topics[0] and cfg.topic("quote") is None
    defaults = GatewayConfig()
    for key in (
        "max_message_size",
        "snap_chunk_bytes",
        "max_rows_per_topic",
        "max_data_bytes",
        "max_subscriptions",
        "max_outbox_bytes",
        "ping_interval",
        "ping_timeout",
    ):
        assert getattr(cfg, key) == getattr(defaults, key), key
    assert cfg.max_message_size == 16 << 20
    topics = cfg.new_topics()
    assert topics.snapshot("trade", {"ccyPair": "USD/JPY"}) == {
        "ccyPair": ["USD/JPY"],
        "val": [151.37],
    }
    assert topics.update_interval == 1.0
    assert topics.max_rows == cfg.max_rows_per_topic and topics.max_bytes == cfg.max_data_bytes


def test_tokens_are_checked_in_constant_time_and_never_shown() -> None:
    cfg = load_config(None)
    assert cfg.accepts("demo-token")
    assert not cfg.accepts("demo-token2") and not cfg.accepts("") and not cfg.accepts(None)
    assert not cfg.accepts("d\udcffemo")  # a header's undecodable bytes, no crash
    assert "demo-token" not in repr(cfg) and "demo-token" not in str(cfg)
    assert repr(cfg).startswith("GatewayConfig(tokens=<1 hidden>, auth=True, topics=(")
    assert "EUR/USD" not in repr(cfg)  # rows are data, not config to print


def test_a_minimal_file_takes_every_default(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg == GatewayConfig(tokens=("t0k3n-secret",))
    assert cfg.topics == () and cfg.new_topics().names() == []


def test_auth_off_lets_everyone_in(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[gateway]\nauth = false\n"))
    assert cfg.accepts(None) and cfg.accepts("anything") and cfg.tokens == ()


def test_a_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[gateway]
tokens = ["one", "two"]
update_interval = 0.25

[limits]
max_message_size = 4096
snap_chunk_bytes = 2048
max_rows_per_topic = 10
max_data_bytes = 100000
max_subscriptions = 3
max_outbox_bytes = 8192
ping_interval = 1.0
ping_timeout = 2.5

[[topics]]
name = "quote"
keys = { sym = "symbol", venue = "long" }
values = { bid = "float", note = "string", live = "boolean", lots = "int", at = "timestamp" }

[[topics.rows]]
sym = "a"
venue = 1
bid = 1.5
note = "x"
live = true
lots = 2
at = 1970-01-01T00:00:01Z

[[topics.rows]]
sym = "a"
venue = 2
bid = 2
note = ""
live = false
lots = 3
at = "2024-05-01T12:00:00.000000001"

[[topics]]
name = "empty"
keys = { id = "long" }
""",
    )
    cfg = load_config(path)
    assert cfg.tokens == ("one", "two") and cfg.accepts("two") and not cfg.accepts("three")
    assert (cfg.update_interval, cfg.max_message_size, cfg.snap_chunk_bytes) == (0.25, 4096, 2048)
    assert (cfg.max_rows_per_topic, cfg.max_data_bytes, cfg.max_subscriptions) == (10, 100000, 3)
    assert (cfg.max_outbox_bytes, cfg.ping_interval, cfg.ping_timeout) == (8192, 1.0, 2.5)
    quote, empty = cfg.topics
    assert [c.name for c in quote.keys] == ["sym", "venue"]  # the file's order
    assert [c.type for c in quote.values] == ["float", "string", "boolean", "int", "timestamp"]
    assert quote.rows[0]["at"] == 10**9
    assert quote.rows[1]["at"] == parse_timestamp("2024-05-01T12:00:00.000000001")
    assert quote.rows[1]["bid"] == 2.0 and isinstance(quote.rows[1]["bid"], float)
    assert empty == TopicSpec("empty", (Column("id", "long"),))
    topics = cfg.new_topics()
    assert topics.snapshot("quote", {"venue": 2})["note"] == [""]
    assert topics.snapshot("empty") == {"id": []}


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("[gatway]\n", "gateway.toml:1: gatway", "unknown key (expected one of gateway, limits"),
        ("[gateway]\n", "gateway.toml:1: gateway.tokens", "no token is given"),
        ("[gateway]\ntokens = []\n", "gateway.toml:2: gateway.tokens", "set auth = false"),
        ("[gateway]\nauth = 'no'\n", "gateway.toml:2: gateway.auth", "true or false, got str"),
        ("[gateway]\ntokens = 'x'\n", "gateway.toml:2: gateway.tokens", "must be an array"),
        (
            "[gateway]\ntokens = ['a']\nupdate_interval = 0\n",
            "gateway.toml:3: gateway.update_interval",
            "must be greater than 0, got 0",
        ),
        (
            MINIMAL + "[limits]\nping_interval = 30.0\nping_timeout = 30\n",
            "gateway.toml:6: limits.ping_timeout",
            "must be greater than ping_interval (30.0 <= 30.0)",
        ),
        (
            MINIMAL + "[limits]\nsnap_chunk_bytes = 2000000\nmax_message_size = 1048576\n",
            "limits.snap_chunk_bytes",
            "must be at most max_message_size (2000000 > 1048576)",
        ),
        (
            MINIMAL + "[limits]\nmax_outbox_bytes = 4096\n",
            "limits.max_outbox_bytes",
            "must be at least max_message_size",
        ),
        (MINIMAL + "[limits]\nmax_message_size = 10\n", "limits.max_message_size", "at least 1024"),
        (MINIMAL + "[limits]\nmax_rows = 10\n", "gateway.toml:5: limits.max_rows", "unknown key"),
        (MINIMAL + "[[topics]]\nkeys = { a = 'long' }\n", "topics[0].name", "missing"),
        (
            MINIMAL + "[[topics]]\nname = 't'\n",
            "gateway.toml:4: topics[0].keys",
            "missing (a topic is a keyed table",
        ),
        (MINIMAL + "[[topics]]\nname = 't'\nkeys = {}\n", "topics[0].keys", "at least one key"),
        (
            MINIMAL + "[[topics]]\nname = 't'\nkeys = ['a']\n",
            "gateway.toml:6: topics[0].keys",
            'must be a table of column = "type", got an array',
        ),
        (
            MINIMAL + "[[topics]]\nname = 't'\nkeys = { a = 'flot' }\n",
            "gateway.toml:6: topics[0].keys.a",
            "unknown column type 'flot' (did you mean 'float'?); expected one of symbol",
        ),
        (
            MINIMAL + "[[topics]]\nname = 't'\nkeys = { a = 'bool' }\n",
            "topics[0].keys.a",
            "did you mean 'boolean'?",
        ),
        (
            MINIMAL + "[[topics]]\nname = 't'\nkeys = { a = 'long' }\nvalues = { a = 'float' }\n",
            "gateway.toml:7: topics[0].values.a",
            "duplicate column 'a' (a key column has it)",
        ),
        (
            MINIMAL + "[[topics]]\nname = ' '\nkeys = { a = 'long' }\n",
            "topics[0].name",
            "non-empty",
        ),
        (
            MINIMAL
            + "[[topics]]\nname = 't'\nkeys = { a = 'long' }\n"
            + "[[topics]]\nname = 't'\nkeys = { b = 'long' }\n",
            "gateway.toml:8: topics[1].name",
            "duplicate topic 't' (topics[0])",
        ),
        (
            MINIMAL
            + "[[topics]]\nname = 't'\nkeys = { a = 'long' }\nvalues = { v = 'float' }\n"
            + "rows = [\n  { a = 1, v = 1.0 },\n  { a = 2, v = 'x' },\n]\n",
            "gateway.toml:8: topics[0].rows[1].v",
            "must be a float (a finite number), got str 'x'",
        ),
        (
            MINIMAL
            + "[[topics]]\nname = 't'\nkeys = { a = 'long' }\nvalues = { v = 'float' }\n"
            + "rows = [{ a = 1 }]\n",
            "topics[0].rows[0].v",
            "missing (a row gives every column: a, v)",
        ),
        (
            MINIMAL
            + "[[topics]]\nname = 't'\nkeys = { a = 'long' }\n"
            + "rows = [{ a = 1, b = 2 }]\n",
            "topics[0].rows[0].b",
            "unknown key (expected one of a)",
        ),
        (
            MINIMAL
            + "[[topics]]\nname = 't'\nkeys = { a = 'long' }\n"
            + "rows = [{ a = 1 }, { a = 1 }]\n",
            "topics[0].rows[1]",
            "duplicate key (1,) (topics[0].rows[0] has it)",
        ),
        (
            MINIMAL
            + "[[topics]]\nname = 't'\nkeys = { at = 'timestamp' }\n"
            + "rows = [{ at = 'noon' }]\n",
            "topics[0].rows[0].at",
            "must be a timestamp (ISO 8601 text",
        ),
        (
            MINIMAL
            + "[limits]\nmax_rows_per_topic = 1\n"
            + "[[topics]]\nname = 't'\nkeys = { a = 'long' }\n"
            + "rows = [{ a = 1 }, { a = 2 }]\n",
            "gateway.toml:6: topics",
            "the starting rows do not fit limits.max_rows_per_topic and limits.max_data_bytes: "
            "topic 't': upsert refused: 2 new rows would take it past max_rows=1",
        ),
        (
            MINIMAL
            + "[limits]\nmax_data_bytes = 100\n"
            + "[[topics]]\nname = 't'\nkeys = { a = 'long' }\n"
            + "rows = [{ a = 1 }]\n",
            "topics",
            "do not fit limits.max_rows_per_topic and limits.max_data_bytes: topic 't': "
            "upsert refused: 1 row would take the topics' data to about",
        ),
    ],
)
def test_bad_files_name_the_file_line_and_key_path(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    with pytest.raises(TomlError) as err:
        load_config(write(tmp_path, text))
    text_of = str(err.value)
    assert text_of.startswith("gateway.toml") or str(tmp_path) in text_of
    assert f"{where}: " in text_of.replace(str(tmp_path) + "/", ""), text_of
    assert message in text_of, text_of


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("has space", "must not hold a space or a comma"),
        ("a,b", "must not hold a space or a comma"),
        ("", "non-empty printable ASCII"),
        ("tab\tsecret", "non-empty printable ASCII"),
        ("sécret", "non-empty printable ASCII"),
    ],
)
def test_bad_tokens_are_refused_without_being_echoed(
    tmp_path: Path, token: str, message: str
) -> None:
    path = write(tmp_path, f'[gateway]\ntokens = ["fine", "{token}"]\n')
    with pytest.raises(TomlError, match=r"gateway\.tokens\[1\]") as err:
        load_config(path)
    assert message in str(err.value)
    if token:
        assert token not in str(err.value)
        assert "secret" not in str(err.value).replace("gateway.toml", "")


def test_a_repeated_token_is_refused_without_being_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateway]\ntokens = ["s3cret", "s3cret"]\n')
    with pytest.raises(TomlError, match=r"gateway\.tokens\[1\]: the same token as .*\[0\]") as e:
        load_config(path)
    assert "s3cret" not in str(e.value)
    with pytest.raises(TomlError, match=r"gateway\.tokens\[0\]: must be a string, got int$"):
        parse_config({"gateway": {"tokens": [12345]}})


def test_parse_config_names_its_source() -> None:
    cfg = parse_config({"gateway": {"tokens": ["x"]}, "topics": []}, "def.toml: servers.kdb")
    assert cfg.tokens == ("x",)
    with pytest.raises(TomlError, match=r"^def\.toml: servers\.kdb: gateway\.auth: must be"):
        parse_config({"gateway": {"auth": 1}}, "def.toml: servers.kdb")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.toml: cannot read config: No such file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match=r"bad\.toml: invalid TOML"):
        load_config(write(tmp_path, "[gateway\n", "bad.toml"))
