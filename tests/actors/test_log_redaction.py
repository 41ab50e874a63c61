"""Logging that never leaks: the text scrubber, tracebacks without local variables, exception
text redacted in both formats and in stdlib log lines, and the library's quiet default."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import actorwire.actors.log as aw_log
import pytest
import structlog
from actorwire.actors.log import REDACTED, configure_logging, redact_secrets, redact_text
from hypothesis import assume, given
from hypothesis import strategies as st

SECRET = "zq-secret-7d1f0c"
"""A value no output may contain."""


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


# -- the text scrubber -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"KeySession(api_key='{SECRET}', url='h:1')",
            "KeySession(api_key='[redacted]', url='h:1')",
        ),
        (f"GET /x?api_key={SECRET}&page=2", "GET /x?api_key=[redacted]&page=2"),
        (f"token = {SECRET}", "token = [redacted]"),
        (f"{{'password': '{SECRET}', 'user': 'bob'}}", "{'password': '[redacted]', 'user': 'bob'}"),
        (f'{{"client_secret": "{SECRET}", "n": 1}}', '{"client_secret": "[redacted]", "n": 1}'),
        (f"Authorization: Bearer {SECRET}", "Authorization: Bearer [redacted]"),
        (f"sent with bearer {SECRET}.x-y", "sent with bearer [redacted]"),
        (f"X-Api-Key: {SECRET}", "X-Api-Key: [redacted]"),
        (f"apiKey={SECRET} accessToken: {SECRET}", "apiKey=[redacted] accessToken: [redacted]"),
        (
            f'application_name: "demo"\napi_key: "{SECRET}"',
            'application_name: "demo"\napi_key: "[redacted]"',
        ),
        (
            f"[('x-api-key', '{SECRET}'), ('user', 'bob')]",
            "[('x-api-key', '[redacted]'), ('user', 'bob')]",
        ),
        (f"nats://bob:{SECRET}@127.0.0.1:4222", "nats://bob:[redacted]@127.0.0.1:4222"),
        (f"passphrase=b'{SECRET}'", "passphrase=b'[redacted]'"),
        (f"api_key='{SECRET}", "api_key='[redacted]"),  # cut off mid-value
        # A repr of a repr: the quotes arrive escaped.
        (f"error='ValueError(\\'api_key=\\\\\\'{SECRET}\\\\\\'\\')'", None),
        (f'\\"token\\": \\"{SECRET}\\"', '\\"token\\": \\"[redacted]\\"'),
    ],
)
def test_redact_text_removes_secrets_written_as_values(text: str, expected: str | None) -> None:
    out = redact_text(text)
    assert SECRET not in out
    assert REDACTED in out
    if expected is not None:
        assert out == expected
    assert redact_text(out) == out  # idempotent: redacting twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "key_by=symbol tokens=3 token_count=4 monkey=1",
        "if key == 'AAPL': return",
        "KeyError: 'symbol'",
        "api_key=''",
        "registration refused for application 'demo'",
        "https://example.com:8443/path",
    ],
)
def test_redact_text_leaves_ordinary_text_alone(text: str) -> None:
    assert redact_text(text) == text


@given(
    secret=st.text(st.characters(blacklist_categories=("Cs",)), min_size=8, max_size=40),
    name=st.sampled_from(["api_key", "password", "token", "X-Api-Key", "clientSecret"]),
)
def test_any_secret_value_is_removed_from_reprs_and_json(secret: str, name: str) -> None:
    assume(secret not in name and secret.strip() == secret and secret not in REDACTED)
    for text in (
        f"Session({name}={secret!r})",
        repr({name: secret}),
        json.dumps({name: secret}),
        repr(repr({name: secret})),  # a repr inside an exception message inside a repr
        json.dumps({"error": repr(RuntimeError(f"{name}={secret!r}"))}),
    ):
        out = redact_text(text)
        assert secret not in out, (text, out)
        assert redact_text(out) == out


def test_string_values_and_reprs_in_events_are_scrubbed() -> None:
    class Config:
        def __repr__(self) -> str:
            return f"Config(url='h:1', api_key='{SECRET}')"

    event = redact_secrets(
        None,
        "info",
        {
            "event": f"connect with token={SECRET}",
            "error": repr(RuntimeError(f"bad password={SECRET}")),
            "config": Config(),
            "nested": {"note": [f"Bearer {SECRET}"]},
            "count": 3,
        },
    )
    assert SECRET not in repr(event)
    assert event["count"] == 3
    assert event["config"] == "Config(url='h:1', api_key='[redacted]')"


# -- exceptions in both formats ----------------------------------------------------------------


def _fail_with_a_secret_in_a_local() -> None:
    api_key = SECRET
    credentials = {"application": "demo", "api_key": api_key}
    try:
        raise ConnectionError(f"cannot register {credentials!r}")
    except ConnectionError as exc:
        raise RuntimeError(f"session failed: {exc!r}") from exc


def _log_a_failure(format: str) -> str:
    buffer = io.StringIO()
    configure_logging(format=format, level="debug", stream=buffer)  # type: ignore[arg-type]
    log = structlog.get_logger("test")
    try:
        _fail_with_a_secret_in_a_local()
    except RuntimeError:
        log.exception("start failed", detail=f"api_key={SECRET}")
    return buffer.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_console_tracebacks_show_no_locals_even_with_rich_installed() -> None:
    pytest.importorskip("rich")  # with rich, structlog's default traceback prints locals
    output = _log_a_failure("console")
    assert "Traceback (most recent call last)" in output
    assert "_fail_with_a_secret_in_a_local" in output
    assert "The above exception was the direct cause" in output  # chained causes are kept
    assert "locals" not in output
    assert SECRET not in output


@pytest.mark.usefixtures("restore_logging")
def test_json_exception_text_is_redacted() -> None:
    output = _log_a_failure("json")
    assert SECRET not in output
    [event] = [json.loads(line) for line in output.splitlines()]
    assert "ConnectionError" in event["exception"]
    assert "RuntimeError: session failed" in event["exception"]
    assert "'api_key': '[redacted]'" in event["exception"]
    assert event["detail"] == "api_key=[redacted]"


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("format", ["console", "json"])
def test_stdlib_log_lines_and_tracebacks_are_redacted(format: str) -> None:
    buffer = io.StringIO()
    configure_logging(format=format, level="info", stream=buffer)  # type: ignore[arg-type]
    logger = logging.getLogger("some.library")
    logger.warning("dialling with token=%s", SECRET)
    try:
        _fail_with_a_secret_in_a_local()
    except RuntimeError:
        logger.exception("it failed")
    output = buffer.getvalue()
    assert "dialling with token=[redacted]" in output
    assert "RuntimeError: session failed" in output
    assert SECRET not in output


# -- without configure_logging -----------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_the_library_default_is_warnings_and_above_on_stderr() -> None:
    done = _python(
        f"""
        import structlog
        import actorwire.actors  # installs the default
        log = structlog.get_logger("lib")
        log.debug("debug line")
        log.info("info line")
        log.warning("warning line", api_key={SECRET!r})
        log.error("error line", error="password={SECRET}")
        def fail():
            secret_local = {SECRET!r}
            raise ValueError("boom")
        try:
            fail()
        except ValueError:
            log.exception("exception line")
        """
    )
    assert done.stdout == ""
    assert "debug line" not in done.stderr
    assert "info line" not in done.stderr
    assert "warning line" in done.stderr
    assert "error line" in done.stderr
    assert "ValueError: boom" in done.stderr
    assert "secret_local" not in done.stderr  # no locals in the default traceback either
    assert SECRET not in done.stderr


def test_an_application_configuration_is_kept_with_redaction_added() -> None:
    done = _python(
        f"""
        import logging, sys
        import structlog
        structlog.configure(
            processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
            logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        )
        import actorwire.actors
        log = structlog.get_logger("app")
        log.debug("debug line", token={SECRET!r}, note="token={SECRET}")
        """
    )
    assert done.stdout.strip() == "event='debug line' token='[redacted]' note='token=[redacted]'"
    assert SECRET not in done.stderr


@pytest.mark.usefixtures("restore_logging")
def test_installing_the_default_twice_adds_redaction_once() -> None:
    structlog.reset_defaults()
    aw_log._install_default_redaction()
    aw_log._install_default_redaction()
    processors: list[Any] = list(structlog.get_config()["processors"])
    assert processors.count(redact_secrets) == 1
