"""The connector core's pure helpers (crmsync/connectors/core.py); the connectors' own tests run the rest
(task creation, Resend batches, the ends of an attempt) against the sandboxes."""

from __future__ import annotations

from crmsync.connectors.core import chunks, follow, mapped, write_back
from crmsync.errors import RecordError
from tests.builders import fit_contact


def test_chunks_cut_to_size_and_keep_order() -> None:
    assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunks([], 3)) == []


def test_a_record_that_does_not_map_is_a_record_error_and_the_others_go_on() -> None:
    def convert(value: str) -> int:
        if not value.isdigit():
            raise RecordError(value, "not a number")
        return int(value)

    done, errors = mapped(["1", "x", "3"], convert)
    assert done == [1, 3]
    assert [e.record_id for e in errors] == ["x"]


def test_follow_reads_until_a_page_names_no_next() -> None:
    pages = {"a": ("b", 2), "b": (None, 3)}
    read = list(follow(("a", 1), lambda cursor: pages[cursor], lambda page: page[0]))
    assert [n for _, n in read] == [1, 2, 3]


def test_write_back_carries_the_values_it_replaces_and_none_when_nothing_changes() -> None:
    c = fit_contact(snapshot={"lifecyclestage": "lead"})
    wb = write_back(c, {"lifecyclestage": "marketingqualifiedlead", "hs_lead_status": "OPEN"})
    assert wb is not None and wb.record_id == c.id
    assert wb.previous == {"lifecyclestage": "lead", "hs_lead_status": ""}
    assert write_back(c, {}) is None
