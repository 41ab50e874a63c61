"""What the keysquare source and sink share: opening a session and reporting its state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..adapters.keysquare import KeySession, KeySessionState

if TYPE_CHECKING:
    from .stage import StageContext

__all__ = ["LINK_STATE", "check_credentials", "close_session", "open_session"]

LINK_STATE = {
    KeySessionState.CONNECTED: "CONNECTED",
    KeySessionState.DISCONNECTED: "RECONNECTING",
    KeySessionState.REGISTRATION_FAILED: "FAILED",
    KeySessionState.SCHEMA_DOWNLOAD_FAILED: "FAILED",
    KeySessionState.ERROR: "FAILED",
}
"""A KeySession state as the LinkState name health checks use (others: CONNECTING)."""


def check_credentials(owner: str, url: str, application_name: str, api_key: str) -> None:
    """Raise at definition time for a malformed url or empty credentials (never echoing
    the key)."""
    host, sep, port = str(url).rpartition(":")
    if not isinstance(url, str) or not sep or not host or not port.isdigit():
        raise ValueError(f"{owner}: url must be 'host:port', got {url!r}")
    if not isinstance(application_name, str) or not application_name:
        raise ValueError(f"{owner}: application_name must be a non-empty string")
    if not isinstance(api_key, str) or not api_key:
        raise ValueError(f"{owner}: api_key must be a non-empty string")


def open_session(
    ctx: StageContext, url: str, application_name: str, api_key: str, timeout: float
) -> KeySession:
    """A started KeySession on the stage's own actor system; its state goes to ``ctx``."""

    def listener(state: KeySessionState, _message: str) -> None:
        ctx.set_link_state(LINK_STATE.get(state, "CONNECTING"))

    return KeySession(
        application_name,
        api_key,
        url,
        session_state_listener=listener,
        timeout=max(1, round(timeout)),
        system=ctx.system,
    )


def close_session(ctx: StageContext, session: KeySession | None) -> None:
    """Stop a session; the link then counts as CLOSED."""
    if session is None:
        return
    session.stop()
    ctx.set_link_state("CLOSED")
