"""The push channel: Expo's push API over HTTPS (httpx).

A send answers one ticket per message: `{"status": "ok", "id": …}`, or an error whose
`details.error` may be `DeviceNotRegistered` (the app is gone from that device: its token is
removed). Tickets that were ok are kept, and their receipts read later (`getReceipts`, Expo
keeps them a day), where `DeviceNotRegistered` removes the token too."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

from services.billing.notifications.messages import Message
from services.billing.notifications.settings import NotifierSettings

DEVICE_NOT_REGISTERED = "DeviceNotRegistered"
# Expo takes up to 100 messages per send and 1,000 ids per getReceipts.
_MAX_MESSAGES = 100
_MAX_RECEIPTS = 1000


class PushFailed(Exception):
    """Expo did not take the request (unreachable, 429, 5xx, or a refused request)."""


@dataclass(frozen=True, slots=True)
class Ticket:
    token: str
    ticket_id: str | None  # set when Expo took the message
    error: str | None  # details.error (or the message) when it did not


class PushChannel:
    def __init__(self, settings: NotifierSettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        token = settings.notify_expo_access_token
        self._headers = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token.get_secret_value()}"

    async def _post(self, url: str, body: Any) -> Any:
        try:
            answer = await self._client.post(
                url,
                json=body,
                headers=self._headers,
                timeout=self._settings.notify_expo_timeout_seconds,
            )
        except httpx.HTTPError as e:
            raise PushFailed(f"{type(e).__name__}: {e}") from e
        if answer.status_code != 200:
            raise PushFailed(f"Expo answered {answer.status_code}: {answer.text[:200]}")
        try:
            return answer.json()["data"]
        except (ValueError, KeyError, TypeError) as e:
            raise PushFailed("Expo's answer carries no data") from e

    async def send(
        self, *, notification_id: UUID, kind: str, tokens: Sequence[str], message: Message
    ) -> list[Ticket]:
        """Send the notification to each device; one ticket per token, in order."""
        tickets: list[Ticket] = []
        for start in range(0, len(tokens), _MAX_MESSAGES):
            chunk = tokens[start : start + _MAX_MESSAGES]
            body = [
                {
                    "to": token,
                    "title": message.subject,
                    "body": message.push_body,
                    "sound": "default",
                    # The app drops a repeat by this id (a crash may send one twice).
                    "data": {"notification_id": str(notification_id), "kind": kind},
                }
                for token in chunk
            ]
            data = await self._post(self._settings.notify_expo_push_url, body)
            if not isinstance(data, list) or len(data) != len(chunk):
                raise PushFailed("Expo answered a ticket count unlike the messages sent")
            tickets.extend(
                _ticket(token, answer) for token, answer in zip(chunk, data, strict=True)
            )
        return tickets

    async def receipts(self, ticket_ids: Sequence[str]) -> dict[str, str | None]:
        """Each receipt Expo has of these tickets: None when delivered, else its error."""
        found: dict[str, str | None] = {}
        for start in range(0, len(ticket_ids), _MAX_RECEIPTS):
            data = await self._post(
                self._settings.notify_expo_receipts_url,
                {"ids": list(ticket_ids[start : start + _MAX_RECEIPTS])},
            )
            if not isinstance(data, dict):
                raise PushFailed("Expo's receipts are not an object")
            for ticket_id, receipt in data.items():
                found[ticket_id] = None if receipt.get("status") == "ok" else _error_of(receipt)
        return found


def _error_of(answer: dict[str, Any]) -> str:
    details = answer.get("details") or {}
    return str(details.get("error") or answer.get("message") or "error")


def _ticket(token: str, answer: Any) -> Ticket:
    if isinstance(answer, dict) and answer.get("status") == "ok":
        return Ticket(token, str(answer["id"]), None)
    return Ticket(token, None, _error_of(answer if isinstance(answer, dict) else {}))
