"""The handoff contract's alerts (MQL -> SQL within 30 days and SAL acceptance against their floors),
and the pipeline line every output shares (`status`, `report`, the demo)."""

from __future__ import annotations

from typing import Any

from crmsync.definitions.schema import Sla

DEFAULT = " default"
"""The suffix of a currency key for deals without a currency code: "<crm> default" (the CRM account's own)."""


def contract_alerts(figures: dict[str, Any], sla: Sla) -> dict[str, bool]:
    """True for each figure that is known and below the floor the definitions set."""
    floors = {"mql_to_sql_30d": sla.mql_to_sql_floor, "sal_acceptance": sla.sal_acceptance_floor}
    return {name: figures.get(name) is not None and figures[name] < floor for name, floor in floors.items()}


def pipeline_line(figures: dict[str, Any]) -> str:
    """"pipeline without documented qualification: N records (M before rollout); N deals, total amount X"
    from the contract's figures; amounts are never converted, so more than one currency is listed per
    currency."""
    backlog = figures.get("skipped_gates_backlog", 0)
    return (f"pipeline without documented qualification: {figures['skipped_gates']} records"
            + (f" ({backlog} before rollout); " if backlog else "; ")
            + deals_text(figures["skipped_gate_deals"], figures["skipped_gate_amounts"]))


def deals_text(deals: int, amounts: dict[str, float]) -> str:
    """"N deals, total amount X"."""
    return f"{deals} deal{'' if deals == 1 else 's'}, {amount_text(amounts)}"


def amount_text(amounts: dict[str, float]) -> str:
    """"total amount 24,000.00" (a deal's currency code before it when the CRM sent one); with more
    than one currency, "total amount per currency: EUR 1,000.00; 24,000.00 (hubspot default)"."""
    if len(amounts) <= 1:
        code, value = next(iter(amounts.items()), ("", 0.0))
        return f"total amount {_money(code, value)}"
    return "total amount per currency: " + "; ".join(_money(code, value, named=True) for code, value in amounts.items())


def _money(code: str, value: float, *, named: bool = False) -> str:
    if code.endswith(DEFAULT) or not code:
        return f"{value:,.2f}" + (f" ({code})" if named and code else "")
    return f"{code} {value:,.2f}"
