"""WatchBilling: a principal's billing overview, sent again after each committed change.

The streams of one principal in this process share their reads: a change (or a new stream) asks
for one read of the principal's version and overview, and its result is handed to every stream
of that principal. A change that arrives while a read runs asks for one more read after it, so
the last read always starts after the last change committed; each stream sends only versions
newer than the one it sent last. The version is read before the overview, so an overview is
never older than the version sent with it."""

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.overview import Overview, billing_overview
from services.common.db import fetch_all

log = logging.getLogger(__name__)

_VERSION = "SELECT version FROM billing.live_versions WHERE principal = %s"


@dataclass(frozen=True, slots=True)
class Change:
    """The principal's state at `version` (None: unchanged since the version the caller had)."""

    version: int
    overview: Overview | None


@dataclass(eq=False, slots=True)
class _Stream:
    latest: Change | None = None
    failed: BaseException | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class _Principal:
    principal: Principal
    streams: set[_Stream] = field(default_factory=set)
    reading: bool = False
    again: bool = False


async def current_version(engine: AsyncEngine, principal: Principal) -> int:
    """The principal's version (0 before any change)."""
    rows = await fetch_all(engine, _VERSION, (principal.key,), int)
    return rows[0] if rows else 0


class Watchers:
    """The WatchBilling streams of this process, by principal, and their shared reads."""

    def __init__(self, *, engine: AsyncEngine, grace: timedelta) -> None:
        self._engine = engine
        self._grace = grace
        self._principals: dict[str, _Principal] = {}
        self._reads: set[asyncio.Task[None]] = set()
        self.closed = False

    def changed(self, principal_key: str) -> None:
        """The principal's state may have changed: read it again for its streams here."""
        watched = self._principals.get(principal_key)
        if watched is None:
            return
        if watched.reading:
            watched.again = True
            return
        watched.reading = True
        task = asyncio.get_running_loop().create_task(self._read(watched))
        self._reads.add(task)  # held until done (the loop keeps weak references only)
        task.add_done_callback(self._reads.discard)

    def all_changed(self) -> None:
        """Anything may have changed (the feed was not listening for a while)."""
        for key in list(self._principals):
            self.changed(key)

    def close(self) -> None:
        """End every stream."""
        self.closed = True
        for watched in self._principals.values():
            for stream in watched.streams:
                stream.arrived.set()

    async def _read(self, watched: _Principal) -> None:
        try:
            while True:
                watched.again = False
                try:
                    version = await current_version(self._engine, watched.principal)
                    overview = await billing_overview(
                        engine=self._engine, principal=watched.principal, grace=self._grace
                    )
                except Exception as e:  # each stream ends with it (the database is down, …)
                    for stream in watched.streams:
                        stream.failed = e
                        stream.arrived.set()
                    return
                for stream in watched.streams:
                    stream.latest = Change(version, overview)
                    stream.arrived.set()
                if not watched.again:
                    return
        finally:
            watched.reading = False

    async def watch(self, principal: Principal, since_version: int | None) -> AsyncIterator[Change]:
        """First the current state (its overview left out when it is still `since_version`),
        then the state after each change, until `close`."""
        watched = self._principals.setdefault(principal.key, _Principal(principal))
        stream = _Stream()
        watched.streams.add(stream)
        try:
            self.changed(principal.key)
            sent: int | None = None
            while not self.closed:
                await stream.arrived.wait()
                stream.arrived.clear()
                if stream.failed is not None:
                    raise stream.failed
                change = stream.latest
                if change is None or (sent is not None and change.version <= sent):
                    continue
                if sent is None and change.version == since_version:
                    change = Change(change.version, None)
                yield change
                sent = change.version
        finally:
            watched.streams.discard(stream)
            if not watched.streams and self._principals.get(principal.key) is watched:
                del self._principals[principal.key]
