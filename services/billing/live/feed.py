"""Each billing process hears every committed change to any principal's billing state on one
dedicated connection (`LISTEN billing_changes`, outside the engine's pool) and tells the
WatchBilling streams of this process (`watch.Watchers`).

The triggers of migration 0012 send the principal as the payload from the writing transaction, so
a notification arrives only once that transaction has committed, at every billing replica. While
the connection is down, changes are missed: when it is back, every stream is woken and re-reads
its principal's version, so what changed meanwhile is still sent (as the current state)."""

import asyncio
import contextlib
import logging

import psycopg

from services.billing.live.watch import Watchers
from services.common.db import DATABASE_FAILURES

log = logging.getLogger(__name__)

CHANNEL = "billing_changes"  # the triggers' (migration 0012)


class ChangeFeed:
    """The LISTEN connection of one billing process, telling its `watchers`."""

    def __init__(self, conninfo: str, watchers: Watchers, *, retry_seconds: float = 1.0) -> None:
        self._conninfo = conninfo
        self._watchers = watchers
        self._retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self, *, wait_seconds: float = 5.0) -> None:
        """Start listening; return once the first LISTEN holds (or after `wait_seconds`:
        the feed keeps trying, and streams started meanwhile are woken when it holds)."""
        self._task = asyncio.create_task(self._listen(), name="billing change feed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds):
                await self._listening.wait()

    async def close(self) -> None:
        """Stop listening and end every stream."""
        self._watchers.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while not self._watchers.closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self._watchers.all_changed()  # changes made while nobody listened
                    async for notification in conn.notifies():
                        self._watchers.changed(notification.payload)
            except DATABASE_FAILURES as e:
                log.warning(
                    "billing change feed lost its connection; reconnecting",
                    extra={"fields": {"error": type(e).__name__}},
                )
            self._listening.clear()
            await asyncio.sleep(self._retry_seconds)
