"""The handoff contract's alerts: MQL -> SQL within 30 days and SAL acceptance against their floors."""

from __future__ import annotations

from typing import Any

from crmsync.definitions.schema import Sla


def contract_alerts(figures: dict[str, Any], sla: Sla) -> dict[str, bool]:
    """True for each figure that is known and below the floor the definitions set."""
    floors = {"mql_to_sql_30d": sla.mql_to_sql_floor, "sal_acceptance": sla.sal_acceptance_floor}
    return {name: figures.get(name) is not None and figures[name] < floor for name, floor in floors.items()}
