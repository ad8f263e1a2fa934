"""The usage tables in schema `billing` (migration 0013): the meters mirror and the usage
records waiting for, or done with, Stripe's meter events API."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

from services.billing.models import metadata

meters = Table(
    "meters",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe meter id (mtr_...)"),
    Column("event_name", Text, nullable=False, index=True),
    Column("display_name", Text, nullable=False),
    Column("formula", Text, nullable=False, comment="sum, count or last"),
    Column("customer_payload_key", Text, nullable=False),
    Column("value_payload_key", Text, nullable=False),
    Column("status", Text, nullable=False, comment="active or inactive"),
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "identifier",
        Text,
        nullable=False,
        comment="the caller's idempotency key, also the Stripe meter event's identifier",
    ),
    Column("principal", Text, nullable=False, comment="user:<id> or org:<id>"),
    Column("stripe_customer_id", Text, nullable=False),
    Column("meter_id", Text, nullable=False),
    Column("event_name", Text, nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", Text, nullable=False, comment="the calling service"),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("last_error", Text),
    CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),
    CheckConstraint("value >= 0", name="value"),
    UniqueConstraint("identifier"),
    Index(
        "ix_usage_records_due",
        "next_attempt_at",
        "id",
        postgresql_where=text("state = 'pending'"),
    ),
    Index("ix_usage_records_principal_meter_occurred_at", "principal", "meter_id", "occurred_at"),
)
