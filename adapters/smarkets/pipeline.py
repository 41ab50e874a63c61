"""What the smarkets adapter adds to pipelines: the embedded exchange as a server kind
(``[servers.x] kind = "smarkets"`` in a definition, ``actorwire serve smarkets``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...pipelines.plugins import EmbeddedKind, Plugin, RunningServer, server_kind
from .config import ExchangeConfig, load_config, parse_config
from .server import DEFAULT_PORT, serve

__all__ = ["EmbeddedExchange", "plugin"]


class EmbeddedExchange(EmbeddedKind):
    """A definition's ``[servers.<name>] kind = "smarkets"``: its config, port and store."""

    config: ExchangeConfig
    load = staticmethod(load_config)

    @staticmethod
    def parse(table: dict[str, Any], where: str, base_dir: Path | None) -> ExchangeConfig:
        return parse_config(table, where)

    def open(self) -> RunningServer:
        return serve(self.host, self.port, self.config, store_path=self.store)

    def credentials(self, data_type: str, verb: str) -> tuple[str, str]:
        """The first account of the config (the exchange grants every account everything)."""
        if not self.config.accounts:
            raise ValueError("the exchange's config has no account; give username and password")
        account = self.config.accounts[0]
        return account.username, account.password


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point)."""
    return Plugin(
        "smarkets",
        servers={
            "smarkets": server_kind(
                "smarkets",
                "smarkets exchange",
                DEFAULT_PORT,
                EmbeddedExchange,
                lambda host, port, config, store, cert, key: serve(
                    host, port, config, store_path=store, certfile=cert, keyfile=key
                ),
            )
        },
    )
