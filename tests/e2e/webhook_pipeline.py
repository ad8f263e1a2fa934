"""The webhook pipeline as the e2e tests run it: the relay as a child process, and waiting for
what it writes."""

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import psycopg


class RelayProcess:
    """`python -m services.webhooks relay` as a child process of the test."""

    def __init__(self, *, database_url: str, billing_target: str, relay_secret: str) -> None:
        self.env = {
            **os.environ,
            "TATAME_ENV": "test",
            "DATABASE_URL": database_url,
            "BILLING_TARGET": billing_target,
            "WEBHOOKS_RELAY_SERVICE_SECRET": relay_secret,
            "WEBHOOKS_ADMIN_GRPC_ADDRESS": "127.0.0.1:0",
            "WEBHOOKS_ADMIN_SERVICE_SECRETS": f"ops-cli={secrets.token_urlsafe(32)}",
            "METRICS_PORT": "0",
            "RELAY_BACKOFF_BASE_SECONDS": "0.2",
            "RELAY_BACKOFF_MAX_SECONDS": "1",
            "RELAY_MAX_ATTEMPTS": "50",
            "RELAY_POLL_INTERVAL_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.webhooks", "relay"], env=self.env
        )

    def kill(self) -> None:
        assert self.process is not None, "the relay was not started"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


async def scalar(url: str, sql: str, *params: object) -> Any:
    """The one value of `sql`'s one row."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute(sql, params)).fetchone()
    assert row is not None, f"no row from {sql!r}"
    return row[0]


async def eventually(check, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class WebhookPipeline:
    receiver_url: str
    webhooks_db: str
    secret: str
    clerk_secret: str

    @property
    def clerk_url(self) -> str:
        return self.receiver_url.removesuffix("/stripe") + "/clerk"
