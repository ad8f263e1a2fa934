"""The rules of starting a subscription, as pure functions over what the I/O code found:
one live subscription per principal, and a free trial on the first one ever."""

from collections.abc import Mapping

from services.common.subscription_statuses import LIVE_STATUSES


def blocking_subscription(statuses: Mapping[str, str], *, own_id: str | None) -> str | None:
    """The live subscription that refuses a new start (the first by id), or None.

    `statuses` are the principal's subscriptions by id (the mirror's, updated with Stripe's).
    An `incomplete` one (first payment never made) does not block: the start replaces or hands
    it back. Nor does `own_id`, the one an earlier run of this same request created.
    """
    blocking = sorted(
        subscription_id
        for subscription_id, status in statuses.items()
        if status in LIVE_STATUSES and status != "incomplete" and subscription_id != own_id
    )
    return blocking[0] if blocking else None


def trial_days(*, configured_days: int, ever_subscribed: bool) -> int | None:
    """The free trial of a new subscription, in days: `configured_days` on the principal's
    first subscription ever (none in any status), else None; 0 configured days is no trial."""
    if ever_subscribed or configured_days <= 0:
        return None
    return configured_days
