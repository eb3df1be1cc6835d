"""Engines, sessions and the statement counter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def normalize_url(url: str) -> str:
    """Accept the plain URLs people paste and pick the async driver for them."""
    parsed = make_url(url)
    drivers = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
               "sqlite": "sqlite+aiosqlite"}
    if parsed.drivername in drivers:
        parsed = parsed.set(drivername=drivers[parsed.drivername])
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# A pooled connection unused for longer than this is pinged when it is checked out.
PING_AFTER_IDLE_SECONDS = 10.0
_IDLE_SINCE = "crmgraph_idle_since"


class _PrePing:
    """SQLAlchemy's pool_pre_ping, without its round trips for a connection in use.

    pool_pre_ping asks PostgreSQL on every checkout (three round trips on asyncpg:
    BEGIN, an empty query, ROLLBACK), a request's reads pay them once per loader
    batch, and they were a third of a small query's time. A connection the server
    closed (a restart, a terminated backend) is known without asking: asyncpg marks it
    closed as the socket ends. One that sat unused for a while (where a proxy or a
    firewall may have dropped it silently) is still pinged. Either way, as with
    pool_pre_ping, a dead connection invalidates the pool and the checkout gets a new
    one.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def checkin(self, _dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.driver_connection.is_closed():
            raise exc.InvalidatePoolError()
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # freshly connected, or used moments ago
        dialect = self.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError() from error
            raise


# The attribute an error raised while committing carries (read by server/faults.py).
COMMIT_ATTEMPTED = "crmgraph_commit_attempted"

# Set while the compiled execution is checked against graphql-core's: the check's
# statements are not the request's.
UNCOUNTED: ContextVar[bool] = ContextVar("uncounted", default=False)


class RequestWork:
    """The tasks doing one request's database work, so that all of it can be stopped.

    Cancelling the request's own task is not enough: loaders batch in tasks of their
    own (aiodataloader schedules them), which would run on, their statements with them,
    for a client that is gone. Each task that takes a connection while a RequestWork
    is current (``within()``) enlists; tasks inherit the context they were created
    in, the loaders' with it. A cancelled statement is stopped in PostgreSQL too:
    asyncpg sends a cancel request, and SQLAlchemy closes the connection rather than
    return it to the pool in an unknown state.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        # Whether a transaction reached its COMMIT: a request stopped before that
        # changed nothing, so a client may safely send it again.
        self.committing = False

    @contextmanager
    def within(self) -> Iterator[None]:
        token = _current_work.set(self)
        try:
            yield
        finally:
            _current_work.reset(token)

    def enlist(self) -> None:
        task = asyncio.current_task()
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            # A task's context holds this RequestWork: kept after it is done, that
            # cycle held its result (a loader's rows) until the cyclic collector ran.
            task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        """Cancel every enlisted task that is still running and wait for each to
        unwind, so its connection is closed or back in the pool when this returns."""
        me = asyncio.current_task()
        running = [t for t in self._tasks if not t.done() and t is not me]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


_current_work: ContextVar[RequestWork | None] = ContextVar("request_work", default=None)


def _enlist() -> RequestWork | None:
    work = _current_work.get()
    if work is not None:
        work.enlist()
    return work


class Database:
    """One engine per process, shared by every request.

    Reads (loaders) take a short-lived AUTOCOMMIT connection each: no BEGIN/ROLLBACK
    round trips, and sibling loaders never share a connection. Writes go through
    ``transaction()``: one session, one transaction, committed or rolled back whole.
    """

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        asyncpg = make_url(self.url).get_driver_name() == "asyncpg"
        options: dict[str, Any] = {"echo": echo, "pool_pre_ping": not asyncpg}
        if self.dialect == "postgresql":
            options.update(pool_size=pool_size, max_overflow=pool_size)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        if asyncpg:
            pre_ping = _PrePing(self.engine.sync_engine.dialect)
            event.listen(self.engine.sync_engine, "checkin", pre_ping.checkin)
            event.listen(self.engine.sync_engine, "checkout", pre_ping.checkout)
        self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.session_factory = async_sessionmaker(self.engine, expire_on_commit=False)
        # Counts every statement sent, for tests that pin statements per request (but
        # those of a verifying second execution, server/compiled.py).
        self.statements = 0
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *_args: Any) -> None:
        if not UNCOUNTED.get():
            self.statements += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        _enlist()
        async with self.read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        work = _enlist()
        committing = False
        try:
            async with self.session_factory() as session, session.begin():
                yield session
                committing = True
                if work is not None:
                    work.committing = True  # the COMMIT follows as the block exits
        except Exception as exc:
            if committing:
                # Failed at COMMIT (the connection lost, say): it may have committed,
                # so the client must not be told it can safely resend (server/faults.py).
                setattr(exc, COMMIT_ATTEMPTED, True)
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()
