"""The conformance check as an aiohttp middleware, for the emulator (dev/test only)."""

import json
from collections.abc import Callable
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ._violations import Violation
from .requests import check_request, decode_form, is_stripe_api_path, stripe_error_body
from .responses import check_response

FORM = "application/x-www-form-urlencoded"


def conformance_middleware(record: Callable[[Violation], None]) -> Middleware:
    """Refuse requests Stripe would refuse; check every JSON answer; `record` each violation.

    A request violation is answered at once, as Stripe answers it (a 400 with its error body for
    the first violation; a 404 for an unknown route), without calling the handler. Otherwise the
    handler's response is passed through unchanged, its JSON body (2xx, or a Stripe error body)
    checked with the request's `expand[]` parameters. Form bodies are checked; the SDK sends no
    other kind to `/v1` (a JSON body is not checked). The emulator's own routes (`/_testing/`,
    `/_config/`) are not Stripe's and pass unchecked.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_stripe_api_path(request.path):
            return await handler(request)
        form = []
        if request.method == "POST" and request.content_type == FORM:
            form = parse_qsl(await request.text(), keep_blank_values=True)
        query = list(request.query.items())
        violations = check_request(request.method, request.path, query, form)
        for violation in violations:
            record(violation)
        if violations:
            return _refusal(request, violations[0])
        response = await handler(request)
        body = _json_body(response)
        if body is not None:
            expanded = _expand_paths(decode_form([*query, *form]).get("expand"))
            for violation in check_response(
                request.method, request.path, response.status, body, expanded
            ):
                record(violation)
        return response

    return middleware


def _refusal(request: web.Request, violation: Violation) -> web.Response:
    if violation.kind == "unknown_route":
        message = f"Unrecognized request URL ({request.method}: {request.path})."
        body = {"error": {"type": "invalid_request_error", "message": message}}
        return web.json_response(body, status=404)
    return web.json_response(stripe_error_body(violation), status=400)


def _json_body(response: web.StreamResponse) -> object | None:
    """The parsed body of a 2xx JSON response or of a Stripe error; None for anything else."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    if response.content_type != "application/json":
        return None
    succeeded = 200 <= response.status < 300
    try:
        body = json.loads(response.body)
    except ValueError:
        # A 2xx that is not JSON is checked as the text it is: not a Stripe object.
        return response.body.decode(errors="replace") if succeeded else None
    if succeeded or (isinstance(body, dict) and "error" in body):
        return body
    return None


def _expand_paths(value: object) -> set[str]:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return {path for path in value if isinstance(path, str)}
    return set()
