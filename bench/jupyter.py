"""jupyter adapter: signed message round trip through ZMQ; actorwire vs jupyter_client.

``jupyter_session_roundtrip``
    One process, two threads, a DEALER connected to a ROUTER over tcp on 127.0.0.1 (a
    client's shell channel). The sender thread builds, signs, serializes and sends N
    ``execute_request`` messages with ``Session.send(dealer, "execute_request", content)``;
    the main thread receives, verifies (HMAC-SHA256, replay history on) and deserializes
    them with a blocking ``Session.recv(router)``, routing identity included (actorwire
    returns the message with ``msg["idents"]``; jupyter_client's ``recv(router, mode=0)``
    returns ``(idents, msg)``). Timed from the first send to the N-th message received.
    Both ends are actorwire ``Session``s; the baseline is the same code with
    ``jupyter_client.session.Session`` on both ends, measured in the same run.
    Target: actorwire >= 1.5x jupyter_client.
``jupyter_session_roundtrip_buffer``
    The same with one 1 KiB binary buffer per message (informational, same target).

Every run uses a fresh zmq context, fresh sockets and fresh sessions (empty digest
histories); a warm-up exchange makes sure the connection is up before the clock starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._harness import BenchError, Config, environment, interleave, median

TARGET_FACTOR = 1.5
KEY = b"3f0c6c6e-6c1a4f5ab0d8b8e3c1f0a9d2"
WARM_MESSAGES = 50
BUFFER_BYTES = 1024
CONTENT = {
    "code": "import numpy as np\nx = np.arange(10)\nprint(x.sum())",
    "silent": False,
    "store_history": True,
    "user_expressions": {},
    "allow_stdin": True,
    "stop_on_error": True,
}


@dataclass(frozen=True)
class Run:
    """One timed run: N messages and the seconds from the first send to the last recv."""

    n: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def _describe(run: Run) -> str:
    return f"{run.rate:,.0f} msg/s ({run.seconds:.3f}s)"


def _make_session(impl: str) -> Any:
    if impl == "actorwire":
        from actorwire.adapters.jupyter import Session

        return Session(key=KEY, username="bench")
    from jupyter_client.session import Session as JupyterSession

    return JupyterSession(key=KEY, username="bench")


def roundtrip(impl: str, n: int, timeout: float, *, buffers: bool) -> Run:
    """Send N messages DEALER -> ROUTER with one implementation's Sessions on both ends."""
    import zmq

    sender, receiver = _make_session(impl), _make_session(impl)
    bufs = [bytes(range(256)) * (BUFFER_BYTES // 256)] if buffers else None
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    dealer = ctx.socket(zmq.DEALER)
    try:
        router.linger = dealer.linger = 0
        router.rcvtimeo = int(timeout * 1000)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer.connect(f"tcp://127.0.0.1:{port}")

        # The same loop for both; only the recv call differs (its result and how it
        # reports the socket's rcvtimeo).
        def receive_actorwire(count: int) -> None:
            for _ in range(count):
                try:
                    msg = receiver.recv(router)
                except zmq.Again:
                    raise BenchError(f"{impl}: no message within {timeout}s") from None
                if msg["msg_type"] != "execute_request" or not msg["idents"]:
                    raise BenchError(f"{impl}: unexpected message {msg['msg_type']!r}")
                if buffers and len(msg["buffers"][0]) != BUFFER_BYTES:
                    raise BenchError(f"{impl}: buffer lost")

        def receive_jupyter_client(count: int) -> None:
            for _ in range(count):
                idents, msg = receiver.recv(router, mode=0)
                if msg is None:
                    raise BenchError(f"{impl}: no message within {timeout}s")
                if msg["msg_type"] != "execute_request" or not idents:
                    raise BenchError(f"{impl}: unexpected message {msg['msg_type']!r}")
                if buffers and len(msg["buffers"][0]) != BUFFER_BYTES:
                    raise BenchError(f"{impl}: buffer lost")

        receive = receive_actorwire if impl == "actorwire" else receive_jupyter_client

        send = sender.send
        for _ in range(WARM_MESSAGES):
            send(dealer, "execute_request", CONTENT, buffers=bufs)
        receive(WARM_MESSAGES)

        failure: list[BaseException] = []

        def produce() -> None:
            try:
                for _ in range(n):
                    send(dealer, "execute_request", CONTENT, buffers=bufs)
            except BaseException as exc:  # reported by the main thread
                failure.append(exc)

        thread = threading.Thread(target=produce, name=f"bench-{impl}-sender")
        start = time.perf_counter()
        thread.start()
        try:
            receive(n)
        finally:
            thread.join(timeout)
        end = time.perf_counter()
        if failure:
            raise BenchError(f"{impl}: sender failed: {failure[0]!r}")
        if thread.is_alive():
            raise BenchError(f"{impl}: sender still running after {timeout}s")
        return Run(n=n, seconds=end - start)
    finally:
        router.close(0)
        dealer.close(0)
        ctx.term()


def _row(bench: str, aw: list[Run], base: list[Run], n: int, variant: str) -> dict[str, Any]:
    from importlib import metadata

    aw_rate = median([r.rate for r in aw])
    base_rate = median([r.rate for r in base])
    ratio = aw_rate / base_rate
    env = environment()
    for dist in ("pyzmq", "jupyter_client", "orjson"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = "unknown"
    return {
        "bench": bench,
        "unit": "msg/s",
        "actorwire": round(aw_rate),
        "baseline": round(base_rate),
        "ratio": round(ratio, 3),
        "ratio_meaning": "actorwire / jupyter_client Session round trips per second "
        "(median of runs; higher is better)",
        "target": f"actorwire >= {TARGET_FACTOR}x jupyter_client.Session",
        "meets_target": ratio >= TARGET_FACTOR,
        "runs": len(aw),
        "n": n,
        "variant": variant,
        "path": "Session.send (msg + serialize + HMAC-SHA256 sign + send) on a DEALER "
        "thread -> blocking Session.recv (recv + verify + replay check + deserialize) "
        "on a ROUTER, tcp 127.0.0.1, one process",
        "baseline_impl": "jupyter_client.session.Session on both ends (orjson packer)",
        "actorwire_runs_msg_s": [round(r.rate) for r in aw],
        "baseline_runs_msg_s": [round(r.rate) for r in base],
        "paired_ratios": [round(a.rate / b.rate, 3) for a, b in zip(aw, base, strict=True)],
        "env": env,
    }


def jupyter_session_roundtrip(cfg: Config) -> list[dict[str, Any]]:
    n = 2_000 if cfg.quick else 20_000
    timeout = cfg.timeout
    rows = []
    for bench, buffers, variant in (
        ("jupyter_session_roundtrip", False, "execute_request, no buffers"),
        (
            "jupyter_session_roundtrip_buffer",
            True,
            f"execute_request with one {BUFFER_BYTES}-byte buffer",
        ),
    ):
        variants: dict[str, Callable[[], Run]] = {
            "jupyter_client": lambda b=buffers: roundtrip("jupyter_client", n, timeout, buffers=b),
            "actorwire": lambda b=buffers: roundtrip("actorwire", n, timeout, buffers=b),
        }
        for impl in variants:  # warm both (imports, first connection), untimed
            roundtrip(impl, max(n // 10, 100), timeout, buffers=buffers)
        res = interleave(bench, variants, cfg.runs, _describe)
        rows.append(_row(bench, res["actorwire"], res["jupyter_client"], n, variant))
    return rows
