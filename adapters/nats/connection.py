"""One supervised NATS connection of a pipeline stage, on the actor system's I/O loop.

nats-py keeps the connection itself: it redials for ever (``max_reconnect_attempts=-1``)
every ``reconnect_wait`` seconds, pings every ``ping_interval`` seconds and drops a server
that leaves ``max_outstanding_pings`` pings unanswered (the heartbeat), and resubscribes
core subscriptions after a reconnect. This shell reports each change as the link states
the rest of actorwire uses (CONNECTING, CONNECTED, RECONNECTING, CLOSED), so that it shows
in ``/healthz`` and ``/metrics``, counts reconnects, and logs every error with the server's
address. The first connection is made in the background too: a stage whose server is not
up yet starts RECONNECTING and delivers once it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import structlog
from nats.aio.client import Client

__all__ = ["NatsConnection", "check_url"]

log = structlog.get_logger("actorwire.nats")


def check_url(owner: str, url: object) -> str:
    """``url`` as a NATS server URL (``nats://host:port``; ``host:port`` is taken too);
    ValueError naming it otherwise."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"{owner}: url must be a NATS server URL (nats://host:port), got {url!r}")
    text = url if "://" in url else f"nats://{url}"
    scheme, _, rest = text.partition("://")
    host, sep, port = rest.rpartition(":")
    if scheme not in ("nats", "tls") or not sep or not host or not port.isdigit():
        raise ValueError(f"{owner}: url must be a NATS server URL (nats://host:port), got {url!r}")
    return text


class NatsConnection:
    """A nats-py client for one stage (see the module's docstring). ``on_state(name)``
    hears every link state change (a LinkState name); ``on_connected()`` runs on the I/O
    loop after each (re)connection, for what must be redone then."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        url: str,
        name: str,
        *,
        on_state: Callable[[str], None],
        ping_interval: float = 2.0,
        max_outstanding_pings: int = 3,
        reconnect_wait: float = 0.2,
        connect_timeout: float = 2.0,
        on_connected: Callable[[], Any] | None = None,
    ) -> None:
        self.loop = loop
        self.url = url
        self.name = name
        self._on_state = on_state
        self._on_connected = on_connected
        self._ping_interval = ping_interval
        self._max_outstanding_pings = max_outstanding_pings
        self._reconnect_wait = reconnect_wait
        self._connect_timeout = connect_timeout
        self.nc: Client | None = None
        self.state = "CONNECTING"
        self.reconnects = 0
        self.errors = 0
        self.ready = threading.Event()
        """Set while connected (from any thread)."""
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._connected = asyncio.Event()  # on the loop only

    def __repr__(self) -> str:
        return f"<NatsConnection {self.url} {self.state}>"

    # -- on the I/O loop ---------------------------------------------------------------

    def start(self) -> None:
        """Start connecting (call on the I/O loop)."""
        self._set("CONNECTING")
        self._task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        nc = Client()
        self.nc = nc
        try:
            await nc.connect(
                servers=[self.url],
                name=self.name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                error_cb=self._error,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
                closed_cb=self._closed_cb,
                # nats-py annotates these as int; it sleeps on them: fractions work.
                ping_interval=self._ping_interval,  # type: ignore[arg-type]
                max_outstanding_pings=self._max_outstanding_pings,
                reconnect_time_wait=self._reconnect_wait,  # type: ignore[arg-type]
                connect_timeout=max(int(self._connect_timeout), 1),
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - nats-py retries for ever; this is the end
            log.error("nats connection failed", url=self.url, stage=self.name, error=repr(exc))
            self._set("FAILED")
            return
        await self._up(first=True)

    async def _up(self, *, first: bool) -> None:
        if self._closed:
            return
        if not first:
            self.reconnects += 1
        self._set("CONNECTED")
        self._connected.set()
        self.ready.set()
        if self._on_connected is not None:
            try:
                result = self._on_connected()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - logged; the stage's own task retries
                self.errors += 1
                log.error(
                    "nats on_connected failed", url=self.url, stage=self.name, error=repr(exc)
                )

    async def _error(self, exc: Exception) -> None:
        self.errors += 1
        if self.state == "CONNECTED":
            log.warning("nats error", url=self.url, stage=self.name, error=repr(exc))
        else:
            log.debug("nats connect attempt failed", url=self.url, stage=self.name, error=repr(exc))
        if self.state == "CONNECTING":
            self._set("RECONNECTING")

    async def _disconnected(self) -> None:
        self._connected.clear()
        self.ready.clear()
        if not self._closed:
            log.warning("nats connection lost", url=self.url, stage=self.name)
            self._set("RECONNECTING")

    async def _reconnected(self) -> None:
        log.info("nats connection back", url=self.url, stage=self.name)
        await self._up(first=False)

    async def _closed_cb(self) -> None:
        self._connected.clear()
        self.ready.clear()
        self._set("CLOSED")

    def _set(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._on_state(state)

    async def wait_connected(self) -> Client:
        """The client once connected (on the loop)."""
        await self._connected.wait()
        assert self.nc is not None
        return self.nc

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def close(self) -> None:
        """Flush what is buffered and close (on the loop); idempotent."""
        self._closed = True
        task = self._task
        nc = self.nc
        if task is not None and not task.done():
            task.cancel()
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):  # closing: best effort
                if nc.is_connected:
                    await asyncio.wait_for(nc.flush(), 2.0)
            with contextlib.suppress(Exception):  # closing: best effort
                await asyncio.wait_for(nc.close(), 5.0)
        self._set("CLOSED")
