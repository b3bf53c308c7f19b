"""HubSpot's industry values reach fit through the definitions' `industries` mapping (issue 17 item 12).

A portal whose contact `industry` is a dropdown of HubSpot's options stores internal values such as
COMPUTER_SOFTWARE; the connector maps value or label to the definitions' words, and a value nobody
mapped fails fit with a reason that names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts.exceptions import ApiException
from urllib3.util.retry import Retry

from crmsync.crms.hubspot.sandbox.seeding import INDUSTRY
from crmsync.crms.hubspot.sandbox.state import INDUSTRY_OPTIONS, industry_dropdown
from crmsync.definitions import load_definitions
from crmsync.model import Contact
from crmsync.rules.compiled import compiled
from crmsync.rules.fit import judge_fit
from crmsync.sandbox.seed import INDUSTRY_FOR
from tests.builders import DEFAULT_DEFINITIONS, EPOCH, LATER
from tests.hubspot_fixtures import DEFS, TOKEN, connector, hubspot, need_shared

FIT_PERSON = {"jobtitle": "VP Finance", "numemployees": "100-500", "country": "United States"}


def _pulled(url: str, industries: list[str], definitions: Any = DEFS) -> dict[str, Contact]:
    client = HubSpot(access_token=TOKEN, host=url, retry=Retry(total=0))
    for i, industry in enumerate(industries):
        client.crm.contacts.basic_api.create(simple_public_object_input_for_create={"properties": {
            **FIT_PERSON, "email": f"p{i}@northwind.com", "industry": industry}})
    conn = connector(url, definitions=definitions)
    pulled = [c for page in conn.pull_changed(EPOCH, LATER) for c in page.contacts]
    return {str(c.email): c for c in pulled}


def _industry_criterion(contact: Contact, definitions: Any = DEFS) -> Any:
    return next(c for c in judge_fit(contact, compiled(definitions)).criteria if c.name == "industry")


def test_the_sandbox_industry_options_are_hubspots_own() -> None:
    path = need_shared("recorded", "hubspot", "properties_companies_subset.json")
    recorded = {p["name"]: p for p in json.loads(path.read_text())["results"]}["industry"]
    real = {o["value"]: o["label"] for o in recorded["options"]}
    assert recorded["type"] == "enumeration"
    assert {value: real.get(value) for value, _ in INDUSTRY_OPTIONS} == dict(INDUSTRY_OPTIONS)


def test_the_seed_stores_hubspot_values_the_default_definitions_map() -> None:
    values = dict(INDUSTRY_OPTIONS)
    mapped = DEFS.definitions.mappings.hubspot.industries
    fit = {word.casefold() for word in DEFS.definitions.fit.industries}
    for word in set(INDUSTRY_FOR.values()) - {"Biotechnology", "Media Production"}:  # the seed replaces those two
        assert INDUSTRY[word] in values, word
        assert mapped[INDUSTRY[word]] in fit, word


def test_computer_software_passes_fit_and_an_unmapped_value_fails_naming_it() -> None:
    with hubspot() as (app, url):
        industry_dropdown(app.portal)
        contacts = _pulled(url, ["COMPUTER_SOFTWARE", "MINING_METALS"])
    software = _industry_criterion(contacts["p0@northwind.com"])
    assert contacts["p0@northwind.com"].industry == "software"
    assert software.passed, software.why
    mining = _industry_criterion(contacts["p1@northwind.com"])
    assert not mining.passed and "MINING_METALS" in mining.why


def test_a_mapping_may_name_the_portals_label(tmp_path: Path) -> None:
    file = tmp_path / "definitions.yaml"
    file.write_text(DEFAULT_DEFINITIONS.read_text().replace(
        "      RETAIL: retail\n", "      RETAIL: retail\n      \"Mining & Metals\": logistics\n", 1))
    definitions = load_definitions(file)
    with hubspot() as (app, url):
        industry_dropdown(app.portal)
        contacts = _pulled(url, ["MINING_METALS"], definitions)
    assert contacts["p0@northwind.com"].industry == "logistics"
    assert _industry_criterion(contacts["p0@northwind.com"], definitions).passed


def test_a_dropdown_portal_refuses_a_value_outside_its_options() -> None:
    with hubspot() as (app, url):
        industry_dropdown(app.portal)
        client = HubSpot(access_token=TOKEN, host=url, retry=Retry(total=0))
        with pytest.raises(ApiException) as raised:
            client.crm.contacts.basic_api.create(simple_public_object_input_for_create={"properties": {
                "email": "x@northwind.com", "industry": "Software"}})
        assert raised.value.status == 400
