"""Clerk's webhooks, sent through Svix: the signature (Svix's own library, several secrets for a
rotation) and the envelope the inbox keeps. The Svix message id (`svix-id`) is the event's id in
the inbox, so a redelivered message is stored once; events are ordered per Clerk user or
organization (`clerk:<id>`, InboundEvent.ordering_key)."""

import json
from collections.abc import Mapping, Sequence

from svix.webhooks import Webhook, WebhookVerificationError

from services.webhooks.stripe_events import InboundEvent, MalformedEvent

PROVIDER = "clerk"
MAX_ID_LENGTH = 255


class BadSignature(ValueError):
    """No configured secret signed this message, or its headers are missing or stale."""


def clerk_webhooks(secrets: Sequence[str]) -> tuple[Webhook, ...]:
    """A verifier per secret (`whsec_…`); ValueError names a secret that is not one."""
    verifiers = []
    for secret in secrets:
        if not secret.startswith("whsec_"):
            raise ValueError("each CLERK_WEBHOOK_SECRETS entry must be a whsec_… signing secret")
        try:
            verifiers.append(Webhook(secret))
        except Exception as e:  # binascii.Error, EmptyWebhookSecretError
            raise ValueError("a CLERK_WEBHOOK_SECRETS entry is not a Svix signing secret") from e
    return tuple(verifiers)


def verify(payload: str, headers: Mapping[str, str], webhooks: Sequence[Webhook]) -> str:
    """Accept a message signed with any of the secrets within Svix's 5-minute tolerance; return
    its `svix-id`."""
    svix_headers = {
        name: headers.get(name, "") for name in ("svix-id", "svix-timestamp", "svix-signature")
    }
    if not all(svix_headers.values()):
        raise BadSignature("the svix-id, svix-timestamp and svix-signature headers are required")
    for webhook in webhooks:
        try:
            webhook.verify(payload, svix_headers)
        except (WebhookVerificationError, ValueError):  # ValueError: a malformed signature
            continue
        return svix_headers["svix-id"]
    raise BadSignature("no signature matches a configured secret, or the timestamp is stale")


def parse_clerk_event(message_id: str, payload: str, *, livemode: bool) -> InboundEvent:
    """The envelope of a verified Clerk event: `type`, `timestamp` (ms) and `data.id`, the user
    or organization it is about."""
    if not message_id or len(message_id) > MAX_ID_LENGTH or not message_id.isascii():
        raise MalformedEvent("svix-id must be a message id")
    try:
        event = json.loads(payload)
    except (json.JSONDecodeError, RecursionError) as e:
        raise MalformedEvent("body is not JSON") from e
    if not isinstance(event, dict):
        raise MalformedEvent("an event is a JSON object")
    event_type, timestamp, data = event.get("type"), event.get("timestamp"), event.get("data")
    if not isinstance(event_type, str) or not event_type or len(event_type) > MAX_ID_LENGTH:
        raise MalformedEvent("type must be a non-empty string")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp <= 0:
        raise MalformedEvent("timestamp must be a Unix time in milliseconds")
    subject = data.get("id") if isinstance(data, dict) else None
    if not isinstance(subject, str) or not subject or len(subject) > MAX_ID_LENGTH:
        raise MalformedEvent("data.id must name the user or organization")
    return InboundEvent(
        id=message_id,
        type=event_type,
        created=timestamp // 1000,
        api_version=None,
        livemode=livemode,  # Clerk has no livemode: the receiver's own
        object_id=subject,
        customer_id=None,
        payload=payload,
        provider=PROVIDER,
    )
