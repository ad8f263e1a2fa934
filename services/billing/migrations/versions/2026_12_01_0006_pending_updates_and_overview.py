"""plan changes waiting for their payment (pending updates); what the billing overview reads:
default payment methods, the action an open invoice's payment needs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "billing"

_SUBSCRIPTION_COLUMNS = (
    sa.Column(
        "pending_price_id",
        sa.Text(),
        comment="price of the first item of the pending update (a change waiting for its "
        "invoice to be paid); null when none",
    ),
    sa.Column("pending_quantity", sa.BigInteger(), comment="quantity of that item"),
    sa.Column(
        "pending_update_expires_at",
        sa.DateTime(timezone=True),
        comment="when Stripe discards the pending update (and voids its invoice) unless paid",
    ),
    sa.Column(
        "default_payment_method_id",
        sa.Text(),
        comment="the subscription's own default payment method (before the customer's)",
    ),
)


def upgrade() -> None:
    for column in _SUBSCRIPTION_COLUMNS:
        op.add_column("subscriptions", column, schema=SCHEMA)
    op.add_column(
        "customers",
        sa.Column(
            "default_payment_method_id",
            sa.Text(),
            comment="the customer's invoice_settings.default_payment_method",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "invoices",
        sa.Column(
            "payment_action",
            sa.Text(),
            comment="while open: what its payment waits for, `authenticate` (the card holder) "
            "or `pay` (declined: another card); null otherwise",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("invoices", "payment_action", schema=SCHEMA)
    op.drop_column("customers", "default_payment_method_id", schema=SCHEMA)
    for column in reversed(_SUBSCRIPTION_COLUMNS):
        op.drop_column("subscriptions", column.name, schema=SCHEMA)
