"""EraseAccount against the real billing, Stripe emulator and inbox: an erasure stopped part way
(Stripe down, the inbox unreachable) records where it stopped and resumes there; asked again it
erases nothing twice; the principal may become a customer again."""

import grpc
import psycopg
import pytest
from tatame_devstack.ports import free_port

from services.auth.service_credentials import ServiceCredentials
from services.billing.privacy.inbox import CALLER, InboxClient
from services.common.rpc import reason_of
from services.common.stripe_sdk import create_stripe_client
from tests.harness import BillingHandle
from tests.integration.billing_accounts import TRIAL_DAYS, Account, billing_server
from tests.stripe_target import EMULATOR_KEY

pytestmark = pytest.mark.usefixtures("stripe_emulator")


async def _erasure(url: str, principal: str) -> list[tuple[str, str | None, list[str]]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT state, last_error, canceled_subscription_ids FROM billing.erasures"
            " WHERE principal = %s ORDER BY id",
            (principal,),
        )
        return await cursor.fetchall()


async def test_an_erasure_stopped_by_stripe_then_by_the_inbox_resumes_where_it_stopped(
    account: Account, billing: BillingHandle, billing_database_url: str
) -> None:
    customer = await account.customer_id()
    subscription = (await account.subscribe()).subscription.id
    healthy = account.stub
    principal = account.principal.key
    down = create_stripe_client(
        secret_key=EMULATOR_KEY, api_base=f"http://127.0.0.1:{free_port()}", max_network_retries=0
    )
    async with billing_server(billing, trial_days=TRIAL_DAYS, stripe_client=down) as no_stripe:
        account.stub = no_stripe
        refused = await account.refused("EraseAccount")
    assert (refused.code(), reason_of(refused)) == (
        grpc.StatusCode.UNAVAILABLE,
        "stripe_unavailable",
    )
    [(state, error, canceled)] = await _erasure(billing_database_url, principal)
    assert (state, canceled) == ("started", [])
    assert error is not None
    assert error.startswith("stripe_unavailable")
    assert (await billing.stripe.v1.subscriptions.retrieve_async(subscription)).status != "canceled"

    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as nowhere:
        credentials = ServiceCredentials(CALLER, "x" * 32, audience="webhooks")
        unreachable = InboxClient(nowhere, credentials, timeout=1)
        async with billing_server(billing, trial_days=TRIAL_DAYS, inbox=unreachable) as no_inbox:
            account.stub = no_inbox
            refused = await account.refused("EraseAccount")
    assert reason_of(refused) == "inbox_unavailable"
    # Stripe's part and billing's own are done and recorded; only the inbox's is left.
    [(state, error, canceled)] = await _erasure(billing_database_url, principal)
    assert (state, canceled) == ("mirror_scrubbed", [subscription])
    assert (await billing.stripe.v1.subscriptions.retrieve_async(subscription)).status == "canceled"
    account.stub = healthy
    assert (await account.refused("GetCustomer")).code() == grpc.StatusCode.NOT_FOUND
    done = (await account.call("EraseAccount")).erasure
    assert (done.state, done.stripe_customer_id, list(done.canceled_subscription_ids)) == (
        "done",
        customer,
        [subscription],
    )
    assert done.HasField("complete_time")
    again = (await account.call("EraseAccount")).erasure
    assert (again.request_time, again.complete_time) == (done.request_time, done.complete_time)
    assert [s for s, _, _ in await _erasure(billing_database_url, principal)] == ["done"]

    # Back again: a new Stripe customer (not the deleted one's idempotent answer).
    assert await account.customer_id() not in ("", customer)


async def test_erasing_a_principal_that_never_was_a_customer_is_recorded_once(
    account: Account, billing_database_url: str
) -> None:
    first = (await account.call("EraseAccount")).erasure
    second = (await account.call("EraseAccount")).erasure
    assert (first.state, first.stripe_customer_id) == ("done", "")
    assert second.request_time == first.request_time
    assert len(await _erasure(billing_database_url, account.principal.key)) == 1
