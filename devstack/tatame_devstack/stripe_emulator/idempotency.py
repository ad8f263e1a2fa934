"""Stripe's idempotency layer: `Idempotency-Key` on POST (replay, mismatch 400, in-flight 409)."""

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import hdrs, web
from localstripe import server as localstripe_server
from localstripe.errors import UserError

from tatame_devstack.stripe_emulator.render import Handler, error_response

IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60  # Stripe prunes keys after 24 hours
IDEMPOTENCY_MAX_KEYS = 10_000


def _was_executed(status: int) -> bool:
    """Whether Stripe would save this outcome: all but requests refused before running."""
    return not 400 <= status < 500 or status == 402


@dataclass(frozen=True)
class _Outcome:
    """The saved response to the first request made with one idempotency key."""

    fingerprint: str
    status: int
    body: bytes
    content_type: str
    saved_at: float

    def replay(self, key: str) -> web.Response:
        return web.Response(
            status=self.status,
            body=self.body,
            headers={
                hdrs.CONTENT_TYPE: self.content_type,
                "Idempotency-Key": key,
                "Idempotent-Replayed": "true",
            },
        )


async def _fingerprint(request: web.Request) -> str:
    """Method, path and parameters of a request, as compared by Stripe's idempotency layer."""
    params = await localstripe_server.get_post_data(request) or {}
    canonical = json.dumps(
        [request.method, request.path, request.query_string, params], sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyLayer:
    """Stripe's idempotency keys for POST requests, as an aiohttp middleware.

    The first response to a key is saved (unless the request was refused before running) and
    replayed, with `Idempotent-Replayed: true`, for repeats with the same parameters. A repeat
    with other parameters gets a 400 and one made while the first still runs a 409, both of
    type `idempotency_error`. Keys are forgotten after 24 hours, the oldest sooner when more
    than `max_keys` are kept.
    """

    def __init__(
        self, ttl_seconds: float = IDEMPOTENCY_TTL_SECONDS, max_keys: int = IDEMPOTENCY_MAX_KEYS
    ) -> None:
        self._ttl_seconds = ttl_seconds
        self._max_keys = max_keys
        self._outcomes: dict[str, _Outcome] = {}
        self._in_flight: set[str] = set()

    def snapshot(self) -> dict[str, _Outcome]:
        return dict(self._outcomes)

    def restore(self, outcomes: Mapping[str, _Outcome]) -> None:
        self._outcomes = dict(outcomes)

    def clear(self) -> None:
        self._outcomes.clear()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        if key in self._in_flight:
            return error_response(
                409,
                {
                    "type": "idempotency_error",
                    "code": "idempotency_key_in_use",
                    "message": "There is currently another in-progress request using this "
                    f"idempotency key: {key}. Try again later.",
                },
            )
        self._in_flight.add(key)
        try:
            return await self._handle(key, request, handler)
        finally:
            self._in_flight.discard(key)

    async def _handle(self, key: str, request: web.Request, handler: Handler) -> web.StreamResponse:
        fingerprint = await _fingerprint(request)
        self._forget_old(time.time())
        outcome = self._outcomes.get(key)
        if outcome is not None:
            if outcome.fingerprint != fingerprint:
                return error_response(
                    400,
                    {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same "
                        f"parameters they were first used with. Try using a key other than '{key}' "
                        "if you meant to execute a different request.",
                    },
                )
            return outcome.replay(key)
        try:
            response = await handler(request)
        except UserError as error:
            response = error.to_response()
        if (
            _was_executed(response.status)
            and isinstance(response, web.Response)
            and isinstance(response.body, bytes)
        ):
            self._outcomes[key] = _Outcome(
                fingerprint=fingerprint,
                status=response.status,
                body=response.body,
                content_type=response.headers.get(hdrs.CONTENT_TYPE, "application/json"),
                saved_at=time.time(),
            )
        response.headers["Idempotency-Key"] = key
        return response

    def _forget_old(self, now: float) -> None:
        """Drop expired outcomes, and the oldest beyond `max_keys` (oldest are first)."""
        while self._outcomes:
            oldest_key, oldest = next(iter(self._outcomes.items()))
            if oldest.saved_at > now - self._ttl_seconds and len(self._outcomes) < self._max_keys:
                return
            del self._outcomes[oldest_key]
