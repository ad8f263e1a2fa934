"""The last reconcile run's drift, as gauges of the billing server's /metrics: a CronJob cannot
be scraped, so each run records its counts in `billing.reconcile_runs` and every billing replica
reads the last finished one every minute (`watch_drift`)."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.models import reconcile_runs
from services.billing.resync.reconcile import KINDS
from services.billing.resync.sources import SOURCES

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0

DRIFT = Gauge(
    "billing_mirror_drift_objects",
    "Objects on which the mirror and Stripe disagreed in the last reconcile run, by resource "
    "and kind (missing, changed: repaired; orphaned: not)",
    ["resource", "kind"],
)
LAST_RUN = Gauge(
    "billing_reconcile_last_finished_timestamp_seconds",
    "When the last reconcile run finished (Unix time); 0 before any",
)
COMPARED = Gauge("billing_reconcile_objects_compared", "Objects the last reconcile run compared")


async def refresh_drift_gauges(engine: AsyncEngine) -> None:
    """Set the gauges from the last finished run (zeros before any)."""
    async with engine.connect() as conn:
        run = (
            await conn.execute(
                select(
                    reconcile_runs.c.finished_at, reconcile_runs.c.objects, reconcile_runs.c.drift
                )
                .where(reconcile_runs.c.finished_at.is_not(None))
                .order_by(reconcile_runs.c.finished_at.desc())
                .limit(1)
            )
        ).first()
    drift = {} if run is None else run.drift
    for source in SOURCES:
        for kind in KINDS:
            DRIFT.labels(source.name, kind).set(drift.get(source.name, {}).get(kind, 0))
    LAST_RUN.set(0 if run is None else run.finished_at.timestamp())
    COMPARED.set(0 if run is None else run.objects)


def watch_drift(
    engine: AsyncEngine, *, interval: float = REFRESH_SECONDS
) -> Callable[[], Awaitable[None]]:
    """Refresh the gauges every `interval` seconds in a task of the running loop; returns what
    stops it."""

    async def refresh_forever() -> None:
        while True:
            try:
                await refresh_drift_gauges(engine)
            except (SQLAlchemyError, OSError) as e:  # the readiness probe reports the database
                log.warning("drift gauges not refreshed", extra={"fields": {"error": repr(e)}})
            await asyncio.sleep(interval)

    task = asyncio.create_task(refresh_forever(), name="billing-drift-gauges")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop
