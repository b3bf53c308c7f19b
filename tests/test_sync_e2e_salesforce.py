"""End to end through the CLI on the Salesforce sandbox: promote, settle, revert an undocumented SQL."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.salesforce_fixtures import salesforce
from tests.test_cli import run

IDEAL_DEMO, COMPETITOR, SQL_DOCUMENTED, SQL_MISSING_BUDGET = 0, 7, 9, 10


def env(url: str, db: Path) -> dict[str, str]:
    return {"CRMSYNC_SALESFORCE__INSTANCE_URL": url, "CRMSYNC_SALESFORCE__LOGIN_URL": url,
            "CRMSYNC_SALESFORCE__CLIENT_ID": "crmsync-app", "CRMSYNC_SALESFORCE__CLIENT_SECRET": "s3cret",
            "CRMSYNC_DATABASE_URL": f"sqlite:///{db}"}


def lead(app: Any, index: int) -> dict[str, Any]:
    return dict(list(app.org.records["Lead"].values())[index])


def post(url: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def test_salesforce_sync_promotes_settles_and_reverts(tmp_path: Path) -> None:
    with salesforce(40, real_clock=True, shape="rich") as (app, url):
        first = run("sync", "--once", "--crm", "salesforce", env=env(url, tmp_path / "s.db"))
        assert first.returncode == 0, first.stderr
        assert lead(app, IDEAL_DEMO)["CRMSync_Stage__c"] == "MQL"
        assert lead(app, COMPETITOR)["CRMSync_Stage__c"] == "Disqualified"
        assert lead(app, COMPETITOR)["Status"] == "Closed - Not Converted"
        documented = lead(app, SQL_DOCUMENTED)
        assert documented["CRMSync_Stage__c"] == "SQL" and documented["Status"] == "Qualified"
        blocked = lead(app, SQL_MISSING_BUDGET)
        assert blocked["Status"] != "Qualified" and "budget: empty" in blocked["CRMSync_SQL_Blocked_Reason__c"]
        tasks = [t for t in app.org.records["Task"].values() if t.get("CRMSync_Task_Key__c")]
        assert any(t["WhoId"] == blocked["Id"] for t in tasks)

        app.reset_counts()
        second = run("sync", "--once", "--crm", "salesforce", env=env(url, tmp_path / "s.db"))
        assert second.returncode == 0, second.stderr
        assert "composite.update" not in app.call_counts() and "composite.create" not in app.call_counts()

        mql = lead(app, IDEAL_DEMO)["Id"]
        post(url, f"/__sandbox/leads/{mql}/sql", {"bant": {"need": "Lead routing loses a third of demo requests",
                                                           "authority": "VP Finance signs", "timeline": "",
                                                           "budget": "$40k approved"}})
        third = run("sync", "--once", "--crm", "salesforce", env=env(url, tmp_path / "s.db"))
        assert third.returncode == 0, third.stderr
        reverted = app.org.records["Lead"][mql]
        assert reverted["Status"] == "Open - Not Contacted" and reverted["CRMSync_Stage__c"] == "MQL"
        assert "timeline: empty" in reverted["CRMSync_SQL_Blocked_Reason__c"]
        assert any(t["WhoId"] == mql for t in app.org.records["Task"].values() if t.get("CRMSync_Task_Key__c"))
