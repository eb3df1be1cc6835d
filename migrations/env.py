"""Alembic environment: the same migrations run on SQLite and PostgreSQL.

The URL comes from ``config.attributes["url"]`` when crmgraph runs the migrations
itself, else from the DATABASE_URL setting (for the ``alembic`` command line).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import models
from models.db import normalize_url

config = context.config
target_metadata = models.Base.metadata


def _url() -> str:
    url = config.attributes.get("url")
    if url is None:
        from server.settings import Settings  # the alembic CLI has no other source

        url = Settings.from_env().database_url
    return normalize_url(url)


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    backend = connection.dialect.name if connection is not None else url.split(":")[0]
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER constraints; batch mode rebuilds the table instead.
        render_as_batch=backend.startswith("sqlite"),
        compare_type=True,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
