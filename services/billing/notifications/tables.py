"""The notifications' tables in schema `billing` (migration 0010): the outbox, the devices that
receive pushes, each principal's preferences, and the push tickets whose receipts are pending."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.billing.models import metadata

notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True, comment="also the Message-ID's local part"),
    Column("kind", Text, nullable=False),
    Column("object_id", Text, nullable=False, comment="the Stripe object of the fact"),
    Column("stripe_customer_id", Text, nullable=False),
    Column("event_id", Text, nullable=False, comment="the Stripe event that wrote it"),
    Column("data", JSONB, nullable=False, server_default="{}"),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempt_id", Uuid, comment="the sender's attempt while state is sending"),
    Column(
        "lease_until",
        DateTime(timezone=True),
        comment="a sending row is another sender's after this",
    ),
    Column("email_result", Text, comment="sent, off, no_address, not_configured; null until done"),
    Column("push_result", Text, comment="sent, off, no_devices, not_configured; null until done"),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    CheckConstraint("state IN ('pending', 'sending', 'sent', 'dead')", name="state"),
    UniqueConstraint("kind", "object_id"),
)
Index(
    "ix_notifications_due",
    notifications.c.next_attempt_at,
    postgresql_where=text("state IN ('pending', 'sending')"),
)
Index(None, notifications.c.state, notifications.c.created_at)

notification_devices = Table(
    "notification_devices",
    metadata,
    Column("token", Text, primary_key=True, comment="Expo push token"),
    Column("principal", Text, nullable=False, index=True, comment="user:<id> or org:<id>"),
    Column("platform", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

notification_preferences = Table(
    "notification_preferences",
    metadata,
    Column("principal", Text, primary_key=True),
    Column("disabled_kinds", ARRAY(Text), nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

push_tickets = Table(
    "push_tickets",
    metadata,
    Column("ticket_id", Text, primary_key=True, comment="Expo push ticket id"),
    Column("token", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
