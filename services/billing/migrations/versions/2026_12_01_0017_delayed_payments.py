"""invoices and purchases: a payment the customer completes outside the app (a boleto or Pix
voucher): its method, when it expires, Stripe's hosted voucher; invoices by subscription (the
entitlements ask whether a subscription's first payment is still processing)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 20:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

SCHEMA = "billing"
TABLES = ("invoices", "purchases")
COLUMNS = (
    ("payment_method_type", sa.Text(), "boleto, pix, …: what the payment waits for"),
    ("payment_expires_at", sa.DateTime(timezone=True), "when the voucher expires unpaid"),
    ("payment_voucher_url", sa.Text(), "Stripe's hosted voucher or instructions"),
)


INDEX = "ix_invoices_subscription_id"


def upgrade() -> None:
    for table in TABLES:
        for name, type_, comment in COLUMNS:
            op.add_column(table, sa.Column(name, type_, comment=comment), schema=SCHEMA)
    op.create_index(INDEX, "invoices", ["subscription_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="invoices", schema=SCHEMA)
    for table in TABLES:
        for name, _, _ in reversed(COLUMNS):
            op.drop_column(table, name, schema=SCHEMA)
