from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaxLocation(_message.Message):
    __slots__ = ("country", "postal_code", "state", "city", "line1", "line2", "automatic_tax")
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    POSTAL_CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    LINE1_FIELD_NUMBER: _ClassVar[int]
    LINE2_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_TAX_FIELD_NUMBER: _ClassVar[int]
    country: str
    postal_code: str
    state: str
    city: str
    line1: str
    line2: str
    automatic_tax: str
    def __init__(self, country: _Optional[str] = ..., postal_code: _Optional[str] = ..., state: _Optional[str] = ..., city: _Optional[str] = ..., line1: _Optional[str] = ..., line2: _Optional[str] = ..., automatic_tax: _Optional[str] = ...) -> None: ...

class GetTaxLocationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTaxLocationResponse(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: TaxLocation
    def __init__(self, location: _Optional[_Union[TaxLocation, _Mapping]] = ...) -> None: ...

class SetTaxLocationRequest(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: TaxLocation
    def __init__(self, location: _Optional[_Union[TaxLocation, _Mapping]] = ...) -> None: ...

class SetTaxLocationResponse(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: TaxLocation
    def __init__(self, location: _Optional[_Union[TaxLocation, _Mapping]] = ...) -> None: ...
