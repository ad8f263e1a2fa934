"""`python -m services.billing serve|migrate|sync-catalog|resync|reconcile|refund|notifier|
notifications|metrics|ops-page …`."""

import argparse
import asyncio
import contextlib
import logging
import sys

import grpc
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.service_credentials import ServiceCredentials
from services.billing.catalog import sync_catalog
from services.billing.grpc_api import start_billing_server
from services.billing.notifications import cli as notifications_cli
from services.billing.notifications.settings import NotifierSettings
from services.billing.privacy.inbox import CALLER as INBOX_CALLER
from services.billing.privacy.inbox import InboxClient
from services.billing.refunds import REASONS
from services.billing.resync import cli as resync_cli
from services.billing.revenue import cli as revenue_cli
from services.billing.revenue.gauges import RevenueGauges
from services.billing.settings import (
    AdminClientSettings,
    BillingSettings,
    CatalogSyncSettings,
    OpsPageSettings,
)
from services.common.db import create_engine
from services.common.grpc_server import CHANNEL_OPTIONS, wait_for_termination_signal
from services.common.http import serve_asgi
from services.common.logging import configure_logging
from services.common.metrics import start_metrics_server
from services.common.migrations import upgrade_to_head
from services.common.rpc import cli_message
from services.common.settings import DatabaseSettings
from services.common.stripe_sdk import stripe_client_from
from services.common.telemetry import configure_tracing

log = logging.getLogger("services.billing")


async def serve(settings: BillingSettings) -> None:
    """Serve until SIGTERM/SIGINT, then drain for the configured grace period."""
    start_metrics_server(settings)
    configure_tracing("billing")
    engine = create_engine(
        settings.database_url.get_secret_value(), pool_size=settings.billing_db_pool_size
    )
    webhooks = settings.channel(settings.billing_webhooks_target, options=CHANNEL_OPTIONS)
    secret = settings.billing_webhooks_service_secret
    server = await start_billing_server(
        address=settings.billing_grpc_address,
        engine=engine,
        stripe_client=stripe_client_from(settings),
        service_secrets=settings.service_secrets,
        rules=settings.rules,
        credentials=settings.server_credentials(),
        health_address=settings.grpc_health_address,
        usage_sending=settings.usage_sending,
        inbox=None
        if secret is None
        else InboxClient(
            webhooks,
            ServiceCredentials(INBOX_CALLER, secret.get_secret_value(), audience="webhooks"),
        ),
    )
    log.info("billing gRPC serving", extra={"fields": {"port": server.port}})
    gauges = None
    if settings.metrics_port and settings.billing_revenue_refresh_seconds:
        gauges = asyncio.create_task(
            RevenueGauges().run(engine, settings.billing_revenue_refresh_seconds)
        )
    try:
        await wait_for_termination_signal()
    finally:
        if gauges is not None:
            gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gauges
        await server.stop(settings.billing_shutdown_grace_seconds)
        await webhooks.close(None)
        await engine.dispose()
        log.info("billing stopped")


async def sync(settings: CatalogSyncSettings) -> None:
    """Fill the catalog mirror from Stripe once."""
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        await sync_catalog(engine=engine, stripe_client=stripe_client_from(settings))
    finally:
        await engine.dispose()


async def refund(args: argparse.Namespace) -> int:
    """`refund PAYMENT [--amount N] [--reason R] [--idempotency-key K]` over BillingAdminService."""
    settings = AdminClientSettings()
    credentials = ServiceCredentials(
        settings.billing_admin_client_name,
        settings.billing_admin_client_secret.get_secret_value(),
        audience="billing",
    )
    request = billing_pb2.RefundPaymentRequest(
        payment_intent_id=args.payment,
        amount=args.amount,
        reason=args.reason or "",
        idempotency_key=args.idempotency_key or "",
    )
    async with settings.channel(settings.billing_target) as channel:
        admin = billing_pb2_grpc.BillingAdminServiceStub(channel)
        try:
            reply = await admin.RefundPayment(
                request, metadata=credentials.metadata(None), timeout=30
            )
        except grpc.aio.AioRpcError as e:
            message = cli_message(e, unreachable="billing is unreachable; is it running?")
            print(f"error: {e.code().name}: {message}", file=sys.stderr)
            return 1
    print(
        f"refund {reply.refund_id} {reply.status}: {reply.amount} {reply.currency} of "
        f"{reply.payment_intent_id} (charge {reply.charge_id}; refunded in all: "
        f"{reply.amount_refunded})"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m services.billing")
    commands = root.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "serve the billing gRPC API"),
        ("ops-page", "serve the operators' revenue page (BILLING_OPS_TOKEN)"),
        ("migrate", "apply the billing schema migrations"),
        ("sync-catalog", "fill the catalog mirror from Stripe once"),
    ):
        commands.add_parser(name, help=text)
    refunding = commands.add_parser(
        "refund", help="refund a payment, in full or in part (operators; idempotent)"
    )
    refunding.add_argument("payment", help="the payment intent id (pi_...)")
    refunding.add_argument(
        "--amount", type=int, help="minor units to refund (default: all that is left)"
    )
    refunding.add_argument("--reason", choices=REASONS)
    refunding.add_argument(
        "--idempotency-key",
        help="Stripe's idempotency key (default: derived from the payment, amount and reason, "
        "so the same command refunds once; give a new one for a second identical refund)",
    )
    notifications_cli.add_commands(commands)
    resync_cli.add_commands(commands)
    revenue_cli.add_commands(commands)
    return root


def main() -> None:
    args = parser().parse_args()
    if args.command == "refund":
        raise SystemExit(asyncio.run(refund(args)))
    if args.command == "notifications":
        raise SystemExit(asyncio.run(notifications_cli.notifications_command(args)))
    if args.command == "ops-page":
        page = OpsPageSettings()
        serve_asgi(
            "services.billing.revenue.page:create_app_from_environment",
            host=page.billing_ops_host,
            port=page.billing_ops_port,
            workers=1,
            grace_seconds=page.billing_ops_shutdown_grace_seconds,
            limits=page,
            metrics=page,
        )
        return
    if args.command == "metrics":
        raise SystemExit(asyncio.run(revenue_cli.metrics_command(args)))
    if args.command == "notifier":
        notifier_settings = NotifierSettings()
        configure_logging(service="billing-notifier", level=notifier_settings.log_level)
        asyncio.run(notifications_cli.run_notifier(notifier_settings))
        return
    if args.command == "migrate":
        database = DatabaseSettings()
        configure_logging(service="billing-migrate", level=database.log_level)
        upgrade_to_head(
            package="services.billing", database_url=database.database_url.get_secret_value()
        )
        return
    if args.command in ("resync", "reconcile"):
        mirror_settings = CatalogSyncSettings()
        configure_logging(service=f"billing-{args.command}", level=mirror_settings.log_level)
        command = (
            resync_cli.resync_command if args.command == "resync" else resync_cli.reconcile_command
        )
        raise SystemExit(asyncio.run(command(args, mirror_settings)))
    if args.command == "sync-catalog":
        sync_settings = CatalogSyncSettings()
        configure_logging(service="billing-sync-catalog", level=sync_settings.log_level)
        asyncio.run(sync(sync_settings))
        return
    settings = BillingSettings()
    configure_logging(service="billing", level=settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
