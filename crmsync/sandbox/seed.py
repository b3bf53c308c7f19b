"""Realistic, reproducible lead populations for the sandboxes (CRM-neutral).

The first records are one of each archetype, so every rule of the default definitions is hit
by any seeded population (fit / no fit, each high-intent action, each disqualifier, BANT
complete / partial / placeholder, every reason code); the rest are drawn at random from the same
seed. Each sandbox turns a `SeedLead` into its own CRM's shapes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

FIRST = ["Dana", "Alex", "Priya", "Jonas", "Mei", "Carlos", "Fatima", "Liam", "Sofia", "Noah", "Aisha", "Mateo",
         "Hannah", "Kenji", "Olivia", "Tomasz", "Chloe", "Ravi", "Emma", "Lucas", "Zara", "Ethan", "Ines", "Omar",
         "Grace", "Felix", "Amara", "Henrik", "Leah", "Diego", "Nora", "Samuel", "Yuki", "Isabel", "Marco"]
LAST = ["Ruiz", "Chen", "Patel", "Müller", "Nguyen", "Okafor", "Smith", "Kowalski", "Rossi", "Johansson", "Kim",
        "Haddad", "Dubois", "O'Brien", "García", "Schmidt", "Tanaka", "Silva", "Andersen", "Cohen", "Murphy",
        "Novak", "Ferreira", "Larsen", "Moreau", "Brown", "Singh", "Jansen", "Costa", "Walsh"]
COMPANY_A = ["Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Proseware", "Lucerne", "Woodgrove",
             "Relecloud", "Coho", "Alpine", "Blue Yonder", "Fourth", "Humongous", "Trey", "VanArsdel", "Wingtip",
             "Adatum", "Bellows", "Cascade", "Datum", "Everett", "Granite", "Harbor", "Ironwood", "Juniper"]
COMPANY_B = ["Pay", "Health", "Logistics", "Systems", "Analytics", "Insurance", "Retail", "Labs", "Cloud",
             "Partners", "Capital", "Networks", "Software", "Bank", "Commerce", "Media"]
INDUSTRY_FOR = {"Pay": "Financial Services", "Health": "Healthcare", "Logistics": "Logistics",
                "Systems": "Information Technology", "Analytics": "Software", "Insurance": "Insurance",
                "Retail": "Retail", "Labs": "Biotechnology", "Cloud": "Software", "Partners": "Management Consulting",
                "Capital": "Financial Services", "Networks": "Telecommunications", "Software": "Computer Software",
                "Bank": "Banking", "Commerce": "E-commerce", "Media": "Media Production"}
FIT_TITLES = ["VP Finance", "VP of Sales", "Head of Revenue Operations", "Director of Marketing", "CFO",
              "Chief Revenue Officer", "Marketing Operations Manager", "SVP Growth", "Founder & CEO"]
OTHER_TITLES = ["Software Engineer", "Accountant", "Sales Development Representative", "Designer",
                "Customer Support Specialist", "Data Analyst"]
FIT_COUNTRIES = ["United States", "Canada", "United Kingdom", "Germany", "Netherlands", "Ireland", "Australia"]
OTHER_COUNTRIES = ["Brazil", "India", "Japan", "Mexico", "South Africa"]
SOURCES = ["organic", "paid_search", "email", "social", "referral", "partner", "direct", "event"]
PERSONAL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com"]
COMPETITORS = ["rivalcrm.io", "leadscorepro.com", "pipelinegenius.com"]
PAGES = ["/", "/product", "/blog/lead-scoring-101", "/blog/mql-vs-sql", "/customers", "/integrations/hubspot",
         "/docs/getting-started", "/about"]
FORMS = ["Newsletter signup", "Webinar registration", "Whitepaper: The RevOps Handbook",
         "Ebook: Lead Scoring That Works", "Contact us"]
DOCUMENTED = {"need": "Inbound demo requests sit for days; they lose roughly a third to slow follow-up",
              "authority": "Reports to the CFO, who signs off; CFO joined the second call",
              "timeline": "Decision within 6 weeks, before the new fiscal quarter",
              "budget": "$45k approved in the FY27 RevOps budget"}


@dataclass
class SeedActivity:
    kind: str  # page_view, form_submission, email_open, email_click, call, meeting, note, email, webinar
    days_ago: float
    detail: str = ""
    by_owner: bool = False


@dataclass
class SeedLead:
    index: int
    archetype: str
    first_name: str
    last_name: str
    email: str
    company: str | None
    title: str
    industry: str | None
    employees: int | None
    country: str | None
    source: str
    stage: str = "lead"
    lead_status: str | None = None
    bant: dict[str, str] = field(default_factory=dict)
    dq_reason: str | None = None
    owner: int = 0
    created_days_ago: float = 30.0
    activities: list[SeedActivity] = field(default_factory=list)


Builder = Callable[["SeedLead", random.Random], None]
REASON_CODES = ["budget_unavailable", "no_authority", "no_need", "timeline_12_months", "duplicate_or_incorrect"]
ARCHETYPES = [
    "ideal_demo", "ideal_pricing", "ideal_trial", "fit_blog_only", "whitepaper_hoarder", "engaged_no_fit",
    "personal_email", "competitor", "student", "sql_documented", "sql_missing_budget", "sql_placeholders",
    "sql_vague_timeline", "dq_not_interested", *[f"dq_{code}" for code in REASON_CODES], "accepted_mql",
    "opportunity", "customer",
]


def generate(count: int, seed: int = 42, owners: int = 5) -> list[SeedLead]:
    """`count` leads; the first len(ARCHETYPES) are one of each archetype (when count allows)."""
    rnd = random.Random(seed)
    leads = []
    for i in range(count):
        archetype = ARCHETYPES[i] if i < len(ARCHETYPES) else _random_archetype(rnd)
        leads.append(_lead(i, archetype, rnd, owners))
    return leads


def _random_archetype(rnd: random.Random) -> str:
    roll = rnd.random()
    if roll < 0.55:
        return "random"
    if roll < 0.70:
        return rnd.choice(["ideal_demo", "ideal_pricing", "ideal_trial"])
    if roll < 0.80:
        return rnd.choice(["fit_blog_only", "whitepaper_hoarder", "engaged_no_fit"])
    if roll < 0.86:
        return rnd.choice(["personal_email", "competitor", "student"])
    if roll < 0.93:
        return rnd.choice(["sql_documented", "sql_missing_budget", "sql_placeholders", "accepted_mql"])
    return rnd.choice(["opportunity", "customer", "dq_not_interested", *[f"dq_{c}" for c in REASON_CODES]])


def _lead(i: int, archetype: str, rnd: random.Random, owners: int) -> SeedLead:
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    a, b = rnd.choice(COMPANY_A), rnd.choice(COMPANY_B)
    company = f"{a} {b}"
    domain = f"{a}{b}".lower().replace(" ", "") + rnd.choice([".com", ".io", ".co", ".net"])
    local = f"{first}.{last}".lower().replace("'", "").replace("ü", "ue").replace("í", "i")
    lead = SeedLead(
        index=i, archetype=archetype, first_name=first, last_name=last, email=f"{local}{i}@{domain}",
        company=company, title=rnd.choice(FIT_TITLES), industry=INDUSTRY_FOR[b],
        employees=rnd.choice([60, 85, 120, 200, 240, 350, 420]), country=rnd.choice(FIT_COUNTRIES),
        source=rnd.choice(SOURCES), owner=i % owners, created_days_ago=rnd.uniform(5, 200),
    )
    if lead.industry in ("Biotechnology", "Media Production"):
        lead.industry = "Software"
    browse = [SeedActivity("page_view", rnd.uniform(0, 60), rnd.choice(PAGES)) for _ in range(rnd.randint(0, 4))]
    build = _ARCHETYPE_BUILDERS.get(archetype, _random_lead)
    build(lead, rnd)
    lead.activities = browse + lead.activities
    lead.activities.sort(key=lambda act: -act.days_ago)
    return lead


def _demo(lead: SeedLead, rnd: random.Random) -> None:
    lead.activities.append(SeedActivity("form_submission", rnd.uniform(0.1, 20), "Demo request"))


def _pricing(lead: SeedLead, rnd: random.Random) -> None:
    lead.activities += [SeedActivity("page_view", rnd.uniform(0.1, 25), "/pricing") for _ in range(3)]


def _trial(lead: SeedLead, rnd: random.Random) -> None:
    lead.activities.append(SeedActivity("form_submission", rnd.uniform(0.1, 30), "Free trial sign-up"))


def _blog_only(lead: SeedLead, rnd: random.Random) -> None:
    lead.activities = [SeedActivity("page_view", rnd.uniform(1, 10), "/blog/lead-scoring-101")]


def _whitepapers(lead: SeedLead, rnd: random.Random) -> None:
    lead.activities += [SeedActivity("form_submission", rnd.uniform(50, 90), rnd.choice(FORMS[2:4]))
                        for _ in range(5)]


def _no_fit(lead: SeedLead, rnd: random.Random) -> None:
    lead.employees = rnd.choice([8, 15, 2500, 12000])
    lead.country = rnd.choice(OTHER_COUNTRIES)
    _demo(lead, rnd)
    lead.activities += [SeedActivity("email_click", rnd.uniform(0, 10), "Newsletter") for _ in range(4)]


def _personal(lead: SeedLead, rnd: random.Random) -> None:
    lead.email = f"{lead.first_name.lower()}{lead.index}@{rnd.choice(PERSONAL)}"
    lead.company = None
    lead.industry = None
    lead.employees = None
    _demo(lead, rnd)
    _pricing(lead, rnd)


def _competitor(lead: SeedLead, rnd: random.Random) -> None:
    domain = rnd.choice(COMPETITORS)
    lead.email = f"{lead.first_name.lower()}{lead.index}@{domain}"
    lead.company = domain.split(".")[0].title()
    _demo(lead, rnd)


def _student(lead: SeedLead, rnd: random.Random) -> None:
    lead.title = rnd.choice(["Student", "MBA Student", "Marketing Intern"])
    _demo(lead, rnd)


def _sql(lead: SeedLead, rnd: random.Random, **bant: str) -> None:
    _demo(lead, rnd)
    lead.stage = "sql"
    lead.lead_status = "in_progress"
    lead.bant = {**DOCUMENTED, **bant}
    lead.activities.append(SeedActivity("call", rnd.uniform(0.1, 5), "Discovery call", by_owner=True))


def _accepted(lead: SeedLead, rnd: random.Random) -> None:
    _demo(lead, rnd)
    lead.stage = "mql"
    lead.lead_status = "in_progress"


def _returned(lead: SeedLead, rnd: random.Random, reason: str) -> None:
    _demo(lead, rnd)
    lead.stage = "sal"
    lead.lead_status = "unqualified"
    lead.dq_reason = reason
    lead.activities.append(SeedActivity("call", rnd.uniform(0.5, 8), "Discovery call", by_owner=True))


def _sales_owned(stage: str) -> Builder:
    def build(lead: SeedLead, rnd: random.Random) -> None:
        _demo(lead, rnd)
        lead.stage = stage
    return build


def _random_lead(lead: SeedLead, rnd: random.Random) -> None:
    if rnd.random() < 0.5:
        lead.title = rnd.choice(OTHER_TITLES)
    if rnd.random() < 0.3:
        lead.employees = rnd.choice([5, 20, 30, 700, 1500, 5000])
    if rnd.random() < 0.2:
        lead.country = rnd.choice(OTHER_COUNTRIES)
    for _ in range(rnd.randint(0, 8)):
        kind = rnd.choice(["page_view", "page_view", "email_open", "email_click", "form_submission", "webinar"])
        detail = {"page_view": rnd.choice([*PAGES, "/pricing"]), "form_submission": rnd.choice(FORMS),
                  "webinar": "Pipeline Reviews That Work"}.get(kind, "Monthly newsletter")
        lead.activities.append(SeedActivity(kind, rnd.uniform(0, 120), detail))


def _reason(code: str) -> Builder:
    return lambda lead, rnd: _returned(lead, rnd, code)


_ARCHETYPE_BUILDERS = {
    "ideal_demo": _demo, "ideal_pricing": _pricing, "ideal_trial": _trial, "fit_blog_only": _blog_only,
    "whitepaper_hoarder": _whitepapers, "engaged_no_fit": _no_fit, "personal_email": _personal,
    "competitor": _competitor, "student": _student, "accepted_mql": _accepted,
    "sql_documented": lambda lead, rnd: _sql(lead, rnd),
    "sql_missing_budget": lambda lead, rnd: _sql(lead, rnd, budget=""),
    "sql_placeholders": lambda lead, rnd: _sql(lead, rnd, need="n/a", timeline="tbd"),
    "sql_vague_timeline": lambda lead, rnd: _sql(lead, rnd, timeline="next year"),
    "dq_not_interested": lambda lead, rnd: _returned(lead, rnd, "Not interested"),
    **{f"dq_{code}": _reason(code) for code in REASON_CODES},
    "opportunity": _sales_owned("opportunity"), "customer": _sales_owned("customer"),
}


def moment(now: datetime, days_ago: float) -> datetime:
    return now - timedelta(days=days_ago)
