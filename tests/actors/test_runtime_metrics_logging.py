"""Metrics with exact counts, and structured logging: actor names bound, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from actorwire.actors import (
    ActorSystem,
    Backoff,
    ChildSpec,
    Mailbox,
    Overflow,
    Supervisor,
    WhichChildren,
    configure_logging,
    redact_secrets,
)
from actorwire.actors.log import REDACTED

from tests.actors.conftest import Block, Boom, Journal, Probe, probe_factory
from tests.support.waiting import wait_until

# -- metrics ----------------------------------------------------------------------------


def test_metrics_count_exactly_in_a_deterministic_scenario(system: ActorSystem) -> None:
    journal = Journal()
    worker = system.spawn(Probe, journal, "worker", name="worker")
    for i in range(5):
        worker.tell(i)
    assert worker.ask("a", timeout=5.0) == "a"
    assert worker.ask("b", timeout=5.0) == "b"
    with pytest.raises(ValueError, match="answered with an error"):
        worker.ask(Boom(ValueError("answered with an error")), timeout=5.0)

    bounded = system.spawn(
        Probe, journal, "bounded", name="bounded", mailbox=Mailbox(2, Overflow.DROP_NEWEST)
    )
    block = Block()
    bounded.tell(block)
    block.wait_entered()
    for i in range(5):
        bounded.tell(i)
    assert system.metrics()["actors"]["bounded"] == {
        "received": 3,
        "processed": 0,
        "failed": 0,
        "dropped": 3,
        "lost": 0,
        "mailbox_depth": 2,
        "restarts": 0,
        "state": "running",
    }
    block.release.set()
    wait_until(lambda: system.metrics()["actors"]["bounded"]["mailbox_depth"] == 0)
    assert bounded.ask("sync", timeout=5.0) == "sync"

    fast = Backoff(min=0.001, max=0.01, jitter=0.0)
    sup = system.spawn(
        Supervisor, children=[ChildSpec("c", probe_factory(journal, "c"))], backoff=fast, name="sup"
    )
    child = system.lookup("c")
    child.tell(Boom())
    wait_until(lambda: journal.incarnations("c") == 2)
    for i in range(3):
        child.tell(i)
    assert child.ask("sync", timeout=5.0) == "sync"
    sup.ask(WhichChildren(), timeout=5.0)  # after ChildExited and the restart: 3 messages

    gone = system.spawn(Probe, journal, "gone", name="gone")
    gone.tell("x")
    gone.stop()
    gone.tell("dead letter")

    metrics = system.metrics()
    assert metrics["system"] == system.name
    assert metrics["actors"] == {
        "worker": {
            "received": 8,
            "processed": 8,
            "failed": 0,
            "dropped": 0,
            "lost": 0,
            "mailbox_depth": 0,
            "restarts": 0,
            "state": "running",
        },
        "bounded": {
            "received": 4,
            "processed": 4,
            "failed": 0,
            "dropped": 3,
            "lost": 0,
            "mailbox_depth": 0,
            "restarts": 0,
            "state": "running",
        },
        "sup": {
            "received": 3,
            "processed": 3,
            "failed": 0,
            "dropped": 0,
            "lost": 0,
            "mailbox_depth": 0,
            "restarts": 0,
            "state": "running",
        },
        "c": {
            "received": 5,
            "processed": 4,
            "failed": 1,
            "dropped": 0,
            "lost": 0,
            "mailbox_depth": 0,
            "restarts": 1,
            "state": "running",
        },
    }
    assert metrics["totals"] == {
        "received": 8 + 4 + 3 + 5 + 1,
        "processed": 8 + 4 + 3 + 4 + 1,
        "failed": 1,
        "dropped": 3,
        "restarts": 1,
        "actors": 4,
        "stopped_actors": 1,
        "dead_letters": 1,
    }


def test_metrics_of_a_failed_on_batch_count_the_whole_batch(system: ActorSystem) -> None:
    from actorwire.actors import Actor

    class FailingBatch(Actor):
        def on_receive(self, message: Any) -> Any:
            if isinstance(message, Block):
                message.entered.set()
                message.release.wait(10.0)
            return message

        def on_batch(self, messages: list[Any]) -> None:
            if isinstance(messages[0], Block):
                self.on_receive(messages[0])
                return
            raise RuntimeError("bad batch")

    address = system.spawn(FailingBatch, name="fb")
    block = Block()
    address.tell(block)
    block.wait_entered()
    for i in range(4):
        address.tell(i)
    block.release.set()
    wait_until(lambda: not address.is_alive())
    assert system.metrics()["totals"]["failed"] == 4
    assert system.metrics()["totals"]["processed"] == 1


# -- logging ----------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put structlog's configuration and the root logger back as they were."""
    saved = structlog.get_config()
    saved["processors"] = list(saved["processors"])
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


SECRETS = ("sk-live-123", "hunter2", "tok-456", "s3cr3t", "hmac-789", "k-000", "pass-phrase")


class Chatty(Probe):
    def on_receive(self, message: Any) -> Any:
        if message == "login":
            self.log.info(
                "login",
                user="bob",
                api_key="sk-live-123",
                password="hunter2",
                creds={"token": "tok-456", "inner": {"client_secret": "s3cr3t"}},
                items=[{"hmac_key": "hmac-789"}, ("x", {"key": "k-000"})],
                passphrase="pass-phrase",
            )
            return "logged"
        return super().on_receive(message)


@pytest.mark.usefixtures("restore_logging")
def test_json_logs_bind_the_actor_name_and_redact_secrets() -> None:
    buffer = io.StringIO()
    configure_logging(format="json", level="info", stream=buffer)
    with ActorSystem("logs") as system:
        address = system.spawn(Chatty, Journal(), "chatty", name="chatty-actor")
        assert address.ask("login", timeout=5.0) == "logged"
    output = buffer.getvalue()
    for secret in SECRETS:
        assert secret not in output
    [event] = [e for e in json_lines(buffer) if e.get("event") == "login"]
    assert event["actor"] == "chatty-actor"
    assert event["system"] == "logs"
    assert event["user"] == "bob"
    assert event["level"] == "info"
    assert event["api_key"] == REDACTED
    assert event["password"] == REDACTED
    assert event["creds"] == {"token": REDACTED, "inner": {"client_secret": REDACTED}}
    assert event["items"] == [{"hmac_key": REDACTED}, ["x", {"key": REDACTED}]]


@pytest.mark.usefixtures("restore_logging")
def test_console_logs_redact_secrets_too() -> None:
    buffer = io.StringIO()
    configure_logging(format="console", level="debug", stream=buffer)
    with ActorSystem("console") as system:
        address = system.spawn(Chatty, Journal(), "chatty", name="chatty-console")
        address.ask("login", timeout=5.0)
    output = buffer.getvalue()
    assert "login" in output
    assert "chatty-console" in output
    for secret in SECRETS:
        assert secret not in output


@pytest.mark.usefixtures("restore_logging")
def test_failures_and_dead_letters_are_logged_with_the_actor_and_message_type() -> None:
    class Secret:
        def __init__(self, password: str) -> None:
            self.password = password

        def __repr__(self) -> str:
            return f"Secret({self.password})"

    buffer = io.StringIO()
    configure_logging(format="json", level="info", stream=buffer)
    with ActorSystem("failing") as system:
        address = system.spawn(Probe, Journal(), "p", name="fragile")
        address.tell(Boom(RuntimeError("kaput")))
        wait_until(lambda: not address.is_alive())
        address.tell(Secret("hunter2"))
    events = json_lines(buffer)
    failed = [e for e in events if e["event"] == "actor failed"]
    assert failed[0]["actor"] == "fragile"
    assert "kaput" in failed[0]["error"]
    [dead] = [e for e in events if e["event"] == "dead letter"]
    assert dead["recipient"] == "fragile"
    assert dead["message_type"] == "Secret"
    assert "hunter2" not in buffer.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_an_expected_failure_is_a_warning_without_a_traceback() -> None:
    from actorwire.actors import ExpectedFailure

    class PeerGone(ExpectedFailure, ConnectionError):
        pass

    buffer = io.StringIO()
    configure_logging(format="json", level="info", stream=buffer)
    with ActorSystem("expected") as system:
        calm = system.spawn(Probe, Journal(), "c", name="calm")
        calm.tell(Boom(PeerGone("the peer went away")))
        wait_until(lambda: not calm.is_alive())
        loud = system.spawn(Probe, Journal(), "l", name="loud")
        loud.tell(Boom(ConnectionError("a real bug")))
        wait_until(lambda: not loud.is_alive())
    events = {e["actor"]: e for e in json_lines(buffer) if e["event"] == "actor failed"}
    assert events["calm"]["level"] == "warning" and "exception" not in events["calm"]
    assert "the peer went away" in events["calm"]["error"]
    assert events["loud"]["level"] == "error" and "Traceback" in events["loud"]["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_the_level_filters_events() -> None:
    buffer = io.StringIO()
    configure_logging(format="json", level="warning", stream=buffer)
    with ActorSystem("quiet") as system:
        address = system.spawn(Chatty, Journal(), "chatty", name="chatty")
        address.ask("login", timeout=5.0)
        address.stop()
        address.tell("lost")
    events = [e["event"] for e in json_lines(buffer)]
    assert "login" not in events
    assert "dead letter" in events


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"format": "xml"}, "format"), ({"level": "chatty"}, "level")],
)
def test_bad_logging_arguments_raise_value_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        configure_logging(**kwargs)


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apiKey",
        "password",
        "secret",
        "token",
        "key",
        "access_token",
        "x-api-key",
        "client_secret",
        "Authorization",
        "hmac",
    ],
)
def test_redact_secrets_removes_secret_named_keys(name: str) -> None:
    event = {"event": "e", name: "value", "nested": {name: "value"}, "keep": "visible"}
    out = redact_secrets(None, "info", event)
    assert out[name] == REDACTED
    assert out["nested"] == {name: REDACTED}
    assert out["keep"] == "visible"


@pytest.mark.parametrize("name", ["monkey", "keys_count", "tokenizer", "user", "event"])
def test_redact_secrets_keeps_ordinary_keys(name: str) -> None:
    out = redact_secrets(None, "info", {name: "value"})
    assert out[name] == "value"
