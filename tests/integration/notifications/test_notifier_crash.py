"""The notifier as a real subprocess, SIGKILLed between two sends and inside the window after
the SMTP server stored a message and before the outbox recorded it."""

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame_devstack.notification_sinks import Sinks

from services.billing.notifications.tables import notifications
from tests.harness import BillingHandle
from tests.integration.notifications.world import (
    DOMAIN,
    Stub,
    User,
    apply,
    notifier_env,
    trialing,
)
from tests.stripe_objects import event_envelope

# --- A sender killed ------------------------------------------------------------------------------


async def three_trials_ending(billing: BillingHandle, stub: Stub) -> tuple[User, list[str]]:
    """Three notifications due for one user: trial_will_end of three subscriptions (one real,
    its object copied under two more ids)."""
    user = User(billing, stub)
    subscription = await trialing(billing, await user.customer())
    ids = [subscription["id"], *(f"sub_{secrets.token_hex(8)}" for _ in range(2))]
    for subscription_id in ids:
        event = event_envelope(
            "customer.subscription.trial_will_end", {**subscription, "id": subscription_id}
        )
        await apply(stub, event)
    return user, ids


def start_notifier(database_url: str, sinks: Sinks) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.billing", "notifier"],
        env={**os.environ, **notifier_env(database_url, sinks)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 180  # a loaded machine starts Python slowly
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def all_sent(engine: AsyncEngine, ids: list[str]) -> bool:
    async with engine.connect() as conn:
        states = await conn.execute(
            select(notifications.c.state).where(notifications.c.object_id.in_(ids))
        )
        return set(states.scalars()) == {"sent"}


async def message_ids(engine: AsyncEngine, ids: list[str]) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(notifications.c.id)
            .where(notifications.c.object_id.in_(ids))
            .order_by(notifications.c.id)
        )
        return [f"<{row}@{DOMAIN}>" for row in rows.scalars()]


@pytest.mark.parametrize("where", ["before_data", "after_store"])
async def test_a_sender_killed_loses_nothing_and_repeats_at_most_the_message_in_hand(
    billing, stub, engine, sinks, database_url, where
) -> None:
    user, ids = await three_trials_ending(billing, stub)

    def mine() -> list[str]:
        return [m.message_id for m in sinks.mail if user.email in m.to]

    sinks.stall(where, at_message=2)  # the second message's conversation is held there
    notifier = start_notifier(database_url, sinks)
    try:
        wanted = 2 if where == "after_store" else 1

        async def held() -> bool:
            return len(mine()) == wanted and sinks.stalled

        await until(held, "the notifier to reach the second message")
        notifier.send_signal(signal.SIGKILL)
        notifier.wait(10)
        sinks.release()
        notifier = start_notifier(database_url, sinks)
        await until(lambda: all_sent(engine, ids), "every notification sent")
    finally:
        notifier.terminate()
        notifier.wait(10)

    expected = await message_ids(engine, ids)
    sent = mine()
    assert sorted(set(sent)) == sorted(expected)  # nothing lost
    repeats = [m for m in set(sent) if sent.count(m) > 1]
    if where == "before_data":  # killed between sends: nothing repeats
        assert len(sent) == 3
        assert not repeats
    else:  # killed inside the window: that one message again, with its Message-ID
        assert len(sent) == 4
        assert repeats == [sent[1]]
