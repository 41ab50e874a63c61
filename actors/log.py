"""Structured logging for actorwire: structlog, console or JSON, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

__all__ = ["REDACTED", "configure_logging", "is_secret_key", "redact_secrets"]

REDACTED = "[redacted]"

_SECRET_NAME = re.compile(
    r"^(?:.*[_\-.])?(?:api[_\-]?key|key|password|passwd|passphrase|secret|token|"
    r"credentials?|authorization|signature_key|hmac)$",
    re.IGNORECASE,
)


def is_secret_key(name: str) -> bool:
    """True for field names that hold secrets: api_key, password, secret, token, key, ..."""
    return bool(_SECRET_NAME.match(name))


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, depth + 1) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of every secret-named key, nested too."""
    for k in list(event_dict):
        v = event_dict[k]
        if is_secret_key(k):
            event_dict[k] = REDACTED
        elif isinstance(v, Mapping | list | tuple):
            event_dict[k] = _scrub(v)
    return event_dict


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
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
        structlog.processors.format_exc_info if format == "json" else _identity,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _identity(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return event_dict


def _install_default_redaction() -> None:
    """Without configure_logging, structlog's defaults still redact and go to stderr.

    If the application configured structlog first, only the redaction processor is added
    (before the renderer): secrets must not reach any output.
    """
    config = structlog.get_config()
    processors = list(config["processors"])
    if redact_secrets in processors:
        return
    processors.insert(max(len(processors) - 1, 0), redact_secrets)
    if structlog.is_configured():
        structlog.configure(processors=processors)
    else:
        structlog.configure(
            processors=processors, logger_factory=structlog.PrintLoggerFactory(sys.stderr)
        )


_install_default_redaction()
