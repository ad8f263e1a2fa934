"""What an erasure blanks from stored JSON, and what it keeps."""

import json

from services.common.personal_data import redact, redacted_json


def test_contact_and_card_details_are_blanked_and_ids_amounts_dates_kept() -> None:
    event = {
        "id": "evt_1",
        "created": 1764547200,
        "data": {
            "object": {
                "id": "ch_1",
                "customer": "cus_1",
                "amount": 2500,
                "currency": "usd",
                "receipt_email": "ana@example.com",
                "billing_details": {"email": "ana@example.com", "name": "Ana", "address": {}},
                "payment_method_details": {
                    "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
                },
                "lines": [{"id": "il_1", "amount": 2500, "customer_name": "Ana"}],
            }
        },
    }
    blanked = redact(event)
    obj = blanked["data"]["object"]
    assert (obj["id"], obj["customer"], obj["amount"], obj["currency"]) == (
        "ch_1",
        "cus_1",
        2500,
        "usd",
    )
    assert blanked["created"] == 1764547200
    assert obj["receipt_email"] is None
    assert obj["billing_details"] is None
    assert obj["payment_method_details"]["card"] == {
        "brand": None,
        "last4": None,
        "exp_month": None,
        "exp_year": None,
    }
    assert obj["lines"] == [{"id": "il_1", "amount": 2500, "customer_name": None}]
    assert "Ana" not in json.dumps(blanked)


def test_clerk_users_lose_their_profile() -> None:
    user = {
        "id": "user_1",
        "first_name": "Ana",
        "last_name": "Lima",
        "email_addresses": [{"id": "idn_1", "email_address": "ana@example.com"}],
        "primary_email_address_id": "idn_1",
    }
    text = redacted_json(json.dumps({"type": "user.updated", "data": user}))
    assert text is not None
    assert json.loads(text)["data"] == {
        "id": "user_1",
        "first_name": None,
        "last_name": None,
        "email_addresses": None,
        "primary_email_address_id": "idn_1",
    }


def test_json_without_personal_data_is_left_as_it_is() -> None:
    assert redacted_json('{"data": {"id": "user_1", "deleted": true, "name": null}}') is None
