"""Salesforce connector on simple-salesforce.

Leads changed in a window are read with SOQL on SystemModstamp (an indexed cursor), paged by
nextRecordsUrl and keyed by Id so a window can resume; their Tasks, Events and campaign
responses come from chunked IN queries (never a query per lead), and the Tasks, Events and
CampaignMembers changed in a window name the leads whose activities changed while they did not
(`touched`: Salesforce moves a lead only with its LastActivityDate). A converted lead's activities are
on its converted contact, and count as its own. Opportunities are a deal stream read the way leads
are (`pull_deals`), each with the leads converted into it or into a contact with a role on it. Writes go through
composite/sobjects, 200 records a call, with a result per record. Every SOQL literal is escaped.

simple-salesforce builds https URLs: one requests adapter (`_Transport`) sends them as plain HTTP
to hosts configured with http:// (the sandboxes on loopback) and puts a timeout on every request,
which the library does not. An expired session is renewed and the same call made again, once; every
other failure, and every malformed answer, is classified by the error table in calls.py. The login
flow (JWT bearer, client credentials, password) is chosen in auth.py. `setup` creates the
fields and grants them to the integration user through a permission set (field-level security), with the
object permissions crmsync needs (OBJECT_ACCESS); `doctor` checks those objects in one Describe Global call,
tells a missing field from one the user cannot see, and says whether the BANT guard (guard.py)
is on. An object the user may not read is named with the fix (ObjectAccessError); without Opportunity the
deal stream is off, said once.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding, Operation
from simple_salesforce.exceptions import SalesforceError, SalesforceOperationError

from crmsync.connectors import calls
from crmsync.connectors.base import Fence, ObjectPage, ObjectStream, PulledPage, Recheck
from crmsync.connectors.core import ConnectorCore, chunks, follow, mapped, write_back
from crmsync.connectors.retry import RetryPolicy
from crmsync.crms.salesforce.auth import grant_form
from crmsync.crms.salesforce.guard import guard_check
from crmsync.crms.salesforce.mapping import (
    CURRENCY,
    OPPORTUNITY_FIELDS,
    SOURCE,
    STAMPS_READ,
    TASK_KEY,
    SalesforceMapping,
    contact_fields,
    custom_fields,
    id_list,
    picklist_values,
    quote,
    soql_time,
    to_deal,
)
from crmsync.crms.salesforce.settings import SalesforceSettings
from crmsync.definitions.schema import CrmMapping
from crmsync.errors import AuthError, CrmsyncError, FatalError, RecordError, RetriableError, StreamRefused
from crmsync.model import Activity, Check, Contact, Deal, LeadStatus, ObjectType, OwnerTask, WriteBack, WriteResult

T = TypeVar("T")
log = logging.getLogger("crmsync.salesforce")
PAGE_KEYS = ("records", "done")  # what every query page has; a page without them is malformed
COMPOSITE = 200
BULK_PAGE = 10_000
BULK_THRESHOLD = 50_000
IN_CHUNK = 300  # ids per IN list: about 7,000 characters of SOQL, far below the 100,000 limit
PERMISSION_SET = "CRMSync_Integration"
ACTIVITY_STREAMS = {"Task": "WhoId", "Event": "WhoId", "CampaignMember": "LeadId"}
"""The activity streams (the sObject, also the cursor's suffix -> the field naming the lead)."""
LEAD_PREFIX = "00Q"  # the Lead key prefix: WhoId also names contacts (003)
CONTACT_PREFIX = "003"
REMEMBERED = 50_000
"""Leads whose converted contact (or none) the connector keeps in memory, most recent first."""
BULK_JOB_ATTEMPTS = 3
CONVERTED_CONTACT = "ConvertedContactId"
"""In a write's `previous`: the converted Contact a converted lead's write goes to."""
OBJECT_ACCESS: dict[str, tuple[str, ...]] = {
    "Account": ("read",), "Lead": ("read", "edit"), "Contact": ("read", "edit"), "Task": ("read", "create"),
    "Event": ("read",), "CampaignMember": ("read",), "Campaign": ("read",), "Opportunity": ("read",),
    "OpportunityContactRole": ("read",)}
"""What crmsync does with each object: reads leads and writes them, a converted lead's Contact too; reads
activities and campaign responses (with their Campaign's name and type), creates owner tasks; reads
Opportunities and their contact roles (the deal stream). Create and edit each need read on the same
object ("Requires PermissionsRead for the same object to be true": object reference, ObjectPermissions).
Account is read because a Contact and an Opportunity belong to one and their object permissions depend on
its read (the FIELD_INTEGRITY_EXCEPTION "Permission Read Contracts depends on permission(s): Read Accounts"
shape, support.picnet.net 114094068031; for Contact and Opportunity unconfirmed, docs/salesforce.md): it is
listed first, so setup's rows are created with Account's before the rows that depend on it."""
DEAL_OBJECTS = ("Opportunity", "OpportunityContactRole")
"""Without read on these the deal stream is off (one warning, crmsync.sync.pull); every other object is needed."""
_PERMISSION = {"read": "PermissionsRead", "create": "PermissionsCreate", "edit": "PermissionsEdit"}
_UNSUPPORTED = re.compile(r"sObject type '([^']+)' is not supported")


class BulkJobFailed(FatalError):
    """A Bulk API 2.0 job ended Failed or Aborted (simple-salesforce raises SalesforceOperationError,
    which is no SalesforceError); polling it again cannot help, a new job may."""


class UnknownUser(FatalError):
    """CRMSYNC_SALESFORCE__INTEGRATION_USER names no user, or an inactive one."""


class ObjectAccessError(StreamRefused):
    """The user may not read an object crmsync queries: Salesforce answers as if the object did not exist
    (`_refused_object`). `sobject` names it. Refused to an object stream's pull, the stream is turned off
    (crmsync.sync.pull); anywhere else (Lead) it stops, as any AuthError."""

    def __init__(self, sobject: str, message: str) -> None:
        super().__init__(message, crm="Salesforce", crm_object=sobject, missing=f"this user cannot read {sobject}",
                         fix=f"grant Read on it: run `crmsync setup`, which grants it through permission set "
                             f"{PERMISSION_SET}, or grant it on the integration user's profile")
        self.sobject = sobject


class _Transport(HTTPAdapter):
    """Timeouts on every request; https -> http for hosts configured with plain HTTP."""

    def __init__(self, timeout: float, plain_hosts: set[str]) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout
        self.plain_hosts = plain_hosts

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if url.startswith("https://") and urlsplit(url).netloc in self.plain_hosts:
            request.url = "http://" + url[len("https://"):]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, *args, **kwargs)


class SalesforceConnector(ConnectorCore):
    name = "salesforce"
    write_batch = COMPOSITE  # one composite call: 200 records

    def __init__(self, settings: SalesforceSettings, mapping: CrmMapping, *, retry: RetryPolicy | None = None,
                 bulk_threshold: int = BULK_THRESHOLD, bulk_wait: float = 2.0,
                 fit_industries: Sequence[str] = (), scored_sources: Sequence[str] = ()) -> None:
        if not settings.instance_url and not settings.login_url:
            raise FatalError("CRMSYNC_SALESFORCE__INSTANCE_URL is not set")
        super().__init__(retry, 0.8)
        self.settings = settings
        self.map = SalesforceMapping(mapping)
        self.fit_industries = list(fit_industries)
        self.scored_sources = list(scored_sources)
        """The source words the definitions' property rules give points for (doctor lists org values none scores)."""
        self.bulk_threshold = bulk_threshold
        self.bulk_wait = bulk_wait
        self.session = requests.Session()
        plain = {urlsplit(u).netloc for u in (settings.instance_url, settings.login_url)
                 if u and u.startswith("http://")}
        transport = _Transport(settings.timeout_seconds, plain)
        self.session.mount("https://", transport)
        self.session.mount("http://", transport)
        self.sf: Salesforce | None = None
        self.logins = 0
        self.activity_streams = tuple(ACTIVITY_STREAMS)
        self.activity_interval = timedelta(seconds=settings.activity_poll_seconds)
        self._currency: bool | None = None
        self._contact_of: dict[str, str | None] = {}
        """Lead id -> its ConvertedContactId (None: not converted), from the leads read."""
        self._stamps_ready = False
        """Whether this user sees crmsync's fields on Contact (setup created and granted them)."""

    # --- sessions and the one place every call goes through -------------------------------------

    def _login(self) -> Salesforce:
        s = self.settings
        if s.username or s.client_id:
            token, instance = self._oauth()
        elif s.access_token is not None and s.instance_url:
            if self.logins:
                # A fixed token cannot be renewed: logging in "again" would send the same dead token
                raise AuthError("Salesforce refused CRMSYNC_SALESFORCE__ACCESS_TOKEN (expired or revoked): set a "
                                "new one, or configure the JWT bearer flow so crmsync renews its own session")
            token, instance = s.access_token.get_secret_value(), s.instance_url
        else:
            raise FatalError("Salesforce credentials missing: set CRMSYNC_SALESFORCE__CLIENT_ID and __USERNAME "
                             "with __PRIVATE_KEY_FILE (JWT bearer), or __CLIENT_ID and __CLIENT_SECRET (client "
                             "credentials), or the username/password/security token, or __ACCESS_TOKEN")
        netloc = urlsplit(instance).netloc
        if instance.startswith("http://"):
            transport = self.session.get_adapter("https://x")
            if isinstance(transport, _Transport):
                transport.plain_hosts.add(netloc)
        sf = Salesforce(instance_url=instance, session_id=token, version=s.api_version, session=self.session)
        sf.headers["Sforce-Query-Options"] = "batchSize=2000"
        self.logins += 1
        return sf

    def _oauth(self) -> tuple[str, str]:
        s = self.settings
        required = ("access_token", "instance_url")
        try:
            response = self.session.post(s.token_url, data=grant_form(s))
        except requests.RequestException as exc:
            raise calls.classify(calls.Answer("Salesforce", "login", exception=exc, login=True)) from None
        if response.status_code == 200 and calls.shape(response.text, required) == calls.JSON:
            data = response.json()
            return str(data["access_token"]), str(data["instance_url"])
        # an HTML, empty or cut-short answer, or a 5xx, is retried; only an OAuth refusal such as
        # invalid_grant means wrong credentials (calls.TABLE)
        raise calls.classify(calls.Answer("Salesforce", "login", response.status_code, response.text, login=True,
                                          required=required,
                                          retry_after=calls.retry_after(response.headers))) from None

    def _call(self, what: str, fn: Callable[[Salesforce], T], required: tuple[str, ...] = ()) -> T:
        """One call, retried as the error table says; `required`: keys its JSON answer must have."""
        return self.retry.run(lambda: self._attempt(what, fn, required))

    def _attempt(self, what: str, fn: Callable[[Salesforce], T], required: tuple[str, ...] = ()) -> T:
        """One try of one call. A refused session (401) is renewed and the call made again, once;
        a second refusal right after a new login is fatal."""
        renewed = False
        while True:
            if self.sf is None:
                self.sf = self._login()
            self.calls += 1
            failure: Exception | None = None
            result: Any = None
            try:
                result = fn(self.sf)
            except Exception as exc:  # simple-salesforce's, requests' and the JSON decoder's exceptions
                failure = exc
            answer = _answer(what, failure, result, required)
            if answer is None:  # the governor reads the daily API usage Salesforce reports (Sforce-Limit-Info)
                usage = self.sf.api_usage.get("api-usage") if self.sf is not None else None
                budget = (usage.total, usage.total - usage.used, 24 * 3600) if usage is not None else (None, None, None)
                self._answered(what, 200, *budget)
                return result  # type: ignore[no-any-return]
            error = self._failed(answer, failure)
            if not isinstance(error, calls.SessionExpired):
                raise error from None
            if renewed:
                raise AuthError(f"Salesforce {what}: HTTP 401 again right after a new login: the org refuses this "
                                "user's sessions (user frozen or deactivated, or the connected app's session policy)")
            self.sf, renewed = None, True  # a new session at the top of the loop, then the same call

    def _failed(self, answer: calls.Answer, failure: Exception | None) -> CrmsyncError:
        return _refusal(answer, super()._failed(answer, failure))

    def _soql(self, what: str, query: str, *, include_deleted: bool = False,
              call: Callable[..., Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Pages of records for one SOQL query, following nextRecordsUrl. `call`: `_call` (retried)
        or `_attempt` (inside a unit that is retried as a whole)."""
        call = call or self._call
        first = call(what, lambda sf: sf.query(query, include_deleted=include_deleted), PAGE_KEYS)
        for page in follow(first, lambda url: call(what, _more(url), PAGE_KEYS), _next_records):
            yield list(page["records"] or [])

    def _query_more(self, what: str, url: str) -> Any:
        return self._call(what, _more(url), PAGE_KEYS)

    # --- pulling --------------------------------------------------------------------------------

    def pull_changed(self, since: datetime, until: datetime, after_key: str | None = None, *,
                     backfill: bool = False) -> Iterator[PulledPage]:
        """Leads with since <= SystemModstamp < until, by Id (so a window resumes after a page).
        A backfill of more than `bulk_threshold` leads is read with a Bulk API 2.0 query job."""
        where = _window(since, until, after_key)
        select = f"SELECT {', '.join(self.map.lead_fields())} FROM Lead WHERE {where}"
        bulk = backfill and self._count(where) > self.bulk_threshold
        # A Bulk query has no ORDER BY: "Use of ORDER BY in a Bulk 2.0 query disables PKChunking ...
        # potentially results in query timeouts" (Bulk API 2.0, "Troubleshooting Query Timeouts").
        # Its pages come in no order, so they carry no resume key (a backfill interrupted there reads
        # the window again; decisions are idempotent).
        pages = self._bulk(select) if bulk else self._soql("query leads", f"{select} ORDER BY Id",
                                                           include_deleted=True)
        for records in pages:
            page = PulledPage()
            page.contacts, page.errors = self._leads(_live(records, page.deleted))
            page.resume_key = str(records[-1]["Id"]) if records and not bulk else None
            yield page

    @property
    def object_streams(self) -> tuple[ObjectStream, ...]:
        """The objects read beside leads (`ObjectStreams`), each with the activity streams (every
        `activity_interval`: an idle pass stays one query)."""
        return (ObjectStream(ObjectType.DEAL, "deals", self.pull_deals, every=self.activity_interval,
                             meanwhile="pipeline is judged from lead conversions meanwhile"),)

    def pull_deals(self, since: datetime, until: datetime, after_key: str | None = None) -> Iterator[ObjectPage]:
        """Opportunities with since <= SystemModstamp < until, by Id, as the lead pull reads its window
        (queryAll, resumable after a page, deleted ones listed); each with the leads it belongs to
        (`_deal_leads`). CurrencyIsoCode is asked for only in a multicurrency org. A user that may not read
        Opportunity or OpportunityContactRole is answered as if it did not exist: an `ObjectAccessError` (a
        `StreamRefused`), and the pass turns the deal stream off (as for HubSpot's token without the deals
        scope), not a failed pass every time."""
        fields = OPPORTUNITY_FIELDS + ([CURRENCY] if self._multicurrency() else [])
        query = f"SELECT {', '.join(fields)} FROM Opportunity WHERE {_window(since, until, after_key)} ORDER BY Id"
        for records in self._soql("query opportunities", query, include_deleted=True):
            page = ObjectPage(resume_key=str(records[-1]["Id"]) if records else None)
            live = _live(records, page.deleted)
            leads = self._deal_leads([str(r["Id"]) for r in live if r.get("Id")])
            page.objects, page.errors = mapped(live, partial(_deal, leads=leads))
            yield page

    def _multicurrency(self) -> bool:
        """Whether Opportunity has CurrencyIsoCode: "available only for orgs with the multicurrency feature
        enabled" (object reference, Opportunity); a new org has none (the recorded describe of a scratch
        org has no CurrencyIsoCode). Read once from the describe."""
        if self._currency is None:
            self._currency = any(f.get("name") == CURRENCY for f in self._describe("Opportunity")["fields"])
        return self._currency

    def _deal_leads(self, opportunity_ids: list[str]) -> dict[str, set[str]]:
        """Opportunity id -> the leads it belongs to: leads converted into it (`ConvertedOpportunityId`) and
        leads whose converted contact has a role on it (OpportunityContactRole: ContactId, OpportunityId;
        object reference, OpportunityContactRole). Two queries per 300 opportunities: their contact roles,
        then the leads converted into any of those opportunities or contacts."""
        found: dict[str, set[str]] = {}
        for chunk in chunks(opportunity_ids, IN_CHUNK):
            roles: dict[str, set[str]] = {}
            for records in self._soql("query contact roles", "SELECT OpportunityId, ContactId FROM "
                                      f"OpportunityContactRole WHERE OpportunityId IN {id_list(chunk)}"):
                for r in records:
                    if r.get("ContactId"):
                        roles.setdefault(str(r["ContactId"]), set()).add(str(r["OpportunityId"]))
            for lead, (opportunity, contact) in self._converted_leads(chunk + sorted(roles)).items():
                into = {opportunity} & set(chunk) if opportunity else set()
                for target in into | roles.get(contact or "", set()):
                    found.setdefault(target, set()).add(lead)
        return found

    def _converted_leads(self, ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
        """Leads converted into any of `ids` (opportunities or contacts: their key prefixes differ), by id:
        (ConvertedOpportunityId, ConvertedContactId). One query per 300 ids."""
        found: dict[str, tuple[str | None, str | None]] = {}
        for chunk in chunks(ids, IN_CHUNK):
            listed = id_list(chunk)
            for records in self._soql("query converted leads", "SELECT Id, ConvertedOpportunityId, ConvertedContactId "
                                      f"FROM Lead WHERE ConvertedOpportunityId IN {listed} OR ConvertedContactId IN "
                                      f"{listed}"):
                for r in records:
                    found[str(r["Id"])] = (r.get("ConvertedOpportunityId"), r.get("ConvertedContactId"))
                    self._remember(str(r["Id"]), r.get("ConvertedContactId"))
        return found

    def _count(self, where: str) -> int:
        answer = self._call("count leads", lambda sf: sf.query(f"SELECT COUNT() FROM Lead WHERE {where}"),
                            ("totalSize",))
        return int(answer.get("totalSize") or 0)

    def _bulk(self, query: str) -> Iterator[list[dict[str, Any]]]:
        """A Bulk API 2.0 queryAll job: created, polled until complete, its CSV read page by page."""
        def client(sf: Salesforce) -> Any:
            return _bulk_client(sf)

        def wait(job_id: str) -> Callable[[Salesforce], Any]:
            def call(sf: Salesforce) -> Any:
                try:
                    return client(sf).wait_for_job(job_id, True, self.bulk_wait)
                except SalesforceOperationError as exc:  # not a SalesforceError: the job Failed or Aborted
                    raise BulkJobFailed(str(exc)[:300]) from None
            return call

        for attempt in range(1, BULK_JOB_ATTEMPTS + 1):
            job = self._call("bulk create", lambda sf: client(sf).create_job(
                Operation.query_all, query, ColumnDelimiter.COMMA, LineEnding.LF))
            try:
                self._call("bulk wait", wait(job["id"]))
                break
            except BulkJobFailed as exc:  # a failed job stays failed: a new job, not another poll
                if attempt == BULK_JOB_ATTEMPTS:
                    raise RetriableError(f"Salesforce Bulk query job failed {attempt} times, last: {exc}") from None
        locator = ""
        while True:
            result = self._call("bulk results", _bulk_page(job["id"], locator))
            booleans = _BOOLEAN | {self.map.fields.sql_request} if self.map.fields.sql_request else _BOOLEAN
            yield [_typed(row, booleans) for row in csv.DictReader(io.StringIO(result["records"]))]
            locator = result.get("locator") or ""
            if not locator:
                return

    def read(self, lead_ids: list[str]) -> PulledPage:
        found = PulledPage()
        for chunk in chunks(lead_ids, IN_CHUNK):
            query = f"SELECT {', '.join(self.map.lead_fields())} FROM Lead WHERE Id IN {id_list(chunk)}"
            for records in self._soql("read leads", query):
                contacts, errors = self._leads(records)
                found.contacts += contacts
                found.errors += errors
        return found

    def _leads(self, records: list[dict[str, Any]]) -> tuple[list[Contact], list[RecordError]]:
        """Lead records mapped; where each went on conversion is remembered for `activities`, and a
        converted lead's crmsync stage and stamps are read from its Contact (`_stamps`)."""
        for record in records:
            if record.get("Id"):
                self._remember(str(record["Id"]), record.get("ConvertedContactId"))
        stamps = self._stamps(sorted({str(r["ConvertedContactId"]) for r in records
                                      if r.get("IsConverted") and r.get("ConvertedContactId")}))
        return mapped(records, partial(_lead, self.map, stamps))

    def _stamps(self, contact_ids: list[str]) -> dict[str, dict[str, Any]] | None:
        """The converted Contacts' crmsync fields (mapping.CONTACT_STAMPS), by Contact id: one
        query per 300 converted leads of a page (none for a page without any). None while this user
        cannot see those fields on Contact (setup has not created or granted them: `doctor` says so):
        the converted leads are then read from the Lead alone and not written, as before setup."""
        if not contact_ids:
            return {}
        if not self._stamps_ready:  # one describe until the fields are there, then never again
            visible = {f.get("name") for f in self._describe("Contact")["fields"]}
            self._stamps_ready = set(self.map.contact_fields()) <= visible
            if not self._stamps_ready:
                return None
        fields = ", ".join(["Id", *self.map.contact_fields()])
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(contact_ids, IN_CHUNK):
            for records in self._soql("read contact stamps", f"SELECT {fields} FROM Contact WHERE Id IN "
                                                             f"{id_list(chunk)}"):
                found |= {str(r["Id"]): r for r in records if r.get("Id")}
        return found

    def _remember(self, lead_id: str, contact_id: str | None) -> None:
        self._contact_of.pop(lead_id, None)
        self._contact_of[lead_id] = str(contact_id) if contact_id else None
        if len(self._contact_of) > REMEMBERED:
            del self._contact_of[next(iter(self._contact_of))]

    def _converted_contacts(self, lead_ids: list[str]) -> dict[str, str]:
        """Lead id -> its converted contact, for the converted ones among `lead_ids`: from the leads this
        connector read, else one query per 300 leads it has not read."""
        unknown = [lid for lid in lead_ids if lid not in self._contact_of]
        for chunk in chunks(unknown, IN_CHUNK):
            for records in self._soql("query converted contacts", "SELECT Id, ConvertedContactId FROM Lead WHERE "
                                      f"Id IN {id_list(chunk)}"):
                for record in records:
                    self._remember(str(record["Id"]), record.get("ConvertedContactId"))
        return {lid: contact for lid in lead_ids if (contact := self._contact_of.get(lid))}

    def activities(self, lead_ids: list[str]) -> dict[str, list[Activity]]:
        """Each lead's Tasks, Events and campaign responses. A converted lead's Tasks and Events are on its
        converted contact: "All open and closed Activities from the Lead are attached to the Account,
        Contact, and Opportunity" (Salesforce Help 000385227, "Activity history on a Lead when it is
        converted": their Name, WhoId, becomes the contact), and the ones logged later are too; so
        WhoId is matched against the lead and its converted contact."""
        found: dict[str, list[Activity]] = {lid: [] for lid in lead_ids}
        contacts = self._converted_contacts(lead_ids)
        lead_of = {lid: lid for lid in lead_ids} | {contact: lid for lid, contact in contacts.items()}
        for chunk in chunks(lead_ids, IN_CHUNK):
            ids = id_list(chunk)
            who = id_list(chunk + [contacts[lid] for lid in chunk if lid in contacts])
            for what, query, key, convert in (
                ("query tasks", f"SELECT Id, WhoId, Subject, Type, TaskSubtype, CreatedDate, {TASK_KEY} FROM Task "
                                f"WHERE WhoId IN {who}", "WhoId", self.map.task),
                ("query events", f"SELECT Id, WhoId, Subject, StartDateTime, CreatedDate FROM Event "
                                 f"WHERE WhoId IN {who}", "WhoId", self.map.event),
                ("query campaign members", f"SELECT Id, LeadId, CreatedDate, HasResponded, Campaign.Name, "
                                           f"Campaign.Type FROM CampaignMember WHERE LeadId IN {ids}", "LeadId",
                 self.map.campaign_response),
            ):
                for records in self._soql(what, query):
                    for record in records:
                        owner, activity = lead_of.get(str(record.get(key))), convert(record)
                        if owner is not None and activity is not None:
                            found[owner].append(activity)
        return found

    def touched(self, since: dict[str, datetime], until: datetime) -> set[str]:
        """Leads whose Tasks, Events or CampaignMembers (the streams in `since`, each from its own
        moment) changed before `until`. A lead's own SystemModstamp moves only when its LastActivityDate
        does (Salesforce Help 000387261, "Difference between SystemModStamp and LastModifiedDate"), so a
        second call on the same day, or a campaign response, leaves the lead as it was: these streams
        find them. The queries go in one Composite request, which "counts as a single call toward your
        API limits" (REST API Developer Guide, "Send Multiple Requests Using Composite"; at most 5
        queries); further pages follow nextRecordsUrl. A Task or Event on a contact (prefix 003) names the
        lead converted into that contact, if any (its activities moved there, `activities`): one more
        query per 300 such contacts."""
        if not since:
            return set()
        ceiling = until if until.microsecond == 0 else until.replace(microsecond=0) + timedelta(seconds=1)
        queries = {}
        for sobject, start in since.items():
            where = f"SystemModstamp >= {soql_time(start)} AND SystemModstamp < {soql_time(ceiling)}"
            if sobject == "Task":  # crmsync's own reminders change nothing it decides on (`task`)
                where += f" AND {TASK_KEY} = null"
            queries[sobject] = f"SELECT {ACTIVITY_STREAMS[sobject]} FROM {sobject} WHERE {where}"
        named: set[str] = set()
        for sobject, page in self.retry.run(lambda: self._composite_queries(queries)).items():
            key = ACTIVITY_STREAMS[sobject]
            for more in follow(page, partial(self._query_more, f"query changed {sobject}"), _next_records):
                named |= {str(r[key]) for r in more["records"] or [] if r.get(key)}
        contacts = sorted(i for i in named if i.startswith(CONTACT_PREFIX))
        return {i for i in named if i.startswith(LEAD_PREFIX)} | set(self._converted_leads(contacts))

    def _composite_queries(self, queries: dict[str, str]) -> dict[str, dict[str, Any]]:
        """One try of a Composite request of queries (by reference id): each one's first page. A
        subrequest's error is classified as that query's own answer would be."""
        version = self.settings.api_version
        answer = self._attempt("query changed activities", _rest("composite", "POST", {"compositeRequest": [
            {"method": "GET", "referenceId": ref, "url": f"/services/data/v{version}/query?{urlencode({'q': q})}"}
            for ref, q in queries.items()]}), ("compositeResponse",))
        pages: dict[str, dict[str, Any]] = {}
        for sub in answer["compositeResponse"] or []:
            ref, status, body = str(sub.get("referenceId")), sub.get("httpStatusCode"), sub.get("body")
            if ref in queries and status == 200 and calls.shape(body, PAGE_KEYS) == calls.JSON:
                pages[ref] = body
            elif ref in queries:
                failed = calls.Answer("Salesforce", f"query changed {ref}", status, body, required=PAGE_KEYS)
                raise _refusal(failed, calls.classify(failed))
        if set(pages) != set(queries):
            raise calls.malformed("Salesforce", "query changed activities",
                                  f"{len(queries)} queries sent, {len(pages)} answered")
        return pages

    # --- writing --------------------------------------------------------------------------------

    def changes(self, contact: Contact, writes: dict[str, str]) -> WriteBack | None:
        """A converted lead's write (crmsync's fields on Contact only, `SalesforceMapping.contact_changes`)
        names its converted Contact among the values the decision saw (`previous`), so the write goes
        there wherever it is sent from (the outbox, after a restart) without looking the lead up again."""
        change = write_back(contact, self.map.changes(contact, writes))
        if change is not None and contact.snapshot.get(STAMPS_READ) == "true":
            change.previous[CONVERTED_CONTACT] = contact.snapshot["ConvertedContactId"]
        return change

    def write(self, writes: list[WriteBack], *, recheck: Recheck | None = None,
              fence: Fence | None = None) -> list[WriteResult]:
        """Composite updates of 200, a result per lead, `fence` called before each call. A converted
        lead's write goes to its converted Contact (`changes`)."""
        results: list[WriteResult] = []
        for chunk in chunks(writes, COMPOSITE):
            results += self._send_batch(chunk, recheck, self._send_update, _per_record, fence)
        return results

    def _send_update(self, writes: list[WriteBack]) -> list[dict[str, Any]]:
        """One try of one composite PATCH: each lead's write to the Lead, or to the converted Contact its
        decision saw (a write decided before the conversion goes to the Lead, which refuses it:
        CANNOT_UPDATE_CONVERTED_LEAD, record-level). Leads first, then Contacts: a request with several
        object types is processed in chunks of one type, at most 10 (REST API Developer Guide, "Update
        Records Using sObject Collections"). The results come back in the writes' order."""
        targets = [("Contact", w.previous[CONVERTED_CONTACT]) if w.previous.get(CONVERTED_CONTACT)
                   else ("Lead", w.record_id) for w in writes]
        order = sorted(range(len(writes)), key=lambda i: targets[i][0] == "Contact")
        answer = self._composite("update leads", "PATCH", [
            {"attributes": {"type": targets[i][0]}, "id": targets[i][1], **writes[i].properties} for i in order])
        results: list[dict[str, Any]] = [{}] * len(writes)
        for position, i in enumerate(order):
            results[i] = answer[position]
        return results

    def _composite(self, what: str, method: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One try of a composite/sobjects call; an answer without one result per record is malformed."""
        answer = self._attempt(what, _rest("composite/sobjects", method, {"allOrNone": False, "records": records}))
        if not isinstance(answer, list) or len(answer) != len(records):
            raise calls.malformed("Salesforce", what, f"{len(records)} records sent, "
                                  f"{len(answer) if isinstance(answer, list) else 'no'} results")
        return answer

    def create_tasks(self, tasks: list[OwnerTask], *, fence: Fence | None = None) -> list[WriteResult]:
        """Composite creates of 200, skipping tasks whose key already exists (`_create_tasks`). A converted
        lead's task goes on its converted Contact (`_create_task_batch`)."""
        contacts = self._converted_contacts([t.record_id for t in tasks])
        return self._create_tasks(tasks, COMPOSITE, self._existing_task_keys,
                                  partial(self._create_task_batch, contacts=contacts), fence)

    def _existing_task_keys(self, keys: list[str]) -> set[str]:
        existing: set[str] = set()
        for part in chunks(keys, IN_CHUNK):
            for records in self._soql("query task keys", f"SELECT {TASK_KEY} FROM Task WHERE {TASK_KEY} IN "
                                                         f"{id_list(part)}", call=self._attempt):
                existing |= {str(r[TASK_KEY]) for r in records if r.get(TASK_KEY)}
        return existing

    def _create_task_batch(self, tasks: list[OwnerTask], contacts: dict[str, str]) -> list[WriteResult]:
        """One try of one composite create. The task of a converted lead is on its converted Contact
        (WhoId): Salesforce refuses to reference a converted lead's record ID (CANNOT_UPDATE_CONVERTED_LEAD,
        "cannot reference converted lead": Salesforce Help 000384333), and the lead's activities moved to
        the Contact at conversion (Help 000385227), where reps work it."""
        records = [{"attributes": {"type": "Task"}, "WhoId": contacts.get(t.record_id, t.record_id),
                    "Subject": t.subject[:255],
                    "Description": t.body, "Status": "Not Started", "Priority": "High", TASK_KEY: t.key,
                    "ActivityDate": (t.due_at or datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
                    **({"OwnerId": t.owner_id} if t.owner_id else {})} for t in tasks]
        return _per_record([t.record_id for t in tasks], self._composite("create tasks", "POST", records))

    # --- administration -------------------------------------------------------------------------

    def _describe(self, sobject: str) -> dict[str, Any]:
        result = self._call(f"describe {sobject}", _rest(f"sobjects/{sobject}/describe", "GET"))
        return result if isinstance(result, dict) else {"fields": []}

    def _wanted_fields(self) -> list[tuple[str, str, str]]:
        """(object the field is created on, field, metadata type). Custom fields for tasks are created
        on Activity and appear on Task (Salesforce Help, "Activity Custom Fields"). A converted lead's
        stage and stamps live on its Contact (mapping.CONTACT_STAMPS), same API names."""
        mapping = self.map.mapping
        return [("Lead", name, kind) for name, kind in custom_fields(mapping)] + \
            [("Contact", name, kind) for name, kind in contact_fields(mapping)] + [("Activity", TASK_KEY, "Text")]

    def _existing_fields(self) -> set[str]:
        """Every custom field that exists on Lead, Contact and Activity, visible to this user or not (Tooling
        API CustomField: DeveloperName without __c, TableEnumOrId the object)."""
        answer = self._call("query custom fields", lambda sf: sf.restful("tooling/query", params={
            "q": "SELECT DeveloperName, TableEnumOrId FROM CustomField WHERE TableEnumOrId IN ('Lead', 'Contact', "
                 "'Activity')"}))
        return {f"{r['TableEnumOrId']}.{r['DeveloperName']}__c" for r in (answer or {}).get("records") or []}

    def _visible_fields(self, described: dict[str, dict[str, Any]]) -> set[str]:
        """Fields this user can see (`described`: Lead's and Contact's describe): describe lists only those
        (field-level security)."""
        return {f"{sobject}.{f['name']}" for sobject, answer in described.items() for f in answer["fields"]} | {
            f"Activity.{f['name']}" for f in self._describe("Task")["fields"]}

    def setup(self) -> list[str]:
        """Create the custom fields crmsync needs (Tooling API) and grant them to the integration user
        (`_assignee`): a permission set with read/edit on each (FieldPermissions) assigned to the user
        (PermissionSetAssignment).
        Idempotent: what exists is left alone. FieldPermissions and PermissionSetAssignment are plain
        sObjects (object reference, FieldPermissions)."""
        assignee = self._assignee()  # an unknown or inactive integration user stops setup before any change
        created = []
        existing = self._existing_fields()
        for sobject, name, kind in self._wanted_fields():
            if f"{sobject}.{name}" in existing:
                continue
            metadata: dict[str, Any] = {"type": kind, "label": name.removesuffix("__c").replace("_", " ")}
            if kind == "Text":
                metadata["length"] = 255
            elif kind == "LongTextArea":
                metadata.update(length=32768, visibleLines=3)
            elif kind == "Number":
                metadata.update(precision=8, scale=2)
            elif kind == "Checkbox":
                metadata["defaultValue"] = "false"
            elif kind == "Picklist":  # restricted to crmsync's values (Metadata API, CustomField: valueSet)
                metadata["valueSet"] = {"restricted": True, "valueSetDefinition": {"sorted": False, "value": [
                    {"fullName": v, "label": v, "default": False} for v in picklist_values(self.map.mapping, name)]}}
            if name == TASK_KEY:
                metadata["externalId"] = True  # indexed: the task-key lookup before each create
            self._call("create field", _rest("tooling/sobjects/CustomField", "POST",
                                             {"FullName": f"{sobject}.{name}", "Metadata": metadata}))
            created.append(f"{sobject}.{name}")
        return created + self._grant(assignee)

    def _grant(self, user: str) -> list[str]:
        done: list[str] = []
        pset = self._first("PermissionSet", f"Name = {quote(PERMISSION_SET)}")
        if pset is None:
            pset = self._create("PermissionSet", [{"Name": PERMISSION_SET, "Label": "crmsync integration"}])[0]
            done.append(f"PermissionSet {PERMISSION_SET}")
        done += self._grant_objects(pset)
        have: set[str] = set()
        for records in self._soql("query field permissions", f"SELECT Id, SobjectType, Field FROM FieldPermissions "
                                                             f"WHERE ParentId = {quote(pset)}"):
            have |= {str(r["Field"]) for r in records}
        wanted = [f"{'Task' if obj == 'Activity' else obj}.{name}" for obj, name, _ in self._wanted_fields()]
        missing = [f for f in wanted if f not in have]
        if missing:
            self._create("FieldPermissions", [{"ParentId": pset, "SobjectType": f.split(".")[0], "Field": f,
                                               "PermissionsRead": True, "PermissionsEdit": True} for f in missing])
            done.append(f"FieldPermissions for {len(missing)} fields")
        if not self._assigned(pset, user):
            self._create("PermissionSetAssignment", [{"PermissionSetId": pset, "AssigneeId": user}])
            done.append(f"PermissionSetAssignment of {PERMISSION_SET} to user {user}")
        return done

    def _grant_objects(self, pset: str) -> list[str]:
        """ObjectPermissions rows on the permission set for what crmsync does with each object (OBJECT_ACCESS):
        a user on the "Minimum Access - API Only Integrations" profile has no object access but what a
        permission set grants (Salesforce Help, "Give Integration Users API Only Access"), and "To grant a
        user access to an object, associate an ObjectPermissions record with a PermissionSet that's assigned
        to a user" (object reference, ObjectPermissions: ParentId, SobjectType, PermissionsRead, -Create,
        -Edit). Rows go only to the objects the org's SobjectType picklist lists (a restricted picklist, read
        from the describe): Task and Event, CampaignMember and OpportunityContactRole follow the records they
        belong to, and creating Tasks is the permission set's Edit Tasks (`PermissionsEditTask`) where the org
        has it. Idempotent: a missing row is created, a row lacking a needed permission is updated (never
        narrowed), a complete one left alone. Two calls when nothing changes, four where Task takes no rows
        (the Edit Tasks check)."""
        done: list[str] = []
        describe = self._describe("ObjectPermissions")
        rowable = {str(v.get("value")) for f in describe["fields"] if f.get("name") == "SobjectType"
                   for v in f.get("picklistValues") or []}
        rows: dict[str, dict[str, Any]] = {}
        for records in self._soql("query object permissions", "SELECT Id, SobjectType, PermissionsRead, "
                                  "PermissionsCreate, PermissionsEdit FROM ObjectPermissions WHERE ParentId = "
                                  f"{quote(pset)}"):
            rows |= {str(r["SobjectType"]): r for r in records}
        new, widen = [], []
        for sobject, needs in OBJECT_ACCESS.items():
            if sobject not in rowable:
                continue
            wanted = {_PERMISSION[n]: True for n in needs} | {"PermissionsRead": True}
            row = rows.get(sobject)
            if row is None:
                new.append({"ParentId": pset, "SobjectType": sobject, **wanted})
            elif lacking := {k: True for k in wanted if not row.get(k)}:
                widen.append({"attributes": {"type": "ObjectPermissions"}, "id": row["Id"], **lacking})
        if new:
            self._create("ObjectPermissions", new)
            done.append("ObjectPermissions on " + ", ".join(f"{r['SobjectType']} ({_rights(r)})" for r in new))
        if widen:
            for result in self._call("update ObjectPermissions", _rest("composite/sobjects", "PATCH", {
                    "allOrNone": True, "records": widen})) or []:
                if not result.get("success"):
                    errors = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in result.get("errors") or [])
                    raise FatalError(f"Salesforce setup: updating ObjectPermissions failed: {errors}")
            names = {str(r["Id"]): name for name, r in rows.items()}
            done.append("ObjectPermissions widened on " + ", ".join(f"{names[w['id']]} (+{_rights(w)})" for w in widen))
        if "Task" not in rowable and "create" in OBJECT_ACCESS["Task"]:
            done += self._edit_tasks(pset)
        return done

    def _edit_tasks(self, pset: str) -> list[str]:
        """The permission set's Edit Tasks user permission (PermissionSet.PermissionsEditTask), which lets its
        users create Tasks, where the org's PermissionSet has the field; set once."""
        if not any(f.get("name") == "PermissionsEditTask" for f in self._describe("PermissionSet")["fields"]):
            return []
        for records in self._soql("query permission set", "SELECT Id, PermissionsEditTask FROM PermissionSet WHERE "
                                  f"Id = {quote(pset)}"):
            if any(r.get("PermissionsEditTask") for r in records):
                return []
        self._call("update PermissionSet", _rest(f"sobjects/PermissionSet/{pset}", "PATCH",
                                                 {"PermissionsEditTask": True}))
        return [f"PermissionSet {PERMISSION_SET}: Edit Tasks (create Tasks)"]

    def _assigned(self, permission_set: str, user: str) -> bool:
        return self._first("PermissionSetAssignment", f"PermissionSetId = {quote(permission_set)} AND "
                                                      f"AssigneeId = {quote(user)}") is not None

    def _assignee(self) -> str:
        """Who gets the permission set: the user named by CRMSYNC_SALESFORCE__INTEGRATION_USER (looked up by
        Username, which is unique across Salesforce; it must be active), else the user this session acts as."""
        username = self.settings.integration_user
        if not username:
            return self._user_id()
        setting = "CRMSYNC_SALESFORCE__INTEGRATION_USER"
        users = [r for records in self._soql("query integration user", "SELECT Id, IsActive FROM User WHERE "
                                             f"Username = {quote(username)}") for r in records]
        if not users:
            raise UnknownUser(f"Salesforce: no user has the Username {username!r} ({setting}): it is the login name "
                              "of the integration user (Setup > Users), e.g. crmsync@acme.com")
        if not users[0].get("IsActive"):
            raise UnknownUser(f"Salesforce: the user {username!r} ({setting}) is inactive: activate it (Setup > Users) "
                              "or name the active integration user")
        return str(users[0]["Id"])

    def _assignment_check(self) -> Check:
        """Whether the integration user (or this user) has the permission set; unknown when this user may not
        read permission sets (they need View Setup and Configuration)."""
        name = "salesforce permission set"
        who = f"user {self.settings.integration_user}" if self.settings.integration_user else "this user"
        try:
            user = self._assignee()
            pset = self._first("PermissionSet", f"Name = {quote(PERMISSION_SET)}")
            assigned = pset is not None and self._assigned(pset, user)
        except UnknownUser as exc:
            return Check(name, False, str(exc))
        except (FatalError, RetriableError) as exc:
            return Check(name, True, f"unknown: could not read permission set assignments ({exc})")
        if not assigned:
            return Check(name, False, f"{PERMISSION_SET} is not assigned to {who}: run `crmsync setup` (as an admin, "
                                      "with CRMSYNC_SALESFORCE__INTEGRATION_USER naming the integration user)")
        return Check(name, True, f"{PERMISSION_SET} is assigned to {who}")

    def _user_id(self) -> str:
        """The user this session acts as (the OpenID Connect UserInfo endpoint)."""
        answer = self._call("userinfo", lambda sf: sf.oauth2("userinfo"))
        if not isinstance(answer, dict) or not answer.get("user_id"):
            raise FatalError("Salesforce setup: the userinfo endpoint named no user to grant the fields to")
        return str(answer["user_id"])

    def _first(self, sobject: str, where: str) -> str | None:
        for records in self._soql(f"query {sobject}", f"SELECT Id FROM {sobject} WHERE {where} LIMIT 1"):
            for record in records:
                return str(record["Id"])
        return None

    def _create(self, sobject: str, records: list[dict[str, Any]]) -> list[str]:
        ids: list[str] = []
        for chunk in chunks(records, COMPOSITE):
            answer = self._call(f"create {sobject}", _rest("composite/sobjects", "POST", {
                "allOrNone": True, "records": [{"attributes": {"type": sobject}, **r} for r in chunk]}))
            for result in answer or []:
                if not result.get("success"):
                    errors = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in result.get("errors") or [])
                    raise FatalError(f"Salesforce setup: creating {sobject} failed: {errors}")
                ids.append(str(result["id"]))
        return ids

    def doctor(self) -> list[Check]:
        try:
            objects, readable = self._object_check()
            if not {"Lead", "Contact"} <= readable:  # nothing else can be checked without them
                return [Check("salesforce login", True, f"session on {self.sf.sf_instance if self.sf else '?'}"),
                        objects, self._assignment_check()]
            lead = self._describe("Lead")
            described = {"Lead": lead, "Contact": self._describe("Contact")}
            visible = self._visible_fields(described)
        except AuthError as exc:
            return [Check("salesforce login", False, str(exc))]
        except (RetriableError, FatalError) as exc:
            return [Check("salesforce connectivity", False, str(exc))]
        checks = [Check("salesforce login", True, f"session on {self.sf.sf_instance if self.sf else '?'}"), objects]
        try:
            existing = self._existing_fields()
        except FatalError as exc:  # no Tooling API access: every invisible field counts as missing
            existing, note = set(), f" (could not list the org's fields: {exc})"
        else:
            note = ""
        wanted = [f"{obj}.{name}" for obj, name, _ in self._wanted_fields()]
        missing = [f for f in wanted if f not in visible and f not in existing]
        hidden = [f for f in wanted if f not in visible and f in existing]
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}: run `crmsync setup`{note}")
        if hidden:
            problems.append(f"not visible to this user {', '.join(hidden)}: run `crmsync setup` (it grants them "
                            f"through permission set {PERMISSION_SET}) or assign that permission set to the "
                            "integration user")
        for sobject, answer in described.items():
            stage = next((f for f in answer["fields"] if f["name"] == self.map.fields.stage), None)
            if stage is not None and stage.get("type") == "picklist":
                have = {str(v["value"]) for v in stage.get("picklistValues") or []}
                lacking = [v for v in picklist_values(self.map.mapping, stage["name"]) if v not in have]
                if lacking:
                    problems.append(f"{sobject}.{stage['name']} is a picklist without {', '.join(lacking)}: add "
                                    "those values to it, or crmsync's writes of them are refused")
        checks.append(Check("salesforce fields", not problems, "; ".join(problems) or "all present and visible"))
        statuses = self._lead_statuses()  # read once: the status check and the guard's formula both need them
        return [*checks, self._assignment_check(), *self._status_checks(statuses), *self._industry_checks(lead),
                *self._source_checks(lead), guard_check(self, statuses)]

    def _object_check(self) -> tuple[Check, set[str]]:
        """Whether this session's user may read, edit and create what crmsync needs (OBJECT_ACCESS), from one
        Describe Global call: it lists "the objects available in your org and available to the logged-in
        user" (REST API Developer Guide, "Get a List of Objects"), each with `createable` and `updateable`
        (SOAP API, DescribeGlobalSObjectResult). An object missing from the list is one the user cannot read
        (a query of it fails with INVALID_TYPE). Also answers which objects are readable."""
        answer = self._call("describe global", _rest("sobjects", "GET"), ("sobjects",))
        listed = {str(o.get("name")): o for o in answer["sobjects"] or [] if isinstance(o, dict)}
        readable = {name for name, o in listed.items() if o.get("queryable", True)}
        flag = {"create": "createable", "edit": "updateable"}
        lacking = []
        for sobject, needs in OBJECT_ACCESS.items():
            missing = [n for n in needs
                       if sobject not in readable or (n != "read" and not listed[sobject].get(flag[n]))]
            if missing:
                note = " (the deal stream is off without it)" if sobject in DEAL_OBJECTS else ""
                lacking.append(f"{'/'.join(missing)} on {sobject}{note}")
        who = "this session's user"
        if self.settings.integration_user:
            who += (f" (run doctor with the daemon's own settings to check {self.settings.integration_user} "
                    "itself)")
        if not lacking:
            return Check("salesforce objects", True, f"{who} may read, edit and create what crmsync needs"), readable
        return Check("salesforce objects", False, f"{who} lacks {'; '.join(lacking)}: run `crmsync setup` (as an "
                     "admin, with CRMSYNC_SALESFORCE__INTEGRATION_USER naming the integration user; it grants them "
                     f"through permission set {PERMISSION_SET}) or grant them on the integration user's profile"), \
            readable

    def _industry_checks(self, lead: dict[str, Any]) -> list[Check]:
        """The org's Industry values against the fit industries, through the mapping's `industries`:
        if none can pass, no lead is ever MQL; the others are listed so the admin can map them."""
        fit = {word.casefold() for word in self.fit_industries}
        values = next((f.get("picklistValues") or [] for f in lead["fields"] if f["name"] == "Industry"), [])
        org = [str(v["value"]) for v in values if v.get("active", True)]
        if not fit or not org:
            return []
        passing = [v for v in org if str(self.map.industry(v)).casefold() in fit]
        others = [v for v in org if v not in passing]
        detail = (f"{len(passing)} of the org's {len(org)} Industry values meet fit ({', '.join(passing)})"
                  if passing else "none of the org's Industry values meets fit: every lead fails fit and none "
                                  "can become MQL")
        if others:
            detail += (f"; no fit criterion mentions {', '.join(others)} (map the ones that should count in "
                       "mappings.salesforce.industries)")
        return [Check("salesforce Industry values", bool(passing), detail)]

    def _source_checks(self, lead: dict[str, Any]) -> list[Check]:
        """The org's LeadSource values that no property rule scores, through the mapping's `sources` (and
        the standard translations): information for the admin, not a failure (a source may rightly earn
        nothing), so a value meant to count is mapped once instead of silently scoring 0."""
        scored = {word.casefold() for word in self.scored_sources}
        values = next((f.get("picklistValues") or [] for f in lead["fields"] if f["name"] == "LeadSource"), [])
        org = [str(v["value"]) for v in values if v.get("active", True)]
        if not scored or not org:
            return []
        unscored = [v for v in org if str(self.map.source(v, SOURCE)).casefold() not in scored]
        detail = (f"no source rule scores {', '.join(unscored)} (map the ones that should count in "
                  "mappings.salesforce.sources)" if unscored else "every LeadSource value is scored by a rule")
        return [Check("salesforce LeadSource values", True, detail)]

    def _lead_statuses(self) -> dict[str, bool]:
        """The org's lead statuses by API name (its label where it has none): whether each is a converted one."""
        org: dict[str, bool] = {}
        for records in self._soql("query lead statuses", "SELECT ApiName, MasterLabel, IsConverted FROM LeadStatus"):
            org |= {str(r.get("ApiName") or r["MasterLabel"]): bool(r.get("IsConverted")) for r in records}
        return org

    def _status_checks(self, org: dict[str, bool]) -> list[Check]:
        """The mapping against the org's LeadStatus by API name: every mapped value exists, the converted
        one is a converted status, and no org status is left unmapped (such a lead is quarantined)."""
        values = self.map.status_values
        by_checkbox = self.map.fields.sql_request
        absent = sorted({v for s, v in values.items() if v and v not in org
                         and not (s is LeadStatus.QUALIFIED and by_checkbox)})
        notes = []
        qualified = values[LeadStatus.QUALIFIED]
        if qualified and qualified not in org and by_checkbox:
            notes.append(f"no status {qualified!r} in this org: reps request SQL with {by_checkbox}")
        converted = values[LeadStatus.CONVERTED]
        wrong = converted is not None and converted in org and not org[converted]
        unmapped = sorted(set(org) - {v for v in values.values() if v})
        problems = ([f"mapped values not in the org's Lead Status picklist: {', '.join(absent)}"] if absent else []) + (
            [f"converted maps to {converted!r}, which is not a converted status"] if wrong else []) + (
            [f"org statuses no lead status maps (such leads are quarantined): {', '.join(unmapped)}"] if unmapped
            else [])
        return [Check("salesforce Lead Status values", not problems,
                      "; ".join(problems + notes) or "; ".join(["all mapped values exist", *notes]))]


def _window(since: datetime, until: datetime, after_key: str | None) -> str:
    """The WHERE of a window pull: since <= SystemModstamp < until, after the resume key. SOQL datetimes
    have whole seconds: the window is widened to them, never narrowed."""
    ceiling = until if until.microsecond == 0 else until.replace(microsecond=0) + timedelta(seconds=1)
    where = f"SystemModstamp >= {soql_time(since)} AND SystemModstamp < {soql_time(ceiling)}"
    return where + (f" AND Id > {quote(after_key)}" if after_key else "")


def _lead(mapping: SalesforceMapping, stamps: dict[str, dict[str, Any]] | None, record: dict[str, Any]) -> Contact:
    """A lead as a contact; a converted one with its Contact's crmsync fields when they were read."""
    contact = record.get("ConvertedContactId") if record.get("IsConverted") else None
    return mapping.to_contact(record, stamps.get(str(contact)) if stamps is not None and contact else None)


def _deal(record: dict[str, Any], leads: dict[str, set[str]]) -> Deal:
    return to_deal(record, tuple(leads.get(str(record.get("Id")), ())))


def _live(records: list[dict[str, Any]], deleted: list[str]) -> list[dict[str, Any]]:
    """The records not deleted; the deleted ones' ids go to `deleted` (to erase, never decided). queryAll
    returns records "soft deleted due to a merge or delete" until they leave the Recycle Bin (REST API
    Developer Guide, "QueryAll"), and a delete moves SystemModstamp (as replication tools rely on;
    unconfirmed, docs/salesforce.md): so a window pull finds them, at no extra call."""
    deleted += [str(r["Id"]) for r in records if r.get("IsDeleted")]
    return [r for r in records if not r.get("IsDeleted")]


def _bulk_page(job_id: str, locator: str) -> Callable[[Salesforce], Any]:
    def call(sf: Salesforce) -> Any:
        return _bulk_client(sf).get_query_results(job_id, locator, BULK_PAGE)
    return call


def _bulk_client(sf: Salesforce) -> Any:
    """simple-salesforce's Bulk 2.0 client for Leads: its job steps one by one, so each is retried alone."""
    handler: Any = sf.bulk2
    return handler.Lead._client


_BOOLEAN = {"IsDeleted", "IsConverted"}
_INTEGER = {"NumberOfEmployees"}


def _typed(row: dict[str, str], booleans: set[str] = _BOOLEAN) -> dict[str, Any]:
    """A Bulk API CSV row with the types the REST API would give (empty means null)."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value == "":
            out[name] = None
        elif name in booleans:
            out[name] = value.lower() == "true"
        elif name in _INTEGER:
            out[name] = int(float(value))
        else:
            out[name] = value
    return out


def _rest(path: str, method: str, body: Any = None) -> Callable[[Salesforce], Any]:
    def call(sf: Salesforce) -> Any:
        return sf.restful(path, method=method, **({"json": body} if body is not None else {}))
    return call


def _next_records(page: dict[str, Any]) -> str | None:
    """A query page's next page: none once `done`."""
    return None if page["done"] else page.get("nextRecordsUrl")


def _more(url: str) -> Callable[[Salesforce], Any]:
    def call(sf: Salesforce) -> Any:
        return sf.query_more(url, identifier_is_url=True)
    return call


def _answer(what: str, failure: Exception | None, result: Any, required: tuple[str, ...]) -> calls.Answer | None:
    """What one call got, for the error table; None when it is a well-formed answer to read."""
    if isinstance(failure, SalesforceError):  # status >= 300 (simple_salesforce/util.py exception_handler)
        return calls.Answer("Salesforce", what, failure.status, failure.content, failure)
    if isinstance(failure, requests.exceptions.JSONDecodeError):  # a 2xx body that is not JSON
        return calls.Answer("Salesforce", what, 200, failure.doc, failure)
    if failure is not None:
        return calls.Answer("Salesforce", what, None, None, failure)
    if required and calls.shape(result, required) != calls.JSON:
        return calls.Answer("Salesforce", what, 200, result, required=required)
    return None


def _rights(row: dict[str, Any]) -> str:
    """"read/edit": the permissions an ObjectPermissions row (or its update) sets."""
    return "/".join(n for n, key in _PERMISSION.items() if row.get(key))


def _refused_object(answer: calls.Answer) -> str | None:
    """The object a refusal says this user cannot read, if it says so. A query of an object the user has no
    Read on is answered like one of an object that does not exist: 400 INVALID_TYPE "sObject type 'X' is not
    supported. ..." ("the running user lacks permission to see the object" is one of its causes:
    salesforcedictionary.com/errors/invalid-type-cannot-find-sobject; support.marketsharp.com/hc/en-us/articles/
    4413201388951; the API "respects object-level ... security": object reference, "Factors that Affect Data
    Access"); a describe of it, 404 NOT_FOUND (unconfirmed, docs/salesforce.md)."""
    if answer.status == 400 and "INVALID_TYPE" in answer.codes:
        found = _UNSUPPORTED.search(calls.error_message(answer.body))
        return found.group(1) if found else None
    described = answer.what.removeprefix("describe ")
    if answer.status == 404 and "NOT_FOUND" in answer.codes and described in OBJECT_ACCESS:
        # Salesforce's own NOT_FOUND body (not a gateway's bare 404), for an object crmsync reads (not setup's
        # describes of PermissionSet or ObjectPermissions, which `crmsync setup` cannot grant)
        return described
    return None


def _refusal(answer: calls.Answer, error: CrmsyncError) -> CrmsyncError:
    """The error for `answer`: an object this user may not read named, with the fix."""
    sobject = _refused_object(answer)
    if sobject is None or not isinstance(error, FatalError):
        return error
    said = "INVALID_TYPE" if answer.status == 400 else "404 NOT_FOUND"
    return ObjectAccessError(sobject, (
        f"Salesforce {answer.what}: this user cannot read {sobject} ({said}: without Read on an object Salesforce "
        f"answers as if it did not exist): run `crmsync setup` (it grants Read on {sobject} through permission set "
        f"{PERMISSION_SET}; as an admin, with CRMSYNC_SALESFORCE__INTEGRATION_USER naming the integration user) or "
        "grant it on the integration user's profile"))


def _per_record(ids: list[str], answer: list[dict[str, Any]]) -> list[WriteResult]:
    results = []
    for record_id, result in zip(ids, answer, strict=True):  # one result per record (`_composite`)
        if result.get("success"):
            results.append(WriteResult(record_id, True))
            continue
        errors = result.get("errors") or []
        codes = {e.get("statusCode") for e in errors}
        message = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)[:500]
        results.append(WriteResult(record_id, False, message, retriable=not calls.is_record_level(codes)))
    return results


