"""Schema `billing`: the Stripe mirror owned by the billing service (Alembic keeps it in step)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

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

customers = Table(
    "customers",
    metadata,
    Column("principal", Text, primary_key=True, comment="user:<id> or org:<id>"),
    Column("stripe_customer_id", Text, nullable=False, unique=True),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

prices = Table(
    "prices",
    metadata,
    Column("id", Text, primary_key=True, comment="Stripe price id"),
    Column("product_id", Text, ForeignKey(products.c.id), nullable=False, index=True),
    Column("lookup_key", Text, unique=True),
    Column("unit_amount", BigInteger, nullable=False, comment="minor units of currency"),
    Column("currency", String(3), nullable=False),
    Column("type", Text, nullable=False),
    Column("interval", Text),
    Column("interval_count", Integer),
    Column("active", Boolean, nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("type IN ('recurring', 'one_time')", name="type"),
    CheckConstraint(
        "(type = 'recurring') = (interval IS NOT NULL AND interval_count IS NOT NULL)",
        name="recurring_has_interval",
    ),
)
