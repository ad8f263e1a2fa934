"""`reconcile`: a sample of the mirror (or all of it) compared with Stripe, drift repaired through
the rule by which events write the mirror, and each run's counts kept in `billing.reconcile_runs`
(the billing server exports the last run's as gauges: `metrics.py`).

Drift, by kind, per resource:
- `missing`: Stripe has an object (of ours) that the mirror lacks — repaired by writing it;
- `changed`: the mirror's row differs from Stripe's object and is not newer than Stripe's
  answer — repaired by writing Stripe's;
- `orphaned`: the mirror holds a row (not marked deleted) of an object Stripe no longer has —
  counted, not repaired: someone must look (see the README).

A sample is N customers of the mirror, drawn at random, each compared with everything Stripe
lists of theirs, and the whole catalog; `all` compares every object Stripe lists.
"""

import logging
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import stripe
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.catalog import PRICES, PRODUCTS
from services.billing.customers import CUSTOMERS, principal_of
from services.billing.mirror import Outcome, Row, string
from services.billing.models import customers, reconcile_runs
from services.billing.resync.sources import (
    SOURCES,
    PerCustomer,
    Scope,
    Source,
    apply_fetched,
    fetch_one,
    fetch_page,
    patiently,
)

log = logging.getLogger(__name__)

MISSING, CHANGED, ORPHANED = "missing", "changed", "orphaned"
KINDS = (MISSING, CHANGED, ORPHANED)


@dataclass(slots=True)
class ReconcileResult:
    """What a run compared, the drift it found (resource → kind → objects), what it repaired."""

    customers: int = 0
    compared: Counter[str] = field(default_factory=Counter)  # objects, by resource
    drift: dict[str, Counter[str]] = field(default_factory=dict)
    repaired: int = 0

    @property
    def objects(self) -> int:
        return sum(self.compared.values())

    @property
    def total(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.drift.values())


async def _stored(
    engine: AsyncEngine, source: Source, object_ids: Collection[str]
) -> dict[str, Row]:
    """The mirror's rows of these objects, by Stripe id."""
    key = source.mirror.key
    async with engine.connect() as conn:
        rows = await conn.execute(select(source.mirror.table).where(key.in_(object_ids)))
        return {row[key.name]: dict(row) for row in rows.mappings()}


async def _ids_in(engine: AsyncEngine, source: Source, scope: Scope) -> set[str]:
    """The ids of the mirror's rows of `source` in `scope` (one customer's, or all)."""
    table, key = source.mirror.table, source.mirror.key
    query = select(key)
    if scope.customer is not None:
        query = query.where(table.c.stripe_customer_id == scope.customer)
    async with engine.connect() as conn:
        return set((await conn.execute(query)).scalars())


def _ours(source: Source, obj: dict[str, Any]) -> bool:
    """Whether the mirror should hold `obj`: every object, but only the customers CreateCustomer
    made (their metadata names the principal)."""
    if source.mirror is not CUSTOMERS:
        return True
    return principal_of(obj) is not None


def drift_of(
    source: Source, obj: dict[str, Any], stored: Row | None, answered: datetime
) -> str | None:
    """The kind of drift between Stripe's `obj` (as answered at `answered`) and the mirror's row;
    None when they agree, or the row is newer than the answer (an event since)."""
    if stored is None:
        return MISSING if _ours(source, obj) else None
    created = stored["source_event_created"]
    if created is not None and created > answered:
        return None
    row = source.mirror.row(obj)
    return CHANGED if any(stored[name] != value for name, value in row.items()) else None


async def _repair(
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    source: Source,
    obj: dict[str, Any],
    answered: datetime,
) -> bool:
    """Write Stripe's object through the mirror's rule; whether it was written."""

    async def attempt() -> Outcome:
        async with engine.begin() as conn:
            return await apply_fetched(conn, stripe_client, source, obj, answered=answered)

    return await patiently(attempt) is Outcome.APPLIED


async def _check(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    source: Source,
    obj: dict[str, Any],
    stored: Row | None,
    answered: datetime,
    result: ReconcileResult,
) -> None:
    """Compare one object with its row; count and repair drift."""
    result.compared[source.name] += 1
    kind = drift_of(source, obj, stored, answered)
    if kind is not None:
        result.drift[source.name][kind] += 1
        result.repaired += await _repair(engine, stripe_client, source, obj, answered)


async def _compare(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    source: Source,
    scope: Scope,
    result: ReconcileResult,
) -> None:
    """Compare what Stripe lists of `source` in `scope`, a page at a time, with the mirror's
    rows; then retrieve alone each row of the scope the lists lacked (Stripe may list it under
    another customer, or no longer have it)."""
    result.drift.setdefault(source.name, Counter())
    seen: set[str] = set()
    after: str | None = None
    while True:
        page = await patiently(
            partial(fetch_page, stripe_client, source, scope, starting_after=after)
        )
        objects = [obj for obj in page.objects if source.mirror.wanted(obj)]
        ids = [string(obj["id"]) for obj in objects]
        stored = await _stored(engine, source, ids)
        for object_id, obj in zip(ids, objects, strict=True):
            await _check(
                engine=engine,
                stripe_client=stripe_client,
                source=source,
                obj=obj,
                stored=stored.get(object_id),
                answered=page.answered,
                result=result,
            )
        seen.update(ids)
        if page.next_after is None:
            break
        after = page.next_after
    unlisted = sorted(await _ids_in(engine, source, scope) - seen)
    for object_id, row in (await _stored(engine, source, unlisted)).items():
        found = await patiently(partial(fetch_one, stripe_client, source, object_id))
        if found is None:
            result.drift[source.name][ORPHANED] += not source.retired(row)
        else:
            await _check(
                engine=engine,
                stripe_client=stripe_client,
                source=source,
                obj=found[0],
                stored=row,
                answered=found[1],
                result=result,
            )


async def _sample(engine: AsyncEngine, size: int) -> list[str]:
    """`size` customers of the mirror (not deleted), drawn at random."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(customers.c.stripe_customer_id)
            .where(customers.c.deleted_at.is_(None))
            .order_by(func.random())
            .limit(size)
        )
        return [row.stripe_customer_id for row in rows]


async def reconcile(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    sample: int | None = None,
    customers: Sequence[str] = (),
) -> ReconcileResult:
    """Compare with Stripe these `customers`, or else `sample` customers of the mirror drawn at
    random (each with the catalog), or else everything; repair the drift; record the run."""
    if customers:
        name = "customers:" + ",".join(customers)
    else:
        name = "all" if sample is None else f"sample:{sample}"
    async with engine.begin() as conn:
        run_id = (
            await conn.execute(
                insert(reconcile_runs).values(scope=name).returning(reconcile_runs.c.id)
            )
        ).scalar_one()
    result = ReconcileResult()
    if sample is None and not customers:
        scopes: list[tuple[Scope, tuple[Source, ...]]] = [(Scope(), SOURCES)]
    else:
        catalog = [s for s in SOURCES if s.mirror in (PRODUCTS, PRICES)]
        sampled = list(customers) or await _sample(engine, sample or 0)
        result.customers = len(sampled)
        scopes = [(Scope(), tuple(catalog))] + [
            (
                Scope(customer=customer),
                tuple(s for s in SOURCES if s.per_customer is not PerCustomer.NONE),
            )
            for customer in sampled
        ]
    for scope, sources in scopes:
        for source in sources:
            await _compare(
                engine=engine,
                stripe_client=stripe_client,
                source=source,
                scope=scope,
                result=result,
            )
    if sample is None and not customers:
        result.customers = result.compared["customers"]
    async with engine.begin() as conn:
        await conn.execute(
            update(reconcile_runs)
            .where(reconcile_runs.c.id == run_id)
            .values(
                finished_at=func.now(),
                customers=result.customers,
                objects=result.objects,
                drift={name: dict(kinds) for name, kinds in result.drift.items()},
                repaired=result.repaired,
            )
        )
    log.info(
        "reconcile done",
        extra={
            "fields": {
                "run": run_id,
                "objects": result.objects,
                "drift": result.total,
                "repaired": result.repaired,
            }
        },
    )
    return result
