"""Billing Meters, meter events and their summaries, as Stripe has them at the pinned version.

A meter aggregates the events whose `event_name` is its own, per customer (the payload key of its
`customer_mapping`, `stripe_customer_id` by default), by its formula (`sum`, `count` or `last`)
of the payload key of its `value_settings` (`value`). An event's `identifier` is unique: Stripe
enforces it over a rolling period of at least 24 hours; the emulator refuses a repeated one for
24 hours with a 400 on `identifier`. Summaries (`GET /v1/billing/meters/{id}/event_summaries`)
aggregate `[start_time, end_time)`, both on minute boundaries, in one summary or per hour or
day (`value_grouping_window`).
"""

import time
from decimal import Decimal, InvalidOperation
from typing import Any

import stripe
from aiohttp import web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import StripeObject, random_id, store

from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_int,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.render import render_list, shape
from tatame_devstack.stripe_emulator.state import stored

FORMULAS = ("count", "last", "sum")
MAX_EVENT_NAME = 100
IDENTIFIER_SECONDS = 24 * 3600
PAST_SECONDS, FUTURE_SECONDS = 35 * 24 * 3600, 5 * 60
WINDOWS = {"hour": 3600, "day": 24 * 3600}
METER_FIELDS = (
    *("id", "created", "customer_mapping", "default_aggregation", "display_name", "event_name"),
    *("event_time_window", "livemode", "status", "status_transitions", "updated"),
    "value_settings",
)


def _payload_key(param: str, value: Any, default: str, *, typed: bool) -> str:
    if value is None:
        return default
    params = dict(value) if isinstance(value, dict) else {}
    key = as_str(f"{param}[event_payload_key]", params.pop("event_payload_key", None))
    if typed:
        as_str(f"{param}[type]", params.pop("type", None), choices=("by_id",))
    reject_unknown(params, parent=param)
    return key


class Meter(StripeObject):
    """A Billing Meter (`mtr_…`); its events are kept beside it, by identifier."""

    object = "billing.meter"
    _id_prefix = "mtr_"

    def __init__(
        self,
        display_name: Any = None,
        event_name: Any = None,
        default_aggregation: Any = None,
        customer_mapping: Any = None,
        value_settings: Any = None,
        event_time_window: Any = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(unknown)
        display_name = as_str("display_name", display_name)
        event_name = as_str("event_name", event_name)
        if len(event_name) > MAX_EVENT_NAME:
            raise param_error("event_name", f"event_name is at most {MAX_EVENT_NAME} characters")
        if any(m.event_name == event_name and m.status == "active" for m in stored(self.object)):
            raise param_error("event_name", f"An active meter with event_name {event_name} exists.")
        aggregation = dict(default_aggregation) if isinstance(default_aggregation, dict) else {}
        formula = as_str(
            "default_aggregation[formula]", aggregation.pop("formula", None), choices=FORMULAS
        )
        reject_unknown(aggregation, parent="default_aggregation")
        customer_key = _payload_key(
            "customer_mapping", customer_mapping, "stripe_customer_id", typed=True
        )
        value_key = _payload_key("value_settings", value_settings, "value", typed=False)
        window = None
        if event_time_window is not None:
            window = as_str("event_time_window", event_time_window, choices=tuple(WINDOWS))

        super().__init__()
        self.display_name, self.event_name, self.formula = display_name, event_name, formula
        self.customer_key, self.value_key = customer_key, value_key
        self.event_time_window = window
        self.status = "active"
        self.updated = self.created
        send_event("billing.meter.created", self)

    @classmethod
    def _api_retrieve(cls, id: str) -> "Meter":
        meter = store.get(f"{cls.object}:{id}")
        if meter is None:
            raise UserError(
                404, f"No such billing meter: '{id}'", {"code": "resource_missing", "param": "id"}
            )
        return meter

    @classmethod
    def _api_update(cls, id: str, display_name: Any = None, **unknown: Any) -> "Meter":
        reject_unknown(unknown)
        meter = cls._api_retrieve(id)
        if display_name is not None:
            meter.display_name = as_str("display_name", display_name)
            meter.updated = int(time.time())
        send_event("billing.meter.updated", meter)
        return meter

    @classmethod
    def _api_list_all(
        cls, url: str, limit: Any = None, starting_after: Any = None, **filters: Any
    ) -> Any:
        status = filters.pop("status", None)
        reject_unknown(filters)
        wanted = (
            None if status is None else as_str("status", status, choices=("active", "inactive"))
        )
        page = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        page._list = [m for m in reversed(page._list) if wanted in (None, m.status)]
        return page

    def _export(self, expand: Any = None) -> dict[str, Any]:
        values = {name: getattr(self, name, None) for name in METER_FIELDS}
        values["customer_mapping"] = shape(
            stripe.billing.Meter.CustomerMapping,
            {"event_payload_key": self.customer_key, "type": "by_id"},
        )
        values["default_aggregation"] = shape(
            stripe.billing.Meter.DefaultAggregation, {"formula": self.formula}
        )
        values["status_transitions"] = shape(
            stripe.billing.Meter.StatusTransitions, {"deactivated_at": None}
        )
        values["value_settings"] = shape(
            stripe.billing.Meter.ValueSettings, {"event_payload_key": self.value_key}
        )
        return shape(stripe.billing.Meter, {**values, "object": self.object})


class MeterEvent:
    """A meter event (Stripe's are not retrievable: kept for the summaries)."""

    def __init__(self, identifier: str, event_name: str, payload: dict[str, str], at: int) -> None:
        self.identifier, self.event_name = identifier, event_name
        self.payload, self.timestamp = payload, at
        self.created = int(time.time())

    def _export(self, expand: Any = None) -> dict[str, Any]:
        values = {
            "created": self.created,
            "event_name": self.event_name,
            "identifier": self.identifier,
            "livemode": False,
            "payload": dict(self.payload),
            "timestamp": self.timestamp,
        }
        return shape(stripe.billing.MeterEvent, {**values, "object": "billing.meter_event"})


class MeterEventLog:
    """Every meter event by identifier, as one entry of the store (so that the emulator's scans
    of the store stay as short with thousands of events), saved and flushed with it."""

    KEY = "billing.meter_event_log:all"

    def __init__(self) -> None:
        self.events: dict[str, MeterEvent] = {}

    @classmethod
    def get(cls) -> "MeterEventLog":
        log = store.get(cls.KEY)
        if not isinstance(log, cls):
            log = store[cls.KEY] = cls()
        return log


def create_meter_event(
    event_name: Any = None,
    payload: Any = None,
    identifier: Any = None,
    timestamp: Any = None,
    **unknown: Any,
) -> MeterEvent:
    """`POST /v1/billing/meter_events`: checked as Stripe checks at once (what it checks later,
    such as an unknown customer, it reports asynchronously and the emulator does not)."""
    reject_unknown(unknown)
    event_name = as_str("event_name", event_name)
    if not isinstance(payload, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in payload.items()
    ):
        raise param_error("payload", "Invalid payload: expected a hash of strings")
    now = int(time.time())
    at = now if timestamp is None else as_int("timestamp", timestamp, minimum=0)
    if not now - PAST_SECONDS <= at <= now + FUTURE_SECONDS:
        raise param_error(
            "timestamp",
            "The timestamp must be within the past 35 calendar days or up to 5 minutes in "
            "the future.",
        )
    meter = next(
        (m for m in stored(Meter.object) if m.event_name == event_name and m.status == "active"),
        None,
    )
    if meter is not None:
        if not payload.get(meter.customer_key):
            raise param_error(f"payload[{meter.customer_key}]", "The payload names no customer.")
        if meter.formula != "count":
            _value(meter, payload)
    if identifier is None:
        identifier = "mtrevt_" + random_id(24)
    identifier = as_str("identifier", identifier)
    log = MeterEventLog.get()
    earlier = log.events.get(identifier)
    if earlier is not None and earlier.created > now - IDENTIFIER_SECONDS:
        raise param_error("identifier", f"An event with identifier {identifier} already exists.")
    event = log.events[identifier] = MeterEvent(identifier, event_name, dict(payload), at)
    return event


def _value(meter: Meter, payload: dict[str, str]) -> Decimal:
    param = f"payload[{meter.value_key}]"
    try:
        value = Decimal(payload[meter.value_key])
    except KeyError:
        raise param_error(param, "The payload has no value.") from None
    except InvalidOperation:
        raise param_error(param, "The value must be a number.") from None
    if not value.is_finite():
        raise param_error(param, "The value must be a number.")
    return value


def _aggregate(meter: Meter, events: list[MeterEvent]) -> float:
    if meter.formula == "count":
        return float(len(events))
    if not events:
        return 0.0
    if meter.formula == "last":
        last = max(events, key=lambda e: (e.timestamp, e.created))
        return float(_value(meter, last.payload))
    return float(sum((_value(meter, e.payload) for e in events), Decimal(0)))


async def list_event_summaries(request: web.Request) -> web.StreamResponse:
    """`GET /v1/billing/meters/{id}/event_summaries?customer=…&start_time=…&end_time=…`."""
    params = localstripe_server.unflatten_data(request.query) or {}
    meter = Meter._api_retrieve(request.match_info["id"])
    customer = as_str("customer", params.pop("customer", None))
    start = as_int("start_time", params.pop("start_time", None), minimum=0)
    end = as_int("end_time", params.pop("end_time", None), minimum=0)
    window_name = params.pop("value_grouping_window", None)
    params.pop("limit", None)
    reject_unknown(params)
    for name, value in (("start_time", start), ("end_time", end)):
        if value % 60:
            raise param_error(name, f"{name} must be aligned with minute boundaries.")
    if end <= start:
        raise param_error("end_time", "end_time must be after start_time.")
    step = end - start
    if window_name is not None:
        step = WINDOWS[as_str("value_grouping_window", window_name, choices=tuple(WINDOWS))]
        if start % step or end % step:
            raise param_error("start_time", f"Times must align with {window_name} boundaries.")
    events = [
        e
        for e in MeterEventLog.get().events.values()
        if e.event_name == meter.event_name
        and e.payload.get(meter.customer_key) == customer
        and start <= e.timestamp < end
    ]
    summaries = []
    for window_start in range(start, end, step):
        window_end = min(window_start + step, end)
        inside = [e for e in events if window_start <= e.timestamp < window_end]
        summary = {
            "id": f"mtrusg_{meter.id}_{window_start}",
            "object": "billing.meter_event_summary",
            "aggregated_value": _aggregate(meter, inside),
            "end_time": window_end,
            "livemode": False,
            "meter": meter.id,
            "start_time": window_start,
        }
        summaries.append(shape(stripe.billing.MeterEventSummary, summary))
    return localstripe_server.json_response(render_list(request.path, summaries))


def add_routes(app: web.Application) -> None:
    """The Billing Meters API: meters, meter events, event summaries."""
    collection, one = "/v1/billing/meters", "/v1/billing/meters/{id}"
    app.router.add_post(collection, localstripe_server.api_create(Meter, collection))
    app.router.add_get(collection, localstripe_server.api_list_all(Meter, collection))
    app.router.add_get(one, localstripe_server.api_retrieve(Meter, one))
    app.router.add_post(one, localstripe_server.api_update(Meter, one))
    app.router.add_get(one + "/event_summaries", list_event_summaries)
    events = "/v1/billing/meter_events"
    app.router.add_post(events, localstripe_server.api_extra(create_meter_event, events))
