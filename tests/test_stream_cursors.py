"""A stream's cursor moves in the transaction of its last page: a pass that fails after that page has
its window committed (cursor included); one that fails before it leaves the cursor where it was."""

from __future__ import annotations

import pytest

from crmsync.store import Store
from crmsync.sync import PassReport, SyncPass
from tests.hubspot_fixtures import DEFS, SEED_NOW, connector, hubspot


def _fail_after(pages: int):  # type: ignore[no-untyped-def]
    seen = []

    def progress(_report: PassReport) -> None:
        seen.append(1)
        if len(seen) == pages:
            raise RuntimeError("stopped here")
    return progress


@pytest.mark.parametrize(("contacts", "moved"), [(150, True), (350, False)])  # one page of 200; two pages
def test_the_cursor_moves_with_the_last_page(database_url: str, contacts: int, moved: bool) -> None:
    store = Store.open(database_url)
    with hubspot(contacts) as (app, url), pytest.raises(RuntimeError):
        ids = list(app.portal.records["contacts"])
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW, progress=_fail_after(1)).run()
    [run] = store.runs()
    assert run["outcome"] == "failed"
    assert store.cursor("hubspot", "contacts") == (SEED_NOW if moved else None)
    assert len(store.records("hubspot", ids)) == min(contacts, 200)  # the first page, committed
    store.close()
