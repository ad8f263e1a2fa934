"""The Stripe the tests talk to: the local emulator (`make test`), or Stripe's own test mode
(`make test-stripe` with `STRIPE_SECRET_KEY=sk_test_…`).

What a test needs from Stripe beyond its API, a customer's or time's part, goes through one
interface with an implementation for each: letting a subscription's period end (a test clock,
the same in both), paying on Checkout's hosted page, answering 3-D Secure and reading an
ephemeral key's version, paying or expiring a boleto (the emulator's `/_testing` endpoints; Stripe's test mode has a browser
page instead, so those tests skip there). Customers that billing creates for the tests sit on test clocks named for the run;
deleting the run's clocks afterwards deletes their customers and subscriptions in Stripe.
"""

import asyncio
import os
import secrets
import time
from dataclasses import dataclass, field

import httpx
import pytest
import stripe

from services.common.stripe_sdk import STRIPE_API_VERSION, create_stripe_client

# `make test-stripe` sets this; anything else means the emulator.
TARGET_VARIABLE = "TATAME_TEST_STRIPE"
TEST_MODE = "test-mode"
TEST_MODE_KEY_PREFIXES = ("sk_test_", "rk_test_")
EMULATOR_KEY = "sk_test_tatame_tests"
# Stripe creates a renewal invoice at the period end and finalizes it about an hour later.
RENEWAL_FINALIZATION_SECONDS = 3600
CLOCK_READY_SECONDS = 120


def test_mode_requested() -> bool:
    return os.environ.get(TARGET_VARIABLE) == TEST_MODE


@dataclass
class StripeTarget:
    """A Stripe API and the test helpers that go with it."""

    api_base: str | None  # None: Stripe itself
    secret_key: str
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def is_emulator(self) -> bool:
        return self.api_base is not None

    @property
    def test_clock_prefix(self) -> str:
        """What billing names the test clocks of the customers it creates in this run."""
        return f"tatame-tests {self.run_id}"

    def client(self, *, synchronous: bool = False) -> stripe.StripeClient:
        """A client like billing's (async calls only), or one for synchronous calls."""
        retries = 0 if self.is_emulator else 2
        if synchronous:
            return stripe.StripeClient(
                self.secret_key,
                stripe_version=STRIPE_API_VERSION,
                base_addresses={"api": self.api_base} if self.api_base else None,
                max_network_retries=retries,
            )
        return create_stripe_client(
            secret_key=self.secret_key, api_base=self.api_base, max_network_retries=retries
        )

    async def end_period(self, client: stripe.StripeClient, subscription_id: str) -> None:
        """Advance the test clock of the subscription's customer past its trial or period end
        (and past the hour Stripe waits before it charges a renewal)."""
        subscription = await client.v1.subscriptions.retrieve_async(subscription_id)
        customer = await client.v1.customers.retrieve_async(str(subscription.customer))
        clock_id = customer.test_clock
        assert clock_id, f"customer {customer.id} is not on a test clock"
        clock = await client.v1.test_helpers.test_clocks.retrieve_async(str(clock_id))
        if subscription.status == "trialing" and subscription.trial_end:
            ends = subscription.trial_end
        else:
            ends = min(item.current_period_end for item in subscription["items"].data)
        await self._advance(
            client, clock, max(ends, clock.frozen_time) + RENEWAL_FINALIZATION_SECONDS
        )

    async def pass_time(self, client: stripe.StripeClient, customer_id: str, seconds: int) -> None:
        """Advance the test clock of a customer by `seconds` (Stripe's billing runs what falls
        in between: an unpaid first invoice's subscription expires after 23 hours)."""
        customer = await client.v1.customers.retrieve_async(customer_id)
        assert customer.test_clock, f"customer {customer.id} is not on a test clock"
        clock = await client.v1.test_helpers.test_clocks.retrieve_async(str(customer.test_clock))
        await self._advance(client, clock, clock.frozen_time + seconds)

    async def _advance(
        self, client: stripe.StripeClient, clock: stripe.test_helpers.TestClock, target: int
    ) -> None:
        await client.v1.test_helpers.test_clocks.advance_async(
            clock.id, params={"frozen_time": target}
        )
        deadline = time.monotonic() + CLOCK_READY_SECONDS
        while clock.status != "ready" or clock.frozen_time < target:
            assert time.monotonic() < deadline, f"test clock {clock.id} is still advancing"
            await asyncio.sleep(0.05 if self.is_emulator else 1.0)
            clock = await client.v1.test_helpers.test_clocks.retrieve_async(clock.id)

    async def complete_checkout(
        self, session_id: str, payment_method: str, billing_address: dict[str, str] | None = None
    ) -> dict:
        """Pay a Checkout Session as a customer on Stripe's hosted page would, typing
        `billing_address` (country, postal_code, …) where the page asks for one."""
        typed = {f"billing_details[address][{k}]": v for k, v in (billing_address or {}).items()}
        return await self._testing(
            "post",
            f"checkout/sessions/{session_id}/complete",
            payment_method=payment_method,
            **typed,
        )

    async def settle_boleto(self, intent_id: str, outcome: str) -> dict:
        """The customer pays a boleto's voucher at a bank (`pay`) or lets it expire (`expire`)."""
        return await self._testing("post", f"payment_intents/{intent_id}/boleto", outcome=outcome)

    async def ephemeral_key_version(self, secret: str) -> str:
        """The API version an ephemeral key was made for (what the mobile SDK will speak)."""
        made = await self._testing("get", f"ephemeral_keys/{secret}")
        return made["stripe_version"]

    async def dispute(self, charge_id: str) -> str:
        """The card holder's bank disputes the whole charge; the dispute's id."""
        return (await self._testing("post", f"charges/{charge_id}/dispute"))["id"]

    async def resolve_dispute(self, dispute_id: str, outcome: str) -> None:
        """The bank decides a dispute: `won` or `lost`."""
        await self._testing("post", f"disputes/{dispute_id}/resolve", outcome=outcome)

    async def authenticate(self, intent_id: str, outcome: str = "succeed") -> dict:
        """The card holder's answer to 3-D Secure for a payment or setup intent, as on the bank's
        page (`outcome` succeed or fail)."""
        kind = "setup_intents" if intent_id.startswith("seti_") else "payment_intents"
        return await self._testing("post", f"{kind}/{intent_id}/authenticate", outcome=outcome)

    async def _testing(self, method: str, path: str, **form: str) -> dict:
        if self.api_base is None:
            pytest.skip("needs the emulator: Stripe's test mode has a browser page instead")
        async with httpx.AsyncClient(base_url=self.api_base, timeout=30) as http:
            response = await http.request(
                method,
                f"/_testing/{path}",
                data=form or None,
                headers={"Authorization": f"Bearer {self.secret_key}"},
            )
        assert response.status_code == 200, response.text
        return response.json()

    async def delete_run_clocks(self) -> int:
        """Delete this run's test clocks (and with them their customers and subscriptions)."""
        client = self.client()
        listed = await client.v1.test_helpers.test_clocks.list_async(params={"limit": 100})
        deleted = 0
        async for clock in listed.auto_paging_iter():
            if (clock.name or "").startswith(self.test_clock_prefix + " "):
                await client.v1.test_helpers.test_clocks.delete_async(clock.id)
                deleted += 1
        return deleted


async def stripe_test_mode() -> StripeTarget:
    """Stripe's test mode with the key in STRIPE_SECRET_KEY, after checking it cannot be live."""
    key = os.environ.get("STRIPE_SECRET_KEY", "")
    if not key.startswith(TEST_MODE_KEY_PREFIXES):
        pytest.exit(
            "make test-stripe needs STRIPE_SECRET_KEY=sk_test_… (or rk_test_…): "
            "a test-mode key, never a live one",
            returncode=2,
        )
    target = StripeTarget(api_base=None, secret_key=key)
    balance = await target.client().v1.balance.retrieve_async()
    if balance.livemode:
        pytest.exit("STRIPE_SECRET_KEY reaches live mode: refused", returncode=2)
    events = await target.client().v1.events.list_async(params={"limit": 1})
    if events.data and events.data[0].api_version != STRIPE_API_VERSION:
        pytest.exit(
            f"the test account's events are rendered at {events.data[0].api_version}, not at "
            f"{STRIPE_API_VERSION}: set the account's API version (Developers → API version)",
            returncode=2,
        )
    return target
