"""actorwire.adapters.jupyter: signed ZMQ messaging and supervised kernel clients."""
