"""events inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-24 01:22:06.180729
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cursors",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cursors")),
        schema="webhooks",
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe event id (evt_...)"),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column(
            "created", sa.DateTime(timezone=True), nullable=False, comment="Stripe's event time"
        ),
        sa.Column("api_version", sa.Text(), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("object_id", sa.Text(), nullable=True, comment="data.object.id"),
        sa.Column(
            "customer_id",
            sa.Text(),
            nullable=True,
            comment="the Stripe customer the event is about, if any",
        ),
        sa.Column(
            "ordering_key",
            sa.Text(),
            nullable=False,
            comment="events sharing it are delivered one at a time in created order",
        ),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="the event as received; dropped after retention",
        ),
        sa.Column("source", sa.Text(), nullable=False, comment="webhook or backstop"),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "outcome",
            sa.Text(),
            nullable=True,
            comment="billing's answer: applied, duplicate, stale, ignored",
        ),
        sa.Column("payload_dropped_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("source IN ('webhook', 'backstop')", name=op.f("ck_events_source")),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'dead')", name=op.f("ck_events_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        schema="webhooks",
    )
    op.create_index(
        "ix_events_due",
        "events",
        ["next_attempt_at", "created"],
        unique=False,
        schema="webhooks",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_events_pending_order",
        "events",
        ["ordering_key", "created", "id"],
        unique=False,
        schema="webhooks",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_events_state_received",
        "events",
        ["state", "received_at"],
        unique=False,
        schema="webhooks",
    )
    op.create_index(
        "ix_events_type_received",
        "events",
        ["type", "received_at"],
        unique=False,
        schema="webhooks",
    )


def downgrade() -> None:
    op.drop_index("ix_events_type_received", table_name="events", schema="webhooks")
    op.drop_index("ix_events_state_received", table_name="events", schema="webhooks")
    op.drop_index(
        "ix_events_pending_order",
        table_name="events",
        schema="webhooks",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index(
        "ix_events_due",
        table_name="events",
        schema="webhooks",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_table("events", schema="webhooks")
    op.drop_table("cursors", schema="webhooks")
