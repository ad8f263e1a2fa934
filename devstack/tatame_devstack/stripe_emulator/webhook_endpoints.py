"""Webhook endpoints (`/v1/webhook_endpoints`): where the emulator sends its events, signed with
each endpoint's own secret, for the event types the endpoint enables.

The emulator renders events only at the pinned API version: an endpoint created at another
version is stored and listed as Stripe would, but receives nothing (the emulator logs why).
"""

import logging
import secrets
from typing import Any

import stripe
from aiohttp import web
from localstripe import server as localstripe_server
from localstripe import webhooks as localstripe_webhooks
from localstripe.resources import DeletedObject, List, StripeObject

from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_metadata,
    as_optional_str,
    as_str,
    merged_metadata,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.render import shape
from tatame_devstack.stripe_emulator.state import stored

logger = logging.getLogger(__name__)

RENDERED_VERSION = stripe.api_version  # what the SDK the emulator is checked against pins
ALL_EVENTS = "*"


def _as_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise param_error("enabled_events", "Invalid array: enabled_events must list event types")
    return [as_str(f"enabled_events[{i}]", event) for i, event in enumerate(value)]


class WebhookEndpoint(StripeObject):
    """An account webhook endpoint. Its secret is sent once, in the answer that creates it."""

    object = "webhook_endpoint"
    _id_prefix = "we_"

    def __init__(
        self,
        url: Any = None,
        enabled_events: Any = None,
        api_version: Any = None,
        description: Any = None,
        metadata: Any = None,
        connect: Any = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(unknown)
        if url is None:
            raise param_error("url", "Missing required param: url.")
        if enabled_events is None:
            raise param_error("enabled_events", "Missing required param: enabled_events.")
        if connect is not None and as_bool("connect", connect):
            raise param_error("connect", "The emulator has no connected accounts.")
        url = as_str("url", url)
        events = _as_events(enabled_events)
        version = RENDERED_VERSION if api_version is None else as_str("api_version", api_version)
        description = as_optional_str("description", description)
        metadata = as_metadata(metadata)
        super().__init__()
        self.url, self.enabled_events, self.api_version = url, events, version
        self.description, self.metadata = description, metadata
        self.status = "enabled"
        self._secret = "whsec_" + secrets.token_hex(24)
        self._sent_secret = False
        _deliver_to(self)

    @classmethod
    def _api_update(
        cls,
        id: str,
        url: Any = None,
        enabled_events: Any = None,
        description: Any = None,
        metadata: Any = None,
        disabled: Any = None,
        **unknown: Any,
    ) -> "WebhookEndpoint":
        reject_unknown(unknown)
        endpoint = cls._api_retrieve(id)
        if url is not None:
            endpoint.url = as_str("url", url)
        if enabled_events is not None:
            endpoint.enabled_events = _as_events(enabled_events)
        if description is not None:
            endpoint.description = as_optional_str("description", description)
        if metadata is not None:
            endpoint.metadata = merged_metadata(endpoint.metadata, metadata)
        if disabled is not None:
            endpoint.status = "disabled" if as_bool("disabled", disabled) else "enabled"
        _deliver_to(endpoint)
        return endpoint

    @classmethod
    def _api_delete(cls, id: str) -> DeletedObject:
        cls._api_retrieve(id)
        localstripe_webhooks._webhooks.pop(id, None)
        return super()._api_delete(id)

    @classmethod
    def _api_list_all(
        cls, url: str, limit: Any = None, starting_after: Any = None, **unknown: Any
    ) -> List:
        reject_unknown(unknown)
        return super()._api_list_all(url, limit=limit, starting_after=starting_after)

    def _export(self, expand: Any = None) -> dict[str, Any]:
        values = {
            "id": self.id,
            "object": self.object,
            "api_version": self.api_version,
            "created": self.created,
            "description": self.description,
            "enabled_events": list(self.enabled_events),
            "livemode": self.livemode,
            "metadata": dict(self.metadata),
            "status": self.status,
            "url": self.url,
        }
        if not self._sent_secret:  # the answer to the create: Stripe's only showing of it
            self._sent_secret = True
            values["secret"] = self._secret
        return shape(stripe.WebhookEndpoint, values)


def _deliver_to(endpoint: WebhookEndpoint) -> None:
    """Register `endpoint` with the event delivery, or unregister it when it cannot receive."""
    registry = localstripe_webhooks._webhooks
    if endpoint.status != "enabled":
        registry.pop(endpoint.id, None)
        return
    if endpoint.api_version != RENDERED_VERSION:
        registry.pop(endpoint.id, None)
        logger.warning(
            "webhook endpoint %s is at %s; the emulator renders events only at %s and sends it none",
            endpoint.id,
            endpoint.api_version,
            RENDERED_VERSION,
        )
        return
    events = None if ALL_EVENTS in endpoint.enabled_events else list(endpoint.enabled_events)
    localstripe_webhooks.register_webhook(endpoint.id, endpoint.url, endpoint._secret, events)


def register_stored_endpoints() -> None:
    """After a state file is loaded: deliver to the endpoints it holds."""
    for endpoint in stored(WebhookEndpoint.object):
        _deliver_to(endpoint)


def add_routes(app: web.Application) -> None:
    """`/v1/webhook_endpoints`: create, retrieve, update, list, delete."""
    collection, one = "/v1/webhook_endpoints", "/v1/webhook_endpoints/{id}"
    app.router.add_post(collection, localstripe_server.api_create(WebhookEndpoint, collection))
    app.router.add_get(collection, localstripe_server.api_list_all(WebhookEndpoint, collection))
    app.router.add_get(one, localstripe_server.api_retrieve(WebhookEndpoint, one))
    app.router.add_post(one, localstripe_server.api_update(WebhookEndpoint, one))
    app.router.add_delete(one, localstripe_server.api_delete(WebhookEndpoint, one))
