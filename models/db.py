"""Engines, sessions and the statement counter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Select, event, exc
from sqlalchemy.engine import Dialect, Engine, Row, make_url
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only, greenlet_spawn


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
# Connections kept out of the pool for reads on the driver (Database._driver): a read
# by id or a page on one of them costs the driver's own work (~20 us), not a greenlet
# and the pool's checkout and checkin as well (~60 us more; a small request reads three
# times). The pool may open as many more, so the others lose none of theirs.
DRIVER_KEPT = 2
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


def _give_back(connection: Any, since: float) -> None:
    """A connection kept for the driver back to the pool, unused since ``since``: the
    pool's checkout pings it if that was long ago (_PrePing)."""
    info = connection.info  # the connection record's, which _PrePing reads
    connection.close()
    info[_IDLE_SINCE] = since


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


# Shapes of per-request statements kept compiled for the driver: a schema's pages,
# filters and orders make a few hundred at most.
SHAPE_CACHE_SIZE = 1000

_current_work: ContextVar[RequestWork | None] = ContextVar("request_work", default=None)


def _enlist() -> RequestWork | None:
    work = _current_work.get()
    if work is not None:
        work.enlist()
    return work


class Read:
    """A read statement that many requests run (``Database.rows``), built once.

    On asyncpg it is compiled once to SQL text and sent by the driver itself: running
    a cached statement through SQLAlchemy (its cache key, execution context, greenlet,
    cursor and result) cost more CPU than the driver's own work. The values bound in
    the statement are fixed when it is built; only ``params`` change per run.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._driver: _DriverStatement | None = None

    def for_driver(self, dialect: Dialect) -> _DriverStatement:
        """The statement as asyncpg runs it, for a dialect that has met the server."""
        if self._driver is None:
            compiled = self.statement.compile(dialect=dialect)
            if compiled.post_compile_params or compiled.literal_execute_params:
                # Only SQLAlchemy's execution expands a list into the SQL at each run.
                raise ValueError("a Read takes lists as arrays (= ANY), not IN lists")
            self._driver = _DriverStatement(compiled, dialect)
        return self._driver


class _Described:
    """SQL text asyncpg runs, and the result processors of its columns (SQLAlchemy's own:
    enums, Money's presentation). They depend on the types the server reports, known
    once it has described the statement: at the first run, which prepares it."""

    def __init__(self, compiled: Any, dialect: Dialect) -> None:
        self.sql: str = compiled.string
        self.dialect = dialect
        self.types = [column.type for column in compiled.statement.selected_columns]
        self.described = False
        self.processors: list[Any] | None = None  # None where no value needs one

    async def records(self, driver: Any, args: list[Any]) -> list[Any]:
        if self.described:
            return await driver.fetch(self.sql, *args)
        prepared = await driver.prepare(self.sql)
        dialect = self.dialect
        processors = [
            type_.dialect_impl(dialect).result_processor(dialect, attribute.type.oid)
            for type_, attribute in zip(self.types, prepared.get_attributes(), strict=True)]
        self.processors = processors if any(processors) else None
        self.described = True
        return await prepared.fetch(*args)


class _DriverStatement(_Described):
    """A Read's statement: its arguments in order, and rows as SQLAlchemy makes them."""

    def __init__(self, compiled: Any, dialect: Dialect) -> None:
        super().__init__(compiled, dialect)
        names = compiled.positiontup or []
        binds = compiled.binds
        fixed = {name: bind.effective_value for name, bind in binds.items()
                 if not bind.required}
        # (name given at each run or None, fixed value, bind processor) per argument
        self.arguments = [
            (None if name in fixed else name, fixed.get(name),
             binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names
        ]
        columns = compiled.statement.selected_columns
        self.metadata = SimpleResultMetaData(
            [column.key for column in columns], extra=[(column,) for column in columns])

    def args(self, params: dict[str, Any]) -> list[Any]:
        args = []
        for name, value, process in self.arguments:
            if name is not None:
                value = params[name]
            args.append(process(value) if process is not None else value)
        return args

    async def values(self, driver: Any, params: dict[str, Any]) -> list[Any]:
        """The rows as sequences of their values: asyncpg's records where no value needs
        a result processor."""
        records = await self.records(driver, self.args(params))
        processors = self.processors
        if processors is None:
            return records
        return [tuple(value if process is None else process(value)
                      for process, value in zip(processors, record, strict=True))
                for record in records]

    async def fetch(self, driver: Any, params: dict[str, Any]) -> list[Row[Any]]:
        records = await self.records(driver, self.args(params))
        metadata = self.metadata
        processors = self.processors
        key_to_index = metadata._key_to_index
        return [Row(metadata, processors, key_to_index, record) for record in records]


class _Shape(_Described):
    """A statement built per request (a page), compiled once for every statement of
    its shape, as SQLAlchemy's statement cache would: the values bound differ per
    request and are taken from each statement's cache key."""

    def __init__(self, compiled: Any, dialect: Dialect) -> None:
        super().__init__(compiled, dialect)
        self.compiled = compiled
        processors = compiled._bind_processors
        self.binds = [(name, processors.get(name)) for name in compiled.positiontup or ()]
        self._convert: Any = None

    def args(self, key: Any) -> list[Any]:
        params = self.compiled.construct_params(
            extracted_parameters=key[1], escape_names=False, _collected_params=key[2])
        return [params[name] if process is None else process(params[name])
                for name, process in self.binds]

    async def fetch_as(self, driver: Any, key: Any, row_type: type[Any]) -> list[Any]:
        records = await self.records(driver, self.args(key))
        if self._convert is None:
            self._convert = _converter(self.processors)
        return self._convert(records, row_type)


def _converter(processors: list[Any] | None) -> Any:
    """A function making rows of a row type (a tuple subclass) of asyncpg's records,
    each value through its column's result processor, if it has one: written for the
    columns, a page of 10,000 rows makes each row in one expression."""
    make = tuple.__new__
    if processors is None:
        return lambda records, row_type: [make(row_type, record) for record in records]
    values = ", ".join(f"r[{index}]" if process is None else f"p{index}(r[{index}])"
                       for index, process in enumerate(processors))
    names = {f"p{index}": process for index, process in enumerate(processors)
             if process is not None}
    source = (f"def convert(records, row_type):\n"
              f"    return [make(row_type, ({values},)) for r in records]\n")
    namespace: dict[str, Any] = {"make": make, **names}
    exec(source, namespace)  # text made above of indices only
    return namespace["convert"]


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
        # rows() runs its statements on the driver itself, but where SQLAlchemy echoes SQL.
        self.direct = asyncpg and not echo
        options: dict[str, Any] = {"echo": echo, "pool_pre_ping": not asyncpg}
        if self.dialect == "postgresql":
            # Last in, first out: at low concurrency the few connections just used are
            # used again (their statements prepared, their backends' caches warm), not
            # every connection a burst left in the pool in turn.
            # No overflow: a connection is opened when one more is needed, up to the
            # most, and then kept. An overflow connection is closed when it comes back
            # while the pool holds pool_size idle ones, and its successor opens and
            # prepares every statement again: at 16 dashboards at once that churn (36-41
            # connections opened in 8 s) held them to 21 req/s, against 25 without it.
            options.update(pool_size=2 * pool_size + DRIVER_KEPT, max_overflow=0,
                           pool_use_lifo=True)
        self.engine: AsyncEngine = self._engine(options, asyncpg)
        self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        # Reads whose best plan depends on their values (plans' sums over months and
        # accounts): on connections where PostgreSQL plans every run with its values. A
        # prepared statement run five times on one connection may otherwise get a
        # generic plan, fit for no values (a plan roll-up went from ~0.5 to ~1.3 s).
        self.custom_plan_engine = self.read_engine
        if asyncpg:
            custom = {**options, "connect_args": {"server_settings": {
                "plan_cache_mode": "force_custom_plan"}}}
            if self.dialect == "postgresql":
                custom.update(pool_size=2 * max(2, pool_size // 2), max_overflow=0)  # kept
            self.custom_plan_engine = self._engine(custom, asyncpg).execution_options(
                isolation_level="AUTOCOMMIT")
        self.session_factory = async_sessionmaker(self.engine, expire_on_commit=False)
        # Counts every statement sent, for tests that pin statements per request (but
        # those of a verifying second execution, server/compiled.py).
        self.statements = 0
        self.watchers: list[Callable[[str], None]] = []
        # Per-request statements' shapes compiled for the driver (tuples()), by
        # SQLAlchemy's cache key; None for a shape the driver path does not take.
        self._shapes: dict[Any, _Shape | None] = {}
        # Pool connections kept for the driver (DRIVER_KEPT), each with when it was last
        # used: the last one kept is used first.
        self._kept: list[tuple[Any, float]] = []
        self._keeping = True  # until disposed of

    def _engine(self, options: dict[str, Any], asyncpg: bool) -> AsyncEngine:
        engine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if asyncpg:
            pre_ping = _PrePing(engine.sync_engine.dialect)
            event.listen(engine.sync_engine, "checkin", pre_ping.checkin)
            event.listen(engine.sync_engine, "checkout", pre_ping.checkout)
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)
        return engine

    def _count(self, _connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self._sent(statement)

    def _sent(self, sql: str) -> None:
        """Counts a statement sent, through SQLAlchemy or the driver, and shows it to
        ``watchers`` (tests that look at the SQL sent)."""
        if not UNCOUNTED.get():
            self.statements += 1
        for watch in self.watchers:
            watch(sql)

    @asynccontextmanager
    async def read(self, *, custom_plans: bool = False) -> AsyncIterator[AsyncConnection]:
        """An AUTOCOMMIT connection for reads; ``custom_plans`` for statements whose
        best plan depends on their values (see ``custom_plan_engine``)."""
        _enlist()
        engine = self.custom_plan_engine if custom_plans else self.read_engine
        async with engine.connect() as connection:
            yield connection

    async def rows(self, read: Read, params: dict[str, Any], *, custom_plans: bool = False,
                   values: bool = False) -> list[Any]:
        """The rows of ``read``, as SQLAlchemy gives them, in a connection of its own;
        ``custom_plans`` as ``read()`` takes it. With ``values``, each row is only a
        sequence of its values, which thousands of rows make faster (Row objects cost
        about as much as the driver's decoding).

        On asyncpg the statement goes to the driver's connection, checked out of the
        pool as any other (pinged when idle long, see _PrePing), counted as any other,
        outside a transaction as AUTOCOMMIT reads are. A connection whose statement
        failed is invalidated (``_on_driver``).
        """
        if not self.direct:
            async with self.read(custom_plans=custom_plans) as connection:
                return list(await connection.execute(read.statement, params))
        _enlist()

        def fetch(driver: Any, dialect: Dialect) -> Awaitable[list[Row[Any]]]:
            statement = read.for_driver(dialect)
            self._sent(statement.sql)
            return statement.values(driver, params) if values else \
                statement.fetch(driver, params)

        if custom_plans:  # its pool's connections are none of those kept
            return await greenlet_spawn(  # type: ignore[no-any-return]
                self._on_driver, fetch, self.custom_plan_engine.sync_engine)
        return await self._driver(fetch)  # type: ignore[no-any-return]

    async def _driver(self, fetch: Callable[[Any, Dialect], Awaitable[Any] | None]) -> Any:
        """What ``fetch(driver connection, dialect)`` gives, awaited; None where it gives
        None. On a connection kept for the driver (DRIVER_KEPT) when one was used in the
        last PING_AFTER_IDLE_SECONDS and is open; else on one of the pool, checkout,
        statement and return in one greenlet (``_on_driver``).

        A connection whose statement failed (or was cancelled) is not used again but
        invalidated, whatever the error: one that PostgreSQL is shutting down may not
        be closed yet, and is still consuming its error when the next read would send
        on it.
        """
        kept = self._kept
        while kept:
            connection, since = kept.pop()
            if time.monotonic() - since < PING_AFTER_IDLE_SECONDS and \
                    not connection.driver_connection.is_closed():
                break
            # Idle for long, or closed by the server: back to the pool, whose checkout
            # pings it or replaces it (_PrePing).
            await greenlet_spawn(_give_back, connection, since)
        else:
            return await greenlet_spawn(self._on_driver, fetch)
        try:
            awaitable = fetch(connection.driver_connection, self.engine.sync_engine.dialect)
        except BaseException:  # nothing was sent: the connection is as it was
            if not self._keep(connection, since):
                await greenlet_spawn(_give_back, connection, since)
            raise
        result = None
        if awaitable is not None:
            try:
                result = await awaitable
            except BaseException:
                # In a greenlet, as SQLAlchemy invalidates: the connection is closed once
                # a cancelled statement's cancel request has reached PostgreSQL (outside
                # one, asyncpg's terminate() drops that request, the statement runs on).
                await greenlet_spawn(connection.invalidate)
                raise
        now = time.monotonic()
        if not self._keep(connection, now):  # others were kept meanwhile
            await greenlet_spawn(_give_back, connection, now)
        return result

    def _keep(self, connection: Any, since: float) -> bool:
        """Keeps ``connection``, unused since ``since``, for the driver; False when
        DRIVER_KEPT are kept already or the database is disposed of."""
        if self._keeping and len(self._kept) < DRIVER_KEPT:
            self._kept.append((connection, since))
            return True
        return False

    def _on_driver(self, fetch: Callable[[Any, Dialect], Awaitable[Any] | None],
                   engine: Engine | None = None) -> Any:
        """``_driver`` on a connection of the pool (of ``engine``, the read engine's
        unless given), in a greenlet (``greenlet_spawn``), as SQLAlchemy runs an execute:
        a Connection (or an AsyncConnection) and a greenlet for each step cost more than
        the statement itself. A connection of the read engine is then kept for the
        driver if fewer than DRIVER_KEPT are."""
        keeps = engine is None
        engine = self.engine.sync_engine if engine is None else engine
        connection = engine.pool.connect()  # the dialect has met the server from here on
        kept = False
        try:
            awaitable = fetch(connection.driver_connection, engine.dialect)
            if awaitable is None:
                result = None
            else:
                try:
                    result = await_only(awaitable)
                except BaseException:
                    connection.invalidate()
                    raise
            kept = keeps and self._keep(connection, time.monotonic())
            return result
        finally:
            if not kept:
                connection.close()

    def in_use(self) -> int:
        """Connections of the pool checked out, but those kept for the driver."""
        return int(self.engine.sync_engine.pool.checkedout()) - len(self._kept)

    async def tuples(self, statement: Select[Any], row_type: type[Any]) -> list[Any]:
        """The rows of a statement built per request (a page), each made a ``row_type``
        (a tuple subclass, a named tuple of the statement's columns) of its values.

        On asyncpg the statement goes to the driver as ``rows()`` sends a Read, compiled
        once per shape: SQLAlchemy's execution and its Rows cost more than the driver's
        decoding of a page of 10,000 rows. A statement SQLAlchemy cannot cache, or one
        that expands lists into its text at each run (IN), takes SQLAlchemy's path.
        """
        if self.direct:
            key = statement._generate_cache_key()
            if key is not None and self._shapes.get(key.key, True) is not None:
                _enlist()
                rows = await self._tuples_on_driver(statement, key, row_type)
                if rows is not None:
                    return rows
        async with self.read() as connection:
            result = await connection.execute(statement)
            make = tuple.__new__
            return [make(row_type, row) for row in result.all()]

    async def _tuples_on_driver(self, statement: Select[Any], key: Any,
                                row_type: type[Any]) -> list[Any] | None:
        def fetch(driver: Any, dialect: Dialect) -> Awaitable[list[Any]] | None:
            shape = self._shape(statement, key, dialect)
            if shape is None:
                return None
            self._sent(shape.sql)
            return shape.fetch_as(driver, key, row_type)

        return await self._driver(fetch)  # type: ignore[no-any-return]

    def _shape(self, statement: Select[Any], key: Any, dialect: Dialect) -> _Shape | None:
        shapes = self._shapes
        if key.key in shapes:
            return shapes[key.key]
        compiled = statement.compile(dialect=dialect, cache_key=key)
        shape = None if compiled.post_compile_params or compiled.literal_execute_params \
            else _Shape(compiled, dialect)
        if len(shapes) >= SHAPE_CACHE_SIZE:
            del shapes[next(iter(shapes))]
        shapes[key.key] = shape
        return shape

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
        self._keeping = False  # reads still running give theirs back
        kept, self._kept = self._kept, []
        for connection, since in kept:
            await greenlet_spawn(_give_back, connection, since)
        await self.engine.dispose()
        if self.custom_plan_engine is not self.read_engine:
            await self.custom_plan_engine.dispose()
