"""Liveness and readiness."""

from fastapi import APIRouter

from gateway.dependencies import Billing
from gateway.schemas import error_responses
from services.common.http import ApiError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Billing is reachable and serving (503 `billing_unavailable` otherwise)",
    responses=error_responses(503),
)
async def readyz(billing: Billing) -> dict[str, str]:
    if not await billing.is_serving():
        raise ApiError(503, "billing_unavailable", "billing is not serving")
    return {"status": "ready"}
