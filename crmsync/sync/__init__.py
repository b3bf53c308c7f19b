"""The sync loop: pull -> decide -> diff -> outbox -> write -> audit -> cursor (`pipeline.SyncPass`)."""

from crmsync.sync.pipeline import PassReport, SyncPass

__all__ = ["PassReport", "SyncPass"]
