"""A griffe extension for the API reference: Sphinx roles in docstrings
(``:class:`Pipeline```, ``:func:`~x.load_definition```) become plain code spans, as
Markdown shows them."""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|exc|data|obj|const):`~?([^`]+)`")


class SphinxRoles(griffe.Extension):
    """Rewrites each object's docstring once it is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":`" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(r"`\1`", obj.docstring.value)
