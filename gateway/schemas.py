"""The REST shapes of the gateway (what the apps send and read)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class PriceOut(BaseModel):
    id: str
    lookup_key: str | None
    unit_amount: int = Field(description="Integer minor units of `currency`.")
    currency: str = Field(description="ISO 4217 code, lower case.")
    interval: str = Field(description="day, week, month or year.")
    interval_count: int


class PlanOut(BaseModel):
    id: str = Field(description="Stripe product id.")
    name: str
    description: str
    features: list[str]
    prices: list[PriceOut]


class PlansOut(BaseModel):
    plans: list[PlanOut]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(min_length=3, max_length=254)
    name: str = Field(default="", max_length=256)


class CustomerOut(BaseModel):
    stripe_customer_id: str
    email: str
    name: str
    created_at: datetime


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None


class ErrorOut(BaseModel):
    error: ErrorDetail
