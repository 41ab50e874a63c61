"""Pipelines: builder API, operators, sources and sinks, definitions and the supervisor process."""
