"""`resync`: the mirror refilled from Stripe's lists, a page per transaction, through the rule
by which events write it (fetched state: newer events win, older ones are STALE).

Each page's writes and the run's cursor in that resource (`billing.resync_cursors`, keyed by
what the run covers) commit together, so a run stopped anywhere (a crash, a deploy, Ctrl-C)
continues, when started again with the same arguments, from the page after the last committed;
a run that finishes forgets its cursors, so the next one starts over.
"""

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import stripe
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing.errors import StripeRejected
from services.billing.mirror import Outcome
from services.billing.models import resync_cursors
from services.billing.resync.sources import (
    PAGE_SIZE,
    SOURCES,
    Page,
    Scope,
    Source,
    apply_page,
    fetch_page,
    patiently,
)
from services.common.db import retried_on_conflict

log = logging.getLogger(__name__)

# Told after each page: the resource, the page's object count, whether it was the last page.
OnPage = Callable[[str, int, bool], None]


@dataclass(slots=True)
class ResyncResult:
    """What a run applied, by resource and outcome (pages of an earlier, interrupted run of the
    same scope not included)."""

    outcomes: dict[str, Counter[Outcome]] = field(default_factory=dict)
    pages: int = 0


def _ignore_page(_resource: str, _objects: int, _last: bool) -> None:
    return None


async def _cursor(engine: AsyncEngine, run: str, resource: str) -> tuple[str | None, bool]:
    """Where the run stands in `resource`: the cursor of its next page, and whether it is done."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(resync_cursors.c.starting_after, resync_cursors.c.completed_at).where(
                    resync_cursors.c.run == run, resync_cursors.c.resource == resource
                )
            )
        ).first()
    return (None, False) if row is None else (row.starting_after, row.completed_at is not None)


async def _advance(conn: AsyncConnection, run: str, resource: str, page: Page) -> None:
    """Record the page as applied (in its transaction)."""
    stmt = insert(resync_cursors).values(
        run=run,
        resource=resource,
        starting_after=page.next_after,
        objects=len(page.objects),
        completed_at=None if page.next_after else func.now(),
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[resync_cursors.c.run, resync_cursors.c.resource],
            set_={
                "starting_after": stmt.excluded.starting_after,
                "objects": resync_cursors.c.objects + stmt.excluded.objects,
                "completed_at": stmt.excluded.completed_at,
                "updated_at": func.now(),
            },
        )
    )


async def _resync_source(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    source: Source,
    scope: Scope,
    page_size: int,
    on_page: OnPage,
    result: ResyncResult,
) -> None:
    after, done = await _cursor(engine, scope.key, source.name)
    if done:
        on_page(source.name, 0, True)
        return
    outcomes = result.outcomes.setdefault(source.name, Counter())
    resumed = after is not None
    while True:

        async def one_page(after: str | None = after) -> tuple[Page, Counter[Outcome]]:
            page = await fetch_page(
                stripe_client, source, scope, starting_after=after, limit=page_size
            )

            async def write() -> Counter[Outcome]:
                async with engine.begin() as conn:
                    applied = await apply_page(conn, stripe_client, source, page)
                    await _advance(conn, scope.key, source.name, page)
                return applied

            return page, await retried_on_conflict(write)

        try:
            page, applied = await patiently(one_page)
        except StripeRejected:
            if not resumed:
                raise
            # The object the cursor names is gone (a draft invoice deleted): start over.
            log.warning(
                "resync cursor gone; the resource starts over",
                extra={"fields": {"resource": source.name, "starting_after": after}},
            )
            resumed, after = False, None
            continue
        resumed = False
        outcomes.update(applied)
        result.pages += 1
        on_page(source.name, len(page.objects), page.next_after is None)
        if page.next_after is None:
            return
        after = page.next_after


async def resync(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    scope: Scope = Scope(),  # noqa: B008 - immutable
    page_size: int = PAGE_SIZE,
    on_page: OnPage = _ignore_page,
) -> ResyncResult:
    """Apply every object `scope` covers, resource by resource (`sources.SOURCES`), continuing
    an interrupted run of the same scope where it stopped."""
    result = ResyncResult()
    for source in SOURCES:
        if scope.covers(source):
            await _resync_source(
                engine=engine,
                stripe_client=stripe_client,
                source=source,
                scope=scope,
                page_size=page_size,
                on_page=on_page,
                result=result,
            )
    async with engine.begin() as conn:
        await conn.execute(delete(resync_cursors).where(resync_cursors.c.run == scope.key))
    log.info(
        "resync done",
        extra={
            "fields": {
                "scope": scope.key,
                "pages": result.pages,
                **{name: dict(counts) for name, counts in result.outcomes.items()},
            }
        },
    )
    return result
