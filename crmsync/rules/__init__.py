"""The pure qualification engine: `decide(contact, activities, definitions, now) -> Decision`."""

from crmsync.rules.engine import decide

__all__ = ["decide"]
