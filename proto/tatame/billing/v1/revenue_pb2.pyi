from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetRevenueMetricsRequest(_message.Message):
    __slots__ = ("since", "until")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    since: str
    until: str
    def __init__(self, since: _Optional[str] = ..., until: _Optional[str] = ...) -> None: ...

class RevenueDay(_message.Message):
    __slots__ = ("day", "currency", "plan_id", "plan_name", "mrr", "arr", "active_subscriptions", "trialing_subscriptions", "new_subscriptions", "reactivated_subscriptions", "churned_subscriptions", "trials_started", "trials_ended", "trials_converted", "gross_revenue", "refunds", "net_revenue")
    DAY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    MRR_FIELD_NUMBER: _ClassVar[int]
    ARR_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    TRIALING_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    NEW_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    REACTIVATED_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHURNED_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_STARTED_FIELD_NUMBER: _ClassVar[int]
    TRIALS_ENDED_FIELD_NUMBER: _ClassVar[int]
    TRIALS_CONVERTED_FIELD_NUMBER: _ClassVar[int]
    GROSS_REVENUE_FIELD_NUMBER: _ClassVar[int]
    REFUNDS_FIELD_NUMBER: _ClassVar[int]
    NET_REVENUE_FIELD_NUMBER: _ClassVar[int]
    day: str
    currency: str
    plan_id: str
    plan_name: str
    mrr: int
    arr: int
    active_subscriptions: int
    trialing_subscriptions: int
    new_subscriptions: int
    reactivated_subscriptions: int
    churned_subscriptions: int
    trials_started: int
    trials_ended: int
    trials_converted: int
    gross_revenue: int
    refunds: int
    net_revenue: int
    def __init__(self, day: _Optional[str] = ..., currency: _Optional[str] = ..., plan_id: _Optional[str] = ..., plan_name: _Optional[str] = ..., mrr: _Optional[int] = ..., arr: _Optional[int] = ..., active_subscriptions: _Optional[int] = ..., trialing_subscriptions: _Optional[int] = ..., new_subscriptions: _Optional[int] = ..., reactivated_subscriptions: _Optional[int] = ..., churned_subscriptions: _Optional[int] = ..., trials_started: _Optional[int] = ..., trials_ended: _Optional[int] = ..., trials_converted: _Optional[int] = ..., gross_revenue: _Optional[int] = ..., refunds: _Optional[int] = ..., net_revenue: _Optional[int] = ...) -> None: ...

class GetRevenueMetricsResponse(_message.Message):
    __slots__ = ("since", "until", "totals", "plans")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    PLANS_FIELD_NUMBER: _ClassVar[int]
    since: str
    until: str
    totals: _containers.RepeatedCompositeFieldContainer[RevenueDay]
    plans: _containers.RepeatedCompositeFieldContainer[RevenueDay]
    def __init__(self, since: _Optional[str] = ..., until: _Optional[str] = ..., totals: _Optional[_Iterable[_Union[RevenueDay, _Mapping]]] = ..., plans: _Optional[_Iterable[_Union[RevenueDay, _Mapping]]] = ...) -> None: ...
