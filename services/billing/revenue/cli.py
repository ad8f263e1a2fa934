"""`python -m services.billing metrics --since YYYY-MM-DD [--until YYYY-MM-DD] [--plans]
[--json]`: the revenue figures over BillingAdminService, with the credential `refund` uses."""

import argparse
import json
import sys
from typing import Any

import grpc
from tatame.billing.v1 import billing_pb2_grpc, revenue_pb2

from services.auth.service_credentials import ServiceCredentials
from services.billing.notifications.messages import format_amount
from services.billing.settings import AdminClientSettings
from services.common.rpc import cli_message

# The table's columns: heading, field, whether it is an amount.
_COLUMNS = (
    ("day", "day", False),
    ("plan", "plan_name", False),
    ("MRR", "mrr", True),
    ("ARR", "arr", True),
    ("active", "active_subscriptions", False),
    ("trialing", "trialing_subscriptions", False),
    ("new", "new_subscriptions", False),
    ("reactivated", "reactivated_subscriptions", False),
    ("churned", "churned_subscriptions", False),
    ("trials ended", "trials_ended", False),
    ("converted", "trials_converted", False),
    ("revenue", "gross_revenue", True),
    ("refunds", "refunds", True),
    ("net", "net_revenue", True),
)


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "metrics", help="revenue metrics by day, currency and plan (operators)"
    )
    parser.add_argument("--since", required=True, help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--until", help="last day, YYYY-MM-DD (default: today, UTC)")
    parser.add_argument("--plans", action="store_true", help="one row per plan too")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")


async def metrics_command(args: argparse.Namespace) -> int:
    """Print the figures of the range as a table (or JSON); 1 on a refused call."""
    settings = AdminClientSettings()
    credentials = ServiceCredentials(
        settings.billing_admin_client_name,
        settings.billing_admin_client_secret.get_secret_value(),
        audience="billing",
    )
    request = revenue_pb2.GetRevenueMetricsRequest(since=args.since, until=args.until or "")
    async with settings.channel(settings.billing_target) as channel:
        admin = billing_pb2_grpc.BillingAdminServiceStub(channel)
        try:
            reply = await admin.GetRevenueMetrics(
                request, metadata=credentials.metadata(None), timeout=60
            )
        except grpc.aio.AioRpcError as e:
            message = cli_message(e, unreachable="billing is unreachable; is it running?")
            print(f"error: {e.code().name}: {message}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(as_json(reply), indent=2))
    else:
        print(table(reply, plans=args.plans))
    return 0


def _row_dict(row: revenue_pb2.RevenueDay) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in row.DESCRIPTOR.fields}


def as_json(reply: revenue_pb2.GetRevenueMetricsResponse) -> dict[str, Any]:
    """The answer as JSON (amounts as integers of minor units)."""
    return {
        "since": reply.since,
        "until": reply.until,
        "totals": [_row_dict(row) for row in reply.totals],
        "plans": [_row_dict(row) for row in reply.plans],
    }


def _cell(row: revenue_pb2.RevenueDay, field: str, amount: bool, total: bool) -> str:
    value = getattr(row, field)
    if field == "plan_name":
        return "(all)" if total else value or row.plan_id or "(no plan)"
    return format_amount(value, row.currency, "en") if amount else str(value)


def table(reply: revenue_pb2.GetRevenueMetricsResponse, *, plans: bool) -> str:
    """One block per currency: a row per day (all plans), then per plan with `plans`."""
    rows = [(row, True) for row in reply.totals]
    rows += [(row, False) for row in reply.plans] if plans else []
    if not rows:
        return f"no subscriptions or charges from {reply.since} to {reply.until}"
    blocks = []
    for currency in sorted({row.currency for row, _ in rows}):
        cells = [[heading for heading, _, _ in _COLUMNS]]
        for row, total in rows:
            if row.currency == currency:
                cells.append([_cell(row, f, amount, total) for _, f, amount in _COLUMNS])
        widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
        lines = [
            "  ".join(
                text.ljust(width) if i < 2 else text.rjust(width)
                for i, (text, width) in enumerate(zip(line, widths, strict=True))
            )
            for line in cells
        ]
        blocks.append(f"{currency.upper()}\n" + "\n".join(lines))
    return "\n\n".join(blocks)
