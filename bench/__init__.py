"""actorwire benchmarks against raw pykka, measured side by side in the same process.

Run ``python -m bench`` (or ``make bench``) from the repository root. Each benchmark prints
one JSON object on its own line on stdout; progress goes to stderr. The actorwire figure
and its raw-pykka baseline are measured in the same run, interleaved run by run (the
order rotates every run), and each reported figure is the median over the runs.

Benchmarks (``python -m bench NAME ...`` runs a subset; ``--quick`` is a short smoke run):

``tell_throughput``
    One producer thread tells N ints to one actor that counts them; time from the first
    tell until the actor has processed all N. Rows: ``tell_throughput`` (actorwire
    ``on_receive``, target >= raw pykka) and ``tell_throughput_on_batch`` (informational).
``chain3``
    The producer tells N ints to stage 1, which forwards to stage 2, which forwards to
    stage 3, which counts. Rows: ``chain3_on_receive`` (plain per-message actors,
    informational) and ``chain3_on_batch`` (every stage implements ``on_batch``; target
    >= 2x the raw pykka chain).
``ask_latency``
    Sequential ask round trips to an echo actor after a warm-up; p50/p99/mean in
    microseconds. Target: actorwire p99 <= 1.5x raw pykka p99.
``keysquare_publish_to_callback`` / ``keysquare_snapshot_dataframe``
    Records published through one KeySession reaching another session's callback via
    the platform, each in its own process, against raw gRPC server streaming (target
    >= 5x); and a 100k-record snapshot into a DataFrame (report only). See
    ``bench/keysquare.py``.
``jupyter_session_roundtrip``
    Messages through serialize + sign + send -> recv + verify + deserialize between two
    actorwire Sessions over ZMQ tcp on 127.0.0.1, against ``jupyter_client.Session``
    doing the same in the same run (target >= 1.5x); the ``_buffer`` row adds a 1 KiB
    buffer. See ``bench/jupyter.py``.

Baselines other than pykka are the raw libraries (gRPC, pyzmq, jupyter_client), measured
in the same run so the ratio holds on a noisy machine.
"""

from __future__ import annotations

__all__: list[str] = []
