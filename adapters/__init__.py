"""Protocol adapters: one package per protocol (sans-I/O core, transport, client, server)."""
