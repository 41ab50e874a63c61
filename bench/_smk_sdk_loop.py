"""The smk-python-sdk 9.4.4 side of ``smarkets_quotes`` (``bench/smarkets.py``).

Run under the SDK's venv python (``tests/support/smkpeer.py``: smk-python-sdk 9.4.4 with
protobuf 3.20.3, the pure-Python implementation, as the SDK's users run it), never
imported by the bench: ``python -I bench/_smk_sdk_loop.py HOST PORT N TIMEOUT``. Imports
only the SDK, protobuf and the standard library.

A ``StreamingAPIClient`` logs in with ``login()`` (which reads the LOGIN_RESPONSE), adds a
``seto.contract_quotes`` handler that counts and, at the N-th, takes ``time.monotonic()``
(CLOCK_MONOTONIC is system-wide on Linux: the bench compares it with its own clock), and
prints ``ready {json}`` (the SDK's and protobuf's versions and the protobuf backend). Then
the SDK's own loop, ``client.read()`` until the handler has counted N, and ``done END
COUNT``; it logs out without waiting for an answer and exits.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata

from google.protobuf.internal import api_implementation
from smarkets.streaming_api.api import Session, SessionSettings, StreamingAPIClient

USERNAME = "bench"
PASSWORD = "bench-password"


def main(argv: list[str]) -> int:
    host, port, n, timeout = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    settings = SessionSettings(
        username=USERNAME,
        password=PASSWORD,
        host=host,
        port=port,
        ssl=False,
        socket_timeout=timeout,
    )
    client = StreamingAPIClient(Session(settings))
    seen = 0
    end = 0.0

    def on_quotes(message: object) -> None:
        nonlocal seen, end
        seen += 1
        if seen == n:
            end = time.monotonic()

    client.add_handler("seto.contract_quotes", on_quotes)
    client.login()
    versions = {
        "smk-python-sdk": metadata.version("smk-python-sdk"),
        "protobuf": metadata.version("protobuf"),
        "protobuf_implementation": api_implementation.Type(),
    }
    print("ready " + json.dumps(versions), flush=True)
    read = client.read
    while seen < n:
        read()
    print(f"done {end!r} {seen}", flush=True)
    client.logout(receive=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
