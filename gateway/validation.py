"""The constrained input types of the gateway: every string a client sends that reaches billing
(and so Postgres or Stripe) is one of these, so that none can fail there.

Postgres cannot store NUL (`\\u0000`) in text or jsonb, and no field of ours means anything with a
control character in it; lone surrogates (`\\ud800`) cannot be encoded at all (pydantic refuses
them as invalid strings already). A refused request is a 400 `invalid_request` before any call to
billing, so nothing is created at Stripe for it. Lengths are set per field where it is declared.
"""

from typing import Annotated

from fastapi import Path
from pydantic import StringConstraints

# No C0 control (NUL, tab, newline, …), DEL, or C1 control: single-line, printable text.
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
PRINTABLE_MESSAGE = "must not contain control characters (such as NUL or a line break)"

# Free text a client sends (an email, a name, a price's lookup_key, a URL).
Text = Annotated[str, StringConstraints(pattern=PRINTABLE_PATTERN)]

# A Stripe object id in a path (sub_…, in_…, pm_…, cs_…, cus_…).
STRIPE_ID_PATTERN = r"^[A-Za-z0-9_]+$"
StripeId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=STRIPE_ID_PATTERN,
        description="A Stripe object id (letters, digits and `_`).",
    ),
]
