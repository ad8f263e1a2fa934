"""Database engines: one async SQLAlchemy engine per process, psycopg 3 underneath; hot reads
straight on psycopg through the same pool (`fetch_all`)."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import LiteralString, TypeVar

import psycopg
import psycopg_pool
import sqlalchemy.exc
from psycopg.rows import args_row
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# A database that is unreachable, restarting, or gave up the transaction: the same call may
# succeed later, whichever layer (SQLAlchemy, psycopg, psycopg's pool) noticed.
DATABASE_FAILURES: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
)


def sqlalchemy_url(database_url: str) -> str:
    """Accept plain `postgresql://` URLs (as operators and the embedded server write them) and pick psycopg."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+psycopg")
    else:
        raise ValueError(f"unsupported database URL scheme {url.drivername!r}: use postgresql://")
    return url.render_as_string(hide_password=False)


def psycopg_conninfo(engine: AsyncEngine) -> str:
    """The URL of `engine`'s database as psycopg takes it, for a connection of its own outside
    the pool (a LISTEN)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine with a bounded pool. No liveness check on checkout (it would cost a round
    trip per transaction): a connection lost with its server fails its transaction with one of
    DATABASE_FAILURES (answered as a database outage), SQLAlchemy invalidates it, and later
    transactions open new ones (tests/e2e/test_database_outage.py); connections are also
    replaced after `pool_recycle` seconds."""
    return create_async_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


R = TypeVar("R")


async def fetch_all(
    engine: AsyncEngine, query: LiteralString, params: Sequence[object], row: Callable[..., R]
) -> list[R]:
    """The rows of one `query`, each as `row(*columns)`, for hot paths: a read, or one
    statement that writes and returns what it did (it commits on its own).

    It borrows a connection of `engine`'s pool (one pool per process, one place for its size and
    outage handling) and runs on psycopg itself: in autocommit, so one round trip instead of
    BEGIN, the query and ROLLBACK; as a statement prepared once per connection, so Postgres
    reuses its plan; and without SQLAlchemy's compilation and result processing. A connection
    broken under it fails its reset when it goes back, and the pool replaces it
    (tests/e2e/test_database_outage.py)."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, psycopg.AsyncConnection)  # the engine's driver is psycopg 3
        async with driver.cursor(row_factory=args_row(row)) as cursor:
            await cursor.execute(query, params, prepare=True)
            return await cursor.fetchall()


# How long a readiness check waits for the database.
REACHABLE_WITHIN_SECONDS = 2.0
_UNREACHABLE: tuple[type[Exception], ...] = (TimeoutError, *DATABASE_FAILURES)


async def database_reachable(engine: AsyncEngine) -> bool:
    """Whether the database answers a trivial query within REACHABLE_WITHIN_SECONDS."""
    try:
        async with asyncio.timeout(REACHABLE_WITHIN_SECONDS), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except _UNREACHABLE:
        return False
    return True


# Postgres gave up the transaction to break a deadlock or a serialization conflict: nothing of it
# was written, and run again it may well succeed.
_CONFLICTS = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


async def retried_on_conflict(transaction: Callable[[], Awaitable[R]], *, attempts: int = 3) -> R:
    """`transaction()` (one whole transaction), run again when Postgres aborted it to break a
    deadlock or a serialization conflict, up to `attempts` runs in all."""
    for _ in range(attempts - 1):
        try:
            return await transaction()
        except sqlalchemy.exc.OperationalError as e:
            if not isinstance(e.orig, _CONFLICTS):
                raise
    return await transaction()
