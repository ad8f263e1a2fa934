"""plan changes waiting for their payment (pending updates)

What the billing overview reads besides comes from earlier revisions: the default payment methods
(0008) and how an open invoice's last payment attempt ended (0007).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
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
)


def upgrade() -> None:
    for column in _SUBSCRIPTION_COLUMNS:
        op.add_column("subscriptions", column, schema=SCHEMA)


def downgrade() -> None:
    for column in reversed(_SUBSCRIPTION_COLUMNS):
        op.drop_column("subscriptions", column.name, schema=SCHEMA)
