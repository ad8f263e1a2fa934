"""head-of-line table: one row per ordering key with pending events

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:45:00.000000

The relay claims from `heads` instead of walking every due pending event (ix_events_due, now
unused, goes). Existing pending events are copied in: each key's oldest, due as it was.

Rollout: receivers of the previous release store events without a head row until they are
replaced. Once every receiver runs this release, adopt what they stored (safe with relays running;
a key a new receiver reached first may deliver those events after its newer ones):
    INSERT INTO webhooks.heads (ordering_key, event_id, created, due_at)
    SELECT DISTINCT ON (ordering_key) ordering_key, id, created, next_attempt_at
    FROM webhooks.events e WHERE state = 'pending'
      AND NOT EXISTS (SELECT FROM webhooks.heads h WHERE h.ordering_key = e.ordering_key)
    ORDER BY ordering_key, created, id
    ON CONFLICT (ordering_key) DO NOTHING;
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heads",
        sa.Column("ordering_key", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False, comment="the key's oldest pending event"),
        sa.Column(
            "created",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="that event's created",
        ),
        sa.Column(
            "due_at", sa.DateTime(timezone=True), nullable=False, comment="its next_attempt_at"
        ),
        sa.Column(
            "held",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="its last attempt was a call that failed as a whole (billing unreachable)",
        ),
        sa.PrimaryKeyConstraint("ordering_key", name=op.f("pk_heads")),
        schema="webhooks",
    )
    op.create_index("ix_heads_due_at", "heads", ["due_at"], unique=False, schema="webhooks")
    op.create_index(
        "ix_heads_held",
        "heads",
        ["ordering_key"],
        unique=False,
        schema="webhooks",
        postgresql_where=sa.text("held"),
    )
    op.execute(
        """
        INSERT INTO webhooks.heads (ordering_key, event_id, created, due_at)
        SELECT DISTINCT ON (ordering_key) ordering_key, id, created, next_attempt_at
        FROM webhooks.events WHERE state = 'pending'
        ORDER BY ordering_key, created, id
        """
    )
    op.drop_index(
        "ix_events_due",
        table_name="events",
        schema="webhooks",
        postgresql_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.create_index(
        "ix_events_due",
        "events",
        ["next_attempt_at", "created"],
        unique=False,
        schema="webhooks",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index(
        "ix_heads_held", table_name="heads", schema="webhooks", postgresql_where=sa.text("held")
    )
    op.drop_index("ix_heads_due_at", table_name="heads", schema="webhooks")
    op.drop_table("heads", schema="webhooks")
