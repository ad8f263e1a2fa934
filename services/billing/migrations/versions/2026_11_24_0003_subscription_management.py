"""subscription management: schedules, past_due_since, latest invoice, product default price

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 02:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SOURCE_EVENT_CREATED_COMMENT = (
    "`created` of the newest Stripe event applied to the row; null before any"
)
REFETCHED_COMMENT = (
    "the row holds what Stripe returned when fetched, which may be newer than "
    "source_event_created: the next event fetches again instead of trusting its object"
)


def upgrade() -> None:
    # Filled in by the next sync-catalog (the CronJob, or `python -m services.billing sync-catalog`).
    op.add_column(
        "products",
        sa.Column(
            "default_price_id",
            sa.Text(),
            nullable=True,
            comment="the product's default price (Stripe's default_price)",
        ),
        schema="billing",
    )
    op.add_column("subscriptions", sa.Column("latest_invoice_id", sa.Text()), schema="billing")
    op.add_column(
        "subscriptions",
        sa.Column(
            "past_due_since",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="`created` of the event (or time of the Stripe answer) that first showed it "
            "past_due; null unless past_due",
        ),
        schema="billing",
    )
    # Subscriptions already past_due: their grace counts from the newest event seen.
    op.execute(
        "UPDATE billing.subscriptions SET past_due_since = source_event_created "
        "WHERE status = 'past_due'"
    )
    op.create_table(
        "subscription_schedules",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe subscription schedule id"),
        sa.Column("subscription_id", sa.Text(), nullable=True, comment="null once released"),
        sa.Column("stripe_customer_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "next_price_id",
            sa.Text(),
            nullable=True,
            comment="price of the first item of the next phase",
        ),
        sa.Column("next_quantity", sa.BigInteger(), nullable=True),
        sa.Column("next_phase_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "source_event_created",
            sa.DateTime(timezone=True),
            nullable=False,
            comment=SOURCE_EVENT_CREATED_COMMENT,
        ),
        sa.Column(
            "refetched",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment=REFETCHED_COMMENT,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_schedules")),
        schema="billing",
    )
    op.create_index(
        op.f("ix_subscription_schedules_subscription_id"),
        "subscription_schedules",
        ["subscription_id"],
        unique=False,
        schema="billing",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_subscription_schedules_subscription_id"),
        table_name="subscription_schedules",
        schema="billing",
    )
    op.drop_table("subscription_schedules", schema="billing")
    op.drop_column("subscriptions", "past_due_since", schema="billing")
    op.drop_column("subscriptions", "latest_invoice_id", schema="billing")
    op.drop_column("products", "default_price_id", schema="billing")
