"""The rules of starting a subscription, as pure functions over what the I/O code found:
one live subscription per principal, a free trial on the first one ever, and trials that wait
for a payment method."""

from collections.abc import Collection, Mapping

from services.common.subscription_statuses import LIVE_STATUSES

# Trial end behaviours (`trial_settings.end_behavior.missing_payment_method`) under which a
# trial without a payment method ends without being paid for.
_UNPAID_TRIAL_ENDS = frozenset({"cancel", "pause"})
DAY_SECONDS = 86_400


def awaits_payment_method(
    *, status: str, trial_missing_payment_method: str | None, payment_method: bool
) -> bool:
    """Whether a subscription is a trial waiting for a payment method: `trialing`, made to end
    unpaid without one (`trial_missing_payment_method` `cancel` or `pause`; Stripe's default,
    `create_invoice`, bills anyway), and none saved (`payment_method`: the subscription's
    default or its customer's, which Stripe would charge when the trial ends). Such a trial
    grants nothing (`entitlements.access`) and does not block a new start."""
    return (
        status == "trialing"
        and trial_missing_payment_method in _UNPAID_TRIAL_ENDS
        and not payment_method
    )


def blocking_subscription(
    statuses: Mapping[str, str], *, own_id: str | None, unfinished: Collection[str] = ()
) -> str | None:
    """The live subscription that refuses a new start (the first by id), or None.

    `statuses` are the principal's subscriptions by id (the mirror's, updated with Stripe's).
    An `incomplete` one (first payment never made) does not block, nor do the `unfinished` ones
    (trials waiting for a payment method): the start replaces or hands them back. Nor does
    `own_id`, the one an earlier run of this same request created.
    """
    blocking = sorted(
        subscription_id
        for subscription_id, status in statuses.items()
        if status in LIVE_STATUSES
        and status != "incomplete"
        and subscription_id != own_id
        and subscription_id not in unfinished
    )
    return blocking[0] if blocking else None


def continued_trial_days(trial_end: int, *, now: int) -> int | None:
    """The trial of a start that replaces a trial waiting for a payment method: what is left of
    that one (Unix times), in whole days rounded up, or None once it has ended. A principal has
    one trial, however many starts it takes to save a card."""
    left = trial_end - now
    return -(-left // DAY_SECONDS) if left > 0 else None


def trial_days(*, configured_days: int, ever_subscribed: bool) -> int | None:
    """The free trial of a new subscription, in days: `configured_days` on the principal's
    first subscription ever (none in any status), else None; 0 configured days is no trial."""
    if ever_subscribed or configured_days <= 0:
        return None
    return configured_days
