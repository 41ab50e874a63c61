"""What the streamsea adapter adds to pipelines: the embedded stream-sea server as a server kind
(``[servers.x] kind = "streamsea"`` in a definition, ``actorwire serve streamsea``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...pipelines.plugins import EmbeddedKind, Plugin, RunningServer, server_kind
from .config import StreamSeaConfig, load_config, parse_config
from .server import DEFAULT_PORT, serve

__all__ = ["EmbeddedStreamSea", "plugin"]


class EmbeddedStreamSea(EmbeddedKind):
    """A definition's ``[servers.<name>] kind = "streamsea"``: its config (a path, relative to
    the definition, or an inline table), port and store."""

    config: StreamSeaConfig
    load = staticmethod(load_config)

    @staticmethod
    def parse(table: dict[str, Any], where: str, base_dir: Path | None) -> StreamSeaConfig:
        return parse_config(table, where, base_dir)

    def open(self) -> RunningServer:
        return serve(self.host, self.port, self.config, store_path=self.store)

    def credentials(self, data_type: str = "", verb: str = "") -> tuple[str, str]:
        """``(client_id, secret)`` of the config's first client (every client may publish,
        define and subscribe to every stream)."""
        if not self.config.clients:
            raise ValueError(
                "the stream-sea server's config has no client; give client_id and secret"
            )
        client = self.config.clients[0]
        return client.id, client.secret


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point)."""
    return Plugin(
        "streamsea",
        servers={
            "streamsea": server_kind(
                "streamsea",
                "stream-sea server",
                DEFAULT_PORT,
                EmbeddedStreamSea,
                lambda host, port, config, store, cert, key: serve(
                    host, port, config, store_path=store, certfile=cert, keyfile=key
                ),
            )
        },
    )
