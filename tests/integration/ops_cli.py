"""The operators' CLI (`python -m services.webhooks events …`) run as an operator would."""

import asyncio
import subprocess
import sys
from collections.abc import Mapping


async def events_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `events *args` in a fresh process with `env`; its exit code and output."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.webhooks", "events", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
