"""invoices: how the last payment attempt ended (declined and why, or waiting for authentication)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "billing"
COLUMNS = (
    ("payment_intent_id", "the PaymentIntent of the last attempt"),
    ("payment_status", "its status: requires_payment_method (declined), requires_action, …"),
    ("payment_error_code", "Stripe's last_payment_error.code"),
    ("payment_decline_code", "Stripe's last_payment_error.decline_code"),
    ("payment_error_message", "Stripe's last_payment_error.message"),
)


def upgrade() -> None:
    for name, comment in COLUMNS:
        op.add_column("invoices", sa.Column(name, sa.Text(), comment=comment), schema=SCHEMA)


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("invoices", name, schema=SCHEMA)
