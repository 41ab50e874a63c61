"""What the smarkets adapter adds to pipelines: the embedded exchange as a server kind
(``[servers.x] kind = "smarkets"`` in a definition, ``actorwire serve smarkets``)."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...pipelines.plugins import Plugin, ServerKind, run_server
from .config import ExchangeConfig, load_config, parse_config
from .server import DEFAULT_PORT, ExchangeServer, serve

__all__ = ["EmbeddedExchange", "plugin", "serve_command"]


class EmbeddedExchange:
    """A definition's ``[servers.<name>] kind = "smarkets"``: its config, port and store."""

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
        self.config: ExchangeConfig
        if isinstance(config, str):
            path = Path(config)
            self.config = load_config(path if path.is_absolute() else base_dir / path)
        elif config is not None:
            self.config = parse_config(dict(config), "config")
        else:
            self.config = load_config(None)
        self.store: Path | None = None
        if store:
            stored = Path(store)
            self.store = stored if stored.is_absolute() else base_dir / stored
        self.server: ExchangeServer | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def credentials(self, data_type: str, verb: str) -> tuple[str, str]:
        """The first account of the config (the exchange grants every account everything)."""
        if not self.config.accounts:
            raise ValueError("the exchange's config has no account; give username and password")
        account = self.config.accounts[0]
        return account.username, account.password

    def start(self) -> None:
        self.server = serve(self.host, self.port, self.config, store_path=self.store)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def serve_command(args: argparse.Namespace, stop: threading.Event) -> int:
    """Run the embedded exchange until ``stop`` is set."""
    return run_server(
        args,
        stop,
        kind="smarkets",
        what="smarkets exchange",
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
        "smarkets",
        servers={
            "smarkets": ServerKind(
                "smarkets", DEFAULT_PORT, _check_config, EmbeddedExchange, serve_command
            )
        },
    )
