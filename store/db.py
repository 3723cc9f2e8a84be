from __future__ import annotations

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(url: str, *, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """`pre_ping=False` saves a round trip per transaction; its user must retry a transaction that
    failed on a connection found dead (`DBAPIError.connection_invalidated`), as the ingest store
    does: the first such failure invalidates the whole pool, so one retry is enough."""
    return create_async_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=pre_ping)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(database_url: str) -> str:
    """asyncpg's own DSN, for a plain connection beside the engine: the SQLAlchemy URL without its
    driver suffix."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
