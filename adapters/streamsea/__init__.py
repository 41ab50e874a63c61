"""stream-sea: the names of stream-sea-client 0.7.0 (in progress: the schema and the
websocket protocol's sans-I/O core)."""
