"""Telling upgrades (now) from downgrades (at the period end), and Checkout's redirect URLs."""

import pytest

from services.billing.checkout import checked_redirect, with_session_id
from services.billing.errors import InvalidArgument
from services.billing.settings import BillingRules
from services.billing.subscription_changes import Terms, takes_effect


def terms(unit_amount: int, interval: str = "month", count: int = 1, quantity: int = 1) -> Terms:
    return Terms("price_x", unit_amount, "usd", interval, count, quantity)


@pytest.mark.parametrize(
    ("current", "new", "when"),
    [
        (terms(1900), terms(3900), "now"),  # a dearer plan
        (terms(3900), terms(1900), "period_end"),  # a cheaper one
        (terms(1900), terms(1900, quantity=2), "now"),  # more seats
        (terms(1900, quantity=3), terms(1900, quantity=2), "period_end"),  # fewer seats
        (terms(1900), terms(19000, "year"), "period_end"),  # yearly: 1583/month < 1900
        (terms(1900), terms(39000, "year"), "now"),  # 3250/month > 1900
        (terms(39000, "year"), terms(3900), "now"),  # 46800/year > 39000
        (terms(1000, "week"), terms(4000), "period_end"),  # 52 1/7 weeks a year > 12 months
        (terms(3000, "month", 3), terms(1100), "now"),  # quarterly 1000/month < 1100
        (terms(1900), terms(1900), "now"),  # nothing changes: no reason to wait
    ],
)
def test_a_change_waits_for_the_period_end_only_when_it_costs_less_per_year(
    current: Terms, new: Terms, when: str
) -> None:
    assert takes_effect(current=current, new=new) == when


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("https://app.example/done", "https://app.example/done?session_id={CHECKOUT_SESSION_ID}"),
        ("https://app.example/d?x=1", "https://app.example/d?x=1&session_id={CHECKOUT_SESSION_ID}"),
        ("https://app.example/d#f", "https://app.example/d?session_id={CHECKOUT_SESSION_ID}#f"),
        (
            "https://app.example/d?id={CHECKOUT_SESSION_ID}",
            "https://app.example/d?id={CHECKOUT_SESSION_ID}",
        ),
    ],
)
def test_the_success_url_carries_the_checkout_session_id_placeholder(given: str, sent: str) -> None:
    assert with_session_id(given) == sent


RULES = BillingRules(
    allowed_redirect_origins=frozenset({"https://app.example", "http://localhost:8081"})
)


@pytest.mark.parametrize(
    "url", ["https://app.example/billing?x=1", "HTTPS://APP.EXAMPLE/b", "http://localhost:8081/"]
)
def test_urls_on_an_allowed_origin_are_accepted(url: str) -> None:
    assert checked_redirect(url, field="return_url", rules=RULES) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.evil.example/",
        "https://app.example@evil.example/",
        "http://app.example/",
        "https://app.example:8443/",
        "http://localhost:8082/",
        "//app.example/",
        "javascript:alert(1)",
        "https://app.example:99999/",
        "https://app.example/" + "x" * 2100,
        "",
    ],
)
def test_urls_off_the_allowed_origins_are_invalid(url: str) -> None:
    with pytest.raises(InvalidArgument, match="return_url"):
        checked_redirect(url, field="return_url", rules=RULES)
