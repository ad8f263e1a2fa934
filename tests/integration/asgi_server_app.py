"""A tiny ASGI app for the server tests: `/slow` answers after `SLOW_SECONDS`, `/pid` names the
worker process, and the app's shutdown writes the file named by `SHUTDOWN_MARKER`."""

import asyncio
import os
from pathlib import Path
from typing import Any

Scope = dict[str, Any]


def create_app() -> Any:
    """The factory `serve_asgi` is given, as the gateway's and the receiver's are."""
    slow_seconds = float(os.environ["SLOW_SECONDS"])
    marker = Path(os.environ["SHUTDOWN_MARKER"])

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await asyncio.to_thread(marker.write_text, "shut down")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/slow":
            await asyncio.sleep(slow_seconds)
        body = str(os.getpid()).encode() if scope["path"] == "/pid" else b"done"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app
