"""Across hosts: nats-server in one network namespace, an ingest ``actorwire run`` in a second
and a recording one in a third, joined by veth pairs on a bridge in the server's namespace.

Where the user running the tests may create network namespaces (``ip netns add``: root or
CAP_SYS_ADMIN) the three processes talk over the veth pairs only (nats-server listens on the
bridge's address, which no other namespace has); elsewhere the test skips and says why. The
namespaces are the test's own (their names hold its pid) and are deleted, with anything
still running in them, however the test ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nats", reason="nats-py is not installed (the nats extra)")

from tests.support.waiting import wait_until

RECORDS = 3000
RATE = 3000  # records a second: about a second of input
WAIT = 45.0
PORT = 4222
SUBNET = f"10.213.{os.getpid() % 250}"  # inside the test's namespaces only
IP = shutil.which("ip")


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    assert IP is not None
    return subprocess.run(
        [IP, *args], capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL
    )


def must(*args: str) -> None:
    done = ip(*args)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


@dataclass(frozen=True)
class Hosts:
    """Three namespaces: ``server`` (the bridge, at ``SUBNET.1``), ``ingest`` (``.2``) and
    ``record`` (``.3``)."""

    server: str
    ingest: str
    record: str

    @property
    def all(self) -> tuple[str, str, str]:
        return (self.server, self.ingest, self.record)


def listed() -> set[str]:
    """The network namespaces ``ip netns list`` shows (each line: a name, maybe an id)."""
    return {line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()}


def remove(names: list[str]) -> None:
    """Kill whatever still runs in the namespaces (a nats-server left by a killed parent),
    then delete them."""
    for name in names:
        for pid in ip("netns", "pids", name).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

        def empty(name: str = name) -> bool:
            return not ip("netns", "pids", name).stdout.split()

        wait_until(empty, 10.0, interval=0.05, what=f"no process left in {name}")
        ip("netns", "del", name)


def wire(hosts: Hosts) -> None:
    """A bridge in the server's namespace, a veth pair from it to each other namespace."""
    must("-n", hosts.server, "link", "add", "awbr0", "type", "bridge")
    must("-n", hosts.server, "addr", "add", f"{SUBNET}.1/24", "dev", "awbr0")
    must("-n", hosts.server, "link", "set", "awbr0", "up")
    for number, name in ((2, hosts.ingest), (3, hosts.record)):
        port = f"awport{number}"
        must(
            "link", "add", port, "netns", hosts.server, "type", "veth",
            "peer", "name", "aweth0", "netns", name,
        )  # fmt: skip
        must("-n", hosts.server, "link", "set", port, "master", "awbr0")
        must("-n", hosts.server, "link", "set", port, "up")
        must("-n", name, "addr", "add", f"{SUBNET}.{number}/24", "dev", "aweth0")
        must("-n", name, "link", "set", "aweth0", "up")
    for name in hosts.all:
        must("-n", name, "link", "set", "lo", "up")


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    """Three wired namespaces, or a skip saying why they cannot be made."""
    if IP is None:
        pytest.skip("no 'ip' command (iproute2): network namespaces cannot be made")
    tag = f"aw{os.getpid()}"
    made = Hosts(f"{tag}-server", f"{tag}-ingest", f"{tag}-record")
    created: list[str] = []
    try:
        for name in made.all:
            done = ip("netns", "add", name)
            if done.returncode != 0:
                pytest.skip(
                    f"cannot create network namespaces (ip netns add: {done.stderr.strip()}); "
                    "this test needs root or CAP_SYS_ADMIN"
                )
            created.append(name)
        try:
            wire(made)
        except RuntimeError as exc:
            pytest.skip(f"cannot wire network namespaces with veth pairs and a bridge: {exc}")
        yield made
    finally:
        remove(created)
        left = listed() & set(created)
        assert not left, f"network namespaces left behind: {sorted(left)}"


def in_namespace(name: str, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """``actorwire ARGS`` in namespace ``name`` (``ip netns exec`` execs it: the pid is
    Python's); stdout piped (the ready line), stderr to ``log``."""
    assert IP is not None
    with log.open("w") as err:  # the child has its own copy
        return subprocess.Popen(
            [IP, "netns", "exec", name, sys.executable, "-m", "actorwire.pipelines.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )


def first_line(proc: subprocess.Popen[str], log: Path) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=WAIT)
    except queue.Empty:
        raise AssertionError(f"no ready line; log: {log.read_text()[-2000:]}") from None


def net_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    if lines and not lines[-1].endswith("}"):
        lines = lines[:-1]  # a line being written
    return [json.loads(line) for line in lines if line]


INGEST = f"""\
[pipeline]
name = "ingest"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = ["AAPL", "MSFT", "GOOG"]
rate = {RATE}
limit = {RECORDS}
seed = 5
timestamps = "derived"

[[sinks]]
name = "prices"
kind = "nats"
from = "ticks"
url = "${{NATS_URL}}"
subject = "prices.{{symbol}}"
id_fields = ["symbol", "timestamp"]
stream = {{ name = "PRICES", subjects = ["prices.>"] }}

[logging]
level = "warning"
"""

RECORD = """\
[pipeline]
name = "record"

[[sources]]
name = "prices"
kind = "nats"
url = "${NATS_URL}"
stream = { name = "PRICES", subjects = ["prices.>"] }
durable = "recorder"

[[sinks]]
name = "file"
kind = "jsonl_file"
from = "prices"
path = "${PRICES_FILE}"

[logging]
level = "warning"
"""


@pytest.mark.timeout(120)
def test_stages_in_two_namespaces_share_a_nats_server_in_a_third(
    tmp_path: Path, hosts: Hosts
) -> None:
    url = f"nats://{SUBNET}.1:{PORT}"
    out = tmp_path / "prices.jsonl"
    env = {**os.environ, "NATS_URL": url, "PRICES_FILE": str(out)}
    (tmp_path / "ingest.toml").write_text(INGEST)
    (tmp_path / "record.toml").write_text(RECORD)
    logs = {name: tmp_path / f"{name}.log" for name in ("server", "ingest", "record")}
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        procs["server"] = in_namespace(
            hosts.server,
            *("serve", "nats", "--host", f"{SUBNET}.1", "--port", str(PORT)),
            *("--store", str(tmp_path / "store")),
            env=env,
            log=logs["server"],
        )
        line = first_line(procs["server"], logs["server"])
        assert re.fullmatch(rf"nats-server listening on {re.escape(SUBNET)}\.1:{PORT}\n", line)
        procs["record"] = in_namespace(
            hosts.record, "run", str(tmp_path / "record.toml"), env=env, log=logs["record"]
        )
        procs["ingest"] = in_namespace(
            hosts.ingest, "run", str(tmp_path / "ingest.toml"), env=env, log=logs["ingest"]
        )
        # Three hosts as the network sees them: each process in a namespace of its own
        # (polled: ``ip`` enters it a moment after it starts).
        ours = net_namespace(os.getpid())
        spaces = {
            wait_until(lambda p=p: net_namespace(p.pid) != ours and net_namespace(p.pid))  # type: ignore[misc]
            for p in procs.values()
        }
        assert len(spaces) == 3
        # Ingest ends by itself once its records are published and acknowledged.
        assert procs["ingest"].wait(WAIT) == 0, logs["ingest"].read_text()[-3000:]
        wait_until(
            lambda: len(read_jsonl(out)) >= RECORDS,
            WAIT,
            interval=0.05,
            what=f"{RECORDS} records in {out} (see {logs['record']})",
        )
        for name in ("record", "server"):
            procs[name].send_signal(signal.SIGTERM)
            assert procs[name].wait(WAIT) == 0, logs[name].read_text()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in procs.values():
            proc.wait(WAIT)
            if proc.stdout is not None:
                proc.stdout.close()
    got = read_jsonl(out)
    keys = [(r["symbol"], r["timestamp"]) for r in got]
    assert len(keys) == RECORDS, f"{len(keys)} records, expected {RECORDS}"
    assert len(set(keys)) == RECORDS, "a record was recorded twice"
    assert {r["symbol"] for r in got} == {"AAPL", "MSFT", "GOOG"}
