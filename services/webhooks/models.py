"""Schema `webhooks`: every Stripe and Clerk event received (the inbox and audit trail) and its
delivery."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA = "webhooks"

metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    },
)

# Delivery states: pending (due at next_attempt_at), delivered (billing applied or acknowledged
# it), dead (given up: permanent failure or too many attempts; an operator can replay it).
STATES = ("pending", "delivered", "dead")
PROVIDERS = ("stripe", "clerk")

events = Table(
    "events",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe event id (evt_...)"),
    Column("type", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False, comment="Stripe's event time"),
    Column("api_version", Text),
    Column("livemode", Boolean, nullable=False),
    Column("object_id", Text, comment="data.object.id"),
    Column("customer_id", Text, comment="the Stripe customer the event is about, if any"),
    Column(
        "ordering_key",
        Text,
        nullable=False,
        comment="events sharing it are delivered one at a time in created order",
    ),
    Column("payload", JSONB, comment="the event as received; dropped after retention"),
    Column("source", Text, nullable=False, comment="webhook or backstop"),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    Column("outcome", Text, comment="billing's answer: applied, duplicate, stale, ignored"),
    Column("payload_dropped_at", DateTime(timezone=True)),
    Column(
        "provider",
        Text,
        nullable=False,
        server_default="stripe",
        comment="who sent the event: stripe or clerk",
    ),
    CheckConstraint(f"state IN {STATES!r}", name="state"),
    CheckConstraint("source IN ('webhook', 'backstop')", name="source"),
    CheckConstraint(f"provider IN {PROVIDERS!r}", name="provider"),
    Index(
        "ix_events_pending_order",
        "ordering_key",
        "created",
        "id",
        postgresql_where=text("state = 'pending'"),
    ),
    Index("ix_events_type_received", "type", "received_at"),
    Index("ix_events_state_received", "state", "received_at"),
    Index("ix_events_ordering_key_created", "ordering_key", "created"),
)

# Head of line: one row per ordering key with pending events, kept exact by every writer of
# events (see services/webhooks/inbox.py); the relay claims from it.
heads = Table(
    "heads",
    metadata,
    Column("ordering_key", Text, primary_key=True),
    Column("event_id", Text, nullable=False, comment="the key's oldest pending event"),
    Column("created", DateTime(timezone=True), nullable=False, comment="that event's created"),
    Column("due_at", DateTime(timezone=True), nullable=False, comment="its next_attempt_at"),
    Column(
        "held",
        Boolean,
        nullable=False,
        server_default=text("false"),
        comment="its last attempt was a call that failed as a whole (billing unreachable)",
    ),
    Index("ix_heads_due_at", "due_at"),
    Index("ix_heads_held", "ordering_key", postgresql_where=text("held")),
)

cursors = Table(
    "cursors",
    metadata,
    Column("name", Text, primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Subjects (ordering keys) erased on request: the relay blanks personal data from their events
# delivered afterwards (services/webhooks/inbox.py, privacy section).
erased_keys = Table(
    "erased_keys",
    metadata,
    Column("ordering_key", Text, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="subjects erased on request: their events' payloads are kept without personal data",
)
