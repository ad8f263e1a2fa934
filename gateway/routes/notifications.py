"""Notifications: the devices that receive pushes (Expo push tokens) and which kinds the caller
receives. Every route acts for the caller only; a device is found only among the caller's."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from tatame.billing.v1 import notifications_pb2 as pb

from gateway import rendering
from gateway.dependencies import ForCaller, ForManager
from gateway.schemas import error_responses

router = APIRouter(tags=["notifications"])
ERRORS = error_responses(400, 401, 404, 503)


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    token: str = Field(
        max_length=230,
        description="The app's Expo push token on this device (`ExponentPushToken[…]`; "
        "billing checks its shape).",
    )
    platform: Literal["ios", "android", "web"] | None = None


class DeviceOut(BaseModel):
    token: str
    platform: str | None


class PreferenceOut(BaseModel):
    kind: str = Field(
        description="subscription_started, trial_ending, payment_failed, action_required, "
        "receipt, subscription_ended or refund_issued."
    )
    enabled: bool
    mandatory: bool = Field(description="receipt and action_required cannot be turned off.")


class PreferencesOut(BaseModel):
    preferences: list[PreferenceOut]


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preferences: dict[str, bool] = Field(
        max_length=32,
        description="Kinds to turn on (true) or off (false); kinds not named keep their setting.",
        examples=[{"trial_ending": False}],
    )


def _preferences(items: list[pb.NotificationPreference]) -> PreferencesOut:
    return PreferencesOut(
        preferences=[
            PreferenceOut(kind=p.kind, enabled=p.enabled, mandatory=p.mandatory) for p in items
        ]
    )


@router.post("/v1/devices", response_model=DeviceOut, status_code=201, responses=ERRORS)
async def register_device(billing: ForManager, body: DeviceIn) -> Response:
    """Receive pushes on this device (registering the same token again is fine)."""
    await billing.register_device(
        pb.RegisterDeviceRequest(token=body.token, platform=body.platform or "")
    )
    return rendering.json_response(DeviceOut(token=body.token, platform=body.platform), 201)


@router.delete("/v1/devices/{token}", status_code=204, responses=ERRORS)
async def unregister_device(
    billing: ForManager, token: Annotated[str, Path(max_length=230)]
) -> Response:
    """Stop pushes to this device (404 when it is not one of the caller's)."""
    await billing.unregister_device(pb.UnregisterDeviceRequest(token=token))
    return Response(status_code=204)


@router.get("/v1/notification-preferences", response_model=PreferencesOut, responses=ERRORS)
async def get_preferences(billing: ForCaller) -> Response:
    reply = await billing.get_notification_preferences(pb.GetNotificationPreferencesRequest())
    return rendering.json_response(_preferences(list(reply.preferences)))


@router.put("/v1/notification-preferences", response_model=PreferencesOut, responses=ERRORS)
async def update_preferences(billing: ForManager, body: PreferencesIn) -> Response:
    """Turn kinds on or off (400 for an unknown kind, or for turning off receipt or
    action_required)."""
    reply = await billing.update_notification_preferences(
        pb.UpdateNotificationPreferencesRequest(
            preferences=[
                pb.NotificationPreference(kind=kind, enabled=on)
                for kind, on in body.preferences.items()
            ]
        )
    )
    return rendering.json_response(_preferences(list(reply.preferences)))
