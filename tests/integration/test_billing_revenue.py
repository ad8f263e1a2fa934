"""Revenue metrics (issue 15 §2) against a hand-computed fixture in a billing mirror of their
own (revenue_fixture.py): the figures, the admin RPC and who may call it, the CLI, the gauges,
and the operators' page with and without the operators' token."""

import asyncio
import base64
import itertools
import json
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import grpc
import httpx
import pytest
import stripe
from prometheus_client import REGISTRY
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2_grpc, revenue_pb2

from services.auth.service_credentials import ServiceCredentials
from services.billing.grpc_api import start_billing_server
from services.billing.grpc_policy import GATEWAY, OPS_CLI
from services.billing.models import customers, prices, products, subscriptions
from services.billing.revenue.figures import DayFigures
from services.billing.revenue.gauges import RevenueGauges
from services.billing.revenue.page import create_app
from services.billing.revenue.queries import revenue_report
from services.billing.settings import OpsPageSettings
from services.common.db import create_engine
from tests.harness import migrated_database, serve_on_loopback
from tests.integration import revenue_fixture as fixture
from tests.integration.ops_cli import metrics_cli

_FIELDS = tuple(fixture.USD_TOTALS[fixture.SINCE])


@dataclass(frozen=True)
class Mirror:
    engine: AsyncEngine
    url: str


@dataclass(frozen=True)
class Server:
    target: str
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def mirror_url(postgres_admin_url: str) -> str:
    """A billing database of its own (other tests' rows would count in the figures)."""
    return migrated_database(postgres_admin_url, "billing")


@pytest.fixture(scope="module")
async def mirror(mirror_url: str) -> AsyncIterator[Mirror]:
    """That database holding only the fixture."""
    url = mirror_url
    engine = create_engine(url, pool_size=2)
    await fixture.write_fixture(engine)
    yield Mirror(engine, url)
    await engine.dispose()


@pytest.fixture(scope="module")
async def server(mirror: Mirror) -> AsyncIterator[Server]:
    """Billing's gRPC server on the fixture's mirror (the metrics never call Stripe)."""
    service_secrets = {name: secrets.token_urlsafe(32) for name in (GATEWAY, OPS_CLI)}
    running = await start_billing_server(
        address="127.0.0.1:0",
        engine=mirror.engine,
        stripe_client=stripe.StripeClient("sk_test_revenue_metrics_never_call_stripe"),
        service_secrets=service_secrets,
    )
    yield Server(f"127.0.0.1:{running.port}", service_secrets)
    await running.stop(0)


def _figures(row: DayFigures) -> dict[str, int]:
    return {name: getattr(row, name) for name in _FIELDS}


async def test_every_figure_matches_the_hand_computed_fixture(mirror: Mirror) -> None:
    report = await revenue_report(engine=mirror.engine, since=fixture.SINCE, until=fixture.UNTIL)
    rows = {(r.currency, r.plan, r.day): r for r in report.rows}

    for currency, expected in (("usd", fixture.USD_TOTALS), ("brl", fixture.BRL_TOTALS)):
        got = {day: _figures(rows[(currency, None, day)]) for day in fixture.DAYS}
        assert got == expected, currency
    for day in fixture.DAYS:
        basic, pro = rows[("usd", "prod_basic", day)], rows[("usd", "prod_pro", day)]
        assert (basic.mrr, pro.mrr) == (
            fixture.USD_BASIC_MRR[day.day],
            fixture.USD_PRO_MRR[day.day],
        )
        assert basic.arr == basic.mrr * 12
    # By plan, sub_o's upgrade churns it from Basic and makes it new in Pro; its downgrade the
    # other way round.
    for plan, moves in (
        ("prod_basic", fixture.USD_BASIC_MOVES),
        ("prod_pro", fixture.USD_PRO_MOVES),
    ):
        got = {
            day: {name: getattr(rows[("usd", plan, day)], name) for name in moves[day]}
            for day in fixture.DAYS
        }
        assert got == moves, plan
    # Revenue by plan: the yearly Basic invoice, the Kit bought once, and money for no plan.
    assert rows[("usd", "prod_basic", date(2025, 3, 3))].net_revenue == 20400 - 5000
    assert rows[("usd", "prod_kit", date(2025, 3, 4))].net_revenue == 0
    # sub_o's upgrade: Pro's revenue, the plan it paid for then, though sub_o is on Basic now.
    assert rows[("usd", "prod_pro", date(2025, 3, 4))].gross_revenue == 2000
    assert rows[("usd", "prod_basic", date(2025, 3, 4))].gross_revenue == 0
    assert rows[("usd", "", date(2025, 3, 9))].gross_revenue == 700
    brl_pro = rows[("brl", "prod_pro", date(2025, 3, 6))]
    assert (brl_pro.trials_converted, brl_pro.gross_revenue) == (1, 3992)
    # Free and metered plans are in no figure; currencies are never mixed.
    assert {plan for _, plan, _ in rows} == {None, "prod_basic", "prod_pro", "prod_kit", ""}
    assert report.plan_names["prod_basic"] == "Basic"


async def test_a_subscription_in_a_currency_option_counts_in_that_currency(
    postgres_admin_url: str,
) -> None:
    """A customer who bills in brl on a usd price with a brl option: its MRR is the option's
    amount in brl (Stripe bills it so), nothing in usd."""
    url = await asyncio.to_thread(migrated_database, postgres_admin_url, "billing")
    engine = create_engine(url, pool_size=1)
    usd_price = fixture.PRICES[0] | {"currency_options": {"brl": {"unit_amount": 4990}}}
    customer = {
        "principal": "user:brl",
        "stripe_customer_id": "cus_brl",
        "email": "",
        "name": "",
        "currency": "brl",
    }
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(products).values(**fixture.PRODUCTS[0]))
            await conn.execute(insert(prices).values(**usd_price))
            await conn.execute(insert(customers).values(**customer))
            for sub in (
                fixture.sub("sub_brl", "cus_brl", usd_price["id"], "active", fixture.at(1, 0, 2)),
                fixture.sub("sub_usd", "cus_usd", usd_price["id"], "active", fixture.at(1, 0, 2)),
            ):
                await conn.execute(insert(subscriptions).values(**sub))
        report = await revenue_report(engine=engine, since=fixture.SINCE, until=fixture.SINCE)
    finally:
        await engine.dispose()
    totals = {r.currency: (r.mrr, r.active) for r in report.rows if r.plan is None}
    assert totals == {"brl": (4990, 1), "usd": (1000, 1)}


async def test_the_balance_of_active_subscriptions_holds_day_to_day(mirror: Mirror) -> None:
    """Over all plans and in each plan, plan changes included."""
    report = await revenue_report(engine=mirror.engine, since=fixture.SINCE, until=fixture.UNTIL)
    for plan in (None, "prod_basic", "prod_pro"):
        series = [r for r in report.rows if r.currency == "usd" and r.plan == plan]
        for before, after in itertools.pairwise(series):
            moved = after.new + after.reactivated - after.churned
            assert after.active == before.active + moved, (plan, after.day)


def _credentials(server: Server, caller: str) -> tuple[tuple[str, str], ...]:
    return ServiceCredentials(caller, server.secrets[caller], audience="billing").metadata(None)


async def test_operators_read_the_figures_over_the_admin_rpc_and_no_one_else(
    server: Server,
) -> None:
    request = revenue_pb2.GetRevenueMetricsRequest(since="2025-03-01", until="2025-03-10")
    async with grpc.aio.insecure_channel(server.target) as channel:
        admin = billing_pb2_grpc.BillingAdminServiceStub(channel)
        reply = await admin.GetRevenueMetrics(request, metadata=_credentials(server, OPS_CLI))
        with pytest.raises(grpc.aio.AioRpcError) as gateway:
            await admin.GetRevenueMetrics(request, metadata=_credentials(server, GATEWAY))
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await admin.GetRevenueMetrics(request)
        with pytest.raises(grpc.aio.AioRpcError) as reversed_range:
            await admin.GetRevenueMetrics(
                revenue_pb2.GetRevenueMetricsRequest(since="2025-03-10", until="2025-03-01"),
                metadata=_credentials(server, OPS_CLI),
            )
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await admin.GetRevenueMetrics(
                revenue_pb2.GetRevenueMetricsRequest(since="March 1st"),
                metadata=_credentials(server, OPS_CLI),
            )

    usd = [day for day in reply.totals if day.currency == "usd"]
    assert [day.mrr for day in usd] == [fixture.USD_TOTALS[d]["mrr"] for d in fixture.DAYS]
    eighth = usd[7]
    assert (eighth.day, eighth.reactivated_subscriptions, eighth.arr) == ("2025-03-08", 1, 99000)
    assert {(d.plan_id, d.plan_name) for d in reply.plans} >= {("prod_pro", "Pro")}
    assert all(d.plan_id == "" for d in reply.totals)
    assert gateway.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reversed_range.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_metrics_command_prints_a_table_or_json(server: Server) -> None:
    env = {
        **os.environ,
        "BILLING_TARGET": server.target,
        "BILLING_ADMIN_CLIENT_SECRET": server.secrets[OPS_CLI],
    }
    window = ("--since", "2025-03-01", "--until", "2025-03-10")
    as_json = await metrics_cli(env, *window, "--json")
    as_table = await metrics_cli(env, *window, "--plans")
    refused = await metrics_cli({**env, "BILLING_ADMIN_CLIENT_SECRET": "x" * 40}, *window)

    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    first_brl = next(d for d in answer["totals"] if d["currency"] == "brl" and d["mrr"])
    assert (first_brl["day"], first_brl["mrr"], first_brl["trials_converted"]) == (
        "2025-03-06",
        3992,
        1,
    )
    assert as_table.returncode == 0, as_table.stderr
    lines = as_table.stdout.splitlines()
    assert lines[0] == "BRL"
    assert "USD" in lines
    usd = lines[lines.index("USD") :]
    usd_first = next(line for line in usd if line.startswith("2025-03-01  (all)"))
    assert usd_first.split()[2:6] == ["72.33", "USD", "867.96", "USD"]
    assert any(line.startswith("2025-03-08  Pro ") for line in usd)
    assert refused.returncode == 1
    assert "UNAUTHENTICATED" in refused.stderr


async def test_the_gauges_show_todays_figures(mirror: Mirror) -> None:
    gauges = RevenueGauges()
    await gauges.refresh(mirror.engine)

    def sample(name: str, currency: str, plan: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"currency": currency, "plan": plan})

    # Today the fixture's live subscriptions are paying as they were on 2025-03-10.
    assert sample("billing_mrr_minor", "usd", "all") == 8250
    assert sample("billing_arr_minor", "usd", "all") == 8250 * 12
    assert sample("billing_mrr_minor", "usd", "prod_pro") == 3000
    assert sample("billing_mrr_minor", "brl", "all") == 3992
    assert sample("billing_active_subscriptions", "usd", "all") == 6
    assert sample("billing_trialing_subscriptions", "usd", "prod_basic") == 1
    # A label set that is gone is removed, not left at its last value.
    gauges.show([])
    assert sample("billing_mrr_minor", "usd", "all") is None


async def test_the_operators_page_renders_for_the_token_and_refuses_without(
    mirror: Mirror,
) -> None:
    token = secrets.token_urlsafe(32)
    settings = OpsPageSettings(database_url=mirror.url, billing_ops_token=token, metrics_port=0)
    server, task, port = await serve_on_loopback(create_app(settings))
    page = f"http://127.0.0.1:{port}/ops/revenue?since=2025-03-01&until=2025-03-10"
    basic = "Basic " + base64.b64encode(f"ops:{token}".encode()).decode()
    try:
        async with httpx.AsyncClient() as client:
            anonymous = await client.get(page)
            wrong = await client.get(page, headers={"Authorization": "Bearer " + "x" * 43})
            bearer = await client.get(page, headers={"Authorization": f"Bearer {token}"})
            browser = await client.get(page, headers={"Authorization": basic})
            bad_range = await client.get(
                page.replace("2025-03-10", "2025-02-01"),
                headers={"Authorization": f"Bearer {token}"},
            )
    finally:
        server.should_exit = True
        await task

    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic ")
    assert "Revenue" not in anonymous.text
    assert bearer.status_code == browser.status_code == 200
    assert "default-src 'none'" in bearer.headers["content-security-policy"]
    html = bearer.text
    # The USD table's first line (all plans): balances at the end of 03-10, sums of the days.
    assert "<td>all plans</td><td>82.50 USD</td><td>990.00 USD</td>" in html
    assert "<td>256.00 USD</td>" in html
    assert "<td>181.00 USD</td>" in html
    charts = [
        base64.b64decode(src.split('"', 1)[0]).decode()
        for src in html.split('src="data:image/svg+xml;base64,')[1:]
    ]
    assert len(charts) == 4  # MRR and new vs churned, for BRL and for USD
    assert "MRR (USD)" in charts[2]
    assert "New vs churned subscriptions (USD)" in charts[3]
    assert "<script" not in html
    assert bad_range.status_code == 400
