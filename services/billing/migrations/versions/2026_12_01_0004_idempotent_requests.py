"""idempotent requests: first answers by (principal, operation, key); pending customer creations

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotent_requests",
        sa.Column("principal", sa.Text(), nullable=False, comment="user:<id> or org:<id>"),
        sa.Column("operation", sa.Text(), nullable=False, comment="the BillingService method"),
        sa.Column(
            "key_hash", sa.Text(), nullable=False, comment="SHA-256 of the client's Idempotency-Key"
        ),
        sa.Column("fingerprint", sa.Text(), nullable=False, comment="SHA-256 of the first request"),
        sa.Column(
            "response",
            sa.LargeBinary(),
            comment="the first successful answer (serialized protobuf); null until there is one",
        ),
        sa.Column(
            "locked_until",
            sa.DateTime(timezone=True),
            comment="set while a request with this key runs; another may take over after it",
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint(
            "principal", "operation", "key_hash", name="pk_idempotent_requests"
        ),
        schema="billing",
    )
    op.create_index(
        "ix_idempotent_requests_created_at",
        "idempotent_requests",
        ["created_at"],
        schema="billing",
    )
    op.create_table(
        "customer_creations",
        sa.Column("principal", sa.Text(), nullable=False, comment="user:<id> or org:<id>"),
        sa.Column(
            "email", sa.Text(), nullable=False, comment="the email last sent to Stripe's create"
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "refused_at",
            sa.DateTime(timezone=True),
            comment="when Stripe refused these details (nothing was made): the next attempt "
            "records its own",
        ),
        sa.PrimaryKeyConstraint("principal", name="pk_customer_creations"),
        schema="billing",
    )


def downgrade() -> None:
    op.drop_table("customer_creations", schema="billing")
    op.drop_index(
        "ix_idempotent_requests_created_at", table_name="idempotent_requests", schema="billing"
    )
    op.drop_table("idempotent_requests", schema="billing")
