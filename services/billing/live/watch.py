"""WatchBilling: a principal's billing overview, sent again after each committed change."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.live.feed import ChangeFeed
from services.billing.overview import Overview, billing_overview
from services.common.db import fetch_all

_VERSION = "SELECT version FROM billing.live_versions WHERE principal = %s"


@dataclass(frozen=True, slots=True)
class Change:
    """The principal's state at `version` (None: unchanged since the version the caller had)."""

    version: int
    overview: Overview | None


async def current_version(engine: AsyncEngine, principal: Principal) -> int:
    """The principal's version (0 before any change)."""
    rows = await fetch_all(engine, _VERSION, (principal.key,), int)
    return rows[0] if rows else 0


async def watch_billing(
    *,
    engine: AsyncEngine,
    feed: ChangeFeed,
    principal: Principal,
    grace: timedelta,
    since_version: int | None,
) -> AsyncIterator[Change]:
    """First the current state (its overview left out when it is still `since_version`), then
    the state after each change, until the feed closes. The version is read before the overview,
    so an overview is never older than the version sent with it: a change committed between the
    two reads comes again with its own version."""
    with feed.watching(principal.key) as changed:
        sent = since_version
        first = True
        while not feed.closed:
            changed.clear()
            version = await current_version(engine, principal)
            if first or version != sent:
                overview = (
                    None
                    if version == sent
                    else await billing_overview(engine=engine, principal=principal, grace=grace)
                )
                yield Change(version, overview)
                sent, first = version, False
            await changed.wait()
