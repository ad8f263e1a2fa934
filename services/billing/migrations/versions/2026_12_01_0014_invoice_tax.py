"""Stripe Tax on invoices: the tax in their total, the total without it, Stripe Tax's status

Invoices mirrored before have no tax (BILLING_AUTOMATIC_TAX did not exist): their total
without tax is their total.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column(
        "invoices",
        sa.Column(
            "total_tax",
            sa.BigInteger(),
            nullable=False,
            server_default="0",
            comment="Stripe's total_taxes summed: the tax in total",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "invoices",
        sa.Column("total_excluding_tax", sa.BigInteger(), comment="total without tax"),
        schema=SCHEMA,
    )
    op.execute("UPDATE billing.invoices SET total_excluding_tax = total")
    op.alter_column("invoices", "total_excluding_tax", nullable=False, schema=SCHEMA)
    op.add_column(
        "invoices",
        sa.Column(
            "automatic_tax_status",
            sa.Text(),
            comment="Stripe Tax's status: complete, requires_location_inputs, failed; "
            "null when not automatically taxed",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for column in ("automatic_tax_status", "total_excluding_tax", "total_tax"):
        op.drop_column("invoices", column, schema=SCHEMA)
