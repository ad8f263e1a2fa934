"""`python -m services.billing resync [--customer cus_…] [--since YYYY-MM-DD]` and
`python -m services.billing reconcile [--sample N | --all]`: the database and Stripe of
CatalogSyncSettings; resync draws its progress on stderr."""

import argparse
import sys
from datetime import date

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from services.billing.errors import BillingError
from services.billing.resync.reconcile import reconcile
from services.billing.resync.resync import resync
from services.billing.resync.sources import PAGE_SIZE, SOURCES, Scope
from services.billing.settings import CatalogSyncSettings
from services.common.db import create_engine
from services.common.stripe_sdk import stripe_client_from

DEFAULT_SAMPLE = 50


def _page_size(value: str) -> int:
    size = int(value)
    if not 1 <= size <= PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be 1 to {PAGE_SIZE}")
    return size


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    resyncing = commands.add_parser(
        "resync",
        help="refill the mirror from Stripe (never over newer state); a rerun after a crash "
        "continues where it stopped",
    )
    resyncing.add_argument("--customer", help="only this Stripe customer's objects (cus_...)")
    resyncing.add_argument(
        "--since", type=date.fromisoformat, help="only objects created on or after this day (UTC)"
    )
    resyncing.add_argument(
        "--page-size",
        type=_page_size,
        default=PAGE_SIZE,
        help=f"objects per list page and transaction, 1 to {PAGE_SIZE} (default {PAGE_SIZE})",
    )
    reconciling = commands.add_parser(
        "reconcile", help="compare the mirror with Stripe, repair drift, record the counts"
    )
    scope = reconciling.add_mutually_exclusive_group()
    scope.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        help=f"customers drawn at random, with the catalog (default {DEFAULT_SAMPLE})",
    )
    scope.add_argument("--all", action="store_true", help="every object Stripe lists")
    scope.add_argument(
        "--customer",
        action="append",
        default=[],
        help="this Stripe customer (cus_...), with the catalog; repeatable",
    )


def _failed(e: BillingError) -> int:
    print(f"error: {e}", file=sys.stderr)
    return 1


async def resync_command(args: argparse.Namespace, settings: CatalogSyncSettings) -> int:
    """Resync with a progress bar on stderr: one line per resource, objects applied."""
    try:
        return await _resync(args, settings)
    except BillingError as e:  # Stripe refused or is unreachable: a rerun continues
        return _failed(e)


async def _resync(args: argparse.Namespace, settings: CatalogSyncSettings) -> int:
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    scope = Scope(customer=args.customer, since=args.since)
    console = Console(stderr=True)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<24}"),
            TextColumn("{task.completed:>8.0f} objects"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            tasks: dict[str, TaskID] = {
                source.name: progress.add_task(source.name, total=None)
                for source in SOURCES
                if scope.covers(source)
            }

            def on_page(resource: str, objects: int, last: bool) -> None:
                progress.advance(tasks[resource], objects)
                if last:
                    done = progress.tasks[tasks[resource]].completed
                    progress.update(tasks[resource], total=done)

            result = await resync(
                engine=engine,
                stripe_client=stripe_client_from(settings),
                scope=scope,
                page_size=args.page_size,
                on_page=on_page,
            )
    finally:
        await engine.dispose()
    for name, outcomes in result.outcomes.items():
        counts = ", ".join(f"{outcome.value} {n}" for outcome, n in sorted(outcomes.items()))
        print(f"{name}: {counts or 'nothing'}")
    return 0


async def reconcile_command(args: argparse.Namespace, settings: CatalogSyncSettings) -> int:
    """Reconcile; exit 0 even with drift (repaired, and exported as a metric for the alert)."""
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        result = await reconcile(
            engine=engine,
            stripe_client=stripe_client_from(settings),
            sample=None if args.all else args.sample,
            customers=args.customer,
        )
    except BillingError as e:
        return _failed(e)
    finally:
        await engine.dispose()
    print(
        f"compared {result.objects} objects ({result.customers} customers): "
        f"drift {result.total}, repaired {result.repaired}"
    )
    for name, kinds in sorted(result.drift.items()):
        if any(kinds.values()):
            print(
                f"  {name}: " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()) if n)
            )
    return 0
