"""`crmsync setup` run by an admin for another user: the permission set goes to the integration user named
by CRMSYNC_SALESFORCE__INTEGRATION_USER (by Username), and `doctor` checks that user's assignment. An
integration user on the "Minimum Access - API Only Integrations" profile has no object access until setup's
permission set grants it (ObjectPermissions): before, a pass stops naming the object and the fix; without
Read on Opportunity, leads sync and the deal stream is off, said once."""

from __future__ import annotations

import json
import logging
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from crmsync.crms.salesforce.connector import OBJECT_ACCESS, SalesforceConnector, UnknownUser
from crmsync.crms.salesforce.sandbox import SalesforceApp
from crmsync.crms.salesforce.sandbox.org import INTEGRATION_USER, FieldError
from crmsync.crms.salesforce.settings import SalesforceSettings
from crmsync.store import Store
from crmsync.sync import SyncPass
from tests.conftest import SQLITE_ONLY
from tests.hubspot_fixtures import DEFS, SEED_NOW
from tests.salesforce_fixtures import salesforce
from tests.test_cli import run
from tests.test_salesforce_setup import BANT, fresh_org
from tests.test_sync_e2e_salesforce import env

SERVICE = "0055g0000000002AAA"
USERNAME = "svc-crmsync@acme.example"
ADMIN = INTEGRATION_USER  # every OAuth session of the sandbox acts as this user: here, the admin


def connector(url: str, integration_user: str | None = None, token: str | None = None) -> SalesforceConnector:
    """The admin's connector (client credentials), or one with a session of its own (`token`)."""
    login = {"access_token": SecretStr(token)} if token else {"client_id": "crmsync-app",
                                                               "client_secret": SecretStr("s3cret")}
    settings = SalesforceSettings(instance_url=url, login_url=url, integration_user=integration_user, **login)
    return SalesforceConnector(settings, DEFS.definitions.mappings.salesforce)


def add_service_user(app: object, *, active: bool = True) -> None:
    app.org.records["User"][SERVICE] = {"Id": SERVICE, "Username": USERNAME,  # type: ignore[attr-defined]
                                        "Name": "crmsync", "IsActive": active}


def test_an_admins_setup_grants_the_named_integration_user(tmp_path: Path) -> None:
    with salesforce(30, custom_fields=False, real_clock=True) as (app, url):
        fresh_org(app)
        add_service_user(app)
        before = {c.name: c for c in connector(url, USERNAME).doctor()}["salesforce permission set"]
        assert not before.ok and f"not assigned to user {USERNAME}" in before.detail
        admin = env(url, tmp_path / "admin.db") | {"CRMSYNC_SALESFORCE__INTEGRATION_USER": USERNAME}
        setup = run("setup", "--crm", "salesforce", env=admin)
        assert setup.returncode == 0, setup.stderr
        assert all(app.org.granted(SERVICE, *name.split("."), edit=True) for name in BANT)
        assert not any(app.org.granted(ADMIN, *name.split(".")) for name in BANT)  # the admin got nothing
        after = {c.name: c for c in connector(url, USERNAME).doctor()}["salesforce permission set"]
        assert after.ok and f"assigned to user {USERNAME}" in after.detail
        # the integration user's own session: every check green, and a pass decides its leads
        service = {"CRMSYNC_SALESFORCE__INSTANCE_URL": url, "CRMSYNC_SALESFORCE__ACCESS_TOKEN": app.org.issue_token(
            SERVICE), "CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'service.db'}"}
        doctor = run("doctor", "--crm", "salesforce", env=service)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert run("sync", "--once", "--crm", "salesforce", env=service).returncode == 0
        assert all(lead.get("CRMSync_Stage__c") for lead in app.org.records["Lead"].values()
                   if not lead["IsConverted"])


@pytest.mark.parametrize(("active", "message"), [(None, "no user has the Username"), (False, "is inactive")])
def test_an_unknown_or_inactive_integration_user_is_a_clear_error(active: bool | None, message: str) -> None:
    with salesforce(0, custom_fields=False) as (app, url):
        fresh_org(app)
        if active is not None:
            add_service_user(app, active=active)
        conn = connector(url, USERNAME)
        with pytest.raises(UnknownUser, match=message):
            conn.setup()
        assert not app.org.records["PermissionSetAssignment"]  # nothing assigned to anyone, nothing created
        assert "CRMSync_Stage__c" not in app.org.fields["Lead"]
        check = {c.name: c for c in conn.doctor()}["salesforce permission set"]
        assert not check.ok and message in check.detail and "CRMSYNC_SALESFORCE__INTEGRATION_USER" in check.detail


def service_env(url: str, token: str, database_url: str) -> dict[str, str]:
    """The daemon's settings for the integration user's own session (as its JWT login would give it)."""
    return {"CRMSYNC_SALESFORCE__INSTANCE_URL": url, "CRMSYNC_SALESFORCE__ACCESS_TOKEN": token,
            "CRMSYNC_DATABASE_URL": database_url}


def minimum_access_user(url: str) -> tuple[str, str]:
    """An integration user on the "Minimum Access - API Only Integrations" profile, made the way a test
    or the demo would (the sandbox's control endpoint): its id and a session of it."""
    answer = post_json(url, "/__sandbox/users", {"username": USERNAME, "minimum_access": True, "token": True})
    return str(answer["id"]), str(answer["token"])


def post_json(url: str, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


# SQLite only (permissions, setup: the connector's); a PostgreSQL pass refused: test_object_type_registered.py
@SQLITE_ONLY
def test_a_minimum_access_user_fails_clearly_until_an_admin_runs_setup_for_it(
        tmp_path: Path, database_url: str) -> None:
    with salesforce(30, custom_fields=False, real_clock=True) as (app, url):
        fresh_org(app)
        service, token = minimum_access_user(url)
        own = service_env(url, token, database_url)
        refused = run("sync", "--once", "--crm", "salesforce", env=own)
        assert refused.returncode != 0
        said = refused.stdout + refused.stderr
        assert "cannot read Lead" in said and "crmsync setup" in said, said
        doctor = run("doctor", "--crm", "salesforce", env=own)
        assert doctor.returncode != 0 and "read/edit on Lead" in doctor.stdout, doctor.stdout

        admin = env(url, tmp_path / "admin.db") | {"CRMSYNC_SALESFORCE__INTEGRATION_USER": USERNAME}
        setup = run("setup", "--crm", "salesforce", env=admin)
        assert setup.returncode == 0, setup.stderr
        granted = ("ObjectPermissions on Account (read), Lead (read/edit), Contact (read/edit), Campaign (read), "
                   "Opportunity (read)")
        assert granted in setup.stdout and "Edit Tasks" in setup.stdout, setup.stdout
        for sobject, needs in OBJECT_ACCESS.items():
            assert set(needs) <= app.org.object_access(service, sobject), sobject
        assert app.org.object_access(ADMIN, "Lead") and app.org.object_access(service, "Account") == {"read"}
        rows = dict(app.org.records["ObjectPermissions"])
        assert connector(url, USERNAME).setup() == []  # idempotent: nothing created, nothing updated
        assert app.org.records["ObjectPermissions"] == rows

        app.reset_counts()
        doctor = run("doctor", "--crm", "salesforce", env=own)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "may read, edit and create what crmsync needs" in doctor.stdout
        assert app.call_counts()["describe.global"] == 1  # the object check is one call
        synced = run("sync", "--once", "--crm", "salesforce", env=own)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert all(lead.get("CRMSync_Stage__c") for lead in app.org.records["Lead"].values()
                   if not lead["IsConverted"])


def test_setup_widens_a_row_that_lacks_a_permission_instead_of_adding_one() -> None:
    with salesforce(0, custom_fields=False) as (app, url):
        fresh_org(app)
        service, _ = minimum_access_user(url)
        pset = app.org.create("PermissionSet", {"Name": "CRMSync_Integration", "Label": "crmsync"})["Id"]
        app.org.create("ObjectPermissions", {"ParentId": pset, "SobjectType": "Lead", "PermissionsRead": True})
        assert app.org.object_access(service, "Lead") == set()  # not assigned yet
        done = connector(url, USERNAME).setup()
        assert "ObjectPermissions widened on Lead (+edit)" in done, done
        lead = [r for r in app.org.records["ObjectPermissions"].values() if r["SobjectType"] == "Lead"]
        assert len(lead) == 1 and lead[0]["PermissionsEdit"] and lead[0]["PermissionsRead"]
        assert app.org.object_access(service, "Lead") == {"read", "edit"}


def test_contact_and_opportunity_read_need_account_read_and_setup_grants_it_first() -> None:
    """The sandbox refuses a Contact or Opportunity read row in a permission set without Account read (as
    Salesforce refuses a permission whose dependency is missing); setup's rows carry Account's first."""
    with salesforce(0, custom_fields=False) as (app, url):
        fresh_org(app)
        minimum_access_user(url)
        pset = app.org.create("PermissionSet", {"Name": "Other", "Label": "other"})["Id"]
        for sobject in ("Contact", "Opportunity"):
            with pytest.raises(FieldError) as refused:
                app.org.create("ObjectPermissions", {"ParentId": pset, "SobjectType": sobject, "PermissionsRead": True})
            assert refused.value.code == "FIELD_INTEGRITY_EXCEPTION" and "Read Accounts" in str(refused.value)
        done = connector(url, USERNAME).setup()
        assert any(line.startswith("ObjectPermissions on Account (read), ") for line in done), done


def set_up_without_opportunity_read(app: SalesforceApp, url: str) -> tuple[str, str]:
    """A fresh org, a minimum-access integration user an admin ran setup for, then took its Read on
    Opportunity away: (the user's id, its token)."""
    fresh_org(app)
    service, token = minimum_access_user(url)
    assert connector(url, USERNAME).setup()
    for rid, row in list(app.org.records["ObjectPermissions"].items()):
        if row["SobjectType"] == "Opportunity":  # the admin withholds Read on Opportunity
            del app.org.records["ObjectPermissions"][rid]
    return service, token


# SQLite only (a stream turned off: the connector's); PostgreSQL's: test_stream_cursors, test_store_objects
@SQLITE_ONLY
def test_without_opportunity_read_leads_sync_and_the_deal_stream_is_off_said_once(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with salesforce(30, custom_fields=False) as (app, url):
        service, token = set_up_without_opportunity_read(app, url)
        assert "read" not in app.org.object_access(service, "OpportunityContactRole")
        store, conn = Store.open(database_url), connector(url, token=token)
        app.reset_counts()
        with caplog.at_level(logging.WARNING, logger="crmsync"):
            first = SyncPass(store, conn, DEFS, clock=lambda: SEED_NOW).run()
            second = SyncPass(store, conn, DEFS, clock=lambda: SEED_NOW + timedelta(minutes=5)).run()
        assert first.outcome == second.outcome == "ok" and first.counts["decided"] == 30, first.counts
        warnings = [r.getMessage() for r in caplog.records if "deal stream off" in r.getMessage()]
        assert len(warnings) == 1 and "cannot read Opportunity" in warnings[0]  # said once, not every pass
        refused = [row["count"] for row in app.call_counts_by_status() if row["status"] in (400, 404)]
        assert refused == [1]  # asked once per connector
        objects = next(c for c in conn.doctor() if c.name == "salesforce objects")
        assert not objects.ok and "read on Opportunity (the deal stream is off without it)" in objects.detail
