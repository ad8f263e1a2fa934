"""The notification routes end to end: HTTP → gateway → gRPC → billing → Postgres, each acting
for the caller only (the cross-user rule extended to devices and preferences)."""

import secrets
from urllib.parse import quote

import httpx

from tests.e2e.gateway_client import assert_error


def push_token() -> str:
    return f"ExponentPushToken[{secrets.token_hex(11)}]"


async def test_a_device_is_registered_and_removed_by_its_owner_only(
    client: httpx.AsyncClient, new_user
) -> None:
    owner, other = await new_user(), await new_user()
    token = push_token()
    created = await client.post(
        "/v1/devices", json={"token": token, "platform": "ios"}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    assert created.json() == {"token": token, "platform": "ios"}
    again = await client.post("/v1/devices", json={"token": token}, headers=owner.headers)
    assert again.status_code == 201  # registering again is fine
    path = f"/v1/devices/{quote(token)}"

    # Another user can neither remove nor learn of the owner's device.
    assert_error(await client.delete(path, headers=other.headers), 404, "not_found")
    removed = await client.delete(path, headers=owner.headers)
    assert removed.status_code == 204
    assert_error(await client.delete(path, headers=owner.headers), 404, "not_found")


async def test_device_routes_refuse_bad_tokens_and_anonymous_callers(
    client: httpx.AsyncClient, new_user
) -> None:
    user = await new_user()
    for body in ({"token": "not-a-token"}, {"token": push_token(), "platform": "symbian"}, {}):
        response = await client.post("/v1/devices", json=body, headers=user.headers)
        assert response.status_code == 400, response.text
        assert "Traceback" not in response.text
    assert_error(
        await client.post("/v1/devices", json={"token": push_token()}), 401, "missing_token"
    )
    assert_error(await client.get("/v1/notification-preferences"), 401, "missing_token")


async def test_preferences_are_per_user_and_receipts_cannot_be_turned_off(
    client: httpx.AsyncClient, new_user
) -> None:
    first, second = await new_user(), await new_user()
    put = await client.put(
        "/v1/notification-preferences",
        json={"preferences": {"trial_ending": False, "subscription_started": False}},
        headers=first.headers,
    )
    assert put.status_code == 200, put.text
    mine = {p["kind"]: p for p in put.json()["preferences"]}
    assert mine["trial_ending"]["enabled"] is False
    assert mine["receipt"] == {"kind": "receipt", "enabled": True, "mandatory": True}

    theirs = await client.get("/v1/notification-preferences", headers=second.headers)
    assert all(p["enabled"] for p in theirs.json()["preferences"])  # another user's untouched
    again = await client.get("/v1/notification-preferences", headers=first.headers)
    assert again.json() == put.json()

    for kind in ("receipt", "action_required"):
        refused = await client.put(
            "/v1/notification-preferences",
            json={"preferences": {kind: False}},
            headers=first.headers,
        )
        assert_error(refused, 400, "invalid_argument")
        assert "cannot be turned off" in refused.json()["error"]["message"]
    unknown = await client.put(
        "/v1/notification-preferences",
        json={"preferences": {"marketing": False}},
        headers=first.headers,
    )
    assert_error(unknown, 400, "invalid_argument")
