"""prices in several currencies, and the customer's currency

A price's other currencies (Stripe's `currency_options`, its own currency left out) and the
Stripe customer's `currency`, which Stripe sets with its first subscription or invoice and never
changes after.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 20:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column(
        "prices",
        sa.Column(
            "currency_options",
            postgresql.JSONB(),
            nullable=False,
            server_default="{}",
            comment="{currency: {unit_amount, tax_behavior}}: the price in other currencies",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "customers",
        sa.Column(
            "currency",
            sa.String(3),
            comment="the Stripe customer's currency, once its first subscription or invoice set it",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("customers", "currency", schema=SCHEMA)
    op.drop_column("prices", "currency_options", schema=SCHEMA)
