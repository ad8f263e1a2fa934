"""The operators' CLIs (`python -m services.webhooks events …`, `python -m services.billing
refund|metrics …`) run as an operator would."""

import asyncio
import subprocess
import sys
from collections.abc import Mapping


async def events_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `events *args` in a fresh process with `env`; its exit code and output."""
    return await _run(env, "services.webhooks", "events", *args)


async def refund_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run billing's `refund *args` in a fresh process with `env`; its exit code and output."""
    return await _run(env, "services.billing", "refund", *args)


async def metrics_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run billing's `metrics *args` in a fresh process with `env`; its exit code and output."""
    return await _run(env, "services.billing", "metrics", *args)


async def _run(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
