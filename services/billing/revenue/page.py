"""The operators' revenue page (`python -m services.billing ops-page`): one server-rendered
HTML page with pygal's SVG charts, behind the operators' token (BILLING_OPS_TOKEN), reading
billing's own schema. Not part of the public gateway; served on its own port."""

import base64
import binascii
import hmac
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.billing.errors import InvalidArgument
from services.billing.notifications.messages import format_amount
from services.billing.revenue import charts
from services.billing.revenue.figures import DayFigures
from services.billing.revenue.queries import revenue_report
from services.billing.revenue.rpc_messages import day
from services.billing.settings import OpsPageSettings
from services.common.db import DATABASE_FAILURES, create_engine
from services.common.http import ApiError, RequestContextMiddleware, http_error, internal_error
from services.common.logging import configure_logging

SERVICE_NAME = "billing-ops-page"
# The range shown when none is asked for: the last 90 days.
DEFAULT_DAYS = 90
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)
# No script, nothing from elsewhere: the charts are images inlined as data: URIs.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Tatame operators", charset="UTF-8"'}
# Figures summed over the range (the others are balances at its end).
_SUMMED = (
    "new",
    "reactivated",
    "churned",
    "trials_ended",
    "trials_converted",
    "gross_revenue",
    "refunds",
)
_AMOUNTS = ("mrr", "arr", "gross_revenue", "refunds", "net_revenue")


def presented_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, or the password of Basic credentials."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def _authorize(request: Request, token: str) -> None:
    presented = presented_token(request)
    if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
        raise StarletteHTTPException(401, "operators only: give the operators' token", _CHALLENGE)


@dataclass(frozen=True, slots=True)
class _Section:
    currency: str
    mrr_chart: str
    movements_chart: str
    lines: list[dict[str, str]]


def _line(name: str, rows: list[DayFigures]) -> dict[str, str]:
    """A table line: the balances of the last day, the other figures summed over the days."""
    last = rows[-1]
    figures = {
        "mrr": last.mrr,
        "arr": last.arr,
        "active": last.active,
        "trialing": last.trialing,
    }
    figures |= {name: sum(getattr(row, name) for row in rows) for name in _SUMMED}
    figures["net_revenue"] = figures["gross_revenue"] - figures["refunds"]
    line = {"plan": name}
    for key, value in figures.items():
        line[key] = format_amount(value, last.currency, "en") if key in _AMOUNTS else str(value)
    return line


def sections(rows: list[DayFigures], names: dict[str, str]) -> list[_Section]:
    """One section per currency: its charts and its table (all plans, then each plan)."""
    series: dict[tuple[str, str | None], list[DayFigures]] = defaultdict(list)
    for row in rows:
        series[(row.currency, row.plan)].append(row)
    result = []
    for currency in sorted({currency for currency, _ in series}):
        plans = {
            names.get(plan, plan) or "(no plan)": days
            for (c, plan), days in series.items()
            if c == currency and plan is not None
        }
        totals = series[(currency, None)]
        result.append(
            _Section(
                currency,
                charts.mrr_chart(currency, totals, plans),
                charts.movements_chart(currency, totals),
                [_line("all plans", totals)] + [_line(n, d) for n, d in sorted(plans.items())],
            )
        )
    return result


def _range(request: Request) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    try:
        until = (
            day(request.query_params["until"], "until")
            if "until" in request.query_params
            else today
        )
        since = (
            day(request.query_params["since"], "since")
            if "since" in request.query_params
            else until - timedelta(days=DEFAULT_DAYS - 1)
        )
    except InvalidArgument as e:
        raise ApiError(400, "invalid_argument", str(e)) from e
    return since, until


def create_app(settings: OpsPageSettings) -> Starlette:
    """The page's app; its engine is opened at start and closed at shutdown."""
    token = settings.billing_ops_token.get_secret_value()
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=2)

    async def revenue(request: Request) -> Response:
        _authorize(request, token)
        since, until = _range(request)
        try:
            report = await revenue_report(engine=engine, since=since, until=until)
        except InvalidArgument as e:
            raise ApiError(400, "invalid_argument", str(e)) from e
        except DATABASE_FAILURES as e:
            raise ApiError(503, "database_unavailable", "billing's database is unreachable") from e
        html = _TEMPLATES.get_template("revenue.html").render(
            since=since.isoformat(),
            until=until.isoformat(),
            sections=sections(report.rows, report.plan_names),
        )
        return HTMLResponse(html, headers=_HEADERS)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = Starlette(
        routes=[Route("/ops/revenue", revenue), Route("/healthz", healthz)],
        # Starlette types a handler as taking any Exception; it passes the registered class.
        exception_handlers={StarletteHTTPException: http_error, Exception: internal_error},  # type: ignore[dict-item]
        lifespan=lifespan,
    )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=1024,
        body_timeout_seconds=settings.http_body_read_timeout_seconds,
    )
    return app


def create_app_from_environment() -> Starlette:
    """Entry point for the ASGI server: settings from the environment, JSON logs."""
    settings = OpsPageSettings()
    configure_logging(service=SERVICE_NAME, level=settings.log_level)
    logging.getLogger(__name__).info("operators' page configured")
    return create_app(settings)
