"""Which databases the tests run on, and scratch databases for tests that need one.

SQLite always. PostgreSQL too when TEST_DATABASE_URL is set: then it must connect,
and a failure to connect fails the run (it never skips).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from models.db import normalize_url
from server.migrate import upgrade_head

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
BROADCAST_URL = REDIS_URL or "memory://"


async def _on_server(*statements: str) -> None:
    assert POSTGRES_URL is not None
    # CREATE and DROP DATABASE refuse to run inside a transaction.
    engine = create_async_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def reset_postgres_schema() -> None:
    """Empty the TEST_DATABASE_URL database, so migrations run from nothing."""
    asyncio.run(_on_server("DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public"))


@contextmanager
def scratch_database(backend: str, name: str, directory: Path, *, migrate: bool = True
                     ) -> Iterator[str]:
    """A new, empty database of its own (a SQLite file, or a PostgreSQL database
    beside TEST_DATABASE_URL's), migrated unless asked not to, dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / (name + '.db')}"
        if migrate:
            upgrade_head(url)
        yield url
        return
    assert POSTGRES_URL is not None
    url = make_url(normalize_url(POSTGRES_URL)).set(database=name).render_as_string(
        hide_password=False)
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    asyncio.run(_on_server(drop, f'CREATE DATABASE "{name}"'))
    try:
        if migrate:
            upgrade_head(url)
        yield url
    finally:
        asyncio.run(_on_server(drop))
