"""`crmsync report`: the shared scoreboard from crmsync's own records.

Funnel lead -> MQL -> SAL -> SQL -> opportunity -> won with conversion rates and the median / p90
time between stages; MQL -> SQL within 30 days against the floor; SAL acceptance; SLA compliance
per SLA and by week; disqualification reasons with their shares and the seeds' recalibration hints.
Pipeline without documented qualification: records at opportunity or customer that skipped the SQL
gate, by route; and, as they stand now, the open or won deals of such records with their amounts per
currency (never converted). Grouped by source, segment, owner or definitions version when asked.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from crmsync.definitions import LoadedDefinitions
from crmsync.model import Stage
from crmsync.redact import csv_cell
from crmsync.reporting.contract import contract_alerts, deals_text
from crmsync.store import Store
from crmsync.store.governance import IN_PIPELINE, closed_clocks

STAGES = ("lead", "mql", "sal", "sql", "opportunity", "won")
GROUPS = {"source": "source", "segment": "segment", "owner": "owner_id", "definitions-version": "definitions_version"}
HINTS = {  # the seeds' monthly review: a reason this common says what to recalibrate
    "budget_unavailable": (0.40, "add a budget signal to the MQL definition"),
    "no_authority": (0.30, "recalibrate title scoring (buyer personas)"),
}


def build_report(store: Store, definitions: LoadedDefinitions, since: datetime, until: datetime,
                 by: str | None = None) -> dict[str, Any]:
    rows = _rows(store, since, until)
    report: dict[str, Any] = {
        "window": {"since": since.isoformat(), "until": until.isoformat()},
        "definitions_version": definitions.version,
        "funnel": _funnel(rows),
        "stage_times_hours": _stage_times(rows),
        "reasons": _reasons(rows),
        "sla_trend": _sla_trend(rows),
        "pipeline": _pipeline(rows),
    }
    figures = store.contract(until, max(1, (until - since).days))
    sla = definitions.definitions.sla
    report["pipeline"].update(deals=figures["skipped_gate_deals"], amounts=figures["skipped_gate_amounts"])
    report["contract"] = {**figures, "mql_to_sql_floor": sla.mql_to_sql_floor,
                          "sal_acceptance_floor": sla.sal_acceptance_floor,
                          "alerts": contract_alerts(figures, sla)}
    if by is not None:
        column = GROUPS[by]
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(str(row[column] or "unknown"), []).append(row)
        report["by"] = by
        report["groups"] = {name: _funnel(group) for name, group in sorted(groups.items())}
    return report


def _rows(store: Store, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """The contact records the report covers (`Store.reported`), each with the stages it reached."""
    rows = store.reported(since, until)
    for row in rows:
        stage = row["target_stage"] or row["stage"]
        row["reached"] = {
            "lead": True, "mql": row["mql_at"] is not None,
            "sal": row["sal_at"] is not None or row["sql_at"] is not None or stage in IN_PIPELINE,
            "sql": row["sql_at"] is not None or stage == Stage.SQL or stage in IN_PIPELINE,
            "opportunity": stage in IN_PIPELINE, "won": stage == Stage.CUSTOMER,
        }
    return rows


def _funnel(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts = [sum(1 for row in rows if row["reached"][stage]) for stage in STAGES]
    return [{"stage": stage, "count": n, "rate_from_previous": None if i == 0 or not counts[i - 1]
             else round(n / counts[i - 1], 4)} for i, (stage, n) in enumerate(zip(STAGES, counts, strict=True))]


def _stage_times(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    spans = {"lead->mql": ("created_at", "mql_at"), "mql->sal": ("mql_at", "sal_at"),
             "sal->sql": ("sal_at", "sql_at"), "mql->sql": ("mql_at", "sql_at")}
    out: dict[str, dict[str, float | None]] = {}
    for name, (start, end) in spans.items():
        hours = sorted((row[end] - row[start]).total_seconds() / 3600 for row in rows
                       if row[start] is not None and row[end] is not None and row[end] >= row[start])
        out[name] = {"count": len(hours), "median": _round(statistics.median(hours)) if hours else None,
                     "p90": _round(_percentile(hours, 0.9)) if hours else None}
    return out


def _reasons(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for row in rows:
        if row["dq_reason"]:
            counts[row["dq_reason"]] = counts.get(row["dq_reason"], 0) + 1
    total = sum(counts.values())
    shares = {code: round(n / total, 4) for code, n in sorted(counts.items(), key=lambda kv: -kv[1])} if total else {}
    hints = [f"{share:.0%} {code.replace('_', ' ')}: {HINTS[code][1]}"
             for code, share in shares.items() if code in HINTS and share >= HINTS[code][0]]
    return {"total": total, "counts": counts, "shares": shares, "invalid": sum(1 for r in rows if r["dq_invalid"]),
            "hints": hints}


def _pipeline(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Records in pipeline, and those that got there without documented BANT, by route (the verdict
    reads "<route>: missing <items>")."""
    in_pipeline = [row for row in rows if row["reached"]["opportunity"]]
    skipped = [row["skipped_gate"] for row in in_pipeline if row["skipped_gate"]]
    by_route: dict[str, int] = {}
    for verdict in skipped:
        route = verdict.partition(":")[0]
        by_route[route] = by_route.get(route, 0) + 1
    return {"records": len(in_pipeline), "skipped_gate": len(skipped), "by_route": dict(sorted(by_route.items()))}


def _sla_trend(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    weeks: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        for clock, met in closed_clocks(row["slas"]):
            started = datetime.fromisoformat(clock["started_at"].replace("Z", "+00:00"))
            week = (started - timedelta(days=started.weekday())).date().isoformat()
            tally = weeks.setdefault((week, clock["name"]), [0, 0])
            tally[0] += met
            tally[1] += 1
    return [{"week": week, "sla": sla, "met": met, "closed": closed, "compliance": round(met / closed, 4)}
            for (week, sla), (met, closed) in sorted(weeks.items())]


def _percentile(values: list[float], q: float) -> float:
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[index]


def _round(value: float) -> float:
    return round(value, 1)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


# --- renderings --------------------------------------------------------------------------------


def render_text(report: dict[str, Any]) -> str:
    c = report["contract"]
    lines = [f"Report {report['window']['since'][:10]} .. {report['window']['until'][:10]} "
             f"(definitions {report['definitions_version']})", "", "Funnel"]
    lines += [f"  {row['stage']:12} {row['count']:7}  {_pct(row['rate_from_previous']):>5}" for row in report["funnel"]]
    lines += ["", "Time between stages (hours): median / p90"]
    lines += [f"  {name:10} {v['median'] if v['median'] is not None else '-':>8} / "
              f"{v['p90'] if v['p90'] is not None else '-':<8} ({v['count']})"
              for name, v in report["stage_times_hours"].items()]
    lines += ["", f"MQL -> SQL within 30 days: {_pct(c['mql_to_sql_30d'])} (floor {c['mql_to_sql_floor']:.0%})"
              + ("  BELOW FLOOR" if c["alerts"]["mql_to_sql_30d"] else ""),
              f"SAL acceptance: {_pct(c['sal_acceptance'])} (floor {c['sal_acceptance_floor']:.0%})"
              + ("  BELOW FLOOR" if c["alerts"]["sal_acceptance"] else ""),
              "SLA compliance: " + (", ".join(f"{k} {_pct(v)}" for k, v in c["sla_compliance"].items()) or "-")
              + f"; breached now {c['sla_breached']}, at risk {c['sla_at_risk']}"]
    reasons = report["reasons"]
    lines += ["", f"Disqualification reasons ({reasons['total']}, {reasons['invalid']} flagged invalid)"]
    lines += [f"  {code:24} {reasons['counts'][code]:6}  {share:.0%}" for code, share in reasons["shares"].items()]
    lines += [f"  hint: {hint}" for hint in reasons["hints"]]
    pipeline = report["pipeline"]
    lines += ["", f"Pipeline without documented qualification: {pipeline['skipped_gate']} records "
                  f"(of {pipeline['records']} in pipeline)",
              f"  open or won deals of such records now: {deals_text(pipeline['deals'], pipeline['amounts'])}"]
    lines += [f"  via {route:22} {n:6}" for route, n in pipeline["by_route"].items()]
    if "groups" in report:
        lines += ["", f"By {report['by']}: " + " / ".join(STAGES)]
        lines += [f"  {name[:24]:24} " + " ".join(f"{row['count']:6}" for row in funnel)
                  for name, funnel in report["groups"].items()]
    return "\n".join(lines)


def render_csv(report: dict[str, Any]) -> str:
    """The report as CSV; group names and reason codes come from the CRM, so every cell goes
    through `csv_cell` (no formulas reach a spreadsheet)."""
    out = io.StringIO()
    writer = csv.writer(out)

    def row(*cells: Any) -> None:
        writer.writerow([csv_cell(cell) for cell in cells])

    row("section", "group", "name", "value", "rate")
    for item in report["funnel"]:
        row("funnel", "all", item["stage"], item["count"], item["rate_from_previous"])
    for name, funnel in report.get("groups", {}).items():
        for item in funnel:
            row("funnel", name, item["stage"], item["count"], item["rate_from_previous"])
    for name, v in report["stage_times_hours"].items():
        row("stage_time_median_hours", "all", name, v["median"], "")
        row("stage_time_p90_hours", "all", name, v["p90"], "")
    for code, share in report["reasons"]["shares"].items():
        row("reason", "all", code, report["reasons"]["counts"][code], share)
    c = report["contract"]
    row("contract", "all", "mql_to_sql_30d", "", c["mql_to_sql_30d"])
    row("contract", "all", "sal_acceptance", "", c["sal_acceptance"])
    for sla, rate in c["sla_compliance"].items():
        row("sla_compliance", "all", sla, "", rate)
    row("pipeline", "all", "skipped_gate", report["pipeline"]["skipped_gate"], "")
    row("pipeline", "all", "skipped_gate_deals", report["pipeline"]["deals"], "")
    for currency, amount in report["pipeline"]["amounts"].items():
        row("pipeline_skipped_gate_amount", currency, "amount", amount, "")
    for route, n in report["pipeline"]["by_route"].items():
        row("pipeline_skipped_gate", "all", route, n, "")
    return out.getvalue()


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page (inline CSS and SVG, no scripts, no network) that opens offline."""
    c = report["contract"]
    funnel = _bars([(row["stage"], row["count"], f"{row['count']} ({_pct(row['rate_from_previous'])})")
                    for row in report["funnel"]], "funnel")
    times = _bars([(name, v["median"] or 0, f"median {v['median']} h, p90 {v['p90']} h")
                   for name, v in report["stage_times_hours"].items()], "stage-times")
    reasons = _bars([(code, report["reasons"]["counts"][code], f"{share:.0%}")
                     for code, share in report["reasons"]["shares"].items()], "reasons")
    trend = _bars([(f"{p['week']} {p['sla']}", round(p["compliance"] * 100), f"{p['compliance']:.0%}")
                   for p in report["sla_trend"][-24:]], "sla-trend")
    alerts = [f"MQL &rarr; SQL within 30 days is {_pct(c['mql_to_sql_30d'])}, below the floor of "
              f"{c['mql_to_sql_floor']:.0%}" if c["alerts"]["mql_to_sql_30d"] else "",
              f"SAL acceptance is {_pct(c['sal_acceptance'])}, below the floor of {c['sal_acceptance_floor']:.0%}"
              if c["alerts"]["sal_acceptance"] else ""]
    alert_html = "".join(f'<p class="alert">{a}</p>' for a in alerts if a)
    hints = "".join(f"<li>{_escape(h)}</li>" for h in report["reasons"]["hints"]) or "<li>none</li>"
    compliance = ", ".join(f"{_escape(k)} {_pct(v)}" for k, v in c["sla_compliance"].items()) or "no closed clocks"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crmsync report</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1f2933; max-width: 960px; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #d9e2ec; }}
.kpis {{ display: flex; gap: 1rem; flex-wrap: wrap; }}
.kpi {{ border: 1px solid #d9e2ec; border-radius: 6px; padding: .75rem 1rem; min-width: 180px; }}
.kpi b {{ display: block; font-size: 1.4rem; }} .alert {{ color: #b42318; font-weight: 600; }}
svg text {{ font: 12px system-ui, sans-serif; fill: #1f2933; }} .bar {{ fill: #2f6fde; }}
</style></head><body>
<h1>crmsync report</h1>
<p>{_escape(report['window']['since'][:10])} to {_escape(report['window']['until'][:10])},
definitions {_escape(report['definitions_version'])}</p>
{alert_html}
<div class="kpis">
<div class="kpi">MQL &rarr; SQL in 30 days<b>{_pct(c['mql_to_sql_30d'])}</b>floor {c['mql_to_sql_floor']:.0%}</div>
<div class="kpi">SAL acceptance<b>{_pct(c['sal_acceptance'])}</b>floor {c['sal_acceptance_floor']:.0%}</div>
<div class="kpi">SLA compliance<b>{_escape(compliance)}</b>breached now {c['sla_breached']}</div>
<div class="kpi">Pipeline without documented qualification<b>{report['pipeline']['skipped_gate']}</b>of
{report['pipeline']['records']} in pipeline</div>
<div class="kpi" id="skipped-gate-deals">Deals without documented qualification<b>{report['pipeline']['deals']}</b>
{_escape(deals_text(report['pipeline']['deals'], report['pipeline']['amounts']))}</div>
</div>
<h2 id="funnel-title">Funnel</h2>{funnel}
<h2>Time between stages (median hours)</h2>{times}
<h2>SLA compliance by week (%)</h2>{trend}
<h2>Disqualification reasons</h2>{reasons}
<h3>Recalibration hints</h3>
<ul>{hints}</ul>
</body></html>
"""


def _bars(items: Iterable[tuple[str, float, str]], name: str) -> str:
    data = list(items)
    if not data:
        return '<p>No data in this window.</p>'
    top = max(value for _, value, _ in data) or 1
    row, width = 26, 520
    parts = [f'<svg class="chart" id="{name}" width="860" height="{row * len(data) + 10}" role="img" '
             f'aria-label="{name}">']
    for i, (label, value, note) in enumerate(data):
        y = i * row + 5
        length = max(1, int(width * value / top))
        parts.append(f'<text x="0" y="{y + 16}">{_escape(label)}</text>'
                     f'<rect class="bar" x="170" y="{y}" width="{length}" height="{row - 8}"></rect>'
                     f'<text x="{175 + length}" y="{y + 16}">{_escape(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _escape(text: str) -> str:
    return html.escape(str(text), quote=True)
