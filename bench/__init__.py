"""actorwire benchmarks against raw pykka, measured side by side in the same run.

Run ``python -m bench`` (or ``make bench``) from the repository root. Each benchmark prints
one JSON object on its own line on stdout; progress goes to stderr. The actorwire figure
and its raw-pykka baseline are measured in the same run, interleaved run by run (the
order rotates every run), and each reported figure is the median over the runs.
``ask_latency`` and ``scale_actors`` measure in child processes (``python -m bench.latency``,
``python -m bench.scale``), so CPU affinity, RSS and thread counts are one side's alone.

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
    microseconds, in two pinned placements (``os.sched_setaffinity``), each run in a child
    process: asker and actor side on the same CPU, and on different CPUs (skipped with one
    CPU). Target: actorwire p50 and p99 <= raw pykka in both. See ``bench/latency.py``.
``scale_actors``
    One row per N actors (10, 1,000, 10,000, 100,000; raw pykka up to 10,000), each side
    in its own child process: spawn seconds, RSS per idle actor, Python and OS threads,
    fan-out from one publisher actor to all N (deliveries/s, time to the last), round-robin
    tells across all N (msg/s) and shutdown seconds. Targets: 100,000 actors spawned in
    <= 5 s at <= 4 KB RSS each with threads <= workers + 8; round robin across 10,000
    actors >= 50% of the 10-actor figure and >= 20x raw pykka. A side that runs out of its
    per-phase time budget reports "did not finish in X s". See ``bench/scale.py``.
``keysquare_publish_to_callback`` / ``keysquare_snapshot_dataframe``
    Records published through one KeySession reaching another session's callback via
    the platform, each in its own process, against raw gRPC server streaming (target
    >= 5x); and a 100k-record snapshot into a DataFrame (report only). See
    ``bench/keysquare.py``.
``keysquare_topics``
    5,000 per-topic subscriptions on one KeySession, 5,000 records/s in total for 10 s
    (platform and publisher in their own processes): delivered fraction (must be 1.0),
    publish -> callback p50/p99 (target p99 <= 20 ms), subscriber threads and RSS,
    platform CPU per record; baseline: one subscription receiving the same load. See
    ``bench/keysquare_topics.py``.
``jupyter_session_roundtrip``
    Messages through serialize + sign + send -> recv + verify + deserialize between two
    actorwire Sessions over ZMQ tcp on 127.0.0.1, against ``jupyter_client.Session``
    doing the same in the same run (target >= 1.5x); the ``_buffer`` row adds a 1 KiB
    buffer. See ``bench/jupyter.py``.
``pipeline_bars``
    Records per second through synthetic prices -> map -> key_by -> 1 s OHLC window ->
    callback, against a raw pykka chain of the same length doing the same work (target
    >= 2x). See ``bench/pipelines.py``.
``streamsea_fanout``
    N price ticks from a stream-sea server to a subscriber's handler. Rows:
    ``streamsea_fanout`` (a scripted server writes the embedded server's pre-encoded
    deliveries as fast as the socket takes them, so the clients are measured: actorwire's
    supervised subscription against raw websockets + json, target >= 0.8x, and against
    stream-sea-client 0.7.0 as shipped on Python 3.9, target >= 2x, with 0.7.0 on current
    websockets shown beside it) and ``streamsea_fanout_embedded`` (end to end through the
    real embedded server, whose publish loop is the ceiling; report only). See
    ``bench/streamsea.py``.
``kdb_updates`` / ``kdb_snap``
    Rows from the embedded kdb gateway's ``upsert`` to a subscriber's DataFrame callback
    with a 20 ms batching interval, against raw websockets + json + pandas on the same
    gateway process (target >= 0.8x); and a 1,000,000-row snap to a DataFrame in seconds
    against json.loads + DataFrame construction (report only); qipc figures beside. See
    ``bench/kdb.py``.
``nats_stage``
    Records per second through a nats source -> map -> nats sink with JetStream acks (each
    input acknowledged once its output is stored), against raw nats-py doing the same (pull,
    publish with async acks, ack) in the same run (target >= 0.7x). See ``bench/nats.py``.

Baselines other than pykka are the raw libraries (gRPC, pyzmq, jupyter_client, websockets,
nats-py), measured
in the same run so the ratio holds on a noisy machine.
"""

from __future__ import annotations

__all__: list[str] = []
