"""Fixtures of the billing tests: billing servers per test module (with and without a trial) and
accounts of the apps calling them."""

from collections.abc import AsyncIterator

import pytest

from tests.harness import BillingHandle
from tests.integration.billing_accounts import TRIAL_DAYS, Account, Stub, billing_server


@pytest.fixture(scope="module")
async def stub(billing: BillingHandle) -> AsyncIterator[Stub]:
    async with billing_server(billing, trial_days=TRIAL_DAYS) as stub:
        yield stub


@pytest.fixture(scope="module")
async def no_trial(billing: BillingHandle) -> AsyncIterator[Stub]:
    """The same billing with BILLING_TRIAL_DAYS=0, for paid-from-day-one flows."""
    async with billing_server(billing, trial_days=0) as stub:
        yield stub


@pytest.fixture
def account(billing: BillingHandle, stub: Stub) -> Account:
    return Account(billing, stub)


@pytest.fixture
def paying(billing: BillingHandle, no_trial: Stub) -> Account:
    """An account of the billing without trials: every subscription is paid at once."""
    return Account(billing, no_trial)
