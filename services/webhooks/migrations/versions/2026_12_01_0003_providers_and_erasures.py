"""events from more than Stripe (provider), lookups by subject, and erased subjects

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 17:10:00.000000

`provider` tells a Stripe event from a Clerk one (`source` still tells a webhook from the
backstop). `ix_events_ordering_key_created` finds every event about one subject (a Stripe
customer, a Clerk user) for an export or an erasure. `erased_keys` lists the subjects erased, so
that the relay blanks personal data from their events that arrive afterwards.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column(
            "provider",
            sa.Text(),
            server_default="stripe",
            nullable=False,
            comment="who sent the event: stripe or clerk",
        ),
        schema="webhooks",
    )
    op.create_check_constraint(
        op.f("ck_events_provider"), "events", "provider IN ('stripe', 'clerk')", schema="webhooks"
    )
    op.create_index(
        "ix_events_ordering_key_created",
        "events",
        ["ordering_key", "created"],
        unique=False,
        schema="webhooks",
    )
    op.create_table(
        "erased_keys",
        sa.Column("ordering_key", sa.Text(), nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("ordering_key", name=op.f("pk_erased_keys")),
        schema="webhooks",
        comment="subjects erased on request: their events' payloads are kept without personal data",
    )


def downgrade() -> None:
    op.drop_table("erased_keys", schema="webhooks")
    op.drop_index("ix_events_ordering_key_created", table_name="events", schema="webhooks")
    op.drop_constraint(op.f("ck_events_provider"), "events", schema="webhooks")
    op.drop_column("events", "provider", schema="webhooks")
