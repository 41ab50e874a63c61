"""The base of the exceptions actorwire raises of its own.

``except ActorwireError`` catches any of them; each also keeps the standard type it has
always been (``MailboxFull`` is still an ``Exception`` users catch by name, ``DefinitionError``
a ``ValueError``, ``ActorStartError`` a ``RuntimeError``), and exceptions of the client APIs
actorwire follows keep their documented types.
"""

from __future__ import annotations

__all__ = ["ActorwireError"]


class ActorwireError(Exception):
    """Base of every exception defined by actorwire."""
