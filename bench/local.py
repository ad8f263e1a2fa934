"""Loopback helpers of the bench: a customer created through the gateway."""

import json
import urllib.request


def create_customer(gateway_url: str, token: str, email: str) -> None:
    request = urllib.request.Request(  # noqa: S310 (loopback URL)
        f"{gateway_url}/v1/customer",
        data=json.dumps({"email": email, "name": "Bench"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status in (200, 201)
