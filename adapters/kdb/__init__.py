"""kdb Insights: a supervised client of the Service Gateway's websocket, and an embedded
gateway (in progress).

Landed so far, all sans-I/O: ``protocol`` (the gateway's messages, every error code, both
ends' connection state: ids that never go back, resync after a reconnect, chunked snaps),
``topics`` (keyed tables, filtered snapshots, batched updates) and ``config``; and the
embedded gateway, ``server`` (``actorwire serve kdb``); and ``client.GatewayClient`` on a
supervised link (``link``). qipc comes next.
"""
