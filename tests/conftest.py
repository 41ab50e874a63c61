"""Suite-wide settings and fixtures.

Hypothesis runs without per-example deadlines: a per-example deadline measures wall time,
which swings on a loaded 2-core machine; pytest-timeout already bounds every test.
"""

import io
import logging
from collections.abc import Iterator

import actorwire.actors.log as aw_log
import pytest
import structlog
from actorwire.actors import configure_logging
from hypothesis import settings

settings.register_profile("actorwire", deadline=None)
settings.load_profile("actorwire")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log event as JSON in a buffer (for actors and clients made after it); the
    logging set-up is restored afterwards."""
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    configure_logging(format="json", level="debug", stream=out)
    try:
        yield out
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        structlog.reset_defaults()
        aw_log._install_default_redaction()
