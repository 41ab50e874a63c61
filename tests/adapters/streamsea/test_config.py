"""The stream-sea server's config: the packaged default, every limit's default, clients with
JWT public keys (inline or from a file), predefined streams, and bad files rejected with the
file, the line and the key path; secrets and key text never in reprs or errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from actorwire.actors.tomlcheck import TomlError
from actorwire.adapters.streamsea.config import (
    ClientConfig,
    StreamSeaConfig,
    load_config,
    parse_config,
    schema_version,
)
from actorwire.adapters.streamsea.schema import SchemaDefinition
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def write(tmp_path: Path, text: str, name: str = "streamsea.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rsa_public_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_the_default_config_has_the_demo_client_and_every_limits_default() -> None:
    cfg = load_config(None)
    assert cfg.clients == (ClientConfig("demo", "demo-secret"),)
    assert cfg.client("demo") is cfg.clients[0] and cfg.client("nobody") is None
    assert cfg.streams == ()
    defaults = StreamSeaConfig()
    for key in (
        "max_log_bytes",
        "max_streams",
        "max_groups",
        "rejoin_grace",
        "group_ttl",
        "ping_interval",
        "ping_timeout",
        "auth_timeout",
        "max_message_size",
        "max_body_bytes",
        "max_subscriptions",
    ):
        assert getattr(cfg, key) == getattr(defaults, key), key
    assert (cfg.max_log_bytes, cfg.ping_interval, cfg.rejoin_grace, cfg.group_ttl) == (
        64 << 20,
        20.0,
        10.0,
        600.0,
    )


def test_secrets_never_appear_in_reprs() -> None:
    cfg = load_config(None)
    assert "demo-secret" not in repr(cfg)
    assert repr(cfg.clients[0]) == "ClientConfig(id='demo', secret=***)"


def test_a_full_file(tmp_path: Path) -> None:
    pem = rsa_public_pem()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "b.pem").write_text(pem)
    path = write(
        tmp_path,
        f"""
[limits]
max_log_bytes = 4096
ping_interval = 1.5
ping_timeout = 4

[[clients]]
id = "a"
secret = "a-secret"
jwt_public_key = \"\"\"{pem}\"\"\"

[[clients]]
id = "b"
secret = "b-secret"
jwt_public_key_file = "keys/b.pem"

[[streams]]
name = "boiler"
version = 2
fields = [
    {{ name = "t", type = "float" }},
    {{ name = "site", type = "enum", enum = ["n", "s"] }},
    {{ name = "legs", type = "array<object>", fields = [{{ name = "at", type = "date" }}] }},
]
""",
    )
    cfg = load_config(path)
    assert (cfg.max_log_bytes, cfg.ping_interval, cfg.ping_timeout) == (4096, 1.5, 4.0)
    assert [c.id for c in cfg.clients] == ["a", "b"]
    assert cfg.clients[0].jwt_public_key == pem == cfg.clients[1].jwt_public_key
    assert repr(cfg.clients[1]) == "ClientConfig(id='b', secret=***, jwt_public_key=<PEM>)"
    assert "BEGIN PUBLIC KEY" not in repr(cfg) and "a-secret" not in repr(cfg)
    assert cfg.streams == (
        SchemaDefinition(
            "boiler",
            2,
            [
                {"name": "t", "type": "float"},
                {"name": "site", "type": "enum", "enum": ["n", "s"]},
                {
                    "name": "legs",
                    "type": "array<object>",
                    "fields": [{"name": "at", "type": "date"}],
                },
            ],
        ),
    )


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("[limits]\nmax_log_byte = 1\n", "2: limits.max_log_byte", "unknown key (expected one of"),
        ("[limits]\nping_interval = 45\n", "2: limits.ping_interval", "must be at most 30"),
        ("[limits]\nping_interval = 0\n", "2: limits.ping_interval", "must be greater than 0"),
        (
            "[limits]\nping_interval = 10\nping_timeout = 10\n",
            "3: limits.ping_timeout",
            "must be greater than ping_interval (10.0 <= 10.0)",
        ),
        (
            "[limits]\nrejoin_grace = 30\ngroup_ttl = 20\n",
            "3: limits.group_ttl",
            "must be at least rejoin_grace",
        ),
        ("[limits]\nmax_streams = 'many'\n", "2: limits.max_streams", "must be an integer"),
        ("[limits]\nmax_message_size = 10\n", "2: limits.max_message_size", "at least 1024"),
        ("[limits]\nmax_groups = true\n", "2: limits.max_groups", "must be an integer"),
        ("[[clients]]\nsecret = 's'\n", "1: clients[0].id", "missing"),
        ("[[clients]]\nid = 'a:b'\nsecret = 's'\n", "2: clients[0].id", "without ':'"),
        ("[[clients]]\nid = 'a'\n", "1: clients[0].secret", "missing"),
        ("[[clients]]\nid = 'a'\nsecret = ''\n", "3: clients[0].secret", "empty for client 'a'"),
        (
            "[[clients]]\nid = 'a'\nsecret = 's'\n[[clients]]\nid = 'a'\nsecret = 't'\n",
            "5: clients[1].id",
            "duplicate client id 'a' (clients[0])",
        ),
        (
            "[[clients]]\nid = 'a'\nsecret = 's'\nwho = 1\n",
            "4: clients[0].who",
            "unknown key (expected one of id, secret, jwt_public_key, jwt_public_key_file)",
        ),
        ("[[streams]]\nversion = 1\nfields = []\n", "1: streams[0].name", "missing"),
        (
            "[[streams]]\nname = 's'\nversion = 'v1'\nfields = []\n",
            "3: streams[0].version",
            "must be an integer, got str 'v1'",
        ),
        (
            "[[streams]]\nname = 's'\nversion = 1\nfields = [{ name = 'x', type = 'flaot' }]\n",
            "4: streams[0].fields",
            "fields[0].type must be one of",
        ),
        (
            "[[streams]]\nname = 's'\nversion = 1\nfields = []\n"
            "[[streams]]\nname = 's'\nversion = 2\nfields = []\n",
            "6: streams[1].name",
            "duplicate stream 's' (streams[0])",
        ),
        ("[server]\nport = 1\n", "1: server", "unknown key (expected one of limits, clients"),
    ],
)
def test_errors_name_the_file_line_and_key(
    tmp_path: Path, text: str, where: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TomlError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{where}: "), message
    assert problem in message


def test_a_bad_public_key_is_named_without_its_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[[clients]]\nid = 'a'\nsecret = 'a-secret'\njwt_public_key = 'not-a-key-SECRETISH'\n",
    )
    with pytest.raises(TomlError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message == (
        f"{path}:4: clients[0].jwt_public_key: is not a PEM public key (-----BEGIN PUBLIC KEY-----)"
    )
    assert "SECRETISH" not in message and "a-secret" not in message


def test_a_public_key_must_be_rsa(tmp_path: Path) -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    (tmp_path / "ec.pem").write_text(pem)
    path = write(tmp_path, "[[clients]]\nid = 'a'\nsecret = 's'\njwt_public_key_file = 'ec.pem'\n")
    with pytest.raises(TomlError, match=r"clients\[0\]\.jwt_public_key_file: must be an RSA"):
        load_config(path)


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[[clients]]\nid = 'a'\nsecret = 's'\njwt_public_key_file = 'no.pem'\n")
    with pytest.raises(TomlError) as caught:
        load_config(path)
    assert f"clients[0].jwt_public_key_file: cannot read '{tmp_path / 'no.pem'}'" in str(
        caught.value
    )


def test_both_key_forms_at_once_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[[clients]]\nid = 'a'\nsecret = 's'\njwt_public_key = 'x'\njwt_public_key_file = 'y'\n",
    )
    with pytest.raises(TomlError, match="give jwt_public_key or jwt_public_key_file, not both"):
        load_config(path)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope\.toml: cannot read config: No such file"):
        load_config(tmp_path / "nope.toml")
    path = write(tmp_path, "[limits\n")
    with pytest.raises(ValueError, match=rf"{path}: invalid TOML"):
        load_config(path)


def test_parse_config_names_its_source_and_finds_key_files_in_its_base_dir(
    tmp_path: Path,
) -> None:
    with pytest.raises(TomlError) as caught:
        parse_config({"limits": {"ping_interval": 31}}, "servers.ss.config")
    assert str(caught.value).startswith(
        "servers.ss.config: limits.ping_interval: must be at most 30"
    )
    (tmp_path / "k.pem").write_text(rsa_public_pem())
    cfg = parse_config(
        {"clients": [{"id": "a", "secret": "s", "jwt_public_key_file": "k.pem"}]},
        base_dir=tmp_path,
    )
    assert cfg.clients[0].jwt_public_key is not None


@pytest.mark.parametrize(("version", "number"), [(3, 3), ("4", 4), (" 5", 5)])
def test_schema_versions_are_integers_or_their_digits(version: int | str, number: int) -> None:
    assert schema_version(version) == number


@pytest.mark.parametrize("version", ["v1", "", True, 1.5, "٣"])
def test_other_schema_versions_are_refused(version: object) -> None:
    with pytest.raises(ValueError, match="schema version must be an integer"):
        schema_version(version)  # type: ignore[arg-type]
