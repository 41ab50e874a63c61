"""What the streamsea adapter adds to pipelines: the embedded stream-sea server as a server kind
(``[servers.x] kind = "streamsea"`` in a definition, ``actorwire serve streamsea``)."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...pipelines.plugins import Plugin, ServerKind, run_server
from .config import StreamSeaConfig, load_config, parse_config
from .server import DEFAULT_PORT, StreamSeaServer, serve

__all__ = ["EmbeddedStreamSea", "plugin", "serve_command"]


class EmbeddedStreamSea:
    """A definition's ``[servers.<name>] kind = "streamsea"``: its config (a path, relative to
    the definition, or an inline table), port and store."""

    def __init__(
        self,
        host: str,
        port: int,
        config: str | Mapping[str, Any] | None,
        store: str | None,
        base_dir: Path,
    ) -> None:
        self.host = host
        self.port = port
        self.config: StreamSeaConfig
        if isinstance(config, str):
            path = Path(config)
            self.config = load_config(path if path.is_absolute() else base_dir / path)
        elif config is not None:
            self.config = parse_config(dict(config), "config", base_dir)
        else:
            self.config = load_config(None)
        self.store: Path | None = None
        if store:
            stored = Path(store)
            self.store = stored if stored.is_absolute() else base_dir / stored
        self.server: StreamSeaServer | None = None

    @property
    def url(self) -> str:
        """``host:port`` (the HTTP API and the websocket share it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def credentials(self, data_type: str = "", verb: str = "") -> tuple[str, str]:
        """``(client_id, secret)`` of the config's first client (every client may publish,
        define and subscribe to every stream)."""
        if not self.config.clients:
            raise ValueError(
                "the stream-sea server's config has no client; give client_id and secret"
            )
        client = self.config.clients[0]
        return client.id, client.secret

    def start(self) -> None:
        self.server = serve(self.host, self.port, self.config, store_path=self.store)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def serve_command(args: argparse.Namespace, stop: threading.Event) -> int:
    """Run the embedded stream-sea server until ``stop`` is set."""
    return run_server(
        args,
        stop,
        kind="streamsea",
        what="stream-sea server",
        default_port=DEFAULT_PORT,
        load_config=load_config,
        start=lambda host, port, config, store, cert, key: serve(
            host, port, config, store_path=store, certfile=cert, keyfile=key
        ),
    )


def _check_config(table: Mapping[str, Any], where: str) -> None:
    parse_config(dict(table), where)


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point)."""
    return Plugin(
        "streamsea",
        servers={
            "streamsea": ServerKind(
                "streamsea", DEFAULT_PORT, _check_config, EmbeddedStreamSea, serve_command
            )
        },
    )
