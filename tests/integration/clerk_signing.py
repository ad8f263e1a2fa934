"""Clerk's webhooks as Svix sends them: signed with Svix's own library, posted to the receiver."""

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from svix.webhooks import Webhook


def clerk_event(event_type: str, data: dict[str, Any]) -> str:
    """A Clerk event's JSON, shaped as Clerk sends it."""
    return json.dumps(
        {
            "data": data,
            "object": "event",
            "type": event_type,
            "timestamp": int(time.time() * 1000),
            "instance_id": "ins_tatame_tests",
        }
    )


def clerk_user(user_id: str, *, email: str, first_name: str, last_name: str) -> dict[str, Any]:
    address = "idn_" + secrets.token_hex(8)
    return {
        "id": user_id,
        "object": "user",
        "first_name": first_name,
        "last_name": last_name,
        "primary_email_address_id": address,
        "email_addresses": [{"id": address, "object": "email_address", "email_address": email}],
        "username": None,
        "image_url": "https://img.clerk.com/x.png",
    }


def svix_headers(secret: str, body: str, message_id: str | None = None) -> dict[str, str]:
    """Svix's three headers for `body`, signed with `secret` now."""
    message_id = message_id or "msg_" + secrets.token_hex(12)
    now = datetime.now(UTC)
    return {
        "svix-id": message_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": Webhook(secret).sign(message_id, now, body),
        "content-type": "application/json",
    }


async def post_clerk(url: str, secret: str, body: str, message_id: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(url, content=body, headers=svix_headers(secret, body, message_id))
