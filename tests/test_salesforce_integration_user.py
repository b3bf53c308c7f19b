"""`crmsync setup` run by an admin for another user: the permission set goes to the integration user named
by CRMSYNC_SALESFORCE__INTEGRATION_USER (by Username), and `doctor` checks that user's assignment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from crmsync.connectors.salesforce import SalesforceConnector, UnknownUser
from crmsync.sandbox.salesforce.org import INTEGRATION_USER
from crmsync.settings import SalesforceSettings
from tests.hubspot_fixtures import DEFS
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
