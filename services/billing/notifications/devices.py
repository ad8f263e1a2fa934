"""What each principal receives: the devices (Expo push tokens) its app registered, and the
kinds of notification it turned off (receipts and action-required cannot be)."""

import re
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.errors import InvalidArgument, NotFound
from services.billing.notifications.kinds import MANDATORY, Kind
from services.billing.notifications.tables import (
    notification_devices,
    notification_preferences,
    push_tickets,
)

# Expo push tokens: ExponentPushToken[…] (or ExpoPushToken[…]).
_TOKEN = re.compile(r"Expo(nent)?PushToken\[[A-Za-z0-9_\-]{1,200}\]")
PLATFORMS = frozenset({"", "ios", "android", "web"})


def _valid_token(token: str) -> str:
    if not _TOKEN.fullmatch(token):
        raise InvalidArgument("token must be an Expo push token (ExponentPushToken[…])")
    return token


async def register_device(
    *, engine: AsyncEngine, principal: Principal, token: str, platform: str
) -> None:
    """The principal's app receives pushes at `token` (a device moves to whoever registers it
    last: the account signed in on it now)."""
    _valid_token(token)
    if platform not in PLATFORMS:
        raise InvalidArgument("platform must be ios, android or web")
    stmt = insert(notification_devices).values(
        token=token, principal=principal.key, platform=platform
    )
    async with engine.begin() as conn:
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["token"],
                set_={"principal": stmt.excluded.principal, "platform": stmt.excluded.platform},
            )
        )


async def unregister_device(*, engine: AsyncEngine, principal: Principal, token: str) -> None:
    """The principal's app no longer receives pushes at `token` (NotFound: not its device)."""
    async with engine.begin() as conn:
        removed = await conn.execute(
            delete(notification_devices)
            .where(notification_devices.c.token == _valid_token(token))
            .where(notification_devices.c.principal == principal.key)
        )
    if removed.rowcount == 0:
        raise NotFound("no such device")


async def tokens_of(engine: AsyncEngine, principal: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(notification_devices.c.token)
            .where(notification_devices.c.principal == principal)
            .order_by(notification_devices.c.token)
        )
        return list(rows.scalars())


async def remove_tokens(engine: AsyncEngine, tokens: Iterable[str]) -> None:
    """Forget devices Expo says are gone (DeviceNotRegistered), and their pending receipts."""
    gone = sorted(set(tokens))
    if gone:
        async with engine.begin() as conn:
            await conn.execute(
                delete(notification_devices).where(notification_devices.c.token.in_(gone))
            )
            await conn.execute(delete(push_tickets).where(push_tickets.c.token.in_(gone)))


async def preferences(*, engine: AsyncEngine, principal: Principal) -> dict[Kind, bool]:
    """Every kind, and whether the principal receives it."""
    off = await disabled_kinds(engine, principal.key)
    return {kind: kind not in off for kind in Kind}


async def disabled_kinds(engine: AsyncEngine, principal: str) -> frozenset[str]:
    async with engine.connect() as conn:
        found = await conn.execute(
            select(notification_preferences.c.disabled_kinds).where(
                notification_preferences.c.principal == principal
            )
        )
        return frozenset(found.scalar() or ())


async def update_preferences(
    *, engine: AsyncEngine, principal: Principal, enabled: Mapping[str, bool]
) -> dict[Kind, bool]:
    """Turn the kinds named on or off (kinds not named keep their setting)."""
    unknown = sorted(set(enabled) - {kind.value for kind in Kind})
    if unknown:
        raise InvalidArgument(f"unknown notification kinds: {', '.join(unknown)}")
    forced = sorted(name for name, on in enabled.items() if not on and Kind(name) in MANDATORY)
    if forced:
        raise InvalidArgument(f"{', '.join(forced)} notifications cannot be turned off")
    current = await preferences(engine=engine, principal=principal)
    merged = {kind: enabled.get(kind.value, on) for kind, on in current.items()}
    off: Sequence[str] = sorted(kind.value for kind, on in merged.items() if not on)
    stmt = insert(notification_preferences).values(principal=principal.key, disabled_kinds=off)
    async with engine.begin() as conn:
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["principal"],
                set_={
                    "disabled_kinds": stmt.excluded.disabled_kinds,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )
    return merged
