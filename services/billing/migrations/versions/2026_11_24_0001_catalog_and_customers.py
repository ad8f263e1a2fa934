"""catalog and customers

Revision ID: 0001
Revises:
Create Date: 2026-11-24 00:56:48.338445
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
        "customers",
        sa.Column("principal", sa.Text(), nullable=False, comment="user:<id> or org:<id>"),
        sa.Column("stripe_customer_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("principal", name=op.f("pk_customers")),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_customers_stripe_customer_id")),
        schema="billing",
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe product id"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "features", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "metadata", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        schema="billing",
    )
    op.create_table(
        "prices",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe price id"),
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("lookup_key", sa.Text(), nullable=True),
        sa.Column(
            "unit_amount", sa.BigInteger(), nullable=False, comment="minor units of currency"
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("interval", sa.Text(), nullable=True),
        sa.Column("interval_count", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "(type = 'recurring') = (interval IS NOT NULL AND interval_count IS NOT NULL)",
            name=op.f("ck_prices_recurring_has_interval"),
        ),
        sa.CheckConstraint("type IN ('recurring', 'one_time')", name=op.f("ck_prices_type")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["billing.products.id"], name=op.f("fk_prices_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
        sa.UniqueConstraint("lookup_key", name=op.f("uq_prices_lookup_key")),
        schema="billing",
    )
    op.create_index(
        op.f("ix_prices_product_id"), "prices", ["product_id"], unique=False, schema="billing"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_prices_product_id"), table_name="prices", schema="billing")
    op.drop_table("prices", schema="billing")
    op.drop_table("products", schema="billing")
    op.drop_table("customers", schema="billing")
