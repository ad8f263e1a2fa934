"""A switch in front of the test database: connections pass through a unix socket of ours to the
real server, and turning the switch off drops them all and refuses new ones (an outage)."""

import asyncio
import contextlib
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

_SOCKET = ".s.PGSQL.5432"


class DatabaseSwitch:
    """Forwards connections for `database_url`'s server while on; `url` reaches it through us."""

    def __init__(self, database_url: str) -> None:
        self._target = make_url(database_url)
        self._dir = Path(tempfile.mkdtemp(prefix="pgsw"))  # short: unix socket paths are limited
        self.url = (
            self._target.set(host=None, port=None)
            .update_query_dict({"host": str(self._dir)})
            .render_as_string(hide_password=False)
        )
        self._server: asyncio.AbstractServer | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    async def on(self) -> None:
        self._server = await asyncio.start_unix_server(self._forward, path=self._dir / _SOCKET)

    async def off(self) -> None:
        """Refuse new connections and cut every open one."""
        assert self._server is not None
        self._server.close()
        for stream in self._streams:
            stream.close()
        self._streams.clear()
        await self._server.wait_closed()
        (self._dir / _SOCKET).unlink(missing_ok=True)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host_query = self._target.query.get("host")
        host = host_query if isinstance(host_query, str) else self._target.host
        port = self._target.port or 5432
        if isinstance(host, str) and host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host or "127.0.0.1", port)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._open_upstream()
        self._streams |= {writer, up_writer}
        await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()
