"""GatewayClient through the gateway's faults, over real sockets on 127.0.0.1, for each wire
protocol (json and qipc; qipc is skipped, saying why, where pykx or the client's qipc is
missing). A subscriber keeps its own
view of the keyed topic ``trade``: rows by key, each update upserted, and a resync's
snapshot (the first update after a reconnect) replacing the whole view. After every fault
the view must equal the gateway's table, and request ids must never go back.

- The gateway ``kill()``ed five times while rows are upserted continuously; the gateway
  saw every id of a connection above every id of the connection before it.
- ``actorwire serve kdb`` SIGKILLed and restarted five times on one port, each time with
  other starting rows: each resync replaces the view with the new process's table.
- Silence past the heartbeat deadline, garbage, a wrong token (one attempt, FAILED, the
  token in no text), a token refused after a restart, and through a TCP proxy: cuts (FIN,
  RST), a black hole, and a half-open connection the gateway keeps until its ping timeout.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import structlog
from actorwire.actors import Backoff
from actorwire.actors.link import LinkState
from actorwire.adapters.kdb.client import GatewayClient, Subscription
from actorwire.adapters.kdb.config import GatewayConfig, parse_config
from actorwire.adapters.kdb.protocol import Send, Snap, Subscribe
from actorwire.adapters.kdb.server import GatewayServer

from tests.integration.test_streamsea_faults import Proxy, free_port
from tests.support.waiting import wait_until

WAIT = 15.0
TOKEN = "kdb-fault-token-5b1e"
TOPIC = "trade"
KEY = "ccyPair"
COLUMNS = (KEY, "val")
ROWS = [
    {"ccyPair": "EUR/USD", "val": 1.0842},
    {"ccyPair": "GBP/USD", "val": 1.2671},
    {"ccyPair": "USD/JPY", "val": 151.37},
]
FILTER = {"ccyPair": ["EUR/USD", "K03", "K07", "K11"]}
"""A subTopic: the rows of a few keys (the upserter writes K00..K39)."""
FAST: dict[str, Any] = {
    "heartbeat_interval": 0.2,
    "heartbeat_deadline": 1.0,
    "connect_timeout": 5.0,
    "backoff": Backoff(min=0.05, max=0.3, factor=2.0, jitter=0.2),
}
PROTOCOLS = ["json", "qipc"]


# -- helpers ----------------------------------------------------------------------------------


def config_doc(rows: Sequence[Mapping[str, Any]] = ROWS, **limits: float) -> dict[str, Any]:
    """A gateway config: one token, ``trade`` keyed by ccyPair, updates every 50 ms."""
    doc: dict[str, Any] = {
        "gateway": {"auth": True, "tokens": [TOKEN], "update_interval": 0.05},
        "topics": [
            {
                "name": TOPIC,
                "keys": {KEY: "symbol"},
                "values": {"val": "float"},
                "rows": [dict(row) for row in rows],
            }
        ],
    }
    if limits:
        doc["limits"] = dict(limits)
    return doc


def make_config(rows: Sequence[Mapping[str, Any]] = ROWS, **limits: float) -> GatewayConfig:
    return parse_config(config_doc(rows, **limits))


def make_client(url: str, protocol: str, token: str = TOKEN, **kw: Any) -> GatewayClient:
    """A client speaking ``protocol``; the test is skipped when that protocol is not built."""
    if protocol == "qipc":
        pytest.importorskip("pykx", reason="protocol='qipc' needs pykx, which is not importable")
    try:
        return GatewayClient(url, token, protocol=protocol, **kw)
    except (NotImplementedError, ImportError) as exc:
        pytest.skip(f"GatewayClient(protocol={protocol!r}) is not available: {exc}")


def _py(value: Any) -> Any:
    """A cell as a plain Python value. A qipc decoder may hand numpy scalars or bytes for
    symbols where JSON gives float and str: the views compare values, not dtypes."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of an update (or a snap) as dicts of plain values, columns as sent."""
    assert tuple(frame.columns) == COLUMNS, list(frame.columns)
    columns = list(frame.columns)
    return [
        {col: _py(cell) for col, cell in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame sorted by key: the one shape every comparison uses."""
    frame = pd.DataFrame([dict(r) for r in rows], columns=list(COLUMNS))
    return frame.sort_values(KEY, ignore_index=True)


def columns_rows(data: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """A column dict (a snapshot) as rows."""
    return [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]


def gateway_table(
    server: GatewayServer, sub_topic: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    return table(columns_rows(server.snapshot(TOPIC, sub_topic)))


class View:
    """A subscriber's own view of ``trade``: rows by key, each update upserted; the first
    update after a reconnect (``subscription.resynced``) is the new snapshot and replaces
    the view."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: dict[str, dict[str, Any]] = {}
        self.updates = 0
        self.resyncs = 0

    def seed(self, snapshot: pd.DataFrame) -> None:
        with self.lock:
            self.rows = {row[KEY]: row for row in records(snapshot)}

    def __call__(self, update: pd.DataFrame, sub: Subscription) -> None:
        rows = records(update)
        with self.lock:
            if sub.resynced:
                self.rows = {}
                self.resyncs += 1
            for row in rows:
                self.rows[row[KEY]] = row
            self.updates += 1

    def frame(self) -> pd.DataFrame:
        with self.lock:
            return table(list(self.rows.values()))


def settle(view: View, want: Callable[[], pd.DataFrame], what: str) -> None:
    """Wait until ``view`` equals ``want()``, then assert it (a diff when it never did)."""
    with contextlib.suppress(pytest.fail.Exception):
        wait_until(lambda: view.frame().equals(want()), WAIT, what=what)
    pd.testing.assert_frame_equal(view.frame(), want(), obj=what)


class Upserter:
    """Upserts one row at a time into the gateway's ``trade`` from a thread: keys K00..K39
    over and over, and every tenth row a new key; ``paused()`` holds it between two
    upserts, so the gateway's table stands still."""

    def __init__(self, server: GatewayServer, pace: float = 0.002) -> None:
        self.server = server
        self.pace = pace
        self.n = 0
        self.gate = threading.Lock()
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upserter", daemon=True)

    def __enter__(self) -> Upserter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self.gate:
                    n = self.n + 1
                    key = f"N{n:05d}" if n % 10 == 0 else f"K{n % 40:02d}"
                    self.server.upsert(TOPIC, [{KEY: key, "val": float(n)}])
                    self.n = n
                self._stop.wait(self.pace)  # an upsert rate, not a wait for anything
        except BaseException as exc:
            self.errors.append(exc)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self.gate:
            yield

    def wait_more(self, count: int, what: str) -> None:
        target = self.n + count
        wait_until(lambda: self.n >= target or self.errors, WAIT, what=what)
        assert not self.errors, self.errors

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the upserter did not stop"
        assert not self.errors, self.errors


class RecordingGateway(GatewayServer):
    """The embedded gateway, noting the ids of the requests each connection carried out."""

    def __init__(self, config: GatewayConfig, port: int = 0) -> None:
        super().__init__(config, port=port)
        self.ids: dict[object, list[int]] = {}  # session -> ids, sessions in order of use

    def _carry_out(self, session: Any, actions: list[Any], now: float) -> None:
        for action in actions:
            if type(action) is Snap or type(action) is Subscribe:
                mid = action.id
            elif type(action) is Send:
                mid = getattr(action.message, "id", None)
            else:
                continue
            if isinstance(mid, int):
                self.ids.setdefault(session, []).append(mid)
        super()._carry_out(session, actions, now)

    def id_runs(self) -> list[list[int]]:
        with self._lock:
            return [sorted(set(ids)) for ids in self.ids.values()]


@contextlib.contextmanager
def gateway(config: GatewayConfig | None = None) -> Iterator[RecordingGateway]:
    server = RecordingGateway(config or make_config())
    try:
        server.start()
        yield server
    finally:
        server.stop()


def grew(counter: Callable[[], int], before: int) -> Callable[[], bool]:
    return lambda: counter() > before


def resynced(sub: Subscription, view: View, count: int) -> Callable[[], bool]:
    """The subscription's ``count``-th resync reached its callback."""
    return lambda: sub.resyncs >= count and view.resyncs >= count


@pytest.fixture(autouse=True)
def no_thread_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fails the test when an exception escaped into any thread of the process."""
    escaped: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", escaped.append)
    yield escaped
    assert not escaped, [f"{e.thread}: {e.exc_type.__name__}: {e.exc_value}" for e in escaped]


# -- 1a. kill() x5 in process, with updates flowing -------------------------------------------

KILLS = 5


@pytest.mark.timeout(40)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_kills_with_updates_flowing_each_resync_equals_the_gateways_table(
    protocol: str,
) -> None:
    with gateway() as server:
        client = make_client(server.url, protocol, **FAST)
        with client, Upserter(server) as upserter:
            view, part = View(), View()
            sub = client.subscribe(TOPIC, callback=view)
            snapshot, part_sub = client.subsnap(TOPIC, FILTER, callback=part)
            part.seed(snapshot)
            next_ids = [client.stats()["next_id"]]
            for kill in range(1, KILLS + 1):
                updates = sub.updates
                upserter.wait_more(50, f"upserts before kill {kill}")
                wait_until(grew(lambda: sub.updates, updates), WAIT, what=f"updates {kill}")
                server.kill()
                wait_until(resynced(sub, view, kill), WAIT, what=f"resync {kill}")
                wait_until(resynced(part_sub, part, kill), WAIT, what=f"filtered resync {kill}")
                assert client.state is LinkState.CONNECTED
                with upserter.paused():
                    settle(view, lambda: gateway_table(server), f"the view after kill {kill}")
                    settle(
                        part,
                        lambda: gateway_table(server, FILTER),
                        f"the filtered view after kill {kill}",
                    )
                next_ids.append(client.stats()["next_id"])
            upserter.wait_more(50, "upserts after the last kill")
            upserter.stop()
            settle(view, lambda: gateway_table(server), "the view at the end")
            settle(part, lambda: gateway_table(server, FILTER), "the filtered view at the end")
            fresh = table(records(client.snap(TOPIC)))
            pd.testing.assert_frame_equal(view.frame(), fresh, obj="the view against a snap")
            assert upserter.n >= (KILLS + 1) * 50
            assert len(view.rows) > len(ROWS) + 40  # new keys came in updates and resyncs
            # Ids never go back: the client counts up across reconnects ...
            assert all(a < b for a, b in itertools.pairwise(next_ids)), next_ids
            stats = client.stats()
            assert stats["connections"] == KILLS + 1, stats
            assert (sub.resyncs, view.resyncs, part_sub.resyncs) == (KILLS, KILLS, KILLS)
            assert sub.errors == part_sub.errors == 0 and not sub.ended
        # ... and the gateway saw each connection's ids above the one's before it.
        runs = server.id_runs()
        assert len(runs) == KILLS + 1, runs
        for before, after in itertools.pairwise(runs):
            assert max(before) < min(after), runs


# -- 1b. actorwire serve kdb, SIGKILLed x5 ----------------------------------------------------


def generation(g: int) -> list[dict[str, Any]]:
    """The rows process ``g`` starts with: keys of its own, and EUR/USD with its own value."""
    rows = [{KEY: "EUR/USD", "val": 100.0 + g}]
    rows += [{KEY: f"G{g}-{j}", "val": g + j / 10} for j in range(2 + g)]
    return rows


def toml_config(rows: Sequence[Mapping[str, Any]]) -> str:
    body = ", ".join(f"{{ {KEY} = {json.dumps(r[KEY])}, val = {r['val']!r} }}" for r in rows)
    return (
        f"[gateway]\ntokens = [{json.dumps(TOKEN)}]\nupdate_interval = 0.05\n\n"
        f'[[topics]]\nname = "{TOPIC}"\nkeys = {{ {KEY} = "symbol" }}\n'
        f'values = {{ val = "float" }}\nrows = [{body}]\n'
    )


class GatewayProcess:
    """``actorwire serve kdb`` on one port, (re)started with a config of given rows."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port = port
        self.folder = folder
        self.log = folder / "gateway.log"  # the processes' stderr, for a failure's message
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self, rows: Sequence[Mapping[str, Any]]) -> None:
        assert self.proc is None
        self.starts += 1
        config = self.folder / f"gateway-{self.starts}.toml"
        config.write_text(toml_config(rows), encoding="utf-8")
        with self.log.open("ab") as stderr:
            self.proc = proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "actorwire.pipelines.cli", "serve", "kdb"),
                    *("--port", str(self.port), "--config", str(config)),
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        lines: queue.Queue[str] = queue.Queue()
        stdout = proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=WAIT)
        except queue.Empty:
            line = ""
        expected = rf"kdb Insights gateway listening on 127\.0\.0\.1:{self.port}\n"
        if not re.fullmatch(expected, line):
            self.kill()
            tail = self.log.read_text(errors="replace")[-2000:]
            raise AssertionError(f"the gateway did not start: {line!r}\n{tail}")

    def kill(self) -> None:
        """SIGKILL, and reap it (a no-op when not running)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sigkill_5_times_each_resync_replaces_the_view_with_the_new_table(
    protocol: str, tmp_path: Path
) -> None:
    proc = GatewayProcess(free_port(), tmp_path)
    try:
        proc.start(generation(0))
        # A kill is an EOF, so no heartbeat is needed to notice it; a short deadline would
        # give up on a new process that takes a moment over its first qipc message.
        lenient = {**FAST, "heartbeat_interval": 0.5, "heartbeat_deadline": 5.0}
        client = make_client(f"ws://127.0.0.1:{proc.port}/", protocol, **lenient)
        with client:
            view = View()
            snapshot, sub = client.subsnap(TOPIC, callback=view)
            view.seed(snapshot)
            pd.testing.assert_frame_equal(view.frame(), table(generation(0)))
            next_ids = [client.stats()["next_id"]]
            for g in range(1, KILLS + 1):
                proc.kill()
                proc.start(generation(g))
                wait_until(resynced(sub, view, g), WAIT, what=f"resync after restart {g}")
                # Replaced, not merged: the keys of the process before are gone.
                want = functools.partial(table, generation(g))
                settle(view, want, f"the view after restart {g}")
                fresh = table(records(client.snap(TOPIC)))
                pd.testing.assert_frame_equal(fresh, table(generation(g)), obj=f"snap {g}")
                next_ids.append(client.stats()["next_id"])
            assert all(a < b for a, b in itertools.pairwise(next_ids)), next_ids
            assert client.stats()["connections"] == KILLS + 1
            assert (sub.resyncs, view.resyncs, sub.errors) == (KILLS, KILLS, 0)
            assert client.state is LinkState.CONNECTED
    finally:
        proc.kill()


# -- 2. silence, 3. garbage --------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_silence_past_the_heartbeat_deadline_reconnects_and_resyncs(protocol: str) -> None:
    with gateway() as server:
        states: list[tuple[LinkState, str, float]] = []

        def listener(state: LinkState, why: str) -> None:
            states.append((state, why, time.monotonic()))
            if state is LinkState.RECONNECTING:
                # Before the redial: a handshake made while silent would get its 101 but not
                # the resync's reply (what a silent gateway writes is dropped).
                server.resume()

        client = make_client(server.url, protocol, state_listener=listener, **FAST)
        with client, Upserter(server) as upserter:
            view = View()
            snapshot, sub = client.subsnap(TOPIC, callback=view)
            view.seed(snapshot)
            upserter.wait_more(50, "upserts before the silence")
            wait_until(lambda: view.updates > 0, WAIT, what="updates before the silence")
            seen = len(states)
            silent_at = time.monotonic()
            server.go_silent()
            wait_until(resynced(sub, view, 1), WAIT, what="the resync after the silence")
            after = [(s, why) for s, why, _ in states[seen:]]
            assert after[0][0] is LinkState.RECONNECTING, after
            assert "heartbeat deadline" in after[0][1], after
            assert after[-1][0] is LinkState.CONNECTED, after
            # The link left CONNECTED by itself, once the deadline had passed.
            assert states[seen][2] - silent_at >= 0.5, states[seen:]
            upserter.wait_more(50, "upserts after the silence")
            with upserter.paused():
                settle(view, lambda: gateway_table(server), "the view after the silence")
            assert client.stats()["connections"] == 2
            assert sub.resyncs == 1 and sub.errors == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_garbage_is_counted_and_logged_then_a_reconnect_resyncs(protocol: str) -> None:
    with gateway() as server:
        client = make_client(server.url, protocol, **FAST)
        with client, Upserter(server) as upserter:
            view = View()
            sub = client.subscribe(TOPIC, callback=view)
            upserter.wait_more(50, "upserts before the garbage")
            link = client.link
            assert link is not None
            seen = len(link.history())
            with structlog.testing.capture_logs() as logs:
                server.send_garbage()
                wait_until(resynced(sub, view, 1), WAIT, what="the resync after the garbage")
            after = link.history()[seen:]
            assert [s for s, _ in after] == [LinkState.RECONNECTING, LinkState.CONNECTED], after
            assert client.stats()["protocol_errors"] >= 1
            errors = [e for e in logs if e["event"] == "protocol error"]
            assert len(errors) == 1, logs
            assert errors[0]["log_level"] == "warning" and errors[0]["fatal"] is True, errors
            assert errors[0]["peer"] == f"127.0.0.1:{server.port}", errors
            assert errors[0]["reason"].startswith("kdb gateway: not "), errors  # JSON, q IPC
            with upserter.paused():
                settle(view, lambda: gateway_table(server), "the view after the garbage")
            assert client.stats()["connections"] == 2 and sub.errors == 0


# -- 4. tokens ---------------------------------------------------------------------------------


WRONG = "wrong-token-3c9d77"


def refused_open(server: GatewayServer, protocol: str) -> tuple[str, list[Any], GatewayClient]:
    """Open a client with a wrong token: the PermissionError's text, the link's states (and
    reasons) and the client, once open() raised."""
    states: list[tuple[LinkState, str]] = []
    client = make_client(
        server.url,
        protocol,
        token=WRONG,
        state_listener=lambda s, why: states.append((s, why)),
        **{**FAST, "backoff": Backoff(min=0.01, max=0.02, factor=2.0, jitter=0.0)},
    )
    with pytest.raises(PermissionError) as info:
        client.open()
    return str(info.value), states, client


@pytest.mark.timeout(30)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_wrong_token_fails_once_and_shows_nowhere(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with gateway() as server, structlog.testing.capture_logs() as logs:
        reason, states, client = refused_open(server, protocol)
        assert "401" in reason and "token was refused" in reason, reason
        kinds = [s for s, _ in states]
        # One attempt, FAILED, and nothing after it but the close.
        assert kinds.count(LinkState.CONNECTING) == 1, states
        assert LinkState.RECONNECTING not in kinds and LinkState.FAILED in kinds, states
        assert set(kinds[kinds.index(LinkState.FAILED) :]) <= {LinkState.FAILED, LinkState.CLOSED}
        stats = server.stats()
        assert (stats["auth_failures"], stats["connections"]) == (1, 1), stats
        assert stats["websockets_opened"] == 0
        with pytest.raises(RuntimeError, match="closed"):
            client.open()  # FAILED is final: this client never dials again
        assert server.stats()["connections"] == 1
        shown = [reason, repr(client), repr(client.adapter), str(client.stats())]
        shown += [why for _, why in states]
    refusals = [e for e in logs if e["event"] == "link state" and e["state"] == "FAILED"]
    assert refusals and "401" in refusals[0]["reason"], logs  # logged, with the reason
    shown += [repr(logs), caplog.text]
    assert not [text for text in shown if WRONG in text], shown


@pytest.mark.timeout(30)
def test_the_token_is_not_in_the_stdlib_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with gateway() as server:
        refused_open(server, "json")
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    leaks = [r.name + ": " + r.getMessage() for r in caplog.records if WRONG in r.getMessage()]
    assert not leaks, leaks


@pytest.mark.timeout(30)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_token_refused_after_a_restart_fails_once_with_the_reason(protocol: str) -> None:
    first = RecordingGateway(make_config()).start()
    servers = [first]
    try:
        states: list[tuple[LinkState, str]] = []
        client = make_client(
            first.url, protocol, state_listener=lambda s, why: states.append((s, why)), **FAST
        )
        with client:
            view = View()
            sub = client.subscribe(TOPIC, callback=view)
            first.stop()
            doc = config_doc()
            doc["gateway"]["tokens"] = ["rotated-token-1"]
            # The same port: the client redials it.
            servers.append(RecordingGateway(parse_config(doc), port=first.port).start())
            wait_until(lambda: client.state is LinkState.FAILED, WAIT, what="FAILED")
            assert servers[1].stats()["auth_failures"] == 1  # one try: no redial storm
            assert servers[1].stats()["connections"] == 1
            assert sub.ended and isinstance(sub.error, ConnectionError), sub.error
            assert "401" in str(sub.error)
            assert states[-1][0] is LinkState.FAILED and "401" in states[-1][1], states
            shown = [str(sub.error), repr(client), repr(sub), *(why for _, why in states)]
            assert not [text for text in shown if TOKEN in text or "rotated" in text], shown
    finally:
        for server in servers:
            server.stop()


# -- 5. through a TCP proxy: cuts, a black hole, a half-open connection -----------------------


@pytest.mark.timeout(40)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cuts_and_black_holes_through_a_proxy_each_resync_equals_the_table(
    protocol: str,
) -> None:
    config = make_config(ping_interval=0.5, ping_timeout=3.0)
    with gateway(config) as server, Proxy(server.port) as proxy:
        client = make_client(f"ws://127.0.0.1:{proxy.port}/", protocol, **FAST)
        with client, Upserter(server) as upserter:
            view = View()
            snapshot, sub = client.subsnap(TOPIC, callback=view)
            view.seed(snapshot)
            faults: list[tuple[str, Callable[[], Any]]] = [
                ("a cut (FIN)", proxy.sever),
                ("a cut (RST)", lambda: proxy.sever(reset=True)),
                ("a black hole past the heartbeat deadline", proxy.black_hole),
            ]
            for n, (what, fault) in enumerate(faults, 1):
                upserter.wait_more(50, f"upserts before {what}")
                assert fault() == 1
                wait_until(resynced(sub, view, n), WAIT, what=f"the resync after {what}")
                with upserter.paused():
                    settle(view, lambda: gateway_table(server), f"the view after {what}")
            # Half-open: the client gives up and comes back while the gateway still holds
            # the old websocket (and its subscription) until its ping timeout.
            upserter.wait_more(50, "upserts before the half-open black hole")
            websockets = server.stats()["websockets"]
            assert websockets == 1
            assert proxy.black_hole(half_open=True) == 1
            n = len(faults) + 1
            wait_until(resynced(sub, view, n), WAIT, what="the resync after the half-open one")
            assert server.stats()["websockets"] == 2  # the old one is still there
            with upserter.paused():
                settle(view, lambda: gateway_table(server), "the view beside the old websocket")
            wait_until(
                lambda: server.stats()["websockets"] == 1, WAIT, what="the gateway's ping timeout"
            )
            assert server.stats()["ping_timeouts"] >= 1
            assert server.stats()["subscriptions"] == 1
            upserter.wait_more(50, "upserts after the old websocket's end")
            upserter.stop()
            settle(view, lambda: gateway_table(server), "the view at the end")
            assert client.stats()["connections"] == n + 1
            assert sub.resyncs == n and sub.errors == 0
        runs = server.id_runs()
        for before, after in itertools.pairwise(runs):
            assert max(before) < min(after), runs
