"""erasures on request: what was erased, when, and where an unfinished one resumes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 17:30:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False, comment="user:<id> or org:<id>"),
        sa.Column(
            "requested_by",
            sa.Text(),
            nullable=False,
            comment="api (DELETE /v1/me) or the Clerk event type (user.deleted, …)",
        ),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "state",
            sa.Text(),
            nullable=False,
            comment="the last step done: started, subscriptions_canceled, customer_deleted, "
            "mirror_scrubbed, done",
        ),
        sa.Column(
            "stripe_customer_id",
            sa.Text(),
            nullable=True,
            comment="the Stripe customer erased (accounting's records name it)",
        ),
        sa.Column(
            "canceled_subscription_ids",
            postgresql.ARRAY(sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "payment_method_ids",
            postgresql.ARRAY(sa.Text()),
            server_default="{}",
            nullable=False,
            comment="the customer's payment methods, whose inbox events are erased too",
        ),
        sa.Column("inbox_events_scrubbed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True, comment="why the last attempt stopped"),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('started', 'subscriptions_canceled', 'customer_deleted', "
            "'mirror_scrubbed', 'done')",
            name=op.f("ck_erasures_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_erasures_principal",
        "erasures",
        ["principal", "requested_at"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        "uq_erasures_unfinished_principal",
        "erasures",
        ["principal"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("state <> 'done'"),
    )
    op.create_index(
        "ix_erasures_stripe_customer_id", "erasures", ["stripe_customer_id"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("erasures", schema=SCHEMA)
