"""The revenue table in schema `billing` (migration 0019): each subscription's price and quantity
over its life, written by a trigger on `billing.subscriptions`, read by the revenue figures."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)

from services.billing.models import metadata

subscription_terms = Table(
    "subscription_terms",
    metadata,
    Column(
        "subscription_id",
        Text,
        ForeignKey("billing.subscriptions.id", ondelete="CASCADE"),
        nullable=False,
        comment="Stripe subscription id",
    ),
    Column(
        "since",
        DateTime(timezone=True),
        nullable=False,
        comment="when these terms took effect by Stripe's clock: the subscription's `created` "
        "for its first terms, else the `source_event_created` of the write that changed them",
    ),
    Column("price_id", Text, comment="price of the first item"),
    Column("quantity", BigInteger, comment="quantity of that item"),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("subscription_id", "since"),
    comment="each subscription's price and quantity over its life (written by a trigger on "
    "billing.subscriptions)",
)
