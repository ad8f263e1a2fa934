"""discounts (subscriptions, invoices, their details); prices that are not a fixed amount

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    for column in (
        sa.Column(
            "billing_scheme",
            sa.Text(),
            nullable=False,
            server_default="per_unit",
            comment="per_unit (unit_amount) or tiered (tiers); unit_amount is 0 unless per_unit",
        ),
        sa.Column("usage_type", sa.Text(), comment="licensed or metered; null for one-time prices"),
        sa.Column("meter", sa.Text(), comment="the billing meter of a metered price"),
        sa.Column("tiers_mode", sa.Text(), comment="graduated or volume, for tiered prices"),
        sa.Column(
            "tiers",
            postgresql.JSONB(),
            comment="[{up_to, unit_amount, flat_amount}], for tiered prices",
        ),
        sa.Column(
            "custom_unit_amount",
            postgresql.JSONB(),
            comment="{minimum, maximum, preset} when the customer chooses the amount",
        ),
    ):
        op.add_column("prices", column, schema=SCHEMA)
    op.add_column(
        "subscriptions",
        sa.Column(
            "discount_ids",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default="{}",
            comment="Stripe discount ids applied, in order (details in billing.discounts)",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "invoices",
        sa.Column("discount_ids", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        schema=SCHEMA,
    )
    op.add_column(
        "invoices",
        sa.Column(
            "discount_amounts",
            postgresql.JSONB(),
            nullable=False,
            server_default="[]",
            comment="Stripe's total_discount_amounts: [{discount, amount}] in minor units",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "invoices",
        sa.Column(
            "total_discount_amount",
            sa.BigInteger(),
            nullable=False,
            server_default="0",
            comment="minor units of currency taken off by discounts",
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "discounts",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe discount id"),
        sa.Column("stripe_customer_id", sa.Text()),
        sa.Column("coupon_id", sa.Text(), nullable=False),
        sa.Column("coupon_name", sa.Text()),
        sa.Column("promotion_code_id", sa.Text()),
        sa.Column("promotion_code", sa.Text(), comment="the customer-facing code"),
        sa.Column("percent_off", sa.Numeric(5, 2)),
        sa.Column("amount_off", sa.BigInteger(), comment="minor units of currency"),
        sa.Column("currency", sa.String(3)),
        sa.Column("duration", sa.Text(), nullable=False, comment="once, repeating or forever"),
        sa.Column("duration_in_months", sa.Integer()),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), comment="null unless repeating"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name="pk_discounts"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("discounts", schema=SCHEMA)
    for column in ("total_discount_amount", "discount_amounts", "discount_ids"):
        op.drop_column("invoices", column, schema=SCHEMA)
    op.drop_column("subscriptions", "discount_ids", schema=SCHEMA)
    for column in (
        "custom_unit_amount",
        "tiers",
        "tiers_mode",
        "meter",
        "usage_type",
        "billing_scheme",
    ):
        op.drop_column("prices", column, schema=SCHEMA)
