"""Every error billing reports has a status, chosen from its reason; failures we did not foresee
are INTERNAL and a database outage is UNAVAILABLE, whichever RPC meets it."""

import grpc
import psycopg
import pytest
import sqlalchemy.exc

from services.billing.errors import BillingError, Conflict, LiveSubscriptionExists
from services.common.errors import ErrorReason
from services.common.rpc import STATUS_OF, failure_of


def subclasses(cls: type[BillingError]) -> list[type[BillingError]]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in subclasses(direct))]


def test_every_reason_has_a_status() -> None:
    assert set(STATUS_OF) == set(ErrorReason)


@pytest.mark.parametrize("error_type", subclasses(BillingError)[1:], ids=lambda t: t.__name__)
def test_every_billing_error_subclass_has_a_status_of_its_own(
    error_type: type[BillingError],
) -> None:
    failure = failure_of(error_type("refused"), "test")
    assert failure.code is not grpc.StatusCode.INTERNAL
    assert failure.reason is error_type.default_reason
    assert failure.message == "refused"


def test_a_subclass_declared_later_resolves_through_its_parent() -> None:
    class SomethingNew(LiveSubscriptionExists):
        pass

    assert failure_of(SomethingNew("x"), "test").code is grpc.StatusCode.ALREADY_EXISTS


def test_a_raise_site_may_name_a_more_precise_reason() -> None:
    failure = failure_of(Conflict("x", reason=ErrorReason.CUSTOMER_REQUIRED), "test")
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.CUSTOMER_REQUIRED,
    )


@pytest.mark.parametrize(
    "error",
    [
        sqlalchemy.exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("refused")),
        psycopg.OperationalError("terminating connection due to administrator command"),
    ],
    ids=["sqlalchemy", "psycopg"],
)
def test_a_database_outage_is_unavailable_and_hides_the_driver_text(error: Exception) -> None:
    failure = failure_of(error, "test")
    assert failure.code is grpc.StatusCode.UNAVAILABLE
    assert failure.reason is ErrorReason.DATABASE_UNAVAILABLE
    assert "refused" not in failure.message
    assert "administrator" not in failure.message


def test_an_unforeseen_failure_is_internal_and_never_described() -> None:
    failure = failure_of(KeyError("secret detail"), "test")
    assert (failure.code, failure.reason, failure.message) == (
        grpc.StatusCode.INTERNAL,
        ErrorReason.INTERNAL,
        "internal error",
    )
