"""notifications: the outbox, device tokens, preferences, and the customer's locales

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column(
            "preferred_locales",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default="{}",
            comment="the Stripe customer's preferred_locales, in order (notifications' language)",
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), primary_key=True, comment="also the Message-ID's local part"),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("object_id", sa.Text(), nullable=False, comment="the Stripe object of the fact"),
        sa.Column("stripe_customer_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False, comment="the Stripe event that wrote it"),
        sa.Column("data", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("state", sa.Text(), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("attempt_id", sa.Uuid(), comment="the sender's attempt while state is sending"),
        sa.Column(
            "lease_until",
            sa.DateTime(timezone=True),
            comment="a sending row is another sender's after this",
        ),
        sa.Column(
            "email_result",
            sa.Text(),
            comment="sent, off, no_address, not_configured; null until done",
        ),
        sa.Column(
            "push_result",
            sa.Text(),
            comment="sent, off, no_devices, not_configured; null until done",
        ),
        sa.Column("last_error", sa.Text()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'dead')", name="ck_notifications_state"
        ),
        sa.UniqueConstraint("kind", "object_id", name="uq_notifications_kind_object_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("state IN ('pending', 'sending')"),
    )
    op.create_index(
        "ix_notifications_state_created_at", "notifications", ["state", "created_at"], schema=SCHEMA
    )
    op.create_table(
        "notification_devices",
        sa.Column("token", sa.Text(), primary_key=True, comment="Expo push token"),
        sa.Column("principal", sa.Text(), nullable=False, comment="user:<id> or org:<id>"),
        sa.Column("platform", sa.Text(), nullable=False, server_default=""),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notification_devices_principal", "notification_devices", ["principal"], schema=SCHEMA
    )
    op.create_table(
        "notification_preferences",
        sa.Column("principal", sa.Text(), primary_key=True),
        sa.Column(
            "disabled_kinds", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "push_tickets",
        sa.Column("ticket_id", sa.Text(), primary_key=True, comment="Expo push ticket id"),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("push_tickets", schema=SCHEMA)
    op.drop_table("notification_preferences", schema=SCHEMA)
    op.drop_table("notification_devices", schema=SCHEMA)
    op.drop_table("notifications", schema=SCHEMA)
    op.drop_column("customers", "preferred_locales", schema=SCHEMA)
