"""usage-based prices: the meters mirror and the usage records sent to Stripe's meter events

`billing.meters` mirrors Stripe's Billing Meters (filled by sync-catalog); `billing.usage_records`
holds every usage record an internal service reported (RecordUsage), once per `identifier`,
before it is sent: the usage sender claims pending rows with `FOR UPDATE SKIP LOCKED`, sends each
to Stripe's meter events API under the same identifier, and marks it `sent` (or `failed` when
Stripe refuses it for good), retrying with backoff in between.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 20:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.create_table(
        "meters",
        sa.Column("id", sa.Text(), primary_key=True, comment="Stripe meter id (mtr_...)"),
        sa.Column("event_name", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("formula", sa.Text(), nullable=False, comment="sum, count or last"),
        sa.Column("customer_payload_key", sa.Text(), nullable=False),
        sa.Column("value_payload_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, comment="active or inactive"),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_meters_event_name", "meters", ["event_name"], schema=SCHEMA)
    op.create_table(
        "usage_records",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "identifier",
            sa.Text(),
            nullable=False,
            comment="the caller's idempotency key, also the Stripe meter event's identifier",
        ),
        sa.Column("principal", sa.Text(), nullable=False, comment="user:<id> or org:<id>"),
        sa.Column("stripe_customer_id", sa.Text(), nullable=False),
        sa.Column("meter_id", sa.Text(), nullable=False),
        sa.Column("event_name", sa.Text(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=False, comment="the calling service"),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("state", sa.Text(), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.CheckConstraint("state IN ('pending', 'sent', 'failed')", name="ck_usage_records_state"),
        sa.CheckConstraint("value >= 0", name="ck_usage_records_value"),
        sa.UniqueConstraint("identifier", name="uq_usage_records_identifier"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_usage_records_due",
        "usage_records",
        ["next_attempt_at", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_usage_records_principal_meter_occurred_at",
        "usage_records",
        ["principal", "meter_id", "occurred_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("usage_records", schema=SCHEMA)
    op.drop_table("meters", schema=SCHEMA)
