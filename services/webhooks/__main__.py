"""`python -m services.webhooks receiver|relay|migrate|backstop|retention|events|endpoint …`."""

import argparse
import asyncio
import json
import logging
import sys
from datetime import datetime, timedelta
from typing import TypeVar

import grpc
import stripe
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from tatame.billing.v1 import billing_pb2_grpc
from tatame.webhooks.v1 import webhooks_pb2, webhooks_pb2_grpc

from services.auth.service_credentials import ServiceCredentials, parse_service_secrets
from services.common.grpc_server import wait_for_termination_signal
from services.common.http import serve_asgi
from services.common.logging import configure_logging
from services.common.metrics import start_metrics_server
from services.common.migrations import upgrade_to_head
from services.common.rpc import cli_message
from services.common.settings import BaseServiceSettings, DatabaseSettings, StripeSettings
from services.common.stripe_sdk import STRIPE_API_VERSION, stripe_client_from
from services.common.telemetry import configure_tracing
from services.common.timestamps import timestamp
from services.webhooks import inbox
from services.webhooks.backstop import poll_stripe_events
from services.webhooks.endpoint import ensure_endpoint
from services.webhooks.grpc_api import OPS_CLI, STATE_VALUES, start_admin_server
from services.webhooks.relay import RELAY_CHANNEL_OPTIONS, Relay
from services.webhooks.relay import SERVICE_NAME as RELAY
from services.webhooks.settings import (
    AdminClientSettings,
    BackstopSettings,
    ReceiverSettings,
    RelaySettings,
    RetentionSettings,
)

log = logging.getLogger("services.webhooks")
S = TypeVar("S", bound=BaseServiceSettings)


def receiver() -> None:
    settings = ReceiverSettings()
    serve_asgi(
        "services.webhooks.receiver:create_receiver_app_from_environment",
        host=settings.webhooks_receiver_host,
        port=settings.webhooks_receiver_port,
        workers=settings.webhooks_receiver_workers,
        grace_seconds=settings.webhooks_shutdown_grace_seconds,
        limits=settings,
        metrics=settings,
    )


async def relay(settings: RelaySettings) -> None:
    """Deliver until SIGTERM; serve the admin API and health beside it."""
    database_url = settings.database_url.get_secret_value()
    start_metrics_server(settings)
    # Its deliveries to billing, not its polling queries, are what traces are for.
    configure_tracing("webhooks-relay", database=False)
    admin_pool = AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False)
    await admin_pool.open(wait=True, timeout=30)
    admin = await start_admin_server(
        address=settings.webhooks_admin_grpc_address,
        pool=admin_pool,
        service_secrets=parse_service_secrets(
            settings.webhooks_admin_service_secrets.get_secret_value()
        ),
        credentials=settings.server_credentials(),
        health_address=settings.grpc_health_address,
    )
    async with settings.channel(settings.billing_target, options=RELAY_CHANNEL_OPTIONS) as channel:
        worker = Relay(
            database_url=database_url,
            billing=billing_pb2_grpc.BillingServiceStub(channel),
            credentials=ServiceCredentials(
                RELAY, settings.webhooks_relay_service_secret.get_secret_value(), audience="billing"
            ),
            batches=settings.relay_batches,
            batch_size=settings.relay_batch_size,
            max_attempts=settings.relay_max_attempts,
            backoff_base=settings.relay_backoff_base_seconds,
            backoff_max=settings.relay_backoff_max_seconds,
            poll_interval=settings.relay_poll_interval_seconds,
            delivery_timeout=settings.relay_delivery_timeout_seconds,
        )
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        log.info("relay running", extra={"fields": {"admin_port": admin.port}})
        await asyncio.wait(
            [running, asyncio.create_task(wait_for_termination_signal())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        stop.set()
        try:
            await asyncio.wait_for(running, settings.relay_shutdown_grace_seconds)
        finally:
            await admin.stop(2)
            await admin_pool.close()


async def backstop(settings: BackstopSettings) -> None:
    stripe_client = stripe_client_from(settings)
    async with await AsyncConnection.connect(settings.database_url.get_secret_value()) as conn:
        result = await poll_stripe_events(
            conn=conn,
            stripe_client=stripe_client,
            livemode=settings.stripe_livemode,
            initial_lookback=timedelta(seconds=settings.backstop_initial_lookback_seconds),
            overlap=timedelta(seconds=settings.backstop_overlap_seconds),
        )
    log.info("backstop done", extra={"fields": {"seen": result.seen, "inserted": result.inserted}})


async def retention(settings: RetentionSettings) -> None:
    async with await AsyncConnection.connect(
        settings.database_url.get_secret_value(), autocommit=True
    ) as conn:
        dropped = await inbox.drop_old_payloads(
            conn, older_than_days=settings.webhooks_retention_days
        )
    log.info("retention done", extra={"fields": {"payloads_dropped": dropped}})


def _time(text: str | None) -> Timestamp | None:
    return timestamp(None if text is None else datetime.fromisoformat(text))


def _selection(args: argparse.Namespace) -> webhooks_pb2.EventSelection:
    return webhooks_pb2.EventSelection(
        type=args.type or "",
        state=STATE_VALUES.get(args.state or "", webhooks_pb2.DELIVERY_STATE_UNSPECIFIED),
        received_after=_time(args.since),
        received_before=_time(args.until),
    )


async def events_cli(args: argparse.Namespace) -> int:
    """The operators' command line over the admin API."""
    settings = AdminClientSettings()
    credentials = ServiceCredentials(
        settings.webhooks_admin_client_name or OPS_CLI,
        settings.webhooks_admin_client_secret.get_secret_value(),
        audience="webhooks",
    )
    async with settings.channel(settings.webhooks_admin_target) as channel:
        admin = webhooks_pb2_grpc.WebhooksAdminServiceStub(channel)
        metadata = credentials.metadata(None)
        try:
            if args.action == "list":
                reply = await admin.ListEvents(
                    webhooks_pb2.ListEventsRequest(
                        selection=_selection(args), page_size=args.limit
                    ),
                    metadata=metadata,
                    timeout=10,
                )
                for e in reply.events:
                    print(
                        f"{e.id}  {e.type:40} {webhooks_pb2.DeliveryState.Name(e.state)[15:].lower():9} "
                        f"attempts={e.attempts} received={e.receive_time.ToDatetime().isoformat()} {e.last_error}"
                    )
            elif args.action == "show":
                reply = await admin.GetEvent(
                    webhooks_pb2.GetEventRequest(id=args.id), metadata=metadata, timeout=10
                )
                print(json.dumps(MessageToDict(reply.event), indent=2))
            else:
                if args.all_dead:
                    request = webhooks_pb2.ReplayEventsRequest(all_dead=True)
                elif args.id:
                    request = webhooks_pb2.ReplayEventsRequest(
                        ids=webhooks_pb2.EventIds(ids=args.id)
                    )
                else:
                    request = webhooks_pb2.ReplayEventsRequest(selection=_selection(args))
                reply = await admin.ReplayEvents(request, metadata=metadata, timeout=30)
                print(f"replayed {len(reply.replayed_ids)} event(s)")
                for event_id in reply.replayed_ids:
                    print(event_id)
        except grpc.aio.AioRpcError as e:
            message = cli_message(
                e, unreachable="the admin API is unreachable; is the relay running?"
            )
            print(f"error: {e.code().name}: {message}", file=sys.stderr)
            return 1
    return 0


async def endpoint_cli(args: argparse.Namespace) -> int:
    """`endpoint ensure`: the Stripe webhook endpoint at the pinned version, for billing's events."""
    settings = StripeSettings()
    if settings.is_production and not args.url.startswith("https://"):
        print("error: the endpoint URL must be https:// in production", file=sys.stderr)
        return 2
    try:
        result = await ensure_endpoint(
            stripe_client=stripe_client_from(settings),
            url=args.url,
            retire_others=args.retire_others,
        )
    except stripe.StripeError as e:
        print(f"error: Stripe refused: {e.user_message or type(e).__name__}", file=sys.stderr)
        return 1
    if result.created:
        print(f"created {result.endpoint_id} at {STRIPE_API_VERSION} for {args.url}")
        print(f"signing secret (shown once; add it to STRIPE_WEBHOOK_SECRET): {result.secret}")
    else:
        state = "updated" if result.updated else "up to date"
        print(f"{state}: {result.endpoint_id} at {STRIPE_API_VERSION} for {args.url}")
    for other in result.others:
        status = "retired now" if other.id in result.retired else other.status
        print(f"also for this URL: {other.id} at {other.api_version} ({status})")
    if any(o.status != "disabled" and o.id not in result.retired for o in result.others):
        print(
            "once the receiver trusts the pinned endpoint's secret, run again with "
            "--retire-others to disable the others"
        )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m services.webhooks")
    commands = root.add_subparsers(dest="command", required=True)
    for name, text in (
        ("receiver", "serve POST /webhooks/stripe"),
        ("relay", "deliver stored events to billing; serve the admin API"),
        ("migrate", "apply the webhooks schema migrations"),
        ("backstop", "insert events from Stripe's Events API that the receiver missed"),
        ("retention", "drop payloads of old delivered events (audit rows stay)"),
    ):
        commands.add_parser(name, help=text)
    events = commands.add_parser("events", help="list, show and replay events (operators)")
    actions = events.add_subparsers(dest="action", required=True)
    for action in ("list", "replay"):
        sub = actions.add_parser(action)
        sub.add_argument("--type")
        sub.add_argument("--state", choices=sorted(STATE_VALUES))
        sub.add_argument("--since", help="received at or after (ISO 8601)")
        sub.add_argument("--until", help="received before (ISO 8601)")
        if action == "list":
            sub.add_argument("--limit", type=int, default=50)
        else:
            sub.add_argument("--id", action="append", help="an event id (repeatable)")
            sub.add_argument("--all-dead", action="store_true", help="every dead-lettered event")
    actions.add_parser("show").add_argument("id")
    endpoint = commands.add_parser(
        "endpoint", help="the Stripe webhook endpoint for the receiver (operators)"
    )
    ensure = endpoint.add_subparsers(dest="action", required=True).add_parser(
        "ensure", help="create or update it at the pinned API version with billing's event types"
    )
    ensure.add_argument(
        "--url", required=True, help="the receiver's public URL (…/webhooks/stripe)"
    )
    ensure.add_argument(
        "--retire-others", action="store_true", help="disable other endpoints for this URL"
    )
    return root


def main() -> None:
    args = parser().parse_args()
    if args.command == "events":
        raise SystemExit(asyncio.run(events_cli(args)))
    if args.command == "endpoint":
        raise SystemExit(asyncio.run(endpoint_cli(args)))
    if args.command == "receiver":
        receiver()
        return
    if args.command == "migrate":
        settings = _configured(DatabaseSettings, args.command)
        upgrade_to_head(
            package="services.webhooks", database_url=settings.database_url.get_secret_value()
        )
    elif args.command == "relay":
        asyncio.run(relay(_configured(RelaySettings, args.command)))
    elif args.command == "backstop":
        asyncio.run(backstop(_configured(BackstopSettings, args.command)))
    else:
        asyncio.run(retention(_configured(RetentionSettings, args.command)))


def _configured(settings_class: type[S], command: str) -> S:
    """`command`'s own settings from the environment, with logging configured by them."""
    settings = settings_class()
    configure_logging(service=f"webhooks-{command}", level=settings.log_level)
    return settings


if __name__ == "__main__":
    main()
