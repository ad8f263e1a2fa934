"""Today's revenue figures as Prometheus gauges, refreshed by the billing server every
BILLING_REVENUE_REFRESH_SECONDS (one query of the live subscriptions and today's charges).
Each billing replica exports the same values: aggregate them with max(), not sum()."""

import asyncio
import logging
from datetime import UTC, datetime

from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.revenue.figures import DayFigures
from services.billing.revenue.queries import revenue_report
from services.common.db import DATABASE_FAILURES

log = logging.getLogger(__name__)

_LABELS = ["currency", "plan"]
MRR = Gauge("billing_mrr_minor", "Monthly recurring revenue, minor units", _LABELS)
ARR = Gauge("billing_arr_minor", "Annual run rate (12 times MRR), minor units", _LABELS)
ACTIVE = Gauge("billing_active_subscriptions", "Paying subscriptions (active, past_due)", _LABELS)
TRIALING = Gauge("billing_trialing_subscriptions", "Subscriptions in their trial", _LABELS)
NET_TODAY = Gauge(
    "billing_net_revenue_today_minor",
    "Charges made today (UTC) less what has been refunded of them, minor units",
    _LABELS,
)
REFRESHED = Gauge(
    "billing_revenue_metrics_refreshed_timestamp_seconds", "When the revenue gauges were computed"
)
_GAUGES: dict[Gauge, str] = {
    MRR: "mrr",
    ARR: "arr",
    ACTIVE: "active",
    TRIALING: "trialing",
    NET_TODAY: "net_revenue",
}


class RevenueGauges:
    """Sets the gauges from today's figures, removing the label sets no longer there."""

    def __init__(self) -> None:
        self._shown: set[tuple[str, str]] = set()

    async def refresh(self, engine: AsyncEngine) -> None:
        today = datetime.now(UTC).date()
        report = await revenue_report(engine=engine, since=today, until=today)
        self.show(report.rows)

    def show(self, rows: list[DayFigures]) -> None:
        """Set every gauge from `rows` (plan "all" for a currency's totals)."""
        shown = set()
        for row in rows:
            labels = (row.currency, "all" if row.plan is None else row.plan or "none")
            shown.add(labels)
            for gauge, name in _GAUGES.items():
                gauge.labels(*labels).set(getattr(row, name))
        for labels in self._shown - shown:
            for gauge in _GAUGES:
                gauge.remove(*labels)
        self._shown = shown
        REFRESHED.set_to_current_time()

    async def run(self, engine: AsyncEngine, period: float) -> None:
        """Refresh every `period` seconds until cancelled; a failure is logged and retried."""
        while True:
            try:
                await self.refresh(engine)
            except DATABASE_FAILURES as e:
                log.warning("revenue gauges not refreshed", extra={"fields": {"error": str(e)}})
            except Exception:
                log.exception("revenue gauges not refreshed")
            await asyncio.sleep(period)
