"""Running Alembic from crmgraph, and asking whether a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

import migrations

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def upgrade_head(url: str) -> None:
    """Upgrade to head. Call it where no event loop runs (CLI, sync test fixtures)."""
    command.upgrade(alembic_config(url), "head")


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() or ""


async def current_revision(connection: AsyncConnection) -> str | None:
    def read(sync_connection) -> str | None:  # type: ignore[no-untyped-def]
        return MigrationContext.configure(sync_connection).get_current_revision()

    return await connection.run_sync(read)
