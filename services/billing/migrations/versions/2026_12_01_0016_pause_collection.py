"""paused payment collection (Stripe's pause_collection) of subscriptions

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 20:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SCHEMA = "billing"

_SUBSCRIPTION_COLUMNS = (
    sa.Column(
        "pause_behavior",
        sa.Text(),
        comment="pause_collection.behavior while collection is paused (void, keep_as_draft or "
        "mark_uncollectible); null when collecting",
    ),
    sa.Column(
        "pause_resumes_at",
        sa.DateTime(timezone=True),
        comment="pause_collection.resumes_at: when Stripe collects again; null: until unpaused",
    ),
    sa.Column(
        "pause_access_end",
        sa.DateTime(timezone=True),
        comment="current_period_end of the first write that showed this pause (the period paid "
        "before it): where a void pause stops access; null when collecting",
    ),
    sa.Column(
        "voided_period_start",
        sa.DateTime(timezone=True),
        comment="current_period_start when a void pause voided that period's invoice: the "
        "period is unpaid and grants nothing, even once the pause ends; null otherwise",
    ),
)


def upgrade() -> None:
    for column in _SUBSCRIPTION_COLUMNS:
        op.add_column("subscriptions", column, schema=SCHEMA)


def downgrade() -> None:
    for column in reversed(_SUBSCRIPTION_COLUMNS):
        op.drop_column("subscriptions", column.name, schema=SCHEMA)
