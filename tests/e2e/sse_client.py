"""Reading a Server-Sent Events response as EventSource does: events dispatched at each blank
line, comments (heartbeats) counted and skipped."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None
    received_at: float  # time.time() when its blank line arrived


class EventStream:
    """The events of one open `text/event-stream` response."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.status_code
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines: AsyncIterator[str] = response.aiter_lines()
        self.comments = 0

    async def next(self, within: float = 10.0) -> Event | None:
        """The next event; None when the server ended the stream. Fails after `within` s."""
        async with asyncio.timeout(within):
            fields: dict[str, str] = {}
            async for line in self._lines:
                if line == "":
                    if "data" in fields:
                        return Event(
                            fields.get("event", "message"),
                            fields["data"],
                            fields.get("id"),
                            time.time(),
                        )
                    fields = {}
                    continue
                if line.startswith(":"):
                    self.comments += 1
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                fields[name] = (
                    f"{fields[name]}\n{value}" if name == "data" and name in fields else value
                )
            return None
