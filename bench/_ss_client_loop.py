"""The stream-sea-client 0.7.0 side of ``streamsea_fanout`` (``bench/streamsea.py``).

Run under one of the bench's two 0.7.0 venvs, never imported by the bench: as shipped
(Python 3.9, its pins ``websockets~=8.1`` and ``requests~=2.24``) or the test suite's peer
(``tests/support/sspeer.py``: Python 3.11, the client installed ``--no-deps`` with current
``requests`` and ``websockets``). ``python -I bench/_ss_client_loop.py HOST PORT STREAM N
TIMEOUT``. Imports only the client and the standard library; runs on Python 3.9.

``async with StreamSeaConnection(...) as c`` connects and authenticates, ``it = await
c.subscribe(STREAM)`` subscribes, then it prints ``ready {json}`` (the versions of
stream-sea-client and websockets) and runs ``async for payload in it`` with a handler that
counts and, at the N-th, takes ``time.monotonic()`` (CLOCK_MONOTONIC is system-wide on
Linux: the bench compares it with its own clock); then ``done END COUNT``, and it closes
the websocket and exits. The whole run is bounded by TIMEOUT seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from importlib import metadata

from stream_sea_client import StreamSeaConnection

CLIENT_ID = "demo"
CLIENT_SECRET = "demo-secret"


async def run(host: str, port: int, stream: str, n: int) -> tuple[float, int]:
    seen = 0
    end = 0.0

    def on_payload(payload: object) -> None:
        nonlocal seen, end
        seen += 1
        if seen == n:
            end = time.monotonic()

    async with StreamSeaConnection(
        remote_host=host,
        remote_port=port,
        secure=False,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    ) as conn:
        it = await conn.subscribe(stream)
        versions = {name: metadata.version(name) for name in ("stream-sea-client", "websockets")}
        print("ready " + json.dumps(versions), flush=True)
        async for payload in it:
            on_payload(payload)
            if seen >= n:
                break
    return end, seen


def main(argv: list[str]) -> int:
    host, port, stream, n, timeout = argv[0], int(argv[1]), argv[2], int(argv[3]), float(argv[4])
    end, seen = asyncio.run(asyncio.wait_for(run(host, port, stream, n), timeout))
    print(f"done {end!r} {seen}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
