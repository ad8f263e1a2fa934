"""The one error body and the one gRPC → HTTP table of the gateway."""

import logging
from collections.abc import Mapping
from http import HTTPStatus

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gateway.rate_limits import RateLimited, rate_limited_response
from gateway.validation import PRINTABLE_MESSAGE, PRINTABLE_PATTERN
from services.auth.errors import AuthError, AuthReason
from services.common.errors import PAYMENT_FAILURES
from services.common.http import ApiError, error_response, http_error
from services.common.rpc import reason_of, retry_delay_of

log = logging.getLogger(__name__)

# google/rpc/code.proto's HTTP mapping.
HTTP_STATUS_OF: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
# Reasons answered with another status than their gRPC status's: a payment the card or the bank
# refused is 402 Payment Required, as Stripe answers it.
HTTP_STATUS_OF_REASON: Mapping[str, int] = dict.fromkeys(PAYMENT_FAILURES, 402)
# Statuses whose details are written for the client; for the rest, a fixed message.
_CLIENT_FACING = {400, 402, 404, 409, 429}
_FIXED_MESSAGE = {
    401: "the service credential was refused",
    403: "this call is not allowed",
    503: "billing is unavailable; try again",
    504: "billing did not answer in time; try again",
}


def _auth_error(_request: Request, exc: AuthError) -> JSONResponse:
    if (
        exc.reason is AuthReason.KEYS_UNAVAILABLE
    ):  # our outage (Clerk's keys unreachable), not theirs
        log.warning("session keys unavailable", exc_info=exc)
        return error_response(503, exc.reason.value, exc.message, {"Retry-After": "5"})
    if exc.reason is AuthReason.ORG_ROLE_REQUIRED:  # authenticated, not allowed
        return error_response(403, exc.reason.value, exc.message)
    return error_response(401, exc.reason.value, exc.message, {"WWW-Authenticate": "Bearer"})


def _rpc_error(_request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
    reason = reason_of(exc)
    status = HTTP_STATUS_OF_REASON.get(reason or "") or HTTP_STATUS_OF.get(exc.code(), 500)
    if status not in _CLIENT_FACING:
        log.warning(
            "billing call failed",
            extra={
                "fields": {"grpc_code": exc.code().name, "reason": reason, "details": exc.details()}
            },
        )
        delay = retry_delay_of(exc)
        return error_response(
            status,
            exc.code().name.lower(),
            _FIXED_MESSAGE.get(status, "internal error"),
            {"Retry-After": str(delay)} if delay is not None else None,
        )
    message = exc.details() or HTTPStatus(status).phrase
    return error_response(status, reason or exc.code().name.lower(), message)


def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        message = err.get("msg", "invalid")
        if err.get("ctx", {}).get("pattern") == PRINTABLE_PATTERN:
            message = PRINTABLE_MESSAGE
        problems.append(f"{where}: {message}")
    code = (
        "invalid_json"
        if any(e.get("type") == "json_invalid" for e in exc.errors())
        else "invalid_request"
    )
    return error_response(400, code, "; ".join(problems) or "invalid request")


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """HTTPException in the one error body; a 405's `Allow` lists every method of the path
    (Starlette's names only those of the first route whose path matched). FastAPI's own 400 is a
    body it could not parse (JSON nested too deeply, for one): `invalid_json`."""
    if exc.status_code == 400 and not isinstance(exc, ApiError):
        exc = ApiError(400, "invalid_json", "the body could not be parsed as JSON")
    if exc.status_code == 405:
        allowed = sorted(
            {
                method
                for route in request.app.state.flat_routes
                if route.matches(request.scope)[0] is not Match.NONE
                for method in route.methods or ()
            }
        )
        exc = StarletteHTTPException(
            405, exc.detail, {**(exc.headers or {}), "Allow": ", ".join(allowed)}
        )
    return http_error(request, exc)


def _rate_limited(_request: Request, exc: RateLimited) -> JSONResponse:
    return rate_limited_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    """Expected failures leave in the one error body; RequestContextMiddleware covers the rest."""
    # Starlette types a handler as taking any Exception; it calls each with the class it is
    # registered for, so these narrower handlers are sound.
    app.add_exception_handler(AuthError, _auth_error)  # type: ignore[arg-type]
    app.add_exception_handler(RateLimited, _rate_limited)  # type: ignore[arg-type]
    app.add_exception_handler(grpc.aio.AioRpcError, _rpc_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
