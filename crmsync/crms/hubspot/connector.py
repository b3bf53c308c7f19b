"""HubSpot connector on hubspot-api-client.

Pulls contacts changed in a time window with CRM search (paced to HubSpot's search limit), reads
their engagements with batch calls only (following association paging per contact), reads page
views and form submissions from the events API where the portal has it (Enterprise) and from
contact property history elsewhere, writes back with batch update (100 a call, per-record results
from 207; a batch refused as a whole is split to isolate the bad record), clears `lifecyclestage`
before moving it backward in the portal's stage order, and creates owner tasks.

The client's own urllib3 retries are off; every call goes through `RetryPolicy` (tenacity,
honouring Retry-After), its raw answer is checked (an empty, HTML or cut-short body is a malformed
answer, never "no data") and failures are classified once, by the error table in calls.py. The reads
of every pass (searches, batch reads, association reads, events and archived lists) take the client's
request and error handling but read the JSON answer here (`_read`, `_parsed`): the client's models
parse each timestamp with dateutil, which was a third of a pass's CPU (docs/hubspot.md). The client's
API objects, and with them its connections, are built once per thread and kept (`_Apis`): the client would
build them, and open a new connection, on every call.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from dateutil.parser import parse as dateutil_parse
from hubspot import HubSpot
from hubspot.discovery.discovery_base import DiscoveryBase
from urllib3 import PoolManager
from urllib3.util.retry import Retry

from crmsync.connectors import calls
from crmsync.connectors.base import Fence, ObjectPage, ObjectStream, PulledPage, Recheck
from crmsync.connectors.core import ConnectorCore, chunks, follow, mapped, write_back
from crmsync.connectors.governor import Pacer
from crmsync.connectors.retry import RetryPolicy
from crmsync.crms.hubspot.mapping import (
    DEAL_PROPERTIES,
    EMAIL_HISTORY,
    ENGAGEMENT_PROPERTIES,
    EVENT_KINDS,
    PAGE_AND_FORM_HISTORY,
    HubSpotMapping,
    epoch_ms,
    numeric_key,
    property_specs,
)
from crmsync.crms.hubspot.settings import HubSpotSettings
from crmsync.definitions.schema import CrmMapping
from crmsync.errors import AuthError, FatalError, RecordError, RetriableError
from crmsync.model import Activity, Check, Contact, Deal, ObjectType, OwnerTask, WriteBack, WriteResult

T = TypeVar("T")
log = logging.getLogger("crmsync.hubspot")
SEARCH_PAGE = 200
SEARCH_PER_SECOND = 4  # HubSpot's own figure (changelogs "CRM Search API rate limit increase", "Burst limits are
# increasing for API key authenticated calls": 4/s); 5/s is a community report; no rate-limit headers (docs/hubspot.md)
BATCH = 100
HISTORY_BATCH = 50  # with propertiesWithHistory HubSpot refuses more than 50 inputs (400; docs/hubspot.md)
ASSOCIATION_BATCH = 1000  # associations batch read takes up to 1000 ids (HubSpot changelog, Feb 2025)
EVENTS_PAGE = 100
GROUP = "crmsync"
TASK_TO_CONTACT = 204
TASK_KEY = "crmsync_task_key"
TASK_KEY_SPEC = {"name": TASK_KEY, "label": "crmsync task key", "type": "string", "fieldType": "text",
                 "groupName": GROUP, "description": "Makes crmsync's owner tasks idempotent"}
WRITES = {"create", "update", "upsert", "archive"}  # the client's operation names that change records
IDLE_SECONDS = 15.0  # a thread's kept connections idle longer than this are closed before its next call (`_Apis`)
__all__ = ["AuthError", "HubSpotConnector"]


@dataclass(frozen=True)
class Capabilities:
    """What this portal's tier lets crmsync read, found by one call at start."""

    events: bool
    event_types: tuple[str, ...] = ()
    note: str = ""

    def describe(self) -> str:
        if self.events:
            return f"events API available (Enterprise): {', '.join(self.event_types)}"
        return ("no events API (Enterprise only): page views and form submissions come from contact "
                f"property history ({', '.join(PAGE_AND_FORM_HISTORY)}); {self.note}")


class _Apis(threading.local):
    """The client's API objects of one thread, built once and kept, and the one connection pool they share.

    hubspot-api-client 12.0.0 builds a new API object on every access (`client.crm.contacts.batch_api`:
    hubspot/discovery/discovery_base.py `_configure_api_client` -> `_default_api_factory`, a new
    Configuration, ApiClient and, in its RESTClientObject (rest.py), a new urllib3 PoolManager): every call
    opened a new connection (in production a TLS handshake), 32 connects for the 33 calls of a 400-contact
    sandbox pass. The client's `api_factory` setting ("a callable constructing new API instances ... used
    instead of default instantiation logic", HubSpot/hubspot-api-python#73) is the hook: `api` keeps what the
    default factory built, per API and thread, and gives every ApiClient of the thread one PoolManager (they
    all talk to one host with one Configuration: the same retries, off, and certificates). A pass opens one
    connection; a connection that broke (reset, cut-short answer, timeout) is closed by urllib3 and not
    returned to the pool, so the next call opens a new one.

    Why per thread: `_attempt` reads each call's answer from its ApiClient's `last_response`, which two calls
    on one ApiClient at once would overwrite. The daemon calls a connector from several threads (scheduler
    workers for sync and SLA sweep, the webhook worker for `react`), one at a time (`Daemon.locks`, one lock
    per CRM); the CLI and the demo from one. Per-thread objects keep each call's answer its own even if a
    connector were ever called concurrently, for one pool per thread that calls (a few in the daemon).

    The token: the objects are built with the client's access token (config["access_token"]); a client given
    another token (`client.access_token = ...`) drops them, and the next call builds them with the new one.
    Idle connections: a connection kept across a long pause may have been dropped by the network without a
    word, and the call on it would wait for its timeout; connections idle longer than IDLE_SECONDS (between
    passes; calls within a pass follow each other within seconds) are closed first (`fresh`)."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.apis: dict[tuple[str, str], Any] = {}
        self.clients: dict[str, Any] = {}  # package -> its ApiClient
        self.pool: PoolManager | None = None
        self.used = 0.0

    def api(self, package: Any, api_name: str, config: dict[str, Any]) -> Any:
        """The `api_factory` of the connector's client: the kept API object, built on its first use."""
        if config.get("access_token") != self.token:
            self.close()
            self.token = config.get("access_token")
        api = self.apis.get((package.__name__, api_name))
        if api is None:
            client = self.clients.get(package.__name__)
            if client is not None:
                api = getattr(package, api_name)(api_client=client)
            else:
                api = DiscoveryBase._default_api_factory(package, api_name, config)
                client = self.clients[package.__name__] = api.api_client
                if self.pool is None:
                    self.pool = client.rest_client.pool_manager
                else:
                    client.rest_client.pool_manager = self.pool
            self.apis[(package.__name__, api_name)] = api
        return api

    def fresh(self) -> None:
        """Before a call: close the kept connections if they have been idle longer than IDLE_SECONDS."""
        now = time.monotonic()
        if self.pool is not None and now - self.used > IDLE_SECONDS:
            self.pool.clear()
        self.used = now

    def close(self) -> None:
        if self.pool is not None:
            self.pool.clear()
        self.apis, self.clients, self.pool = {}, {}, None


class HubSpotConnector(ConnectorCore):
    name = "hubspot"
    write_batch = BATCH  # a batch update takes 100 records

    def __init__(self, settings: HubSpotSettings, mapping: CrmMapping, *, retry: RetryPolicy | None = None,
                 engagement_types: tuple[str, ...] = ("calls", "emails", "meetings"),
                 search_per_second: int | None = SEARCH_PER_SECOND) -> None:
        if settings.access_token is None:
            raise FatalError("CRMSYNC_HUBSPOT__ACCESS_TOKEN is not set: create a private app token with the "
                             "crm.objects.contacts and crm.schemas.contacts scopes")
        super().__init__(retry, settings.api_share)
        self.settings = settings
        self.map = HubSpotMapping(mapping)
        self.engagement_types = engagement_types
        self.search_pace = Pacer(search_per_second) if search_per_second else None
        self._capabilities: Capabilities | None = None
        self._lifecycle_order: list[str] | None = None
        self._apis = _Apis()
        self.client = HubSpot(
            access_token=settings.access_token.get_secret_value(),
            host=settings.base_url,
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
            api_factory=self._apis.api,  # API objects and connections kept (`_Apis`), not built per call
        )

    # --- the one place every call goes through --------------------------------------------------

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One call, retried as the error table says."""
        return self.retry.run(lambda: self._attempt(what, fn, *args, **kwargs))

    def _read(self, what: str, fn: Callable[..., Any], times: tuple[str, ...], *args: Any,
              **kwargs: Any) -> dict[str, Any]:
        """One read (`_call`: retried as the error table says), its JSON answer read by `_parsed` (date-time
        fields `times`) instead of the client's models (`_raw`)."""
        return self._call(what, _raw(fn, times), *args, **kwargs)

    def _attempt(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One try of one call: its result when the answer is well-formed, else the classified error."""
        client = getattr(getattr(fn, "__self__", None), "api_client", None)
        self.calls += 1
        if client is not None:
            client.last_response = None  # never mistake an earlier call's answer for this one's
        self._apis.fresh()
        failure: Exception | None = None
        try:
            result = fn(*args, _request_timeout=self.settings.timeout_seconds, **kwargs)
        except Exception as exc:  # the client raises one ApiException class per API package, and more
            failure = exc
        self._apis.used = time.monotonic()
        response = getattr(client, "last_response", None)
        answer = _answer(what, failure, response, write=getattr(fn, "__name__", "") in WRITES,
                         parsed=getattr(fn, "parsed", False))
        if answer is None:  # the governor reads HubSpot's rate-limit headers
            headers = dict(response.getheaders()) if response is not None else {}
            self._answered(what, getattr(response, "status", 200), _int(headers.get("X-HubSpot-RateLimit-Max")),
                           _int(headers.get("X-HubSpot-RateLimit-Remaining")),
                           (_int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")) or 0) / 1000 or None)
            return result
        raise self._failed(answer, failure) from None

    # --- pulling --------------------------------------------------------------------------------

    def pull_changed(self, since: datetime, until: datetime, after_key: str | None = None, *,
                     backfill: bool = False) -> Iterator[PulledPage]:
        """Contacts with since <= lastmodifieddate < until, in pages of up to 200 (see `_window`)."""
        search = self.client.crm.contacts.search_api.do_search
        for results in self._window("search contacts", search, "lastmodifieddate", self.map.contact_properties(),
                                    since, until, after_key):
            mapped = self._mapped(results)
            mapped.resume_key = str(results[-1].get("id")) if results else None
            yield mapped

    @property
    def object_streams(self) -> tuple[ObjectStream, ...]:
        """The objects read beside contacts (`ObjectStreams`), each on every pass, with its archived list."""
        return (ObjectStream(ObjectType.DEAL, "deals", self.pull_deals, deleted=partial(self.archived, "deals"),
                             meanwhile="pipeline is judged from contacts meanwhile"),)

    def pull_deals(self, since: datetime, until: datetime, after_key: str | None = None) -> Iterator[ObjectPage]:
        """Deals with since <= hs_lastmodifieddate < until (CRM search on deals, `_window`), each with the
        ids of its associated contacts (v4 batch associations read, paged per deal). A deal that cannot
        be mapped is a RecordError of its page, never a failure of the page. A token without
        crm.objects.deals.read (one from before crmsync read deals) is answered 403 MISSING_SCOPES naming
        it: the error table makes that a `StreamRefused`, and the pass turns the deal stream off."""
        search = self.client.crm.deals.search_api.do_search
        for results in self._window("search deals", search, "hs_lastmodifieddate", DEAL_PROPERTIES, since, until,
                                    after_key):
            ids = [str(obj.get("id")) for obj in results]
            contacts: dict[str, list[str]] = {}
            for deal_id, contact_id in self._associated("deals", "contacts", ids):
                contacts.setdefault(deal_id, []).append(contact_id)
            page = ObjectPage(resume_key=ids[-1] if ids else None)
            page.objects, page.errors = mapped(results, partial(self._deal, contacts=contacts))
            yield page

    def _deal(self, obj: dict[str, Any], contacts: dict[str, list[str]]) -> Deal:
        return self.map.to_deal(obj.get("id"), obj.get("properties") or {}, obj.get("updatedAt"),
                                contacts.get(str(obj.get("id")), []))

    def _window(self, what: str, search: Callable[..., Any], modified: str, properties: list[str],
                since: datetime, until: datetime, after_key: str | None) -> Iterator[list[dict[str, Any]]]:
        """The search results with since <= `modified` < until, a page (up to 200) at a time.

        Paged by hs_object_id (keyset), not by `after`: each query starts again from the last id
        seen, so a window of any size is read without ever reaching the 10,000-result cap; and a
        window can resume after any page (`after_key` is the last id a page held). Within a window
        records come in id order; the window is the unit the cursor moves by.
        """
        last_id = int(after_key) if after_key and after_key.isdigit() else 0
        while True:
            filters = [
                {"propertyName": modified, "operator": "GTE", "value": epoch_ms(since)},
                {"propertyName": modified, "operator": "LT", "value": epoch_ms(until)},
                {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
            ]
            request = {"filterGroups": [{"filters": filters}],
                       "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                       "properties": properties, "limit": SEARCH_PAGE, "after": "0"}
            page = self._read(what, self._paced(search), OBJECTS, public_object_search_request=request)
            results = page["results"]
            yield results
            if not results or (page.get("paging") or {}).get("next") is None:
                return
            last_id = _keyset_id(results[-1].get("id"))

    def _paced(self, fn: Callable[..., T]) -> Callable[..., T]:
        """A search function whose every attempt is paced client-side: HubSpot limits search per second
        without saying so in headers, and a retried attempt counts like any other."""
        pace = self.search_pace
        if pace is None:
            return fn

        def paced(*args: Any, **kwargs: Any) -> T:
            with pace.slot():
                return fn(*args, **kwargs)

        paced.__self__ = getattr(fn, "__self__", None)  # type: ignore[attr-defined]  # `_attempt` reads the answer there
        return paced

    def read(self, contact_ids: list[str]) -> PulledPage:
        """Contacts by id (batch read, 100 a call): used to re-check records before a write."""
        found = PulledPage()
        for chunk in chunks(contact_ids, BATCH):
            body: dict[str, Any] = {"inputs": [{"id": i} for i in chunk],
                                    "properties": self.map.contact_properties(), "propertiesWithHistory": []}
            response = self._read("read contacts", self.client.crm.contacts.batch_api.read, OBJECTS,
                                  batch_read_input_simple_public_object_id=body)  # archived: false by default
            page = self._mapped(response["results"])
            found.contacts += page.contacts
            found.errors += page.errors
        return found

    def deleted(self) -> Iterator[tuple[ObjectType, list[str]]]:
        """Ids of the archived (deleted, still restorable) contacts, then of each object stream's archived
        objects (its `deleted`: `archived`, for deals), 100 a call; a stream the CRM refused is left out
        (crmsync.sync.erasure's daily sweep)."""
        yield from ((ObjectType.CONTACT, ids) for ids in self.archived("contacts"))
        yield from self._deleted_objects(self.object_streams)

    def archived(self, object_type: str) -> Iterator[list[str]]:
        """Pages of the ids of every archived object of a type (`contacts`, `deals`, `tickets`, a custom
        object's id), 100 a call: the objects API's list with `archived=true` ("Whether to return only
        results that have been archived", CRM v3 contacts spec, ../shared/specs/hubspot/contacts-v3.json; the
        same parameter on the deals list, HubSpot-public-api-spec-collection
        PublicApiSpecs/CRM/Deals/Rollouts/424/v3/deals.json; `GET /crm/v3/objects/{objectType}` is the one
        path of every object type's list), paged by `paging.next.after`. Search never returns archived
        records and the list takes no date filter, so every archived one is listed: the daily sweep."""
        listed = partial(self._archived, object_type)
        for page in follow(listed(), listed, _next_after):
            yield [str(obj.get("id")) for obj in page["results"]]

    def _archived(self, object_type: str, after: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"limit": BATCH, "archived": True, "properties": ["hs_object_id"]}
        if after:
            kwargs["after"] = after
        return self._read(f"list archived {object_type}", self.client.crm.objects.basic_api.get_page, OBJECTS,
                          object_type, **kwargs)

    def _mapped(self, results: list[dict[str, Any]]) -> PulledPage:
        """Contacts (search or batch read results, `_parsed`) as the engine sees them."""
        if any(self.map.needs_industry_labels(obj.get("properties") or {}) for obj in results):
            self.map.industry_labels = self.industry_labels()
        page = PulledPage()
        page.contacts, page.errors = mapped(
            results, lambda obj: self.map.to_contact(obj.get("id"), obj.get("properties") or {}, obj.get("updatedAt")))
        return page

    def activities(self, contact_ids: list[str]) -> dict[str, list[Activity]]:
        """Engagements (calls, emails, meetings) of these contacts: association and object batch reads.
        Email opens and clicks from property history; below Enterprise, page views and form submissions too."""
        found: dict[str, list[Activity]] = {cid: [] for cid in contact_ids}
        for object_type in self.engagement_types:
            owner_of: dict[str, list[str]] = {}
            for contact_id, target in self._associated("contacts", object_type, contact_ids):
                owner_of.setdefault(target, []).append(contact_id)
            api = getattr(self.client.crm.objects, object_type).batch_api
            for chunk in chunks(sorted(owner_of, key=numeric_key), BATCH):
                read = {"inputs": [{"id": i} for i in chunk], "properties": ENGAGEMENT_PROPERTIES[object_type],
                        "propertiesWithHistory": []}
                response = self._read(f"read {object_type}", api.read, OBJECTS,
                                      batch_read_input_simple_public_object_id=read)
                for obj in response["results"]:
                    activity = self.map.engagement(object_type, str(obj.get("id")), obj.get("properties") or {})
                    for cid in owner_of.get(str(obj.get("id")), []):
                        found[cid].append(activity)
        if contact_ids:
            history = [*EMAIL_HISTORY, *([] if self.capabilities().events else PAGE_AND_FORM_HISTORY)]
            for cid, activities in self._history_activities(contact_ids, history).items():
                found[cid] += activities
        return found

    def _associated(self, from_type: str, to_type: str, ids: list[str]) -> Iterator[tuple[str, str]]:
        """(from id, to id) pairs, ASSOCIATION_BATCH ids a call. The batch read pages per record: a record
        whose answer has `paging.next.after` is asked again with that `after` until it has none. Records
        without any come back as "no associations found" errors in a 207, which is not a failure."""
        for chunk in chunks(ids, ASSOCIATION_BATCH):
            inputs: list[dict[str, str]] = [{"id": i} for i in chunk]
            while inputs:
                response = self._read(f"read {from_type} {to_type} associations",
                                      self.client.crm.associations.v4.batch_api.get_page, ASSOCIATIONS, from_type,
                                      to_type, batch_input_public_fetch_associations_batch_request={"inputs": inputs})
                asked = {i["id"]: i.get("after") for i in inputs}
                inputs = []
                for result in response["results"]:
                    from_id = str(result["from"]["id"])
                    for target in result.get("to") or []:
                        yield from_id, str(target["toObjectId"])
                    after = _next_after(result)
                    if after and after != asked.get(from_id):  # a repeated cursor would never end
                        inputs.append({"id": from_id, "after": after})

    def _history_activities(self, contact_ids: list[str], properties: list[str]) -> dict[str, list[Activity]]:
        """Activities from the history of these properties (batch read with history: 50 contacts a call)."""
        found: dict[str, list[Activity]] = {}
        for chunk in chunks(contact_ids, HISTORY_BATCH):
            body = {"inputs": [{"id": i} for i in chunk], "properties": ["hs_object_id"],
                    "propertiesWithHistory": properties}
            response = self._read("read activity history", self.client.crm.contacts.batch_api.read, OBJECTS,
                                  batch_read_input_simple_public_object_id=body)
            found.update(self._histories(response["results"]))
        return found

    def _histories(self, results: list[dict[str, Any]]) -> dict[str, list[Activity]]:
        """Contact id -> the activities in its property history (batch read results, `_parsed`)."""
        return {str(obj.get("id")): self.map.from_history(str(obj.get("id")), obj.get("propertiesWithHistory") or {})
                for obj in results}

    def capabilities(self) -> Capabilities:
        """Found once per portal: one event-types call; a 403 means the tier has no events API (said
        once in the log, never a failure)."""
        if self._capabilities is None:
            try:
                response = self._call("read event types", self.client.events.events_api.get_types)
            except AuthError as exc:
                if "HTTP 403" not in str(exc):  # a bad token is not a tier
                    raise
                self._capabilities = Capabilities(False, note=str(exc))
                # the usual state below Enterprise, not a fault: said once, briefly (doctor gives the answer)
                answer = re.search(r"HTTP 403( [A-Z_]+)?", str(exc))
                log.info("HubSpot portal without the events API (Enterprise only): page views and form "
                         "submissions come from contact property history",
                         extra={"answer": answer.group(0) if answer else "HTTP 403"})
            else:
                known = [t for t in EVENT_KINDS if t in set(response.event_types or [])]
                self._capabilities = Capabilities(True, tuple(known))
                log.info("HubSpot portal capabilities", extra={"capabilities": self._capabilities.describe()})
        return self._capabilities

    def events(self, since: datetime, until: datetime) -> Iterator[tuple[str, Activity]]:
        """Page views and form submissions that occurred in (since, until], for all contacts, where the
        portal has the events API (the types it lists); nothing elsewhere (see `activities`)."""
        for event_type in self.capabilities().event_types:
            listed = partial(self._events_page, event_type, since, until)
            for page in follow(listed(), listed, partial(_next_unseen, set())):
                yield from self._events(page["results"])

    def _events(self, results: list[dict[str, Any]]) -> Iterator[tuple[str, Activity]]:
        """(contact id, activity) of the events of a page (`_parsed`) crmsync reads (`EVENT_KINDS`)."""
        for event in results:
            activity = self.map.event(event.get("eventType"), event.get("id"), event.get("occurredAt"),
                                      event.get("properties") or {})
            if activity is not None:
                yield str(event.get("objectId")), activity

    def _events_page(self, event_type: str, since: datetime, until: datetime,
                     after: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"object_type": "contact", "event_type": event_type, "occurred_after": since,
                                  "occurred_before": until, "limit": EVENTS_PAGE}
        if after:
            kwargs["after"] = after
        return self._read("read events", self.client.events.events_api.get_page, EVENTS, **kwargs)

    # --- writing --------------------------------------------------------------------------------

    def changes(self, contact: Contact, writes: dict[str, str]) -> WriteBack | None:
        """What a decision's neutral writes change on this contact, or None when nothing does."""
        return write_back(contact, self.map.changes(contact, writes))

    def write(self, writes: list[WriteBack], *, recheck: Recheck | None = None,
              fence: Fence | None = None) -> list[WriteResult]:
        """Batch updates of 100. A lifecycle stage moving backward is cleared first, in its own call,
        as HubSpot ignores a backward write; `fence` is called before each call, so a replica that lost
        its lease while the clear was in flight does not send the set (the new holder finishes the move)."""
        lifecycle = self.map.fields.lifecycle
        failed: dict[str, WriteResult] = {}
        order = self.lifecycle_order() if any(lifecycle in w.properties for w in writes) else None
        backward = [w for w in writes if self.map.moves_lifecycle_back(w.previous.get(lifecycle, ""),
                                                                          w.properties.get(lifecycle, ""), order)]
        if backward:
            clears = [WriteBack(w.record_id, {lifecycle: ""}) for w in backward]
            by_id = {w.record_id: w for w in writes}
            clear_recheck = None if recheck is None else (
                lambda pending: _kept(pending, recheck([by_id[p.record_id] for p in pending])))
            for result in self._batch_update(clears, clear_recheck, fence):
                if not result.ok:
                    failed[result.record_id] = result
        results = list(failed.values())
        results += self._batch_update([w for w in writes if w.record_id not in failed], recheck, fence)
        return results

    def lifecycle_order(self) -> list[str]:
        """The portal's lifecycle stages in its order (options by displayOrder, custom stages with their
        numeric ids included), read once: portals add and reorder stages (HubSpot changelog, "Customized
        lifecycle stages", 2022)."""
        if self._lifecycle_order is None:
            prop = self._call("read lifecycle stages", self.client.crm.properties.core_api.get_by_name,
                              "contacts", self.map.fields.lifecycle)
            options = sorted(prop.options or [], key=lambda o: (o.display_order is None, o.display_order or 0))
            self._lifecycle_order = [o.value for o in options]
        return self._lifecycle_order

    def industry_labels(self) -> dict[str, str]:
        """The contact `industry` property's options, value -> label: a portal whose industry is a
        dropdown stores the internal value (COMPUTER_SOFTWARE), and the mapping may name the label
        ("Computer Software"). Empty when the property is a text field (HubSpot's default for contacts)."""
        prop = self._call("read industry options", self.client.crm.properties.core_api.get_by_name, "contacts",
                          "industry")
        return {str(o.value): str(o.label) for o in prop.options or [] if o.value is not None}

    def _batch_update(self, writes: list[WriteBack], recheck: Recheck | None = None,
                      fence: Fence | None = None) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in chunks(writes, BATCH):
            results += self._update(chunk, recheck, fence)
        return results

    def _update(self, chunk: list[WriteBack], recheck: Recheck | None = None,
                fence: Fence | None = None) -> list[WriteResult]:
        """One batch update. HubSpot refuses the whole batch (400, nothing written) when one value is
        invalid, without naming the record: the batch is split in halves until the bad record is alone;
        it fails for good with HubSpot's message (to quarantine), the others are written."""
        try:
            return self._send_batch(chunk, recheck, self._send_update, _per_record, fence)
        except (RecordError, FatalError) as exc:
            if not _refused_as_whole(exc):
                raise
            if len(chunk) == 1:
                return [WriteResult(chunk[0].record_id, False, _reason(exc)[:500], retriable=False)]
            half = len(chunk) // 2
            return self._update(chunk[:half], recheck, fence) + self._update(chunk[half:], recheck, fence)

    def _send_update(self, writes: list[WriteBack]) -> Any:
        return self._attempt("update contacts", self.client.crm.contacts.batch_api.update,
                             batch_input_simple_public_object_batch_input={
                                 "inputs": [{"id": w.record_id, "properties": w.properties} for w in writes]})

    def create_tasks(self, tasks: list[OwnerTask], *, fence: Fence | None = None) -> list[WriteResult]:
        """Batch creates of 100, skipping tasks whose key already exists in the portal (`_create_tasks`)."""
        return self._create_tasks(tasks, BATCH, self._existing_task_keys, self._create_task_batch, fence)

    def _create_task_batch(self, tasks: list[OwnerTask]) -> list[WriteResult]:
        response = self._attempt("create tasks", self.client.crm.objects.tasks.batch_api.create,
                                 batch_input_simple_public_object_batch_input_for_create={
                                     "inputs": [self._task_input(t) for t in tasks]})
        errors = getattr(response, "errors", None) or []
        message = "; ".join(_error_text(e) for e in errors)
        # batch create reports no ids for failures: the chunk is retried, keys prevent doubles
        return [WriteResult(t.record_id, not errors, message, retriable=bool(errors)) for t in tasks]

    @staticmethod
    def _task_input(task: OwnerTask) -> dict[str, Any]:
        properties = {"hs_task_subject": task.subject, "hs_task_body": task.body, "hs_task_status": "NOT_STARTED",
                      "hs_task_priority": "HIGH", "hs_task_type": "TODO", TASK_KEY: task.key,
                      "hs_timestamp": epoch_ms(task.due_at) if task.due_at else None,
                      "hubspot_owner_id": task.owner_id}
        return {"properties": {k: v for k, v in properties.items() if v},
                "associations": [{"to": {"id": task.record_id}, "types": [
                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TASK_TO_CONTACT}]}]}

    def _existing_task_keys(self, keys: list[str]) -> set[str]:
        request = {"filterGroups": [{"filters": [{"propertyName": TASK_KEY, "operator": "IN", "values": keys}]}],
                   "sorts": [], "properties": [TASK_KEY], "limit": SEARCH_PAGE, "after": "0"}
        page = self._attempt("search tasks", _raw(self._paced(self.client.crm.objects.tasks.search_api.do_search),
                                                  OBJECTS), public_object_search_request=request)
        return {key for obj in page["results"] if (key := (obj.get("properties") or {}).get(TASK_KEY))}

    # --- administration -------------------------------------------------------------------------

    def setup(self) -> list[str]:
        """Create the crmsync property group and properties that are missing; returns what it created."""
        created: list[str] = []
        groups = self._call("list property groups", self.client.crm.properties.groups_api.get_all, "contacts")
        if GROUP not in {g.name for g in groups.results}:
            self._call("create property group", self.client.crm.properties.groups_api.create, "contacts",
                       property_group_create={"name": GROUP, "label": "crmsync", "displayOrder": -1})
            created.append(f"group {GROUP}")
        existing = self._existing_properties()
        for spec in property_specs(self.map.mapping, GROUP):
            if spec["name"] not in existing:
                self._call("create property", self.client.crm.properties.core_api.create, "contacts",
                           property_create=spec)
                created.append(spec["name"])
        task_groups = self._call("list task property groups", self.client.crm.properties.groups_api.get_all, "tasks")
        if GROUP not in {g.name for g in task_groups.results}:
            self._call("create task property group", self.client.crm.properties.groups_api.create, "tasks",
                       property_group_create={"name": GROUP, "label": "crmsync", "displayOrder": -1})
            created.append(f"task group {GROUP}")
        task_props = self._call("list task properties", self.client.crm.properties.core_api.get_all, "tasks")
        if TASK_KEY not in {p.name for p in task_props.results}:
            self._call("create task property", self.client.crm.properties.core_api.create, "tasks",
                       property_create=TASK_KEY_SPEC)
            created.append(f"task property {TASK_KEY}")
        return created

    def doctor(self) -> list[Check]:
        checks: list[Check] = []
        try:
            existing = self._existing_properties()
        except AuthError as exc:
            return [Check("hubspot token", False, str(exc))]
        except RetriableError as exc:
            return [Check("hubspot connectivity", False, f"{self.settings.base_url}: {exc}")]
        checks.append(Check("hubspot token", True, f"accepted by {self.settings.base_url}"))
        checks.append(self._scopes())
        try:
            checks.append(Check("hubspot tier", True, self.capabilities().describe()))
        except (FatalError, RetriableError) as exc:
            checks.append(Check("hubspot tier", False, f"could not tell what the portal's tier gives: {exc}"))
        missing = [s["name"] for s in property_specs(self.map.mapping, GROUP) if s["name"] not in existing]
        checks.append(Check("hubspot properties", not missing,
                            "all present" if not missing else f"missing {', '.join(missing)}: run `crmsync setup`"))
        f = self.map.fields
        for prop, wanted in ((f.lifecycle, set(self.map.stage_values.values())),
                             (f.lead_status, {v for v in self.map.status_values.values() if v})):
            options = existing.get(prop)
            if options is None:
                checks.append(Check(f"hubspot {prop}", False, f"property {prop} does not exist"))
                continue
            unknown = sorted(wanted - options)
            checks.append(Check(f"hubspot {prop} values", not unknown,
                                "all mapped values exist" if not unknown else
                                f"mapped values not in the portal's options: {', '.join(unknown)}"))
        return checks

    def _scopes(self) -> Check:
        token = self.settings.access_token.get_secret_value() if self.settings.access_token else ""
        try:
            info = self._call("token info", self.client.oauth.access_tokens_api.get, token)
        except (FatalError, RetriableError):
            return Check("hubspot scopes", True, "not reported for this token type (private app tokens): "
                                                 "checked by the calls above")
        needed = {"crm.objects.contacts.read", "crm.objects.contacts.write", "crm.schemas.contacts.write",
                  "crm.objects.deals.read"}  # without it the deal stream is off (a StreamRefused)
        missing = sorted(needed - set(info.scopes or []))
        return Check("hubspot scopes", not missing, "ok" if not missing else f"missing {', '.join(missing)}")

    def _existing_properties(self) -> dict[str, set[str]]:
        """Property name -> its enumeration option values."""
        response = self._call("list properties", self.client.crm.properties.core_api.get_all, "contacts")
        return {p.name: {o.value for o in (p.options or [])} for p in response.results}


# --- reading answers ------------------------------------------------------------------------------
#
# The reads of every pass ask the official client for the answer unread: `_preload_content=False` is an
# argument of every generated API method of hubspot-api-client ("if False, the urllib3.HTTPResponse object
# will be returned without reading/decoding response data", their docstrings, e.g.
# hubspot/crm/contacts/api/search_api.py; the flag of the generated Python clients since
# swagger-api/swagger-codegen#4166). In version 12.0.0, hubspot/crm/contacts/api_client.py `__call_api`
# builds the request as always (auth, URL, timeout), sets `last_response` and returns that response before
# deserializing; hubspot/crm/contacts/rest.py `request` still raises ApiException (NotFoundException, ...),
# body read, for a status outside 2xx: the error table sees the same failures. What the client's models
# did with the JSON (api_client.py `__deserialize`: every date-time field through dateutil.parser.parse, a
# third of a pass's CPU) `_parsed` does with fromisoformat, and it refuses what they refused (a date-time
# that is not one): such an answer stays a malformed one. (The client validates no required field:
# its Configuration's client_side_validation is False.)


# Which fields of each read's `results` are date-times (hubspot-api-client 12.0.0 models: SimplePublicObject
# (WithAssociations), ExternalUnifiedEvent; PublicAssociationMultiWithLabel has none)
OBJECTS = ("createdAt", "updatedAt", "archivedAt")
EVENTS = ("occurredAt",)
ASSOCIATIONS: tuple[str, ...] = ()
_ENVELOPE_TIMES = ("requestedAt", "startedAt", "completedAt")  # a batch answer's (the models parse them too)
# The form HubSpot writes every date-time in (recorded answers in ../shared/recorded/hubspot: "…T…:…:….mmmZ";
# the specs' examples also without fractions, "2020-01-24T16:27:59Z"): read by datetime.fromisoformat
# (Python 3.11 takes "Z" and fractions); anything else by dateutil, as the client did.
_ISO_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


def _raw(fn: Callable[..., Any], times: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """`fn`, a client API method, answering its JSON body (`_parsed`) instead of the client's models.
    `_attempt` finds the client by `__self__` and reads the answer (`last_response`) as for any call."""
    client = getattr(getattr(fn, "__self__", None), "api_client", None)

    def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
        response = fn(*args, _preload_content=False, **kwargs)
        try:
            body = response.data  # the whole body: the connection goes back to the pool
        except Exception:
            if client is not None:  # cut off while read: no answer, as when the client read the body itself
                client.last_response = None
            raise
        return _parsed(body, response.headers.get("content-type"), times)

    call.__self__ = getattr(fn, "__self__", None)  # type: ignore[attr-defined]
    call.__name__ = getattr(fn, "__name__", "read")
    call.parsed = True  # type: ignore[attr-defined]  # a body it answers was read as JSON (`_answer`)
    return call


def _parsed(body: bytes, content_type: str | None, times: tuple[str, ...]) -> dict[str, Any]:
    """A 2xx answer's JSON as the client's models gave it: the date-time fields (`times` of each result, a
    batch answer's own, property versions' `timestamp`) as datetimes, ids and property values as text (the
    models' `str` and `dict[str, str]`). Raises (a malformed answer, as when the models failed) for a date-time
    that is not one, a property map that is not an object, and, stricter than the models (whose `results`
    were then None, read as no data), an answer whose `results` is not a list of objects."""
    charset = re.search(r"charset=([a-zA-Z\-\d]+)[\s;]?", content_type or "")  # as api_client.py decodes
    answer = json.loads(body.decode(charset.group(1) if charset else "utf-8"))
    if not isinstance(answer, dict) or not isinstance(answer.get("results"), list) \
            or not all(isinstance(item, dict) for item in answer["results"]):
        raise ValueError("an answer without its list of results")
    for key in _ENVELOPE_TIMES:
        if answer.get(key) is not None:
            answer[key] = _timestamp(answer[key])
    for item in answer["results"]:
        for key in times:
            if item.get(key) is not None:
                item[key] = _timestamp(item[key])
        if item.get("id") is not None:
            item["id"] = str(item["id"])
        if item.get("properties") is not None:
            item["properties"] = _texts(item["properties"])
        for versions in (item.get("propertiesWithHistory") or {}).values():
            for version in versions:
                if version.get("value") is not None:
                    version["value"] = str(version["value"])
                if version.get("timestamp") is not None:
                    version["timestamp"] = _timestamp(version["timestamp"])
    return answer


def _texts(properties: dict[str, Any]) -> dict[str, Any]:
    """Property values as the client's `dict[str, str]` gives them: text (str() of any other JSON value) or
    None (null)."""
    return {k: v if v is None or isinstance(v, str) else str(v) for k, v in properties.items()}


def _timestamp(value: Any) -> datetime:
    """A date-time field: HubSpot's ISO 8601 form by datetime.fromisoformat; any other by dateutil, the
    client's own parser (python-dateutil), which refuses what is not a date (ValueError, TypeError)."""
    if isinstance(value, str) and _ISO_STAMP.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:  # a month 13 or the like: dateutil decides, as it did
            pass
    return dateutil_parse(value)  # type: ignore[no-any-return]


# --- failures, classified once --------------------------------------------------------------------


def _answer(what: str, failure: Exception | None, response: Any, *, write: bool,
            parsed: bool = False) -> calls.Answer | None:
    """What one call got, for the error table; None when it is a well-formed answer to read. `parsed`: the
    call (`_raw`) read the body as JSON itself, so an answer without a failure is JSON (not parsed again)."""
    status = getattr(failure, "status", None)
    if isinstance(status, int) and status > 0:  # ApiException: a status outside 2xx (hubspot/*/rest.py)
        return calls.Answer("HubSpot", what, status, getattr(failure, "body", None), failure,
                            calls.retry_after(getattr(failure, "headers", None)), write=write)
    if response is not None:  # an answer came: the client could not read it, or it is not JSON
        if failure is None and (parsed or response.status == 204 or calls.shape(response.data) == calls.JSON):
            return None
        return calls.Answer("HubSpot", what, response.status, response.data, failure, write=write,
                            unreadable=failure is not None)
    if failure is None:
        return None
    return calls.Answer("HubSpot", what, None, None, failure, write=write)


def _refused_as_whole(exc: RecordError | FatalError) -> bool:
    """A batch HubSpot refused as a whole because of a value (400; the error table makes a write's
    record-level refusal a RecordError): isolating the record can help."""
    return isinstance(exc, RecordError) or "HTTP 400" in str(exc)


def _reason(exc: RecordError | FatalError) -> str:
    return exc.reason if isinstance(exc, RecordError) else str(exc)


def _keyset_id(value: Any) -> int:
    """Search pulls page by "id greater than the last one": HubSpot's ids are numbers."""
    if not str(value).isdigit():
        raise FatalError(f"HubSpot search returned the contact id {value!r}, which is not a number: "
                         "the pull pages by numeric id and cannot go on")
    return int(value)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _next_after(page: dict[str, Any]) -> str | None:
    """`paging.next.after` of a page (or of one record's associations), None on the last."""
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after is not None else None


def _next_unseen(seen: set[str], page: dict[str, Any]) -> str | None:
    """The events pages' next cursor; an empty page or a cursor seen before ends the read."""
    after = _next_after(page)
    if not page["results"] or not after or after in seen:
        return None
    seen.add(after)
    return after


def _per_record(ids: list[str], response: Any) -> list[WriteResult]:
    """One result per id. An error names its records in `context.ids`, in another id-like context key
    (`id`, `objectId`, `fromObjectId`, ...) or in its message; a record with no result and no error of
    its own, in an answer that has errors, is not taken as written: it is retried."""
    errors = getattr(response, "errors", None) or []
    written = {str(getattr(obj, "id", "")) for obj in getattr(response, "results", None) or []}
    failed: dict[str, WriteResult] = {}
    unmatched: list[str] = []
    for error in errors:
        named = _named_records(error, ids)
        text = _error_text(error)
        for record_id in named:
            failed[record_id] = WriteResult(record_id, False, text, not calls.is_record_level({error.category}))
        if not named:
            unmatched.append(text)
    results = []
    for record_id in ids:
        if record_id in failed:
            results.append(failed[record_id])
        elif record_id in written or not errors:
            results.append(WriteResult(record_id, True))
        else:
            results.append(WriteResult(record_id, False, ("no result for this record; the batch said: "
                                                          + "; ".join(unmatched))[:500], retriable=True))
    return results


def _named_records(error: Any, ids: list[str]) -> list[str]:
    wanted = set(ids)
    context = getattr(error, "context", None) or {}
    named = [str(v) for key, values in context.items() if "id" in key.lower()
             for v in (values if isinstance(values, list) else [values]) if str(v) in wanted]
    if not named:
        named = [token for token in re.findall(r"[\w-]+", str(getattr(error, "message", "") or "")) if token in wanted]
    return list(dict.fromkeys(named))


def _error_text(error: Any) -> str:
    return f"{error.category}: {error.message}"[:500]


def _kept(clears: list[WriteBack], writes: list[WriteBack]) -> list[WriteBack]:
    """The lifecycle clears whose writes the recheck kept (it is asked once per retry)."""
    kept = {w.record_id for w in writes}
    return [c for c in clears if c.record_id in kept]

