"""default payment methods of subscriptions and customers (trials that need a card)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:00:00.000000

Rows mirrored before this revision hold no default payment method and no trial end behaviour
until their next event: a null end behaviour is Stripe's default (`create_invoice`), under which
a trial grants access without a payment method, as it did before; only trials created to cancel
without one (BILLING_TRIAL_REQUIRES_PAYMENT_METHOD) wait for a saved payment method.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column(
            "default_payment_method",
            sa.Text(),
            comment="the Stripe customer's invoice default payment method (or default source)",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "subscriptions",
        sa.Column(
            "default_payment_method",
            sa.Text(),
            comment="the subscription's own default payment method (or default source)",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "subscriptions",
        sa.Column(
            "trial_missing_payment_method",
            sa.Text(),
            comment="trial_settings.end_behavior.missing_payment_method: cancel, create_invoice or "
            "pause (what ends a trial without a payment method; null before migration 0008)",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("subscriptions", "trial_missing_payment_method", schema=SCHEMA)
    op.drop_column("subscriptions", "default_payment_method", schema=SCHEMA)
    op.drop_column("customers", "default_payment_method", schema=SCHEMA)
