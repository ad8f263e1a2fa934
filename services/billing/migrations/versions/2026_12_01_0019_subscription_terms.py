"""subscription terms: each subscription's price and quantity over its life

The revenue figures used each subscription's current row for its whole life, so a plan change
rewrote past days' MRR and per-plan figures. `billing.subscription_terms` keeps every price and
quantity a subscription had and since when, by Stripe's clock: a trigger on
`billing.subscriptions` appends a term when a row is inserted (since its `created`, its start, so
a subscription first mirrored late has a term from its start) and when an update changes the
price or the quantity (since the row's `source_event_created`, the Stripe time of the event or
answer that wrote it). Every write path (the relay's batches, a single event, a resync, a plan
change) records terms without a call of its own. Subscriptions mirrored before this migration
get one term each: their current price and quantity since their start.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 23:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

SCHEMA = "billing"
_FUNCTION = "record_subscription_terms"
# Two writes of one subscription at the same Stripe time: the later one's terms stand.
_FUNCTION_SQL = """
CREATE FUNCTION billing.record_subscription_terms() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO billing.subscription_terms (subscription_id, since, price_id, quantity)
    VALUES (
        NEW.id,
        CASE WHEN TG_OP = 'INSERT' THEN NEW.created
             ELSE coalesce(NEW.source_event_created, now()) END,
        NEW.price_id,
        NEW.quantity
    )
    ON CONFLICT (subscription_id, since)
    DO UPDATE SET price_id = excluded.price_id, quantity = excluded.quantity;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "subscription_terms",
        sa.Column("subscription_id", sa.Text(), nullable=False, comment="Stripe subscription id"),
        sa.Column(
            "since",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when these terms took effect by Stripe's clock: the subscription's `created` "
            "for its first terms, else the `source_event_created` of the write that changed them",
        ),
        sa.Column("price_id", sa.Text(), nullable=True, comment="price of the first item"),
        sa.Column("quantity", sa.BigInteger(), nullable=True, comment="quantity of that item"),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            [f"{SCHEMA}.subscriptions.id"],
            name=op.f("fk_subscription_terms_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscription_id", "since", name=op.f("pk_subscription_terms")),
        schema=SCHEMA,
        comment="each subscription's price and quantity over its life (written by a trigger "
        "on billing.subscriptions)",
    )
    op.execute(_FUNCTION_SQL)
    op.execute(
        f"CREATE TRIGGER record_terms_insert AFTER INSERT ON {SCHEMA}.subscriptions"
        f" FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.{_FUNCTION}()"
    )
    op.execute(
        f"CREATE TRIGGER record_terms_update AFTER UPDATE ON {SCHEMA}.subscriptions"
        " FOR EACH ROW WHEN (OLD.price_id IS DISTINCT FROM NEW.price_id"
        " OR OLD.quantity IS DISTINCT FROM NEW.quantity)"
        f" EXECUTE FUNCTION {SCHEMA}.{_FUNCTION}()"
    )
    op.execute(
        "INSERT INTO billing.subscription_terms (subscription_id, since, price_id, quantity)"
        " SELECT id, created, price_id, quantity FROM billing.subscriptions"
    )


def downgrade() -> None:
    for kind in ("insert", "update"):
        op.execute(f"DROP TRIGGER record_terms_{kind} ON {SCHEMA}.subscriptions")
    op.execute(f"DROP FUNCTION {SCHEMA}.{_FUNCTION}()")
    op.drop_table("subscription_terms", schema=SCHEMA)
