"""HTTP edges shared by the gateway and the webhooks receiver: the one error body, the request
context middleware (request id, body limit, access log, metrics, last-resort 500), and the server
that runs them (`serve_asgi`, granian)."""

import asyncio
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from http import HTTPStatus

from fastapi.responses import JSONResponse
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.logging import REQUEST_ID_METADATA, request_id_var, valid_request_id
from services.common.metrics import (
    HTTP_DURATION,
    HTTP_REQUESTS,
    MULTIPROCESS_DIR_VARIABLE,
    UNMATCHED_ROUTE,
    MetricsSettings,
    start_metrics_server,
)
from services.common.settings import HttpServerSettings

log = logging.getLogger("http.access")


class ApiError(StarletteHTTPException):
    """An HTTP error with an explicit error code, raised by routes and middleware."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status_code=status, detail=message)
        self.code = code


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """`{"error": {"code", "message", "request_id"}}` with `status`."""
    body = {"error": {"code": code, "message": message, "request_id": request_id_var.get()}}
    return JSONResponse(body, status_code=status, headers=headers)


# Codes for statuses whose standard phrase makes a poor code.
_HTTP_CODES = {408: "request_timeout", 413: "payload_too_large"}


def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The exception handler of HTTPException: `exc` in the one error body."""
    return http_error_response(exc)


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    """`exc` (its status, its `code` when it has one, its detail) in the one error body."""
    phrase = HTTPStatus(exc.status_code).phrase
    code = (
        getattr(exc, "code", None)
        or _HTTP_CODES.get(exc.status_code)
        or phrase.lower().replace(" ", "_").replace("-", "_")
    )
    message = exc.detail if isinstance(exc.detail, str) else phrase
    return error_response(exc.status_code, code, message, exc.headers)


REQUEST_ID_HEADER = REQUEST_ID_METADATA.encode()


# The one 500 answer: nothing of the failure is told to the caller.
INTERNAL = ("internal", "internal error")


def internal_error(_request: Request, _exc: Exception) -> JSONResponse:
    return error_response(500, *INTERNAL)


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body is larger than {limit} bytes")


def body_too_slow(seconds: float) -> ApiError:
    return ApiError(408, "request_timeout", f"the request body did not arrive within {seconds} s")


class RequestContextMiddleware:
    """Gives every request an id (the caller's `X-Request-ID` when well formed) and enforces limits:
    the body's size, and the time its body may take to arrive (the server has no such timeout)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, body_timeout_seconds: float = 20.0
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = valid_request_id(given) or os.urandom(16).hex()
        request_id_var.set(request_id)
        started = time.perf_counter()
        status = 499  # until a response starts: an app that returns without one lost its client
        response_started = False

        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            error = body_too_large(self.max_body_bytes)
            await self._send_error(send, request_id, error.status_code, error.code, error.detail)
            self._log(scope, 413, started)
            _count(scope, 413, started)
            return

        received = 0
        body_deadline = asyncio.get_running_loop().time() + self.body_timeout_seconds

        body_complete = False

        async def limited_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:  # later receives wait for the disconnect, as long as it takes
                return await receive()
            try:
                async with asyncio.timeout_at(body_deadline):
                    message = await receive()
            except TimeoutError:
                # FastAPI passes HTTP exceptions raised while reading the body to the handlers.
                raise body_too_slow(self.body_timeout_seconds) from None
            body_complete = message["type"] != "http.request" or not message.get("more_body")
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI passes HTTP exceptions raised while reading the body to the handlers.
                    raise body_too_large(self.max_body_bytes)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            status = 500
            if not response_started:
                await self._send_error(send, request_id, 500, *INTERNAL)
        finally:
            self._log(scope, status, started)
            _count(scope, status, started)

    @staticmethod
    async def _send_error(
        send: Send, request_id: str, status: int, code: str, message: str
    ) -> None:
        response = error_response(status, code, message, {"X-Request-ID": request_id})
        await response({"type": "http"}, _no_receive, send)

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        # Successes at DEBUG (the ingress logs every request; this saves the hot paths a JSON
        # line each), client errors at INFO, server errors at WARNING.
        level = logging.DEBUG if status < 400 else logging.INFO if status < 500 else logging.WARNING
        if not log.isEnabledFor(level):
            return
        log.log(
            level,
            "request",
            extra={
                "fields": {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                }
            },
        )


def _count(scope: Scope, status: int, started: float) -> None:
    """Count the request under the template of the route that matched (routers record it in the
    scope), never its raw path."""
    route = scope.get("route")
    template = getattr(route, "path", None) or UNMATCHED_ROUTE
    method = scope["method"]
    HTTP_REQUESTS.labels(method, template, str(status)).inc()
    HTTP_DURATION.labels(method, template).observe(time.perf_counter() - started)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


# Granian's own records (start, workers, failures) go to the root logger: in a worker that is
# the JSON handler `configure_logging` installs when the app is created.
_GRANIAN_LOGGING = {
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": True},
    }
}


def serve_asgi(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int,
    grace_seconds: float,
    limits: HttpServerSettings,
    metrics: MetricsSettings | None = None,
    backpressure: int | None = None,
) -> None:
    """Serve the app `factory` ("module:function") with granian: `workers` processes sharing the
    port (the kernel balances connections among them), uvloop, HTTP/1.1, no access log, our JSON
    logs, `limits` on headers (hyper's: a read timeout that also closes idle keep-alive
    connections, a size, at most 100 headers). On SIGTERM it stops accepting, lets in-flight requests finish, runs the app's shutdown,
    and kills a worker still busy after `grace_seconds`.

    With `metrics` (and its port not 0) this main process serves the sum of what the workers count
    (`/metrics` on its own port): the workers count into a fresh directory, and are spawned rather
    than forked so that they read it before creating any metric.

    Granian rather than uvicorn: in the same runs (wrk, 64 connections, one worker each) it served
    the bare endpoint and the gateway's cached reads faster and with p99 tails several times
    shorter; uvicorn with several workers can also leave every keep-alive connection on one.

    `backpressure`: requests each worker serves at once (others wait to be accepted); granian's
    default is 1024 / workers, which long-lived responses (the gateway's streams) would use up."""
    directory = None
    if metrics is not None and metrics.metrics_port:
        directory = tempfile.mkdtemp(prefix="tatame-metrics-")
        os.environ[MULTIPROCESS_DIR_VARIABLE] = directory
        multiprocessing.set_start_method("spawn", force=True)
        start_metrics_server(metrics, multiprocess_dir=directory)
    try:
        _granian(
            factory,
            host=host,
            port=port,
            workers=workers,
            grace_seconds=grace_seconds,
            limits=limits,
            backpressure=backpressure,
        )
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _granian(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int,
    grace_seconds: float,
    limits: HttpServerSettings,
    backpressure: int | None,
) -> None:
    Server(
        factory,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        backpressure=backpressure,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        http1_settings=HTTP1Settings(
            header_read_timeout=limits.http_header_read_timeout_seconds * 1000,
            max_buffer_size=limits.http_max_header_bytes,
        ),
        log_level=LogLevels.info,
        log_dictconfig=_GRANIAN_LOGGING,
        log_access=False,
        workers_kill_timeout=max(1, round(grace_seconds)),
        respawn_failed_workers=True,
        factory=True,
    ).serve()
