"""The open billing streams of one gateway process (GET /v1/billing/stream): the bounds per
principal and per process, and ending them all when the process shuts down."""

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from typing import Any

import grpc

from services.auth.principal import Principal
from services.common.http import ApiError

log = logging.getLogger(__name__)

# A billing call in flight for a stream (the WatchBilling call it reads).
WatchCall = grpc.aio.UnaryStreamCall[Any, Any]


class StreamTicket:
    """One admitted stream: its slot, released once (whichever of the stream's end and the
    response's background task comes first), and the billing call it currently reads."""

    def __init__(self, streams: "Streams", principal_key: str) -> None:
        self._streams = streams
        self.principal_key = principal_key
        self.call: WatchCall | None = None
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._streams._release(self)

    @property
    def streams(self) -> "Streams":
        return self._streams


class Streams:
    """Admits streams within the bounds and ends them all on shutdown."""

    def __init__(self, *, max_per_principal: int, max_per_process: int) -> None:
        self._max_per_principal = max_per_principal
        self._max_per_process = max_per_process
        self._per_principal: Counter[str] = Counter()
        self._open: set[StreamTicket] = set()
        self._drained = asyncio.Event()
        self._drained.set()
        self._closed = asyncio.Event()

    @property
    def closing(self) -> bool:
        return self._closed.is_set()

    async def pause(self, seconds: float) -> None:
        """Wait `seconds`, or less should the process start shutting down."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closed.wait()

    def admit(self, principal: Principal) -> StreamTicket:
        """A slot for a new stream of `principal`; 429 past its bound, 503 past the process's
        (or while shutting down)."""
        if self.closing:
            raise ApiError(503, "shutting_down", "this server is shutting down; reconnect")
        if len(self._open) >= self._max_per_process:
            raise ApiError(
                503, "stream_capacity_reached", "this server holds all the streams it can; retry"
            )
        if self._per_principal[principal.key] >= self._max_per_principal:
            raise ApiError(
                429,
                "too_many_streams",
                f"at most {self._max_per_principal} open billing streams per user; close one",
            )
        ticket = StreamTicket(self, principal.key)
        self._per_principal[principal.key] += 1
        self._open.add(ticket)
        self._drained.clear()
        return ticket

    def _release(self, ticket: StreamTicket) -> None:
        self._open.discard(ticket)
        self._per_principal[ticket.principal_key] -= 1
        if self._per_principal[ticket.principal_key] <= 0:
            del self._per_principal[ticket.principal_key]
        if not self._open:
            self._drained.set()

    def __len__(self) -> int:
        return len(self._open)

    def begin_close(self) -> None:
        """End every stream: each ends its response cleanly (the client reconnects, to another
        replica), and no new one is admitted."""
        self._closed.set()
        for ticket in list(self._open):
            if ticket.call is not None:
                ticket.call.cancel()

    async def close(self, *, within: float) -> None:
        """End every stream and wait up to `within` seconds for them to finish."""
        self.begin_close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._drained.wait()
        if self._open:
            log.warning("streams still open at shutdown", extra={"fields": {"open": len(self)}})


def close_on_termination(streams: Streams) -> None:
    """End `streams` as soon as the process is told to stop (SIGTERM, SIGINT).

    The server's graceful drain waits for every open response before it runs the app's
    shutdown, and a stream never ends by itself: without this, each worker would hold its
    streams until it is killed at the end of its grace period. The handler is chained to the
    one in place (the server's: its event loop still hears the signal through its wakeup fd)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(number: int, frame: object, previous: object = previous) -> None:
            loop.call_soon_threadsafe(streams.begin_close)
            if callable(previous):
                previous(number, frame)

        signal.signal(signum, handler)
