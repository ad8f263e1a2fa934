"""one-time purchases, their charges (refunds) and disputes

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
MINOR_UNITS = "minor units of currency"


def _version_columns() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "source_event_created",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="`created` of the newest Stripe event applied to the row; null before any",
        ),
        sa.Column(
            "refetched",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="the row holds what Stripe returned when fetched, which may be newer than "
            "source_event_created: the next event fetches again instead of trusting its object",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "purchases",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe payment intent id"),
        sa.Column("stripe_customer_id", sa.Text(), nullable=False),
        sa.Column("price_id", sa.Text(), nullable=False, comment="the catalog price bought"),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False, comment=MINOR_UNITS),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, comment="the payment intent's status"),
        sa.Column("latest_charge_id", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        *_version_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchases")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_purchases_stripe_customer_id_created"),
        "purchases",
        ["stripe_customer_id", "created"],
        schema=SCHEMA,
    )
    op.create_table(
        "charges",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe charge id"),
        sa.Column("payment_intent_id", sa.Text(), nullable=True),
        sa.Column("stripe_customer_id", sa.Text(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False, comment=MINOR_UNITS),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False, comment=MINOR_UNITS),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, comment="succeeded, pending or failed"),
        sa.Column("receipt_url", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        *_version_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charges")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_charges_stripe_customer_id"), "charges", ["stripe_customer_id"], schema=SCHEMA
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.Text(), nullable=False, comment="Stripe dispute id"),
        sa.Column("charge_id", sa.Text(), nullable=False),
        sa.Column("payment_intent_id", sa.Text(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False, comment=MINOR_UNITS),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column(
            "status",
            sa.Text(),
            nullable=False,
            comment="needs_response, under_review, won, lost, …",
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        *_version_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
        schema=SCHEMA,
    )
    op.create_index(op.f("ix_disputes_charge_id"), "disputes", ["charge_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("disputes", schema=SCHEMA)
    op.drop_table("charges", schema=SCHEMA)
    op.drop_table("purchases", schema=SCHEMA)
