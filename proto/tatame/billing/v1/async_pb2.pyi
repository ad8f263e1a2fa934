import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DelayedPayment(_message.Message):
    __slots__ = ("method", "status", "amount", "currency", "expire_time", "hosted_voucher_url", "payment_intent_id", "invoice_id")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    HOSTED_VOUCHER_URL_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    method: str
    status: str
    amount: int
    currency: str
    expire_time: _timestamp_pb2.Timestamp
    hosted_voucher_url: str
    payment_intent_id: str
    invoice_id: str
    def __init__(self, method: _Optional[str] = ..., status: _Optional[str] = ..., amount: _Optional[int] = ..., currency: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hosted_voucher_url: _Optional[str] = ..., payment_intent_id: _Optional[str] = ..., invoice_id: _Optional[str] = ...) -> None: ...
