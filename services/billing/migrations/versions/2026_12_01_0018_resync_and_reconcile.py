"""resync cursors (a rerun continues from the last page) and reconcile runs (drift found)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 20:20:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.create_table(
        "resync_cursors",
        sa.Column(
            "run",
            sa.Text(),
            nullable=False,
            comment="what the run covers: all, or customer=cus_… and/or since=YYYY-MM-DD",
        ),
        sa.Column(
            "resource",
            sa.Text(),
            nullable=False,
            comment="customers, subscriptions, invoices, …",
        ),
        sa.Column(
            "starting_after",
            sa.Text(),
            nullable=True,
            comment="the id of the last object of the last page applied (Stripe's list cursor)",
        ),
        sa.Column("objects", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "completed_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the resource's last page was",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("run", "resource", name=op.f("pk_resync_cursors")),
        schema=SCHEMA,
    )
    op.create_table(
        "reconcile_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False, comment="sample:N or all"),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customers", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "objects", sa.BigInteger(), server_default="0", nullable=False, comment="compared"
        ),
        sa.Column(
            "drift",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
            comment='{"<resource>": {"missing"|"changed"|"orphaned": count}}',
        ),
        sa.Column("repaired", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_runs")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_reconcile_runs_finished_at", "reconcile_runs", ["finished_at"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("reconcile_runs", schema=SCHEMA)
    op.drop_table("resync_cursors", schema=SCHEMA)
