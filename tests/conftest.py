"""Suite-wide settings: hypothesis runs without per-example deadlines.

A per-example deadline measures wall time, which swings on a loaded 2-core machine;
pytest-timeout already bounds every test.
"""

from hypothesis import settings

settings.register_profile("actorwire", deadline=None)
settings.load_profile("actorwire")
