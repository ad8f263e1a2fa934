"""The one way our gRPC servicers fail: an error's reason chooses its status, sent with a
`google.rpc.ErrorInfo` detail, and a client reads that reason back, never the message text."""

import functools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import grpc
from google.protobuf import duration_pb2
from google.protobuf.any_pb2 import Any as AnyDetail
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.db import DATABASE_FAILURES
from services.common.errors import PAYMENT_FAILURES, ErrorReason, ServiceError

log = logging.getLogger(__name__)

# A servicer method's context. grpc's class is generic only in its type stubs.
if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext

# ErrorInfo.domain of every reason we send.
ERROR_DOMAIN = "tatame"

# Reason → gRPC status: the only place our servers choose status codes.
STATUS_OF: Mapping[ErrorReason, grpc.StatusCode] = {
    ErrorReason.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorReason.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorReason.CUSTOMER_REQUIRED: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.LIVE_SUBSCRIPTION_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorReason.SUBSCRIPTION_NOT_CHANGEABLE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.SUBSCRIPTION_CANCELING: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.SUBSCRIPTION_ENDED: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.INVALID_IDEMPOTENCY_KEY: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorReason.IDEMPOTENCY_KEY_REUSED: grpc.StatusCode.ALREADY_EXISTS,
    ErrorReason.USAGE_IDENTIFIER_REUSED: grpc.StatusCode.ALREADY_EXISTS,
    ErrorReason.IDEMPOTENCY_REQUEST_IN_PROGRESS: grpc.StatusCode.ABORTED,
    ErrorReason.PRICE_NOT_SUBSCRIBABLE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.CUSTOMER_TAX_LOCATION_INVALID: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.PROMOTION_CODE_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorReason.PROMOTION_CODE_INACTIVE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.PROMOTION_CODE_EXPIRED: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.PROMOTION_CODE_NOT_APPLICABLE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.PROMOTION_CODE_FIRST_TIME_ONLY: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.PROMOTION_CODE_FULLY_REDEEMED: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.PROMOTION_CODE_MINIMUM_AMOUNT: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.STRIPE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorReason.RATE_LIMITED: grpc.StatusCode.UNAVAILABLE,
    ErrorReason.DATABASE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorReason.INBOX_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorReason.APPLY_TIMED_OUT: grpc.StatusCode.UNAVAILABLE,
    ErrorReason.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorReason.PAYMENT_NOT_REFUNDABLE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.PAYMENT_DISPUTED: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.REFUND_EXCEEDS_PAYMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorReason.INVOICE_NOT_OPEN: grpc.StatusCode.FAILED_PRECONDITION,
    **dict.fromkeys(PAYMENT_FAILURES, grpc.StatusCode.FAILED_PRECONDITION),
    ErrorReason.SUBSCRIPTION_UPDATE_PENDING: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.INVALID_CURRENCY: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorReason.CURRENCY_NOT_OFFERED: grpc.StatusCode.INVALID_ARGUMENT,
    # The customer already has its currency (409, like a live subscription that exists).
    ErrorReason.CUSTOMER_CURRENCY_MISMATCH: grpc.StatusCode.ALREADY_EXISTS,
    ErrorReason.SUBSCRIPTION_NOT_PAUSABLE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorReason.PAUSE_BEHAVIOR_NOT_ALLOWED: grpc.StatusCode.INVALID_ARGUMENT,
}


@dataclass(frozen=True, slots=True)
class Failure:
    """How a failed call is answered."""

    code: grpc.StatusCode
    reason: ErrorReason
    message: str
    # Sent as a google.rpc.RetryInfo detail: when the same call may succeed.
    retry_after: float | None = None


def failure_of(error: BaseException, where: str) -> Failure:
    """A reported error's own reason; a database outage is `database_unavailable`; anything
    else is INTERNAL (logged, and never described to the caller)."""
    if isinstance(error, ServiceError):
        return Failure(STATUS_OF[error.reason], error.reason, error.message, error.retry_after)
    if isinstance(error, DATABASE_FAILURES):
        log.warning("database unavailable in %s", where, exc_info=error)
        return Failure(
            grpc.StatusCode.UNAVAILABLE,
            ErrorReason.DATABASE_UNAVAILABLE,
            "the database is unavailable; try again",
        )
    log.error("unhandled error in %s", where, exc_info=error)
    return Failure(grpc.StatusCode.INTERNAL, ErrorReason.INTERNAL, "internal error")


def rich_status(failure: Failure) -> grpc.Status:
    """The status of `failure` with its reason as an ErrorInfo detail (and its retry delay as a
    RetryInfo detail, when it has one)."""
    detail = AnyDetail()
    detail.Pack(error_details_pb2.ErrorInfo(reason=failure.reason.value, domain=ERROR_DOMAIN))
    details = [detail]
    if failure.retry_after is not None:
        retry = AnyDetail()
        delay = duration_pb2.Duration(seconds=max(1, math.ceil(failure.retry_after)))
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    return rpc_status.to_status(
        status_pb2.Status(code=failure.code.value[0], message=failure.message, details=details)
    )


async def abort(context: Context, failure: Failure) -> NoReturn:
    """End the call with `failure`."""
    # grpc-stubs 1.53 lacks ServicerContext.abort_with_status (grpcio has it since 1.38).
    await context.abort_with_status(rich_status(failure))  # type: ignore[attr-defined]
    raise AssertionError("unreachable: abort raises")


Servicer = TypeVar("Servicer")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Servicer, Req, Context], Awaitable[Resp]]


def rpc(method: Handler[Servicer, Req, Resp]) -> Handler[Servicer, Req, Resp]:
    """Run a servicer method, answering every failure with its status and reason."""

    @functools.wraps(method)
    async def wrapper(self: Servicer, request: Req, context: Context) -> Resp:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise  # the method (or the caller check) chose its status itself
        except Exception as e:  # every other failure becomes a status
            await abort(context, failure_of(e, method.__name__))

    return wrapper


StreamHandler = Callable[[Servicer, Req, Context], AsyncIterator[Resp]]


def stream_rpc(method: StreamHandler[Servicer, Req, Resp]) -> StreamHandler[Servicer, Req, Resp]:
    """`rpc` for a server-streaming method: a failure ends the stream with its status and
    reason."""

    @functools.wraps(method)
    async def wrapper(self: Servicer, request: Req, context: Context) -> AsyncIterator[Resp]:
        try:
            async for reply in method(self, request, context):
                yield reply
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            await abort(context, failure_of(e, method.__name__))

    return wrapper


def _details(error: grpc.RpcError) -> list[AnyDetail]:
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # a detail that does not match the status: not ours
        return []
    return [] if status is None else list(status.details)


def reason_of(error: grpc.RpcError) -> str | None:
    """The reason a server sent with a failed call (its ErrorInfo), or None when it sent none."""
    for detail in _details(error):
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
            return str(info.reason)
    return None


def retry_delay_of(error: grpc.RpcError) -> int | None:
    """The whole seconds after which a server said the call may succeed (its RetryInfo)."""
    for detail in _details(error):
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info) and info.HasField("retry_delay"):
            seconds: float = info.retry_delay.ToTimedelta().total_seconds()
            return max(1, math.ceil(seconds))
    return None


def cli_message(error: grpc.aio.AioRpcError, *, unreachable: str) -> str:
    """What an operators' command line says of a failed call: the server's own message (a
    reason it sent, or the caller check's refusal), else a fixed one for the status (transport
    text from the channel is never shown); `unreachable` for UNAVAILABLE."""
    described = reason_of(error) is not None or error.code() in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    if described:
        return error.details() or error.code().name.lower()
    undescribed = {
        grpc.StatusCode.UNAVAILABLE: unreachable,
        grpc.StatusCode.DEADLINE_EXCEEDED: "the server did not answer in time",
    }
    return undescribed.get(error.code(), "the call failed")
