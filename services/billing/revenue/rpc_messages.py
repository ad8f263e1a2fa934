"""GetRevenueMetrics' request and answer, converted (the RPC is in grpc_admin.py)."""

import re
from datetime import UTC, date, datetime

from tatame.billing.v1 import revenue_pb2

from services.billing.errors import InvalidArgument
from services.billing.revenue.figures import DayFigures
from services.billing.revenue.queries import RevenueReport

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def day(text: str, name: str) -> date:
    """A YYYY-MM-DD date (`name` says which, in the error)."""
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise InvalidArgument(f"`{name}` must be a date, YYYY-MM-DD")


def request_range(request: revenue_pb2.GetRevenueMetricsRequest) -> tuple[date, date]:
    """The range asked for; `until` defaults to today (UTC)."""
    since = day(request.since, "since")
    until = day(request.until, "until") if request.until else datetime.now(UTC).date()
    return since, until


def _day(row: DayFigures, names: dict[str, str]) -> revenue_pb2.RevenueDay:
    return revenue_pb2.RevenueDay(
        day=row.day.isoformat(),
        currency=row.currency,
        plan_id=row.plan or "",
        plan_name=names.get(row.plan or "", ""),
        mrr=row.mrr,
        arr=row.arr,
        active_subscriptions=row.active,
        trialing_subscriptions=row.trialing,
        new_subscriptions=row.new,
        reactivated_subscriptions=row.reactivated,
        churned_subscriptions=row.churned,
        trials_started=row.trials_started,
        trials_ended=row.trials_ended,
        trials_converted=row.trials_converted,
        gross_revenue=row.gross_revenue,
        refunds=row.refunds,
        net_revenue=row.net_revenue,
    )


def revenue_response(report: RevenueReport) -> revenue_pb2.GetRevenueMetricsResponse:
    names = report.plan_names
    return revenue_pb2.GetRevenueMetricsResponse(
        since=report.since.isoformat(),
        until=report.until.isoformat(),
        totals=[_day(row, names) for row in report.rows if row.plan is None],
        plans=[_day(row, names) for row in report.rows if row.plan is not None],
    )
