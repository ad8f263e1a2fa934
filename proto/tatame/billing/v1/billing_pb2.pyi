import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tatame.billing.v1 import async_pb2 as _async_pb2
from tatame.billing.v1 import notifications_pb2 as _notifications_pb2
from tatame.billing.v1 import revenue_pb2 as _revenue_pb2
from tatame.billing.v1 import tax_pb2 as _tax_pb2
from tatame.billing.v1 import usage_pb2 as _usage_pb2
from tatame.billing.v1 import pause_pb2 as _pause_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Interval(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERVAL_UNSPECIFIED: _ClassVar[Interval]
    INTERVAL_DAY: _ClassVar[Interval]
    INTERVAL_WEEK: _ClassVar[Interval]
    INTERVAL_MONTH: _ClassVar[Interval]
    INTERVAL_YEAR: _ClassVar[Interval]

class ProrationBehavior(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRORATION_BEHAVIOR_UNSPECIFIED: _ClassVar[ProrationBehavior]
    PRORATION_BEHAVIOR_CREATE_PRORATIONS: _ClassVar[ProrationBehavior]
    PRORATION_BEHAVIOR_ALWAYS_INVOICE: _ClassVar[ProrationBehavior]
    PRORATION_BEHAVIOR_NONE: _ClassVar[ProrationBehavior]
INTERVAL_UNSPECIFIED: Interval
INTERVAL_DAY: Interval
INTERVAL_WEEK: Interval
INTERVAL_MONTH: Interval
INTERVAL_YEAR: Interval
PRORATION_BEHAVIOR_UNSPECIFIED: ProrationBehavior
PRORATION_BEHAVIOR_CREATE_PRORATIONS: ProrationBehavior
PRORATION_BEHAVIOR_ALWAYS_INVOICE: ProrationBehavior
PRORATION_BEHAVIOR_NONE: ProrationBehavior

class Price(_message.Message):
    __slots__ = ("id", "lookup_key", "unit_amount", "currency", "interval", "interval_count", "type", "billing_scheme", "usage_type", "tiers_mode", "tiers", "custom_unit_amount", "fixed_amount", "currencies", "meter")
    ID_FIELD_NUMBER: _ClassVar[int]
    LOOKUP_KEY_FIELD_NUMBER: _ClassVar[int]
    UNIT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BILLING_SCHEME_FIELD_NUMBER: _ClassVar[int]
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIERS_MODE_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_UNIT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FIXED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCIES_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    id: str
    lookup_key: str
    unit_amount: int
    currency: str
    interval: Interval
    interval_count: int
    type: str
    billing_scheme: str
    usage_type: str
    tiers_mode: str
    tiers: _containers.RepeatedCompositeFieldContainer[PriceTier]
    custom_unit_amount: CustomUnitAmount
    fixed_amount: bool
    currencies: _containers.RepeatedScalarFieldContainer[str]
    meter: str
    def __init__(self, id: _Optional[str] = ..., lookup_key: _Optional[str] = ..., unit_amount: _Optional[int] = ..., currency: _Optional[str] = ..., interval: _Optional[_Union[Interval, str]] = ..., interval_count: _Optional[int] = ..., type: _Optional[str] = ..., billing_scheme: _Optional[str] = ..., usage_type: _Optional[str] = ..., tiers_mode: _Optional[str] = ..., tiers: _Optional[_Iterable[_Union[PriceTier, _Mapping]]] = ..., custom_unit_amount: _Optional[_Union[CustomUnitAmount, _Mapping]] = ..., fixed_amount: _Optional[bool] = ..., currencies: _Optional[_Iterable[str]] = ..., meter: _Optional[str] = ...) -> None: ...

class PriceTier(_message.Message):
    __slots__ = ("up_to", "unit_amount", "flat_amount")
    UP_TO_FIELD_NUMBER: _ClassVar[int]
    UNIT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FLAT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    up_to: int
    unit_amount: int
    flat_amount: int
    def __init__(self, up_to: _Optional[int] = ..., unit_amount: _Optional[int] = ..., flat_amount: _Optional[int] = ...) -> None: ...

class CustomUnitAmount(_message.Message):
    __slots__ = ("minimum", "maximum", "preset")
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    minimum: int
    maximum: int
    preset: int
    def __init__(self, minimum: _Optional[int] = ..., maximum: _Optional[int] = ..., preset: _Optional[int] = ...) -> None: ...

class Discount(_message.Message):
    __slots__ = ("id", "coupon_id", "name", "promotion_code_id", "promotion_code", "percent_off", "amount_off", "currency", "duration", "duration_in_months", "start_time", "end_time", "amount")
    ID_FIELD_NUMBER: _ClassVar[int]
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_CODE_ID_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_CODE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_OFF_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_OFF_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    DURATION_IN_MONTHS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    coupon_id: str
    name: str
    promotion_code_id: str
    promotion_code: str
    percent_off: float
    amount_off: int
    currency: str
    duration: str
    duration_in_months: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    amount: int
    def __init__(self, id: _Optional[str] = ..., coupon_id: _Optional[str] = ..., name: _Optional[str] = ..., promotion_code_id: _Optional[str] = ..., promotion_code: _Optional[str] = ..., percent_off: _Optional[float] = ..., amount_off: _Optional[int] = ..., currency: _Optional[str] = ..., duration: _Optional[str] = ..., duration_in_months: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., amount: _Optional[int] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("product_id", "name", "description", "features", "prices", "default_price_id", "metadata", "entitlements")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PRICE_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    name: str
    description: str
    features: _containers.RepeatedScalarFieldContainer[str]
    prices: _containers.RepeatedCompositeFieldContainer[Price]
    default_price_id: str
    metadata: _containers.ScalarMap[str, str]
    entitlements: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, product_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., prices: _Optional[_Iterable[_Union[Price, _Mapping]]] = ..., default_price_id: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., entitlements: _Optional[_Iterable[str]] = ...) -> None: ...

class Customer(_message.Message):
    __slots__ = ("principal", "stripe_customer_id", "email", "name", "create_time", "currency")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    principal: str
    stripe_customer_id: str
    email: str
    name: str
    create_time: _timestamp_pb2.Timestamp
    currency: str
    def __init__(self, principal: _Optional[str] = ..., stripe_customer_id: _Optional[str] = ..., email: _Optional[str] = ..., name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., currency: _Optional[str] = ...) -> None: ...

class ListPlansRequest(_message.Message):
    __slots__ = ("include_one_time", "currency")
    INCLUDE_ONE_TIME_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    include_one_time: bool
    currency: str
    def __init__(self, include_one_time: _Optional[bool] = ..., currency: _Optional[str] = ...) -> None: ...

class ListPlansResponse(_message.Message):
    __slots__ = ("plans", "currency")
    PLANS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    plans: _containers.RepeatedCompositeFieldContainer[Plan]
    currency: str
    def __init__(self, plans: _Optional[_Iterable[_Union[Plan, _Mapping]]] = ..., currency: _Optional[str] = ...) -> None: ...

class GetCustomerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCustomerResponse(_message.Message):
    __slots__ = ("customer",)
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ...) -> None: ...

class CreateCustomerRequest(_message.Message):
    __slots__ = ("email", "name")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    email: str
    name: str
    def __init__(self, email: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CreateCustomerResponse(_message.Message):
    __slots__ = ("customer", "created")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    created: bool
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class Subscription(_message.Message):
    __slots__ = ("id", "stripe_customer_id", "status", "price_id", "quantity", "current_period_start", "current_period_end", "trial_start", "trial_end", "cancel_at_period_end", "cancel_at", "canceled_at", "ended_at", "create_time", "scheduled_price_id", "scheduled_change_time", "latest_invoice_id", "scheduled_quantity", "discounts", "pending_update", "pause_collection")
    ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRICE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    TRIAL_START_FIELD_NUMBER: _ClassVar[int]
    TRIAL_END_FIELD_NUMBER: _ClassVar[int]
    CANCEL_AT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    CANCEL_AT_FIELD_NUMBER: _ClassVar[int]
    CANCELED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_PRICE_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    LATEST_INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    DISCOUNTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_UPDATE_FIELD_NUMBER: _ClassVar[int]
    PAUSE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    stripe_customer_id: str
    status: str
    price_id: str
    quantity: int
    current_period_start: _timestamp_pb2.Timestamp
    current_period_end: _timestamp_pb2.Timestamp
    trial_start: _timestamp_pb2.Timestamp
    trial_end: _timestamp_pb2.Timestamp
    cancel_at_period_end: bool
    cancel_at: _timestamp_pb2.Timestamp
    canceled_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    scheduled_price_id: str
    scheduled_change_time: _timestamp_pb2.Timestamp
    latest_invoice_id: str
    scheduled_quantity: int
    discounts: _containers.RepeatedCompositeFieldContainer[Discount]
    pending_update: PendingUpdate
    pause_collection: _pause_pb2.PauseCollection
    def __init__(self, id: _Optional[str] = ..., stripe_customer_id: _Optional[str] = ..., status: _Optional[str] = ..., price_id: _Optional[str] = ..., quantity: _Optional[int] = ..., current_period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trial_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trial_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancel_at_period_end: _Optional[bool] = ..., cancel_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., canceled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scheduled_price_id: _Optional[str] = ..., scheduled_change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest_invoice_id: _Optional[str] = ..., scheduled_quantity: _Optional[int] = ..., discounts: _Optional[_Iterable[_Union[Discount, _Mapping]]] = ..., pending_update: _Optional[_Union[PendingUpdate, _Mapping]] = ..., pause_collection: _Optional[_Union[_pause_pb2.PauseCollection, _Mapping]] = ...) -> None: ...

class PendingUpdate(_message.Message):
    __slots__ = ("price_id", "quantity", "expire_time")
    PRICE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    price_id: str
    quantity: int
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, price_id: _Optional[str] = ..., quantity: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSubscriptionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions",)
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[Subscription]
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[Subscription, _Mapping]]] = ...) -> None: ...

class ApplyStripeEventRequest(_message.Message):
    __slots__ = ("event_id", "type", "payload", "provider")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: str
    payload: bytes
    provider: str
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[str] = ..., payload: _Optional[bytes] = ..., provider: _Optional[str] = ...) -> None: ...

class ApplyStripeEventResponse(_message.Message):
    __slots__ = ("outcome",)
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[ApplyStripeEventResponse.Outcome]
        OUTCOME_APPLIED: _ClassVar[ApplyStripeEventResponse.Outcome]
        OUTCOME_DUPLICATE: _ClassVar[ApplyStripeEventResponse.Outcome]
        OUTCOME_STALE: _ClassVar[ApplyStripeEventResponse.Outcome]
        OUTCOME_IGNORED: _ClassVar[ApplyStripeEventResponse.Outcome]
    OUTCOME_UNSPECIFIED: ApplyStripeEventResponse.Outcome
    OUTCOME_APPLIED: ApplyStripeEventResponse.Outcome
    OUTCOME_DUPLICATE: ApplyStripeEventResponse.Outcome
    OUTCOME_STALE: ApplyStripeEventResponse.Outcome
    OUTCOME_IGNORED: ApplyStripeEventResponse.Outcome
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: ApplyStripeEventResponse.Outcome
    def __init__(self, outcome: _Optional[_Union[ApplyStripeEventResponse.Outcome, str]] = ...) -> None: ...

class ApplyStripeEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ApplyStripeEventRequest]
    def __init__(self, events: _Optional[_Iterable[_Union[ApplyStripeEventRequest, _Mapping]]] = ...) -> None: ...

class ApplyStripeEventsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ApplyStripeEventResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ApplyStripeEventResult, _Mapping]]] = ...) -> None: ...

class ApplyStripeEventResult(_message.Message):
    __slots__ = ("event_id", "outcome", "error")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    outcome: ApplyStripeEventResponse.Outcome
    error: EventError
    def __init__(self, event_id: _Optional[str] = ..., outcome: _Optional[_Union[ApplyStripeEventResponse.Outcome, str]] = ..., error: _Optional[_Union[EventError, _Mapping]] = ...) -> None: ...

class EventError(_message.Message):
    __slots__ = ("code", "message", "reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    reason: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CreateCheckoutSessionRequest(_message.Message):
    __slots__ = ("price", "success_url", "cancel_url", "email", "name", "currency")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_URL_FIELD_NUMBER: _ClassVar[int]
    CANCEL_URL_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    price: str
    success_url: str
    cancel_url: str
    email: str
    name: str
    currency: str
    def __init__(self, price: _Optional[str] = ..., success_url: _Optional[str] = ..., cancel_url: _Optional[str] = ..., email: _Optional[str] = ..., name: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class CreateCheckoutSessionResponse(_message.Message):
    __slots__ = ("session_id", "url")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    url: str
    def __init__(self, session_id: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class ConfirmCheckoutSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class ConfirmCheckoutSessionResponse(_message.Message):
    __slots__ = ("status", "subscription", "payment_status")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    status: str
    subscription: Subscription
    payment_status: str
    def __init__(self, status: _Optional[str] = ..., subscription: _Optional[_Union[Subscription, _Mapping]] = ..., payment_status: _Optional[str] = ...) -> None: ...

class CreatePortalSessionRequest(_message.Message):
    __slots__ = ("return_url",)
    RETURN_URL_FIELD_NUMBER: _ClassVar[int]
    return_url: str
    def __init__(self, return_url: _Optional[str] = ...) -> None: ...

class CreatePortalSessionResponse(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...

class CreateSubscriptionRequest(_message.Message):
    __slots__ = ("price", "quantity", "mobile_stripe_version", "email", "name", "promotion_code", "currency")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MOBILE_STRIPE_VERSION_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_CODE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    price: str
    quantity: int
    mobile_stripe_version: str
    email: str
    name: str
    promotion_code: str
    currency: str
    def __init__(self, price: _Optional[str] = ..., quantity: _Optional[int] = ..., mobile_stripe_version: _Optional[str] = ..., email: _Optional[str] = ..., name: _Optional[str] = ..., promotion_code: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class CreateSubscriptionResponse(_message.Message):
    __slots__ = ("subscription", "intent_type", "client_secret", "stripe_customer_id", "ephemeral_key_secret", "trial_applied")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_KEY_SECRET_FIELD_NUMBER: _ClassVar[int]
    TRIAL_APPLIED_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    intent_type: str
    client_secret: str
    stripe_customer_id: str
    ephemeral_key_secret: str
    trial_applied: bool
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ..., intent_type: _Optional[str] = ..., client_secret: _Optional[str] = ..., stripe_customer_id: _Optional[str] = ..., ephemeral_key_secret: _Optional[str] = ..., trial_applied: _Optional[bool] = ...) -> None: ...

class PreviewPromotionCodeRequest(_message.Message):
    __slots__ = ("price", "quantity", "promotion_code", "email", "name", "currency")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_CODE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    price: str
    quantity: int
    promotion_code: str
    email: str
    name: str
    currency: str
    def __init__(self, price: _Optional[str] = ..., quantity: _Optional[int] = ..., promotion_code: _Optional[str] = ..., email: _Optional[str] = ..., name: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class PreviewPromotionCodeResponse(_message.Message):
    __slots__ = ("discount", "subtotal", "total", "currency", "tax")
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TAX_FIELD_NUMBER: _ClassVar[int]
    discount: Discount
    subtotal: int
    total: int
    currency: str
    tax: int
    def __init__(self, discount: _Optional[_Union[Discount, _Mapping]] = ..., subtotal: _Optional[int] = ..., total: _Optional[int] = ..., currency: _Optional[str] = ..., tax: _Optional[int] = ...) -> None: ...

class CreateSetupIntentRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateSetupIntentResponse(_message.Message):
    __slots__ = ("setup_intent_id", "client_secret", "stripe_customer_id")
    SETUP_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    setup_intent_id: str
    client_secret: str
    stripe_customer_id: str
    def __init__(self, setup_intent_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., stripe_customer_id: _Optional[str] = ...) -> None: ...

class CreateEphemeralKeyRequest(_message.Message):
    __slots__ = ("stripe_version",)
    STRIPE_VERSION_FIELD_NUMBER: _ClassVar[int]
    stripe_version: str
    def __init__(self, stripe_version: _Optional[str] = ...) -> None: ...

class CreateEphemeralKeyResponse(_message.Message):
    __slots__ = ("secret", "stripe_customer_id", "expire_time")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    secret: str
    stripe_customer_id: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, secret: _Optional[str] = ..., stripe_customer_id: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreatePaymentRequest(_message.Message):
    __slots__ = ("price", "quantity", "currency")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    price: str
    quantity: int
    currency: str
    def __init__(self, price: _Optional[str] = ..., quantity: _Optional[int] = ..., currency: _Optional[str] = ...) -> None: ...

class CreatePaymentResponse(_message.Message):
    __slots__ = ("payment_intent_id", "client_secret", "amount", "currency", "stripe_customer_id", "tax")
    PAYMENT_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TAX_FIELD_NUMBER: _ClassVar[int]
    payment_intent_id: str
    client_secret: str
    amount: int
    currency: str
    stripe_customer_id: str
    tax: int
    def __init__(self, payment_intent_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., amount: _Optional[int] = ..., currency: _Optional[str] = ..., stripe_customer_id: _Optional[str] = ..., tax: _Optional[int] = ...) -> None: ...

class GetSubscriptionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class PreviewSubscriptionChangeRequest(_message.Message):
    __slots__ = ("id", "price", "quantity", "proration_behavior")
    ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRORATION_BEHAVIOR_FIELD_NUMBER: _ClassVar[int]
    id: str
    price: str
    quantity: int
    proration_behavior: ProrationBehavior
    def __init__(self, id: _Optional[str] = ..., price: _Optional[str] = ..., quantity: _Optional[int] = ..., proration_behavior: _Optional[_Union[ProrationBehavior, str]] = ...) -> None: ...

class InvoiceLine(_message.Message):
    __slots__ = ("description", "amount", "proration")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PRORATION_FIELD_NUMBER: _ClassVar[int]
    description: str
    amount: int
    proration: bool
    def __init__(self, description: _Optional[str] = ..., amount: _Optional[int] = ..., proration: _Optional[bool] = ...) -> None: ...

class PreviewSubscriptionChangeResponse(_message.Message):
    __slots__ = ("amount_due", "currency", "lines", "takes_effect", "tax")
    AMOUNT_DUE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TAKES_EFFECT_FIELD_NUMBER: _ClassVar[int]
    TAX_FIELD_NUMBER: _ClassVar[int]
    amount_due: int
    currency: str
    lines: _containers.RepeatedCompositeFieldContainer[InvoiceLine]
    takes_effect: str
    tax: int
    def __init__(self, amount_due: _Optional[int] = ..., currency: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[InvoiceLine, _Mapping]]] = ..., takes_effect: _Optional[str] = ..., tax: _Optional[int] = ...) -> None: ...

class UpdateSubscriptionRequest(_message.Message):
    __slots__ = ("id", "price", "quantity", "proration_behavior")
    ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRORATION_BEHAVIOR_FIELD_NUMBER: _ClassVar[int]
    id: str
    price: str
    quantity: int
    proration_behavior: ProrationBehavior
    def __init__(self, id: _Optional[str] = ..., price: _Optional[str] = ..., quantity: _Optional[int] = ..., proration_behavior: _Optional[_Union[ProrationBehavior, str]] = ...) -> None: ...

class UpdateSubscriptionResponse(_message.Message):
    __slots__ = ("subscription", "takes_effect", "effective_time", "payment")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAKES_EFFECT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    takes_effect: str
    effective_time: _timestamp_pb2.Timestamp
    payment: PendingPayment
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ..., takes_effect: _Optional[str] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payment: _Optional[_Union[PendingPayment, _Mapping]] = ...) -> None: ...

class PendingPayment(_message.Message):
    __slots__ = ("invoice_id", "action", "decline_reason", "client_secret", "amount_due", "currency")
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DECLINE_REASON_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_DUE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    invoice_id: str
    action: str
    decline_reason: str
    client_secret: str
    amount_due: int
    currency: str
    def __init__(self, invoice_id: _Optional[str] = ..., action: _Optional[str] = ..., decline_reason: _Optional[str] = ..., client_secret: _Optional[str] = ..., amount_due: _Optional[int] = ..., currency: _Optional[str] = ...) -> None: ...

class CancelSubscriptionRequest(_message.Message):
    __slots__ = ("id", "immediately")
    ID_FIELD_NUMBER: _ClassVar[int]
    IMMEDIATELY_FIELD_NUMBER: _ClassVar[int]
    id: str
    immediately: bool
    def __init__(self, id: _Optional[str] = ..., immediately: _Optional[bool] = ...) -> None: ...

class CancelSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class ResumeSubscriptionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ResumeSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class Invoice(_message.Message):
    __slots__ = ("id", "subscription_id", "status", "currency", "amount_due", "amount_paid", "amount_remaining", "total", "number", "hosted_invoice_url", "invoice_pdf", "create_time", "period_start", "period_end", "discounts", "total_discount_amount", "last_payment", "total_tax", "total_excluding_tax", "automatic_tax_status")
    ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_DUE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_PAID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_REMAINING_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    HOSTED_INVOICE_URL_FIELD_NUMBER: _ClassVar[int]
    INVOICE_PDF_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    DISCOUNTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DISCOUNT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TAX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EXCLUDING_TAX_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_TAX_STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    subscription_id: str
    status: str
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    total: int
    number: str
    hosted_invoice_url: str
    invoice_pdf: str
    create_time: _timestamp_pb2.Timestamp
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    discounts: _containers.RepeatedCompositeFieldContainer[Discount]
    total_discount_amount: int
    last_payment: InvoicePaymentAttempt
    total_tax: int
    total_excluding_tax: int
    automatic_tax_status: str
    def __init__(self, id: _Optional[str] = ..., subscription_id: _Optional[str] = ..., status: _Optional[str] = ..., currency: _Optional[str] = ..., amount_due: _Optional[int] = ..., amount_paid: _Optional[int] = ..., amount_remaining: _Optional[int] = ..., total: _Optional[int] = ..., number: _Optional[str] = ..., hosted_invoice_url: _Optional[str] = ..., invoice_pdf: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., discounts: _Optional[_Iterable[_Union[Discount, _Mapping]]] = ..., total_discount_amount: _Optional[int] = ..., last_payment: _Optional[_Union[InvoicePaymentAttempt, _Mapping]] = ..., total_tax: _Optional[int] = ..., total_excluding_tax: _Optional[int] = ..., automatic_tax_status: _Optional[str] = ...) -> None: ...

class InvoicePaymentAttempt(_message.Message):
    __slots__ = ("status", "reason", "error_code", "decline_code", "error_message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    DECLINE_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: str
    reason: str
    error_code: str
    decline_code: str
    error_message: str
    def __init__(self, status: _Optional[str] = ..., reason: _Optional[str] = ..., error_code: _Optional[str] = ..., decline_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class ListInvoicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListInvoicesResponse(_message.Message):
    __slots__ = ("invoices",)
    INVOICES_FIELD_NUMBER: _ClassVar[int]
    invoices: _containers.RepeatedCompositeFieldContainer[Invoice]
    def __init__(self, invoices: _Optional[_Iterable[_Union[Invoice, _Mapping]]] = ...) -> None: ...

class PaymentMethod(_message.Message):
    __slots__ = ("id", "type", "card_brand", "card_last4", "card_exp_month", "card_exp_year", "is_default")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CARD_BRAND_FIELD_NUMBER: _ClassVar[int]
    CARD_LAST4_FIELD_NUMBER: _ClassVar[int]
    CARD_EXP_MONTH_FIELD_NUMBER: _ClassVar[int]
    CARD_EXP_YEAR_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    card_brand: str
    card_last4: str
    card_exp_month: int
    card_exp_year: int
    is_default: bool
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., card_brand: _Optional[str] = ..., card_last4: _Optional[str] = ..., card_exp_month: _Optional[int] = ..., card_exp_year: _Optional[int] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListPaymentMethodsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPaymentMethodsResponse(_message.Message):
    __slots__ = ("payment_methods",)
    PAYMENT_METHODS_FIELD_NUMBER: _ClassVar[int]
    payment_methods: _containers.RepeatedCompositeFieldContainer[PaymentMethod]
    def __init__(self, payment_methods: _Optional[_Iterable[_Union[PaymentMethod, _Mapping]]] = ...) -> None: ...

class SetDefaultPaymentMethodRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class SetDefaultPaymentMethodResponse(_message.Message):
    __slots__ = ("payment_method",)
    PAYMENT_METHOD_FIELD_NUMBER: _ClassVar[int]
    payment_method: PaymentMethod
    def __init__(self, payment_method: _Optional[_Union[PaymentMethod, _Mapping]] = ...) -> None: ...

class DetachPaymentMethodRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DetachPaymentMethodResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Entitlement(_message.Message):
    __slots__ = ("feature", "subscription_id", "subscription_status", "grace_end_time", "payment_intent_id", "expire_time")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_STATUS_FIELD_NUMBER: _ClassVar[int]
    GRACE_END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    feature: str
    subscription_id: str
    subscription_status: str
    grace_end_time: _timestamp_pb2.Timestamp
    payment_intent_id: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, feature: _Optional[str] = ..., subscription_id: _Optional[str] = ..., subscription_status: _Optional[str] = ..., grace_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payment_intent_id: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListEntitlementsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEntitlementsResponse(_message.Message):
    __slots__ = ("entitlements",)
    ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    entitlements: _containers.RepeatedCompositeFieldContainer[Entitlement]
    def __init__(self, entitlements: _Optional[_Iterable[_Union[Entitlement, _Mapping]]] = ...) -> None: ...

class CheckEntitlementRequest(_message.Message):
    __slots__ = ("feature",)
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    feature: str
    def __init__(self, feature: _Optional[str] = ...) -> None: ...

class CheckEntitlementResponse(_message.Message):
    __slots__ = ("entitled", "entitlement", "limit", "remaining")
    ENTITLED_FIELD_NUMBER: _ClassVar[int]
    ENTITLEMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    entitled: bool
    entitlement: Entitlement
    limit: int
    remaining: int
    def __init__(self, entitled: _Optional[bool] = ..., entitlement: _Optional[_Union[Entitlement, _Mapping]] = ..., limit: _Optional[int] = ..., remaining: _Optional[int] = ...) -> None: ...

class Purchase(_message.Message):
    __slots__ = ("payment_intent_id", "price_id", "product_id", "product_name", "quantity", "amount", "currency", "status", "amount_refunded", "receipt_url", "paid_time")
    PAYMENT_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_NAME_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_URL_FIELD_NUMBER: _ClassVar[int]
    PAID_TIME_FIELD_NUMBER: _ClassVar[int]
    payment_intent_id: str
    price_id: str
    product_id: str
    product_name: str
    quantity: int
    amount: int
    currency: str
    status: str
    amount_refunded: int
    receipt_url: str
    paid_time: _timestamp_pb2.Timestamp
    def __init__(self, payment_intent_id: _Optional[str] = ..., price_id: _Optional[str] = ..., product_id: _Optional[str] = ..., product_name: _Optional[str] = ..., quantity: _Optional[int] = ..., amount: _Optional[int] = ..., currency: _Optional[str] = ..., status: _Optional[str] = ..., amount_refunded: _Optional[int] = ..., receipt_url: _Optional[str] = ..., paid_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListPurchasesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPurchasesResponse(_message.Message):
    __slots__ = ("purchases",)
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    purchases: _containers.RepeatedCompositeFieldContainer[Purchase]
    def __init__(self, purchases: _Optional[_Iterable[_Union[Purchase, _Mapping]]] = ...) -> None: ...

class RefundPaymentRequest(_message.Message):
    __slots__ = ("payment_intent_id", "amount", "reason", "idempotency_key")
    PAYMENT_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    payment_intent_id: str
    amount: int
    reason: str
    idempotency_key: str
    def __init__(self, payment_intent_id: _Optional[str] = ..., amount: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class RefundPaymentResponse(_message.Message):
    __slots__ = ("refund_id", "payment_intent_id", "charge_id", "amount", "currency", "status", "amount_refunded")
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHARGE_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    refund_id: str
    payment_intent_id: str
    charge_id: str
    amount: int
    currency: str
    status: str
    amount_refunded: int
    def __init__(self, refund_id: _Optional[str] = ..., payment_intent_id: _Optional[str] = ..., charge_id: _Optional[str] = ..., amount: _Optional[int] = ..., currency: _Optional[str] = ..., status: _Optional[str] = ..., amount_refunded: _Optional[int] = ...) -> None: ...

class PayInvoiceRequest(_message.Message):
    __slots__ = ("id", "payment_method")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_FIELD_NUMBER: _ClassVar[int]
    id: str
    payment_method: str
    def __init__(self, id: _Optional[str] = ..., payment_method: _Optional[str] = ...) -> None: ...

class PayInvoiceResponse(_message.Message):
    __slots__ = ("invoice", "status", "payment_intent_id", "client_secret")
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    invoice: Invoice
    status: str
    payment_intent_id: str
    client_secret: str
    def __init__(self, invoice: _Optional[_Union[Invoice, _Mapping]] = ..., status: _Optional[str] = ..., payment_intent_id: _Optional[str] = ..., client_secret: _Optional[str] = ...) -> None: ...

class GetBillingOverviewRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBillingOverviewResponse(_message.Message):
    __slots__ = ("subscription", "plan", "entitlements", "invoice_action", "default_payment_method", "pending_payment")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ACTION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PAYMENT_METHOD_FIELD_NUMBER: _ClassVar[int]
    PENDING_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    plan: Plan
    entitlements: _containers.RepeatedCompositeFieldContainer[Entitlement]
    invoice_action: InvoiceAction
    default_payment_method: PaymentMethod
    pending_payment: _async_pb2.DelayedPayment
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ..., entitlements: _Optional[_Iterable[_Union[Entitlement, _Mapping]]] = ..., invoice_action: _Optional[_Union[InvoiceAction, _Mapping]] = ..., default_payment_method: _Optional[_Union[PaymentMethod, _Mapping]] = ..., pending_payment: _Optional[_Union[_async_pb2.DelayedPayment, _Mapping]] = ...) -> None: ...

class InvoiceAction(_message.Message):
    __slots__ = ("invoice", "action")
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    invoice: Invoice
    action: str
    def __init__(self, invoice: _Optional[_Union[Invoice, _Mapping]] = ..., action: _Optional[str] = ...) -> None: ...

class EraseAccountRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EraseAccountResponse(_message.Message):
    __slots__ = ("erasure",)
    ERASURE_FIELD_NUMBER: _ClassVar[int]
    erasure: Erasure
    def __init__(self, erasure: _Optional[_Union[Erasure, _Mapping]] = ...) -> None: ...

class Erasure(_message.Message):
    __slots__ = ("principal", "requested_by", "request_time", "complete_time", "state", "stripe_customer_id", "canceled_subscription_ids", "inbox_events_scrubbed")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CANCELED_SUBSCRIPTION_IDS_FIELD_NUMBER: _ClassVar[int]
    INBOX_EVENTS_SCRUBBED_FIELD_NUMBER: _ClassVar[int]
    principal: str
    requested_by: str
    request_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    state: str
    stripe_customer_id: str
    canceled_subscription_ids: _containers.RepeatedScalarFieldContainer[str]
    inbox_events_scrubbed: int
    def __init__(self, principal: _Optional[str] = ..., requested_by: _Optional[str] = ..., request_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[str] = ..., stripe_customer_id: _Optional[str] = ..., canceled_subscription_ids: _Optional[_Iterable[str]] = ..., inbox_events_scrubbed: _Optional[int] = ...) -> None: ...

class ExportAccountRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportAccountResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: str
    def __init__(self, document: _Optional[str] = ...) -> None: ...

class WatchBillingRequest(_message.Message):
    __slots__ = ("since_version",)
    SINCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    since_version: int
    def __init__(self, since_version: _Optional[int] = ...) -> None: ...

class WatchBillingResponse(_message.Message):
    __slots__ = ("version", "overview")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OVERVIEW_FIELD_NUMBER: _ClassVar[int]
    version: int
    overview: GetBillingOverviewResponse
    def __init__(self, version: _Optional[int] = ..., overview: _Optional[_Union[GetBillingOverviewResponse, _Mapping]] = ...) -> None: ...

class PauseSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class UnpauseSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...
