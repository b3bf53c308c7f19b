"""A contact a rep moves into pipeline while crmsync's first pass runs (after its window's end, so the pass
does not read it) reached pipeline after the rollout: the next pass flags it with a task, not as the backlog."""
from __future__ import annotations

from pathlib import Path

from hubspot.crm.contacts import SimplePublicObjectInput

from crmsync.store import Store
from crmsync.sync.pipeline import SyncPass
from crmsync.sync.window import ROLLOUT_NOTE
from tests.hubspot_fixtures import DEFS, connector, hubspot
from tests.test_pipeline_gate import gate_tasks, rep


def test_moved_into_pipeline_during_the_first_pass_is_not_the_backlog(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with hubspot(450, real_clock=True) as (app, url):
        contacts = app.portal.records["contacts"]
        target = max((i for i, c in contacts.items()
                      if c.properties.get("lifecyclestage") not in ("opportunity", "customer")), key=int)
        moved: list[str] = []

        def progress(_report: object) -> None:  # after the first page of the first pass
            if not moved:
                rep(url).crm.contacts.basic_api.update(target, SimplePublicObjectInput(
                    properties={"lifecyclestage": "customer"}))
                moved.append(contacts[target].properties["lastmodifieddate"])

        first = SyncPass(store, connector(url), DEFS, progress=progress).run()
        note = store.cursor("hubspot", ROLLOUT_NOTE)
        assert moved and first.outcome == "ok" and note is not None
        SyncPass(store, connector(url), DEFS).run()
        props = contacts[target].properties
        assert props.get("crmsync_skipped_gate"), "undocumented: a verdict"
        assert "before rollout" not in props["crmsync_skipped_gate"]  # reached pipeline after the rollout note
        assert len(gate_tasks(app, target)) == 1
