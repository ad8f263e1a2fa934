"""Schema `billing`: the Stripe mirror owned by the billing service (Alembic keeps it in step)."""

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

SCHEMA = "billing"

metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    },
)


def _version_columns(*, first_written_by_events: bool) -> tuple[Column[Any], Column[Any]]:
    """The two columns `mirror.apply_object` compares each event with (fresh ones per table)."""
    return (
        Column(
            "source_event_created",
            DateTime(timezone=True),
            nullable=not first_written_by_events,
            comment="`created` of the newest Stripe event applied to the row; null before any",
        ),
        Column(
            "refetched",
            Boolean,
            nullable=False,
            server_default=false(),
            comment="the row holds what Stripe returned when fetched, which may be newer than "
            "source_event_created: the next event fetches again instead of trusting its object",
        ),
    )


def _payment_attempt_columns() -> tuple[Column[Any], ...]:
    """How an invoice's last payment attempt ended: its PaymentIntent as Stripe had it when
    billing last fetched it (invoice_payments.py), which events about invoices do not carry."""
    return (
        Column("payment_intent_id", Text, comment="the PaymentIntent of the last attempt"),
        Column(
            "payment_status",
            Text,
            comment="its status: requires_payment_method (declined), requires_action, …",
        ),
        Column("payment_error_code", Text, comment="Stripe's last_payment_error.code"),
        Column("payment_decline_code", Text, comment="Stripe's last_payment_error.decline_code"),
        Column("payment_error_message", Text, comment="Stripe's last_payment_error.message"),
        *_delayed_payment_columns(),
    )


def _delayed_payment_columns() -> tuple[Column[Any], ...]:
    """A payment the customer completes outside the app (a boleto or Pix voucher), from its
    PaymentIntent's `next_action` (async_payments.py)."""
    return (
        Column("payment_method_type", Text, comment="boleto, pix, …: what the payment waits for"),
        Column(
            "payment_expires_at",
            DateTime(timezone=True),
            comment="when the voucher expires unpaid",
        ),
        Column("payment_voucher_url", Text, comment="Stripe's hosted voucher or instructions"),
    )


def _tax_columns() -> tuple[Column[Any], ...]:
    """What Stripe Tax put on an invoice (services/billing/tax.py), in minor units."""
    return (
        Column(
            "total_tax",
            BigInteger,
            nullable=False,
            server_default="0",
            comment="Stripe's total_taxes summed: the tax in total",
        ),
        Column("total_excluding_tax", BigInteger, nullable=False, comment="total without tax"),
        Column(
            "automatic_tax_status",
            Text,
            comment="Stripe Tax's status: complete, requires_location_inputs, failed; "
            "null when not automatically taxed",
        ),
    )


customers = Table(
    "customers",
    metadata,
    Column("principal", Text, primary_key=True, comment="user:<id> or org:<id>"),
    Column("stripe_customer_id", Text, nullable=False, unique=True),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True), comment="when Stripe deleted the customer"),
    Column(
        "default_payment_method",
        Text,
        comment="the Stripe customer's invoice default payment method (or default source)",
    ),
    Column(
        "preferred_locales",
        ARRAY(Text),
        nullable=False,
        server_default="{}",
        comment="the Stripe customer's preferred_locales, in order (notifications' language)",
    ),
    Column(
        "currency",
        String(3),
        comment="the Stripe customer's currency, once its first subscription or invoice set it",
    ),
    *_version_columns(first_written_by_events=False),
)

products = Table(
    "products",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe product id"),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("features", JSONB, nullable=False, server_default="[]"),
    Column("active", Boolean, nullable=False),
    Column("metadata", JSONB, nullable=False, server_default="{}"),
    Column(
        "default_price_id", Text, comment="the product's default price (Stripe's default_price)"
    ),
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_version_columns(first_written_by_events=False),
)

prices = Table(
    "prices",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe price id"),
    # No foreign key: a price's event may arrive before its product's.
    Column("product_id", Text, nullable=False, index=True),
    Column("lookup_key", Text, unique=True),
    Column("unit_amount", BigInteger, nullable=False, comment="minor units of currency"),
    Column("currency", String(3), nullable=False),
    Column("type", Text, nullable=False),
    Column("interval", Text),
    Column("interval_count", Integer),
    Column("active", Boolean, nullable=False),
    Column(
        "billing_scheme",
        Text,
        nullable=False,
        server_default="per_unit",
        comment="per_unit (unit_amount) or tiered (tiers); unit_amount is 0 unless per_unit",
    ),
    Column("usage_type", Text, comment="licensed or metered; null for one-time prices"),
    Column("meter", Text, comment="the billing meter of a metered price"),
    Column("tiers_mode", Text, comment="graduated or volume, for tiered prices"),
    Column("tiers", JSONB, comment="[{up_to, unit_amount, flat_amount}], for tiered prices"),
    Column(
        "custom_unit_amount",
        JSONB,
        comment="{minimum, maximum, preset} when the customer chooses the amount",
    ),
    Column(
        "currency_options",
        JSONB,
        nullable=False,
        server_default="{}",
        comment="{currency: {unit_amount, tax_behavior}}: the price in other currencies",
    ),
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_version_columns(first_written_by_events=False),
    CheckConstraint("type IN ('recurring', 'one_time')", name="type"),
    CheckConstraint(
        "(type = 'recurring') = (interval IS NOT NULL AND interval_count IS NOT NULL)",
        name="recurring_has_interval",
    ),
)

# The ids of Stripe events already applied; an event id is applied at most once.
applied_events = Table(
    "applied_events",
    metadata,
    Column("event_id", Text, primary_key=True, comment="Stripe event id"),
    Column("type", Text, nullable=False),
    Column("event_created", DateTime(timezone=True), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("outcome", Text, nullable=False),
    CheckConstraint("outcome IN ('applied', 'stale', 'ignored')", name="outcome"),
)

# Subscriptions, invoices and payment methods name their Stripe customer without a foreign key:
# their events may arrive before the customer's row exists, or for a customer billing never made.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe subscription id"),
    Column("stripe_customer_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("price_id", Text, comment="price of the first item"),
    Column("quantity", BigInteger, comment="quantity of the first item"),
    Column("current_period_start", DateTime(timezone=True)),
    Column("current_period_end", DateTime(timezone=True)),
    Column("trial_start", DateTime(timezone=True)),
    Column("trial_end", DateTime(timezone=True)),
    Column("cancel_at_period_end", Boolean, nullable=False),
    Column("cancel_at", DateTime(timezone=True)),
    Column("canceled_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("metadata", JSONB, nullable=False, server_default="{}"),
    Column("latest_invoice_id", Text),
    Column(
        "default_payment_method",
        Text,
        comment="the subscription's own default payment method (or default source)",
    ),
    Column(
        "trial_missing_payment_method",
        Text,
        comment="trial_settings.end_behavior.missing_payment_method: cancel, create_invoice or "
        "pause (what ends a trial without a payment method; null before migration 0008)",
    ),
    Column(
        "discount_ids",
        ARRAY(Text),
        nullable=False,
        server_default="{}",
        comment="Stripe discount ids applied, in order (details in billing.discounts)",
    ),
    Column(
        "past_due_since",
        DateTime(timezone=True),
        comment="`created` of the event (or time of the Stripe answer) that first showed it "
        "past_due; null unless past_due",
    ),
    Column(
        "pending_price_id",
        Text,
        comment="price of the first item of the pending update (a change waiting for its "
        "invoice to be paid); null when none",
    ),
    Column("pending_quantity", BigInteger, comment="quantity of that item"),
    Column(
        "pending_update_expires_at",
        DateTime(timezone=True),
        comment="when Stripe discards the pending update (and voids its invoice) unless paid",
    ),
    Column(
        "pause_behavior",
        Text,
        comment="pause_collection.behavior while collection is paused (void, keep_as_draft or "
        "mark_uncollectible); null when collecting",
    ),
    Column(
        "pause_resumes_at",
        DateTime(timezone=True),
        comment="pause_collection.resumes_at: when Stripe collects again; null: until unpaused",
    ),
    Column(
        "pause_access_end",
        DateTime(timezone=True),
        comment="current_period_end of the first write that showed this pause (the period paid "
        "before it): where a void pause stops access; null when collecting",
    ),
    Column(
        "voided_period_start",
        DateTime(timezone=True),
        comment="current_period_start when a void pause voided that period's invoice: the "
        "period is unpaid and grants nothing, even once the pause ends; null otherwise",
    ),
    *_version_columns(first_written_by_events=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index(None, subscriptions.c.stripe_customer_id, subscriptions.c.created)

# The subscription schedules that hold a downgrade until the end of the period: what the next
# phase of each schedule will change the subscription to, and when.
subscription_schedules = Table(
    "subscription_schedules",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe subscription schedule id"),
    Column("subscription_id", Text, comment="null once released"),
    Column("stripe_customer_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("next_price_id", Text, comment="price of the first item of the next phase"),
    Column("next_quantity", BigInteger),
    Column("next_phase_start", DateTime(timezone=True)),
    Column("created", DateTime(timezone=True), nullable=False),
    *_version_columns(first_written_by_events=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index(None, subscription_schedules.c.subscription_id)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe invoice id"),
    Column("stripe_customer_id", Text, nullable=False),
    Column("subscription_id", Text),
    Column("status", Text, comment="draft, open, paid, uncollectible or void"),
    Column("currency", String(3), nullable=False),
    Column("amount_due", BigInteger, nullable=False, comment="minor units of currency"),
    Column("amount_paid", BigInteger, nullable=False, comment="minor units of currency"),
    Column("amount_remaining", BigInteger, nullable=False, comment="minor units of currency"),
    Column("total", BigInteger, nullable=False, comment="minor units of currency"),
    Column("hosted_invoice_url", Text),
    Column("invoice_pdf", Text),
    Column("number", Text),
    Column("period_start", DateTime(timezone=True)),
    Column("period_end", DateTime(timezone=True)),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("discount_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Column(
        "discount_amounts",
        JSONB,
        nullable=False,
        server_default="[]",
        comment="Stripe's total_discount_amounts: [{discount, amount}] in minor units",
    ),
    Column(
        "total_discount_amount",
        BigInteger,
        nullable=False,
        server_default="0",
        comment="minor units of currency taken off by discounts",
    ),
    *_tax_columns(),
    *_version_columns(first_written_by_events=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_payment_attempt_columns(),
)
# Entitlements ask whether a subscription's first payment is still processing, per call.
Index(None, invoices.c.subscription_id)

# What each discount (a coupon, maybe through a promotion code) takes off, by Stripe discount
# id: written when billing holds the discount expanded (its own answers, or a fetch of them).
discounts = Table(
    "discounts",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe discount id"),
    Column("stripe_customer_id", Text),
    Column("coupon_id", Text, nullable=False),
    Column("coupon_name", Text),
    Column("promotion_code_id", Text),
    Column("promotion_code", Text, comment="the customer-facing code"),
    Column("percent_off", Numeric(5, 2)),
    Column("amount_off", BigInteger, comment="minor units of currency"),
    Column("currency", String(3)),
    Column("duration", Text, nullable=False, comment="once, repeating or forever"),
    Column("duration_in_months", Integer),
    Column("start", DateTime(timezone=True), nullable=False),
    Column("end", DateTime(timezone=True), comment="null unless repeating"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe payment method id"),
    Column("stripe_customer_id", Text, comment="null once detached"),
    Column("type", Text, nullable=False),
    Column("card_brand", Text),
    Column("card_last4", String(4)),
    Column("card_exp_month", Integer),
    Column("card_exp_year", Integer),
    Column("attached", Boolean, nullable=False),
    *_version_columns(first_written_by_events=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The first answer to each (principal, operation, Idempotency-Key), kept for a day (idempotency.py).
idempotent_requests = Table(
    "idempotent_requests",
    metadata,
    Column("principal", Text, primary_key=True, comment="user:<id> or org:<id>"),
    Column("operation", Text, primary_key=True, comment="the BillingService method"),
    Column("key_hash", Text, primary_key=True, comment="SHA-256 of the client's Idempotency-Key"),
    Column("fingerprint", Text, nullable=False, comment="SHA-256 of the first request"),
    Column(
        "response",
        LargeBinary,
        comment="the first successful answer (serialized protobuf); null until there is one",
    ),
    Column(
        "locked_until",
        DateTime(timezone=True),
        comment="set while a request with this key runs; another may take over after it",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index(None, idempotent_requests.c.created_at)

# A customer creation sent to Stripe whose answer billing has not recorded yet: the next attempt
# looks for the customer it may have made before making one (customers.py).
customer_creations = Table(
    "customer_creations",
    metadata,
    Column("principal", Text, primary_key=True, comment="user:<id> or org:<id>"),
    Column("email", Text, nullable=False, comment="the email last sent to Stripe's create"),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column(
        "refused_at",
        DateTime(timezone=True),
        comment="when Stripe refused these details (nothing was made): the next attempt "
        "records its own",
    ),
)

# One-time purchases of catalog prices: the payment intents CreatePayment made (those whose
# metadata names a catalog price, `tatame_price`), as Stripe reports them.
purchases = Table(
    "purchases",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe payment intent id"),
    Column("stripe_customer_id", Text, nullable=False),
    Column("price_id", Text, nullable=False, comment="the catalog price bought"),
    Column("quantity", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False, comment="minor units of currency"),
    Column("currency", String(3), nullable=False),
    Column("status", Text, nullable=False, comment="the payment intent's status"),
    Column("latest_charge_id", Text),
    Column("created", DateTime(timezone=True), nullable=False),
    *_version_columns(first_written_by_events=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_delayed_payment_columns(),
)
Index(None, purchases.c.stripe_customer_id, purchases.c.created)

# Charges (of purchases and of invoices alike): what was refunded, the receipt.
charges = Table(
    "charges",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe charge id"),
    Column("payment_intent_id", Text),
    Column("stripe_customer_id", Text),
    Column("amount", BigInteger, nullable=False, comment="minor units of currency"),
    Column("amount_refunded", BigInteger, nullable=False, comment="minor units of currency"),
    Column("currency", String(3), nullable=False),
    Column("status", Text, nullable=False, comment="succeeded, pending or failed"),
    Column("receipt_url", Text),
    Column("created", DateTime(timezone=True), nullable=False),
    *_version_columns(first_written_by_events=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index(None, charges.c.stripe_customer_id)

# Disputes (chargebacks and inquiries) a card holder's bank opened on a charge.
disputes = Table(
    "disputes",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe dispute id"),
    Column("charge_id", Text, nullable=False),
    Column("payment_intent_id", Text),
    Column("amount", BigInteger, nullable=False, comment="minor units of currency"),
    Column("currency", String(3), nullable=False),
    Column("status", Text, nullable=False, comment="needs_response, under_review, won, lost, …"),
    Column("reason", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    *_version_columns(first_written_by_events=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index(None, disputes.c.charge_id)

# Erasures on request (services/billing/privacy/erasure.py): one row per erasure of a principal,
# its steps recorded as they are done so that an interrupted one resumes where it stopped.
ERASURE_STATES = (
    "started",
    "subscriptions_canceled",
    "customer_deleted",
    "mirror_scrubbed",
    "done",
)
erasures = Table(
    "erasures",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("principal", Text, nullable=False, comment="user:<id> or org:<id>"),
    Column(
        "requested_by",
        Text,
        nullable=False,
        comment="api (DELETE /v1/me) or the Clerk event type (user.deleted, …)",
    ),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completed_at", DateTime(timezone=True)),
    Column(
        "state",
        Text,
        nullable=False,
        comment="the last step done: started, subscriptions_canceled, customer_deleted, "
        "mirror_scrubbed, done",
    ),
    Column(
        "stripe_customer_id",
        Text,
        comment="the Stripe customer erased (accounting's records name it)",
    ),
    Column("canceled_subscription_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Column(
        "payment_method_ids",
        ARRAY(Text),
        nullable=False,
        server_default="{}",
        comment="the customer's payment methods, whose inbox events are erased too",
    ),
    Column("inbox_events_scrubbed", BigInteger, nullable=False, server_default="0"),
    Column("last_error", Text, comment="why the last attempt stopped"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(f"state IN {ERASURE_STATES!r}", name="state"),
)
Index("ix_erasures_principal", erasures.c.principal, erasures.c.requested_at)
Index(
    "uq_erasures_unfinished_principal",
    erasures.c.principal,
    unique=True,
    postgresql_where=erasures.c.state != "done",
)
Index("ix_erasures_stripe_customer_id", erasures.c.stripe_customer_id)


# Each principal's version of its billing state, bumped (and NOTIFY billing_changes sent) by
# triggers on the tables above in the transaction that writes them (migration 0012); the event
# id of GET /v1/billing/stream (services/billing/live/).
live_versions = Table(
    "live_versions",
    metadata,
    Column("principal", Text, primary_key=True, comment="user:<id> or org:<id>"),
    Column(
        "version",
        BigInteger,
        nullable=False,
        comment="bumped by every statement that changes the principal's billing state; "
        "the stream's event id",
    ),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# Resync (services/billing/resync/): where each run of `python -m services.billing resync`
# stands in each resource, so that a rerun after a crash continues from the last page applied.
resync_cursors = Table(
    "resync_cursors",
    metadata,
    Column(
        "run",
        Text,
        primary_key=True,
        comment="what the run covers: all, or customer=cus_… and/or since=YYYY-MM-DD",
    ),
    Column("resource", Text, primary_key=True, comment="customers, subscriptions, invoices, …"),
    Column(
        "starting_after",
        Text,
        comment="the id of the last object of the last page applied (Stripe's list cursor)",
    ),
    Column("objects", BigInteger, nullable=False, server_default="0"),
    Column("completed_at", DateTime(timezone=True), comment="when the resource's last page was"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Reconcile runs (the CronJob): what each compared and the drift it found and repaired; the
# billing server exports the last finished run's counts as gauges.
reconcile_runs = Table(
    "reconcile_runs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("scope", Text, nullable=False, comment="sample:N or all"),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("customers", BigInteger, nullable=False, server_default="0"),
    Column("objects", BigInteger, nullable=False, server_default="0", comment="compared"),
    Column(
        "drift",
        JSONB,
        nullable=False,
        server_default="{}",
        comment='{"<resource>": {"missing"|"changed"|"orphaned": count}}',
    ),
    Column("repaired", BigInteger, nullable=False, server_default="0"),
)
Index(None, reconcile_runs.c.finished_at)
