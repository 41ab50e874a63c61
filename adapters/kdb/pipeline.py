"""What the kdb adapter adds to pipelines: the embedded Service Gateway as a server kind
(``[servers.x] kind = "kdb"`` in a definition, ``actorwire serve kdb``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...pipelines.plugins import EmbeddedKind, Plugin, RunningServer, server_kind
from .config import GatewayConfig, load_config, parse_config
from .server import DEFAULT_PORT, serve

__all__ = ["EmbeddedGateway", "plugin"]


class EmbeddedGateway(EmbeddedKind):
    """A definition's ``[servers.<name>] kind = "kdb"``: its config (a path, relative to the
    definition, or an inline table) and port. The gateway keeps no store."""

    config: GatewayConfig
    load = staticmethod(load_config)

    @staticmethod
    def parse(table: dict[str, Any], where: str, base_dir: Path | None) -> GatewayConfig:
        return parse_config(table, where)

    def open(self) -> RunningServer:
        return serve(self.host, self.port, self.config)

    def credentials(self, data_type: str = "", verb: str = "") -> tuple[str, str]:
        """``("", token)``: the config's first bearer token (every token may snap and
        subscribe to every topic); ``("", "")`` when auth is off and there is no token."""
        if self.config.tokens:
            return "", self.config.tokens[0]
        if not self.config.auth:
            return "", ""
        raise ValueError("the kdb gateway's config has no token; give the token")


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point)."""
    return Plugin(
        "kdb",
        servers={
            "kdb": server_kind(
                "kdb",
                "kdb Insights gateway",
                DEFAULT_PORT,
                EmbeddedGateway,
                lambda host, port, config, store, cert, key: serve(
                    host, port, config, certfile=cert, keyfile=key
                ),
            )
        },
    )
