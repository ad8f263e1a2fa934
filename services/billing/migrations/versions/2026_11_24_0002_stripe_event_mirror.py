"""stripe event mirror: applied events, subscriptions, invoices, payment methods, versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 02:10:00.000000
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SOURCE_EVENT_CREATED_COMMENT = (
    "`created` of the newest Stripe event applied to the row; null before any"
)
REFETCHED_COMMENT = (
    "the row holds what Stripe returned when fetched, which may be newer than "
    "source_event_created: the next event fetches again instead of trusting its object"
)


def _version_columns(*, first_written_by_events: bool) -> list[sa.Column[Any]]:
    return [
        sa.Column(
            "source_event_created",
            sa.DateTime(timezone=True),
            nullable=not first_written_by_events,
            comment=SOURCE_EVENT_CREATED_COMMENT,
        ),
        sa.Column(
            "refetched",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment=REFETCHED_COMMENT,
        ),
    ]


def _updated_at() -> sa.Column[Any]:
    return sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "applied_events",
        sa.Column("event_id", sa.Text(), nullable=False, comment="Stripe event id"),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("event_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "applied_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('applied', 'stale', 'ignored')", name=op.f("ck_applied_events_outcome")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_applied_events")),
        schema="billing",
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe subscription id"),
        sa.Column("stripe_customer_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("price_id", sa.Text(), nullable=True, comment="price of the first item"),
        sa.Column("quantity", sa.BigInteger(), nullable=True, comment="quantity of the first item"),
        sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trial_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trial_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("cancel_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "metadata", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        *_version_columns(first_written_by_events=True),
        _updated_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        schema="billing",
    )
    op.create_index(
        op.f("ix_subscriptions_stripe_customer_id_created"),
        "subscriptions",
        ["stripe_customer_id", "created"],
        unique=False,
        schema="billing",
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe invoice id"),
        sa.Column("stripe_customer_id", sa.Text(), nullable=False),
        sa.Column("subscription_id", sa.Text(), nullable=True),
        sa.Column(
            "status", sa.Text(), nullable=True, comment="draft, open, paid, uncollectible or void"
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_due", sa.BigInteger(), nullable=False, comment="minor units of currency"),
        sa.Column(
            "amount_paid", sa.BigInteger(), nullable=False, comment="minor units of currency"
        ),
        sa.Column(
            "amount_remaining", sa.BigInteger(), nullable=False, comment="minor units of currency"
        ),
        sa.Column("total", sa.BigInteger(), nullable=False, comment="minor units of currency"),
        sa.Column("hosted_invoice_url", sa.Text(), nullable=True),
        sa.Column("invoice_pdf", sa.Text(), nullable=True),
        sa.Column("number", sa.Text(), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        *_version_columns(first_written_by_events=True),
        _updated_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        schema="billing",
    )
    op.create_table(
        "payment_methods",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe payment method id"),
        sa.Column("stripe_customer_id", sa.Text(), nullable=True, comment="null once detached"),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("card_brand", sa.Text(), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("card_exp_month", sa.Integer(), nullable=True),
        sa.Column("card_exp_year", sa.Integer(), nullable=True),
        sa.Column("attached", sa.Boolean(), nullable=False),
        *_version_columns(first_written_by_events=True),
        _updated_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_methods")),
        schema="billing",
    )
    op.add_column(
        "customers",
        sa.Column(
            "deleted_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when Stripe deleted the customer",
        ),
        schema="billing",
    )
    for table in ("customers", "products", "prices"):
        for column in _version_columns(first_written_by_events=False):
            op.add_column(table, column, schema="billing")
    # Catalog rows so far were copied from Stripe by sync-catalog: fetched state of unknown age.
    op.execute("UPDATE billing.products SET refetched = true")
    op.execute("UPDATE billing.prices SET refetched = true")
    # A price's event may arrive before its product's.
    op.drop_constraint(
        op.f("fk_prices_product_id_products"), "prices", schema="billing", type_="foreignkey"
    )


def downgrade() -> None:
    # Prices whose product never arrived would break the foreign key: they go first.
    op.execute(
        "DELETE FROM billing.prices WHERE product_id NOT IN (SELECT id FROM billing.products)"
    )
    op.create_foreign_key(
        op.f("fk_prices_product_id_products"),
        "prices",
        "products",
        ["product_id"],
        ["id"],
        source_schema="billing",
        referent_schema="billing",
    )
    for table in ("prices", "products", "customers"):
        op.drop_column(table, "refetched", schema="billing")
        op.drop_column(table, "source_event_created", schema="billing")
    op.drop_column("customers", "deleted_at", schema="billing")
    op.drop_table("payment_methods", schema="billing")
    op.drop_table("invoices", schema="billing")
    op.drop_index(
        op.f("ix_subscriptions_stripe_customer_id_created"),
        table_name="subscriptions",
        schema="billing",
    )
    op.drop_table("subscriptions", schema="billing")
    op.drop_table("applied_events", schema="billing")
