"""Fixtures: a migrated database per backend, the app, and an HTTP/WebSocket client.

Every test that takes ``db``, ``app`` or ``client`` runs once per backend in
tests/databases.py (SQLite, and PostgreSQL when TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

import models
from models.db import Database
from server.app import GC_THRESHOLDS, create_app
from server.migrate import upgrade_head
from server.settings import Settings
from tests.databases import BACKENDS, BROADCAST_URL, POSTGRES_URL, reset_postgres_schema
from tests.graphql_client import GraphQLClient

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        assert POSTGRES_URL is not None
        reset_postgres_schema()
        url = POSTGRES_URL
    upgrade_head(url)
    return url


async def _empty(db: Database) -> None:
    tables = [table.name for table in models.Base.metadata.sorted_tables]
    async with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            await connection.execute(text(
                f"TRUNCATE TABLE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            await connection.execute(text("PRAGMA defer_foreign_keys = ON"))
            for table in reversed(tables):
                await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(autouse=True)
def _earlier_garbage_collected() -> None:
    """Each test starts with the garbage of the tests before it collected. The server's
    thresholds (server/app.py tune_gc) let a million young objects build up between
    apps, which one collection then walked in the middle of a later test: a stall of
    about a second here, several on a loaded machine, enough to miss a ping's or a
    timeout's window. The oldest generation is collected here too when it is due."""
    gc.collect(2 if gc.get_count()[2] >= GC_THRESHOLDS[2] else 1)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await _empty(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    # No background outbox polling: tests that count SQL statements must see only
    # their own request's. Delivery in tests comes from the mutation's own wake-up.
    # Cost budgets stay in each test's app: in Redis (BROADCAST_URL) they would
    # outlive it and be spent by every test's "user:1" (tests/test_cost.py covers Redis).
    # Every query runs through the compiled plans and through graphql-core, and the
    # answers must be the same (server/compiled.py; checked when the app stops).
    return Settings(database_url=database_url, jwt_secret=TEST_SECRET,
                    broadcast_url=BROADCAST_URL, event_poll_seconds=3600,
                    rate_limit_url="memory://", compiled_execution="verify")


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
        compiler = application.state.compiler
        assert compiler is None or not compiler.mismatches, compiler.mismatches


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="http://testserver") as client:
        yield client


@pytest.fixture
def client(app: Starlette, http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(app, http)




JS = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """Unchanged third-party JavaScript clients and tools (graphql-ws, graphql-http's
    audit, Apollo composition and gateway), installed with npm from tests/js."""
    npm = shutil.which("npm")
    assert npm is not None, "Node.js and npm are needed for the JavaScript client tests"
    wanted = json.loads((JS / "package.json").read_text())["dependencies"]
    if not all((JS / "node_modules" / name).is_dir() for name in wanted):
        subprocess.run([npm, "ci" if (JS / "package-lock.json").is_file() else "install",
                        "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True,
                       timeout=300)
    return JS
