"""The Stripe webhook endpoint that feeds the receiver: at the pinned API version, subscribed to
exactly the event types billing consumes (`python -m services.webhooks endpoint ensure`).

Stripe renders each event at its endpoint's API version, and an endpoint's version cannot be
changed once created: moving to a new version means a new endpoint (with a new signing secret)
beside the old one until the receiver trusts both secrets, then retiring the old one.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import stripe
from stripe.params import WebhookEndpointCreateParams, WebhookEndpointUpdateParams

from services.common.stripe_events import BILLING_EVENT_TYPES
from services.common.stripe_sdk import STRIPE_API_VERSION

DESCRIPTION = "Tatame billing (managed by `python -m services.webhooks endpoint ensure`)"


@dataclass(frozen=True, slots=True)
class EnsureResult:
    """What `ensure_endpoint` found or did; `secret` is set only when it created the endpoint."""

    endpoint_id: str
    created: bool
    updated: bool
    secret: str | None = field(repr=False)
    # Other endpoints for the same URL (another API version, or a duplicate): enabled ones still
    # send events, which the receiver stores once by event id.
    others: tuple[stripe.WebhookEndpoint, ...] = ()
    retired: tuple[str, ...] = ()


def _creation_key(url: str, events: Iterable[str]) -> str:
    """Stripe idempotency key of one creation: a retry after a lost answer creates nothing new."""
    digest = hashlib.sha256("\n".join([url, STRIPE_API_VERSION, *sorted(events)]).encode())
    return f"tatame-webhook-endpoint-v1:{digest.hexdigest()}"


async def _endpoints_at(
    stripe_client: stripe.StripeClient, url: str
) -> list[stripe.WebhookEndpoint]:
    listing = await stripe_client.v1.webhook_endpoints.list_async(params={"limit": 100})
    return [endpoint async for endpoint in listing.auto_paging_iter() if endpoint.url == url]


async def ensure_endpoint(
    *, stripe_client: stripe.StripeClient, url: str, retire_others: bool = False
) -> EnsureResult:
    """Create or update the endpoint for `url`; idempotent. With `retire_others`, disable the other
    endpoints for `url`, but only once the pinned one already existed before this call: its secret
    must be in the receiver's STRIPE_WEBHOOK_SECRET before the old endpoints stop sending."""
    events = sorted(BILLING_EVENT_TYPES)
    found = await _endpoints_at(stripe_client, url)
    # The oldest endpoint at the pinned version is kept; any other for `url` is one of `others`.
    pinned = sorted((e for e in found if e.api_version == STRIPE_API_VERSION), key=_created)
    if not pinned:
        params: WebhookEndpointCreateParams = {
            "url": url,
            # The SDK types both as literals; ours are the same strings, held as `str`.
            "api_version": cast(Any, STRIPE_API_VERSION),
            "enabled_events": cast(Any, events),
            "description": DESCRIPTION,
            "metadata": {"managed_by": "tatame"},
        }
        created = await stripe_client.v1.webhook_endpoints.create_async(
            params=params, options={"idempotency_key": _creation_key(url, events)}
        )
        return EnsureResult(created.id, True, False, created.secret, tuple(found))
    endpoint, others = pinned[0], tuple(e for e in found if e.id != pinned[0].id)
    changes: WebhookEndpointUpdateParams = {}
    if sorted(endpoint.enabled_events) != events:
        changes["enabled_events"] = cast(Any, events)
    if endpoint.status != "enabled":
        changes["disabled"] = False
    if changes:
        await stripe_client.v1.webhook_endpoints.update_async(endpoint.id, params=changes)
    retired = []
    for other in others if retire_others else ():
        if other.status != "disabled":
            await stripe_client.v1.webhook_endpoints.update_async(
                other.id, params={"disabled": True}
            )
            retired.append(other.id)
    return EnsureResult(endpoint.id, False, bool(changes), None, others, tuple(retired))


def _created(endpoint: stripe.WebhookEndpoint) -> int:
    return endpoint.created
