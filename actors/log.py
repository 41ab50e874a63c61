"""Structured logging for actorwire: structlog, console or JSON, secrets redacted.

Two layers keep secrets out of every output. Fields with a secret name (``api_key``,
``password``, ``token``, ...) are replaced wherever they sit in an event. Rendered text (string
values, exception messages and tracebacks, stdlib log lines) passes :func:`redact_text`, which
removes a secret written as a plain value: ``api_key='...'``, ``"token": "..."``,
``Authorization: Bearer ...``, ``https://user:password@host``. Tracebacks never show local
variables.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from io import StringIO
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import ExcInfo

__all__ = [
    "REDACTED",
    "RedactingFormatter",
    "configure_logging",
    "is_secret_key",
    "redact_secrets",
    "redact_text",
    "redacted_traceback",
]

REDACTED = "[redacted]"

_SECRET_WORDS = (
    r"api[_\-]?key|key|password|passwd|passphrase|secret|token|credentials?|authorization|"
    r"signature_key|hmac"
)
_SECRET_NAME = re.compile(rf"^(?:.*[_\-.])?(?:{_SECRET_WORDS})$", re.IGNORECASE)


def is_secret_key(name: str) -> bool:
    """True for field names that hold secrets: api_key, password, secret, token, key, ..."""
    return bool(_SECRET_NAME.match(name))


# -- secrets written into text ---------------------------------------------------------------

# A secret name inside text: a whole word, with the separated (x-api-key, client_secret) and
# camelCase (apiKey, clientSecret) prefixes that is_secret_key's names have.
_NAME_IN_TEXT = (
    r"(?<![A-Za-z0-9_.\-])"
    r"(?:[A-Za-z0-9_.\-]{0,64}[_.\-]|[A-Za-z0-9_.\-]{0,64}[a-z0-9](?=[A-Z]))?"
    rf"(?i:{_SECRET_WORDS})"
    r"(?![A-Za-z0-9])"
)
# The value after it: quoted (also with a bytes/str prefix, or escaped quotes as in a repr of
# a repr), else a bare run up to a delimiter.
_VALUE_IN_TEXT = (
    r"(?!\\{0,16}[\"']?\[redacted\](?:\\{0,16}[\"'])?(?![^\s,;&'\"\\)}\]>]))"  # done before
    r"(?:[rRbBuU]{0,2}\"(?:[^\"\\\n]|\\.)*\""
    r"|[rRbBuU]{0,2}'(?:[^'\\\n]|\\.)*'"
    # Escaped quotes close only with the same number of backslashes (a deeper escape is text).
    r"|(?P<bs1>\\{1,16})\"(?:(?!(?<!\\)(?P=bs1)\").)*(?<!\\)(?P=bs1)\""
    r"|(?P<bs2>\\{1,16})'(?:(?!(?<!\\)(?P=bs2)').)*(?<!\\)(?P=bs2)'"
    # A quote that closes nowhere (cut off, or escaped past recognition): the rest of the line.
    r"|\\{0,16}[\"'][^\n]*"
    r"|[^\s,;&'\"\\)}\]>]+)"
)
_PAIR = re.compile(
    # name=value, name: value, 'name': 'value', "name": "value", ('name', 'value'),
    # protobuf text (name: "value") and HTTP headers (Authorization: Bearer value).
    r"(?P<head>(?:(?P<pair>\(\s*)|)(?P<nq>\\{0,16}[\"'])?"
    + _NAME_IN_TEXT
    + r"(?(nq)(?P=nq))"
    + r"(?:\s*(?:=(?!=)|:(?!:))|(?(pair)\s*,|(?!)))\s*"
    # An auth scheme before the value stays (and is never taken for the value itself).
    + r"(?:(?P<scheme>(?i:bearer|basic|digest|token)\s+)|(?!(?i:bearer|basic|digest|token)\s)))"
    + r"(?P<value>"
    + _VALUE_IN_TEXT
    + r")",
)
_BEARER = re.compile(r"(?P<head>\b(?i:bearer)\s+)(?P<value>(?!\[redacted\])[A-Za-z0-9\-._~+/]+=*)")
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s:/@'\"]+:)(?P<value>[^\s@/'\"]+)(?=@)"
)
_QUOTE_LEAD = re.compile(r"[rRbBuU]{0,2}(\\{0,16}[\"'])")


def _replace_value(match: re.Match[str]) -> str:
    head = match.group("head") or ""
    value = match.group("value")
    lead = _QUOTE_LEAD.match(value)
    if lead is None:
        return head + REDACTED
    quote = lead.group(1)
    inner = value[lead.end() :]
    body = inner[: -len(quote)]
    escapes = len(body) - len(body.rstrip("\\"))
    # Closed when the same quote ends it, not escaped itself (an even run of backslashes
    # before a bare quote; none before an escaped one).
    closed = inner.endswith(quote) and (escapes % 2 == 0 if len(quote) == 1 else escapes == 0)
    if closed and not body:
        return match.group(0)  # an empty string holds no secret
    return head + lead.group(0) + REDACTED + (quote if closed else "")


def redact_text(text: str) -> str:
    """``text`` with every secret written as a value replaced by ``[redacted]``.

    Catches ``name=value``, ``name: value``, ``'name': 'value'`` and ``"name": "value"`` (any
    quoting, escaped or not) for every name :func:`is_secret_key` calls secret (also in
    camelCase and with prefixes: ``apiKey``, ``X-Api-Key``), ``('name', 'value')`` pairs,
    ``Bearer <token>`` and the password in ``scheme://user:password@host``.
    """
    text = _PAIR.sub(_replace_value, text)
    text = _BEARER.sub(_replace_value, text)
    return _URL_PASSWORD.sub(_replace_value, text)


def redacted_traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    """A ConsoleRenderer ``exception_formatter``: the plain traceback (no local variables;
    chained causes included), passed through :func:`redact_text`."""
    sio.write("\n" + redact_text(_format_exception(exc_info)))


def _format_exception(exc_info: ExcInfo) -> str:
    out = StringIO()
    traceback.print_exception(exc_info[0], exc_info[1], exc_info[2], file=out)
    return out.getvalue().rstrip("\n")


# -- secrets in events -----------------------------------------------------------------------

_PLAIN = (int, float, bool, type(None))


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PLAIN) or depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if type(value) in (list, tuple):
        return type(value)(_scrub(v, depth + 1) for v in value)
    # Renderers show any other object as its repr: replace it only when that leaks.
    try:
        shown = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break logging
        return value
    scrubbed = redact_text(shown)
    return value if scrubbed == shown else scrubbed


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of every secret-named key, nested too, and
    every secret written into a string value (messages, ``exception`` text) or a repr."""
    for k in list(event_dict):
        if is_secret_key(k):
            event_dict[k] = REDACTED
        elif k != "exc_info":
            event_dict[k] = _scrub(event_dict[k])
    return event_dict


class RedactingFormatter(logging.Formatter):
    """A stdlib ``logging.Formatter`` whose whole output (message, traceback) passes
    :func:`redact_text`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))

    def formatException(self, ei: Any) -> str:
        # The stdlib caches this text on the record, where other handlers read it.
        return redact_text(super().formatException(ei))


def configure_logging(
    format: Literal["console", "json"] = "console",
    level: str | int = "info",
    stream: TextIO | None = None,
) -> None:
    """Set up structlog (and the stdlib root logger) for console or JSON output.

    Every event passes the redaction processor, so secrets never reach the output.
    """
    if format not in ("console", "json"):
        raise ValueError(f"configure_logging format must be 'console' or 'json', got {format!r}")
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ValueError(f"configure_logging level must be a logging level, got {level!r}")
        level = numeric
    out = stream if stream is not None else sys.stderr
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if format == "json":
        # The traceback becomes the ``exception`` string first, so that redaction sees it.
        processors += [
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ]
    else:
        processors += [redact_secrets, _console_renderer(colors=False)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _console_renderer(colors: bool) -> structlog.dev.ConsoleRenderer:
    # Never structlog's default formatter: with rich or better_exceptions installed it prints
    # every frame's local variables, credentials included.
    return structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=redacted_traceback)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _install_default_redaction() -> None:
    """Without configure_logging, follow library convention: warnings and errors only, on
    stderr, redacted, tracebacks without local variables.

    If the application configured structlog first, its configuration stays; only the
    redaction processor is added (before the renderer): secrets must not reach any output.
    """
    if structlog.is_configured():
        processors = list(structlog.get_config()["processors"])
        if redact_secrets not in processors:
            processors.insert(max(len(processors) - 1, 0), redact_secrets)
            structlog.configure(processors=processors)
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.StackInfoRenderer(),
            structlog.dev.set_exc_info,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            redact_secrets,
            _console_renderer(colors=_is_terminal(sys.stderr)),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


_install_default_redaction()
