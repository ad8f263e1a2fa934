"""Personal data in Stripe and Clerk objects: what an erasure blanks out of stored JSON.

One list for every service that keeps such JSON (the webhooks inbox's payloads, billing's
export): contact details (email, name, phone, addresses, a boleto payer's tax id), Clerk profile
fields, and card details (brand, last four digits, expiry, fingerprint). Ids, amounts, currencies, statuses and dates stay:
accounting must keep them. A key is blanked wherever it appears, so a product's `name` inside an
invoice line is blanked too (it is in the catalog mirror all the same).
"""

import json
from typing import Any

PERSONAL_KEYS = frozenset(
    {
        # Contact details (Stripe customers, invoices, charges, checkout sessions).
        "email",
        "name",
        "phone",
        "address",
        "shipping",
        "billing_details",
        "customer_email",
        "customer_name",
        "customer_phone",
        "customer_address",
        "customer_shipping",
        "customer_details",
        "receipt_email",
        # A boleto payer's CPF or CNPJ (payment methods, charges).
        "tax_id",
        # Clerk users and organizations.
        "first_name",
        "last_name",
        "username",
        "email_address",
        "email_addresses",
        "phone_number",
        "phone_numbers",
        "web3_wallets",
        "external_accounts",
        "image_url",
        "profile_image_url",
        "public_metadata",
        "private_metadata",
        "unsafe_metadata",
        "ip_address",
        "user_agent",
        # Card details.
        "brand",
        "display_brand",
        "last4",
        "dynamic_last4",
        "exp_month",
        "exp_year",
        "fingerprint",
    }
)


def redact(value: Any) -> Any:
    """`value` (decoded JSON) with every personal key's value replaced by null."""
    if isinstance(value, dict):
        return {
            key: None if key in PERSONAL_KEYS and item is not None else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def redacted_json(text: str) -> str | None:
    """The JSON `text` with personal data blanked, or None when it holds none."""
    decoded = json.loads(text)
    scrubbed = redact(decoded)
    return None if scrubbed == decoded else json.dumps(scrubbed, separators=(",", ":"))
