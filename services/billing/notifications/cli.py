"""`python -m services.billing notifier` (the sender, its own Deployment) and
`python -m services.billing notifications list|replay` (operators, over BillingAdminService,
with the service credential `refund` uses)."""

import argparse
import asyncio
import logging
import sys

import grpc
import httpx
from tatame.billing.v1 import billing_pb2_grpc, notifications_pb2

from services.auth.service_credentials import ServiceCredentials
from services.billing.notifications.outbox import State
from services.billing.notifications.sender import Sender
from services.billing.notifications.settings import NotifierSettings
from services.billing.settings import AdminClientSettings
from services.common.db import create_engine
from services.common.grpc_server import wait_for_termination_signal
from services.common.metrics import start_metrics_server
from services.common.rpc import cli_message

log = logging.getLogger("services.billing.notifications")
_SHUTDOWN_GRACE_SECONDS = 30.0


async def run_notifier(settings: NotifierSettings) -> None:
    """Send notifications until SIGTERM/SIGINT; the one under way is finished first."""
    start_metrics_server(settings)
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=2)
    async with httpx.AsyncClient() as http:
        sender = Sender(engine=engine, settings=settings, http=http)
        stop = asyncio.Event()
        running = asyncio.create_task(sender.run(stop))
        log.info(
            "notifier running",
            extra={
                "fields": {
                    "email": settings.notify_smtp_host is not None,
                    "push": settings.notify_expo_push,
                }
            },
        )
        try:
            await wait_for_termination_signal()
        finally:
            stop.set()
            try:
                await asyncio.wait_for(running, _SHUTDOWN_GRACE_SECONDS)
            finally:
                await engine.dispose()
                log.info("notifier stopped")


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    commands.add_parser("notifier", help="send notifications from the outbox (email, push)")
    parser = commands.add_parser(
        "notifications", help="list or replay notifications of the outbox (operators)"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the newest notifications")
    listing.add_argument("--state", choices=[s.value for s in State])
    listing.add_argument("--limit", type=int, default=50)
    replaying = actions.add_parser("replay", help="send dead notifications again")
    replaying.add_argument("ids", nargs="+", help="notification ids")


async def notifications_command(args: argparse.Namespace) -> int:
    """`notifications list [--state S] [--limit N]` or `notifications replay ID…`."""
    settings = AdminClientSettings()
    credentials = ServiceCredentials(
        settings.billing_admin_client_name,
        settings.billing_admin_client_secret.get_secret_value(),
        audience="billing",
    )
    async with grpc.aio.insecure_channel(settings.billing_target) as channel:
        admin = billing_pb2_grpc.BillingAdminServiceStub(channel)
        try:
            if args.action == "list":
                reply = await admin.ListNotifications(
                    notifications_pb2.ListNotificationsRequest(
                        state=args.state or "", limit=args.limit
                    ),
                    metadata=credentials.metadata(None),
                    timeout=30,
                )
                for n in reply.notifications:
                    print(
                        f"{n.id} {n.state} {n.kind} {n.object_id} attempts={n.attempts} "
                        f"email={n.email_result or '-'} push={n.push_result or '-'}"
                        + (f" error={n.last_error}" if n.last_error else "")
                    )
                return 0
            for notification_id in args.ids:
                await admin.ReplayNotification(
                    notifications_pb2.ReplayNotificationRequest(id=notification_id),
                    metadata=credentials.metadata(None),
                    timeout=30,
                )
                print(f"{notification_id} replayed")
        except grpc.aio.AioRpcError as e:
            message = cli_message(e, unreachable="billing is unreachable; is it running?")
            print(f"error: {e.code().name}: {message}", file=sys.stderr)
            return 1
    return 0
