"""kdb Insights: a supervised client of the Service Gateway's websocket, and an embedded
gateway (in progress: the sans-I/O cores first)."""
