"""billing changes published as they commit (GET /v1/billing/stream)

Every statement that writes a principal's mirrored objects (subscriptions, their schedules,
invoices, payment methods, discounts, purchases, charges, disputes, the customer itself) bumps
the principal's version in `billing.live_versions` and sends `NOTIFY billing_changes, '<principal>'`
from the same transaction: Postgres delivers a notification only when its transaction commits
(identical ones once per transaction), so a listener never hears of a change that did not happen,
and every write path (the relay's batches, a single event, a confirm, a plan change) publishes
without a call of its own. Billing's listeners are in services/billing/live/.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 17:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SCHEMA = "billing"
CHANNEL = "billing_changes"
# The tables whose rows name their Stripe customer.
_BY_CUSTOMER = (
    "subscriptions",
    "subscription_schedules",
    "invoices",
    "payment_methods",
    "discounts",
    "purchases",
    "charges",
)
_TABLES = (*_BY_CUSTOMER, "customers", "disputes")

# Each trigger function reads the principals a statement touched from `changed`, its transition
# table (the rows it inserted or updated), and publishes each once, in a fixed order so that two
# transactions bumping the same versions cannot deadlock on them.
_PRINCIPALS = {
    "publish_changes": "SELECT c.principal FROM changed AS ch"
    " JOIN billing.customers AS c ON c.stripe_customer_id = ch.stripe_customer_id",
    "publish_customer_changes": "SELECT principal FROM changed",
    "publish_dispute_changes": "SELECT c.principal FROM billing.charges AS charge"
    " JOIN billing.customers AS c ON c.stripe_customer_id = charge.stripe_customer_id"
    " WHERE charge.id IN (SELECT charge_id FROM changed)",
}
_FUNCTION_OF = {"customers": "publish_customer_changes", "disputes": "publish_dispute_changes"}


def _function(name: str, principals: str) -> str:
    # Built from this module's constants only.
    return f"""
CREATE FUNCTION {SCHEMA}.{name}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched text;
BEGIN
    FOR touched IN SELECT DISTINCT p.principal FROM ({principals}) AS p ORDER BY 1 LOOP
        INSERT INTO {SCHEMA}.live_versions AS v (principal, version) VALUES (touched, 1)
        ON CONFLICT (principal) DO UPDATE SET version = v.version + 1, changed_at = now();
        PERFORM pg_notify('{CHANNEL}', touched);
    END LOOP;
    RETURN NULL;
END
$$
"""  # noqa: S608


def upgrade() -> None:
    op.create_table(
        "live_versions",
        sa.Column("principal", sa.Text(), primary_key=True, comment="user:<id> or org:<id>"),
        sa.Column(
            "version",
            sa.BigInteger(),
            nullable=False,
            comment="bumped by every statement that changes the principal's billing state; "
            "the stream's event id",
        ),
        sa.Column(
            "changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("principal", name="pk_live_versions"),
        schema=SCHEMA,
    )
    for name, principals in _PRINCIPALS.items():
        op.execute(_function(name, principals))
    for table in _TABLES:
        function = _FUNCTION_OF.get(table, "publish_changes")
        # A trigger with a transition table fires for one kind of statement: one per kind.
        for kind in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER publish_{kind.lower()} AFTER {kind} ON {SCHEMA}.{table}"
                f" REFERENCING NEW TABLE AS changed FOR EACH STATEMENT"
                f" EXECUTE FUNCTION {SCHEMA}.{function}()"
            )


def downgrade() -> None:
    for table in _TABLES:
        for kind in ("insert", "update"):
            op.execute(f"DROP TRIGGER publish_{kind} ON {SCHEMA}.{table}")
    for name in _PRINCIPALS:
        op.execute(f"DROP FUNCTION {SCHEMA}.{name}()")
    op.drop_table("live_versions", schema=SCHEMA)
