"""What the lean request path keeps across requests must not change an answer: a
verified token still expires, statements built once still apply each viewer's policy,
rows the driver reads are those SQLAlchemy would give, and a pooled connection the
server closed is replaced without a round trip per checkout (issue 9)."""

from __future__ import annotations

import asyncio
import time
from collections import namedtuple
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest
from aiodataloader import DataLoader
from graphql import GraphQLInt, GraphQLString
from graphql.language.ast import DocumentNode
from sqlalchemy import Integer, bindparam, event, func, literal, select, text

from loaders import planning
from loaders.accounts import AccountByIdLoader
from loaders.base import KEYS, ChildPageLoader, Joined, RowByIdLoader
from loaders.container import Loaders
from loaders.planning import ALL_FIGURES, PlanQuery, plan_figures
from loaders.pricing import OFFERING_AREAS
from loaders.query import Page, PageArgs, fetch_child_pages, fetch_page
from loaders.users import ACCOUNTS, UserByIdLoader
from models.db import Database, Read
from models.users import Role, Viewer
from resolvers.users import VIEWER_BY_ID, find_user_id_by_email, load_viewer
from schema.planning import PlanRow
from schema.root import NODE_TYPES
from schema.rows import load_all, reads, using
from schema.scalars import EXACT_OUTPUT_INPUTS
from server import compiled
from server import graphql as graphql_server
from server.demo import DEMO_EMAILS, seed_demo
from server.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import Org, gid, make_account, make_org, share
from tests.graphql_client import GraphQLClient
from tests.test_timeouts import app_with, eventually, holding, post, quiet, token

ROOT = Path(__file__).resolve().parent.parent
VIEWER = "{ viewer { name } }"
ACCOUNT = "query($id: ID!) { account(id: $id) { name owner { name } } }"


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


async def test_a_document_is_validated_once_for_every_request_sending_it(
        client: GraphQLClient, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation cache knows a parsed document by identity, not by hashing every
    node of it at each request; a document it has not seen is validated, once."""
    validated: list[Any] = []
    real = graphql_server.validate_document

    def counting(schema: Any, document: Any, rules: Any) -> Any:
        validated.append(document)
        return real(schema, document, rules)

    hashed: list[Any] = []
    real_hash = DocumentNode.__hash__

    def hash_counted(document: Any) -> int:
        hashed.append(document)
        return real_hash(document)

    monkeypatch.setattr(graphql_server, "validate_document", counting)
    monkeypatch.setattr(DocumentNode, "__hash__", hash_counted)
    once = "{ validatedOnce: viewer { name } }"  # a text no other test sends
    for _ in range(3):
        assert await client.query(once, as_user=org.rep_a1) == {
            "validatedOnce": {"name": "Rep A1"}}
    assert hashed == []
    assert len(validated) == 1
    errors = await client.errors("{ validatedOnce: viewer { nosuch } }", as_user=org.rep_a1)
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    await client.errors("{ validatedOnce: viewer { nosuch } }", as_user=org.rep_a1)
    assert len(validated) == 2


async def test_a_token_accepted_before_expires_like_any_other(client: GraphQLClient,
                                                               org: Org) -> None:
    # Past its exp but within the 30 s of leeway: accepted for a few seconds more.
    token = client.app.state.authenticator.mint(org.rep_a1.id, ttl_seconds=-27)
    assert await client.query(VIEWER, token=token) == {"viewer": {"name": "Rep A1"}}
    assert await client.query(VIEWER, token=token) == {"viewer": {"name": "Rep A1"}}
    expires = jwt.decode(token, TEST_SECRET, algorithms=["HS256"],
                         options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires + 30 - time.time()) + 0.2)

    response = await client.post(VIEWER, token=token)
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "the token has expired"


async def test_a_token_refused_stays_refused(client: GraphQLClient, org: Org) -> None:
    token = client.app.state.authenticator.mint(org.rep_a1.id)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(2):
        response = await client.post(VIEWER, token=forged)
        assert response.status_code == 401
        assert response.json()["errors"][0]["message"] == "the token is not valid"


async def test_rows_by_id_follow_each_viewers_policy(client: GraphQLClient, org: Org) -> None:
    shared = await make_account(client.db, org.rep_a1, name="Shared")
    private = await make_account(client.db, org.rep_a1, name="Private")
    await share(client.db, shared, org.partner_org)
    # In turn, so each viewer's statement is built once and then reused.
    for _ in range(2):
        for account, partner_sees in ((shared, True), (private, False)):
            variables = {"id": gid(account)}
            seen = {"name": account.name, "owner": {"name": "Rep A1"}}
            assert await client.query(ACCOUNT, variables, as_user=org.admin) == {
                "account": seen}
            assert await client.query(ACCOUNT, variables, as_user=org.partner) == {
                "account": seen if partner_sees else None}


def _loader_classes() -> list[type[RowByIdLoader]]:
    found: list[type[RowByIdLoader]] = []
    pending = [RowByIdLoader]
    while pending:
        for subclass in pending.pop().__subclasses__():
            found.append(subclass)
            pending.append(subclass)
    return found


def _shown(rows: list[Any]) -> list[Any]:
    # repr: a Decimal's digits and a value's type count, not only equality.
    return [(row._fields, repr(tuple(row)), {key: repr(value) for key, value in
                                               row._mapping.items()}) for row in rows]


async def test_rows_read_by_the_driver_are_those_sqlalchemy_reads(db: Database) -> None:
    if not db.direct:
        pytest.skip("only asyncpg reads rows on the driver")
    assert NODE_TYPES  # every area's loaders are imported
    await seed_demo(db)
    viewers = [await load_viewer(db, await find_user_id_by_email(db, DEMO_EMAILS[role]))
               for role in Role]
    assert all(viewers)
    async with db.read() as connection:
        for user in viewers:
            expected = list(await connection.execute(VIEWER_BY_ID.statement,
                                                     {"user_id": user.user_id}))
            assert _shown(await db.rows(VIEWER_BY_ID, {"user_id": user.user_id})) == \
                _shown(expected)
        for loader_class in _loader_classes():
            table = loader_class.table
            ids = [*(await connection.execute(select(table.c.id))).scalars(), 0]
            for viewer in viewers:
                read = Loaders(db, viewer).get(loader_class).statement()
                expected = list(await connection.execute(read.statement, {KEYS: ids}))
                rows = await db.rows(read, {KEYS: ids})
                assert _shown(rows) == _shown(expected), (loader_class, viewer.role)
                values = await db.rows(read, {KEYS: ids}, values=True)
                assert [repr(tuple(row)) for row in values] == \
                    [repr(tuple(row)) for row in expected], loader_class
                assert rows or ids == [0] or viewer.role is Role.PARTNER, loader_class


async def test_an_account_and_its_owner_are_read_in_one_statement(client: GraphQLClient,
                                                                  org: Org) -> None:
    """The account's loader reads its owner in its own statement: the viewer's and
    that one. A partner's users policy reads the accounts shared with it, which a join
    with the account would change: its owner has a statement of its own."""
    shared = await make_account(client.db, org.rep_a1, name="Shared")
    await share(client.db, shared, org.partner_org)
    seen = {"account": {"name": "Shared", "owner": {"name": "Rep A1"}}}
    for _ in range(2):  # built, then reused
        assert await client.counted(ACCOUNT, {"id": gid(shared)}, as_user=org.admin) == \
            (seen, 2)
        assert await client.counted(ACCOUNT, {"id": gid(shared)}, as_user=org.partner) == \
            (seen, 3)
    # Without the owner there is nothing to join: the same two statements.
    bare = "query($id: ID!) { account(id: $id) { name } }"
    assert (await client.counted(bare, {"id": gid(shared)}, as_user=org.admin))[1] == 2


async def test_a_level_with_one_thing_to_wait_for_awaits_it_in_the_requests_task(
        client: GraphQLClient, org: Org) -> None:
    """A compiled plan's level with one resolver or one batch to wait for (the account,
    then its owner) awaits it in the task running the request: gather would run each in
    a task of its own, three more turns of the event loop each."""
    account = await make_account(client.db, org.rep_a1, name="Alone")
    made: list[str] = []

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        made.append(f"{coro.cr_code.co_filename}:{coro.__qualname__}")
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop = asyncio.get_running_loop()
    loop.set_task_factory(counting)
    try:
        data = await client.query(ACCOUNT, {"id": gid(account)}, as_user=org.admin)
    finally:
        loop.set_task_factory(None)
    assert data == {"account": {"name": "Alone", "owner": {"name": "Rep A1"}}}
    resolvers = (str(ROOT / "schema"), str(ROOT / "resolvers"))
    assert any("within_limits" in name for name in made), made  # the count sees tasks
    assert [name for name in made if name.startswith(resolvers)] == []


def _joins() -> list[tuple[type[RowByIdLoader], str, type[RowByIdLoader]]]:
    """Each loader of rows by id, with each column of its table that names a row of
    another such loader's table."""
    by_table = {loader_class.table: loader_class for loader_class in _loader_classes()}
    return [(loader_class, key.parent.key, by_table[key.column.table])
            for loader_class in _loader_classes()
            for key in sorted(loader_class.table.foreign_keys, key=lambda k: k.parent.key)
            if key.column.key == "id" and key.column.table in by_table]


async def test_rows_a_join_reads_are_those_each_loader_reads_alone(db: Database) -> None:
    """For every viewer, every loader of rows by id joined with every loader its table
    refers to: its own rows are those its statement reads alone, and the joined rows
    made known to the other loader are those that loader's statement reads (None
    where it reads none). Joins that would change a policy are not made."""
    assert NODE_TYPES  # every area's loaders are imported
    await seed_demo(db)
    viewers = [await load_viewer(db, await find_user_id_by_email(db, DEMO_EMAILS[role]))
               for role in Role]
    joins = _joins()
    made: set[tuple[Any, ...]] = set()
    async with db.read() as connection:
        for viewer in viewers:
            assert viewer is not None
            for parent_class, column, child_class in joins:
                loaders = Loaders(db, viewer)
                parent, child = loaders.get(parent_class), loaders.get(child_class)
                ids = [*(await connection.execute(select(parent_class.table.c.id))).scalars(),
                       0]
                alone_by_id = {row.id: row for row in await connection.execute(
                    parent.statement().statement, {KEYS: ids})}
                alone = [alone_by_id[key] for key in ids if key in alone_by_id]
                parent.join(column, child)
                rows = [row for row in await parent.batch_load_fn(ids) if row is not None]
                assert _shown(rows) == _shown(alone), (parent_class, column, viewer.role)
                if parent.joined_statement() is None:
                    assert child.known == {}
                    continue
                made.add((parent_class, column, child_class, viewer.role))
                keys = sorted({getattr(row, column) for row in alone} - {None})
                read = child.statement().statement
                by_id = {row.id: row for row in await connection.execute(read, {KEYS: keys})}
                assert sorted(child.known) == keys
                for key in keys:
                    assert _shown([child.known[key]] if child.known[key] else []) == \
                        _shown([by_id[key]] if key in by_id else []), (parent_class, column)
    assert (AccountByIdLoader, "owner_id", UserByIdLoader, Role.ADMIN) in made
    assert (AccountByIdLoader, "owner_id", UserByIdLoader, Role.PARTNER) not in made


def test_a_loader_that_reads_its_rows_its_own_way_is_not_joined(
        monkeypatch: pytest.MonkeyPatch) -> None:
    admin = Viewer(user_id=1, email="a@example.com", name="A", role=Role.ADMIN,
                   team_id=None, partner_org_id=None)
    owners = (("owner_id", UserByIdLoader),)
    assert Joined.build(AccountByIdLoader, admin, "postgresql", owners) is not None
    monkeypatch.setattr(UserByIdLoader, "statement",
                        lambda self: RowByIdLoader.statement(self))
    assert Joined.build(AccountByIdLoader, admin, "postgresql", owners) is None


def _child_page_loaders() -> list[type[ChildPageLoader]]:
    found: list[type[ChildPageLoader]] = []
    pending: list[type[ChildPageLoader]] = [ChildPageLoader]
    while pending:
        for subclass in pending.pop().__subclasses__():
            if hasattr(subclass, "parent_column"):
                found.append(subclass)
            pending.append(subclass)
    return found


def _shown_pages(pages: list[Page]) -> list[Any]:
    return [(page.has_next, page.has_previous,
             [(type(row).__name__, row._fields, repr(tuple(row))) for row in page.rows])
            for page in pages]


async def test_pages_read_by_the_driver_are_those_sqlalchemy_reads(db: Database) -> None:
    """Pages (per parent, and at the root) go to the driver compiled once per shape,
    with each statement's own values: every child page loader, for every role, pages
    of two sizes, an overlapping set of parents and a second page by cursor give the
    rows SQLAlchemy gives, row types and values' reprs included."""
    if not db.direct:
        pytest.skip("only asyncpg reads rows on the driver")
    await seed_demo(db)
    viewers = [await load_viewer(db, await find_user_id_by_email(db, DEMO_EMAILS[role]))
               for role in Role]
    plain = Database(db.url)
    plain.direct = False  # SQLAlchemy's execution and Rows, as before the driver path
    shapes = len(db._shapes)
    try:
        for loader_class in _child_page_loaders():
            parent = loader_class.parent_column
            async with db.read() as connection:
                parents = sorted((await connection.execute(
                    select(parent).where(parent.is_not(None)).distinct())).scalars())
            assert parents, loader_class
            for viewer in viewers:
                loaders = Loaders(db, viewer, max_page_size=1000)
                for args, ids in ((PageArgs(first=2), [*parents, 0]),
                                  (PageArgs(first=1), parents[::2]),
                                  (PageArgs(first=2), parents[1:] or parents)):
                    loader = loader_class(loaders, args, None, None)
                    pages = await fetch_child_pages(db, loader.statement, parent, ids,
                                                    loader.window)
                    assert _shown_pages(pages) == _shown_pages(await fetch_child_pages(
                        plain, loader.statement, parent, ids, loader.window)), loader_class
                    root = await fetch_page(db, loader.statement, loader.window)
                    assert _shown_pages([root]) == _shown_pages(
                        [await fetch_page(plain, loader.statement, loader.window)])
                    page = next((page for page in pages if page.has_next), None)
                    if page is None:
                        continue
                    after = PageArgs(first=3, after=page.cursor(page.rows[-1]))
                    loader = loader_class(loaders, after, None, None)
                    assert _shown_pages(await fetch_child_pages(
                        db, loader.statement, parent, ids, loader.window)) == _shown_pages(
                        await fetch_child_pages(plain, loader.statement, parent, ids,
                                                loader.window)), loader_class
    finally:
        await plain.dispose()
    assert len(db._shapes) > shapes  # the driver path was taken


async def test_a_read_on_the_driver_is_cancelled_in_postgresql_too(
        settings: Settings, db: Database, org: Org) -> None:
    if not db.direct:
        pytest.skip("only asyncpg reads rows on the driver")
    account = await make_account(db, org.rep_a1)
    async with app_with(settings, request_timeout=0.5) as app:
        # The viewer is read; the account then waits for the lock until the timeout.
        async with holding(db, "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE") as holder:
            response = await post(app, ACCOUNT, {"id": gid(account)}, token(app, org.rep_a1))
            await quiet(db, holder)
            assert app.state.db.in_use() == 0
        assert response.status_code == 504, response.text
        served = await post(app, ACCOUNT, {"id": gid(account)}, token(app, org.rep_a1))
    assert served.json()["data"]["account"] == {"name": account.name,
                                                "owner": {"name": "Rep A1"}}


async def _backend_pid(db: Database) -> int:
    async with db.read() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_the_server_closed_is_replaced(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("a SQLite file has no server to close connections")
    async with db.read() as first, db.read() as second:
        pids = [(await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                for connection in (first, second)]
    killer = Database(db.url)
    try:
        async with killer.read() as connection:
            for pid in pids:
                await connection.execute(text("SELECT pg_terminate_backend(:pid)"),
                                         {"pid": pid})
    finally:
        await killer.dispose()
    await asyncio.sleep(0.2)  # asyncpg hears the sockets close

    # No error: the closed connections are dropped at checkout, new ones opened.
    for _ in range(3):
        assert await _backend_pid(db) not in pids


async def test_a_connection_idle_for_long_is_pinged(db: Database,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite connections are pinged by SQLAlchemy itself")
    await _backend_pid(db)
    monkeypatch.setattr("models.db.PING_AFTER_IDLE_SECONDS", 0.0)
    pid = await _backend_pid(db)
    assert await _backend_pid(db) == pid  # pinged, alive, reused


async def test_a_connection_whose_read_failed_on_the_driver_is_not_reused(
        db: Database) -> None:
    """One PostgreSQL is shutting down may not be closed yet when the next checkout
    would send on it (asyncpg: "cannot switch to state ...; another operation is in
    progress"): whatever the error, the connection is replaced."""
    if not db.direct:
        pytest.skip("only asyncpg reads rows on the driver")
    backend = Read(select(func.pg_backend_pid().label("pid")))
    failing = Read(select((literal(1) / bindparam("zero", type_=Integer)).label("q")))
    [(pid,)] = await db.rows(backend, {})
    [(again,)] = await db.rows(backend, {})
    assert again == pid  # one connection in the pool, reused
    with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
        await db.rows(failing, {"zero": 0})
    [(replaced,)] = await db.rows(backend, {})
    assert replaced != pid
    assert db.in_use() == 0


BACKEND = Read(select(func.pg_backend_pid().label("pid")))


async def test_reads_on_the_driver_keep_their_connection_out_of_the_pool(
        db: Database) -> None:
    """Reads by id and pages run on a connection kept for the driver: after the first,
    no checkout from the pool (a greenlet and the pool's checkout and checkin cost more
    than the statement); the connection is the same, and counted as none in use."""
    if not db.direct:
        pytest.skip("only asyncpg reads rows on the driver")
    checkouts: list[object] = []
    event.listen(db.engine.sync_engine, "checkout", lambda *args: checkouts.append(args))
    [(pid,)] = await db.rows(BACKEND, {})
    assert len(checkouts) == 1
    for _ in range(5):
        assert await db.rows(BACKEND, {}) == [(pid,)]
    assert len(checkouts) == 1
    assert db.in_use() == 0
    assert db.engine.pool.checkedout() == 1  # the one kept


async def test_a_kept_connection_stays_when_nothing_was_sent_on_it(db: Database) -> None:
    """A read that fails before it sends anything (a Read that the driver cannot take)
    leaves the kept connection as it was, for the next read."""
    if not db.direct:
        pytest.skip("only asyncpg reads rows on the driver")
    [(pid,)] = await db.rows(BACKEND, {})
    listed = Read(select(func.pg_backend_pid()).where(literal(1).in_([1, 2])))
    with pytest.raises(ValueError, match="arrays"):
        await db.rows(listed, {})
    assert await db.rows(BACKEND, {}) == [(pid,)]
    assert db.in_use() == 0


async def test_nothing_is_kept_once_the_database_is_disposed_of(db: Database) -> None:
    if not db.direct:
        pytest.skip("only asyncpg reads rows on the driver")
    await db.rows(BACKEND, {})
    assert db.engine.pool.checkedout() == 1
    await db.dispose()
    assert db.engine.pool.checkedout() == 0
    await db.rows(BACKEND, {})  # a read still running as the server stops
    assert db.engine.pool.checkedout() == 0


async def test_a_kept_connection_the_server_closed_is_replaced(db: Database) -> None:
    if not db.direct:
        pytest.skip("only asyncpg reads rows on the driver")
    [(pid,)] = await db.rows(BACKEND, {})
    async with db.read() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await asyncio.sleep(0.2)  # asyncpg hears the socket close
    [(replaced,)] = await db.rows(BACKEND, {})  # no error
    assert replaced != pid
    assert db.in_use() == 0


async def test_a_kept_connection_idle_for_long_is_pinged_by_the_pool(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """One unused for PING_AFTER_IDLE_SECONDS goes back to the pool as unused since
    then, and the pool's checkout pings it before it is used again."""
    if not db.direct:
        pytest.skip("only asyncpg reads rows on the driver")
    [(pid,)] = await db.rows(BACKEND, {})
    [(kept, _since)] = db._kept
    db._kept[:] = [(kept, time.monotonic() - 60)]  # as if unused for a minute
    dialect = db.engine.sync_engine.dialect
    pings: list[object] = []
    ping = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda connection: (
        pings.append(connection), ping(connection))[1])
    assert await db.rows(BACKEND, {}) == [(pid,)]  # pinged, alive, used again
    assert len(pings) == 1
    assert await db.rows(BACKEND, {}) == [(pid,)]  # kept again, used moments ago
    assert len(pings) == 1


async def test_plans_read_where_each_run_is_planned_for_its_values(db: Database) -> None:
    """Plans' sums run on connections where PostgreSQL plans every run with its values:
    a prepared statement run five times on one connection may otherwise get a generic
    plan, fit for no values. Other reads keep PostgreSQL's default."""
    if not db.direct:
        pytest.skip("PostgreSQL through asyncpg only")
    show = text("SHOW plan_cache_mode")
    async with db.read(custom_plans=True) as connection:
        assert (await connection.execute(show)).scalar() == "force_custom_plan"
    async with db.read() as connection:
        assert (await connection.execute(show)).scalar() == "auto"


PLAN_CACHE_MODE = Read(select(func.current_setting("plan_cache_mode").label("mode")))


async def test_reads_on_the_driver_planned_for_their_values_are_too(db: Database) -> None:
    """``rows(custom_plans=True)`` sends its statement on a connection of the custom
    plans' pool, given back at once: none of the connections kept for the driver."""
    if not db.direct:
        pytest.skip("PostgreSQL through asyncpg only")
    assert await db.rows(PLAN_CACHE_MODE, {}, custom_plans=True) == [("force_custom_plan",)]
    assert db.custom_plan_engine.pool.checkedout() == 0
    assert db._kept == []
    assert await db.rows(PLAN_CACHE_MODE, {}) == [("auto",)]


async def test_plans_read_by_the_driver_are_those_sqlalchemy_reads(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan of accounts given by id sends its statements, built once for their shape,
    through the driver (SQLAlchemy executes none of them), and its figures are those the
    same statements give through SQLAlchemy: every figure, some (the others' cells
    found by the keys' statement), and only some offering areas."""
    await seed_demo(db)
    async with db.read() as connection:
        accounts = tuple((await connection.execute(select(ACCOUNTS.c.id))).scalars())
        areas = tuple((await connection.execute(
            select(OFFERING_AREAS.c.id).order_by(OFFERING_AREAS.c.id))).scalars())
    assert len(areas) >= 2
    executed: list[str] = []
    event.listen(db.custom_plan_engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cursor, sql, *_args: executed.append(sql))
    for figures, area_ids, shown in ((ALL_FIGURES, None, areas),
                                     (frozenset({"budget"}), None, areas[:1]),
                                     (frozenset({"billed", "won"}), areas[1:], areas[1:])):
        query = PlanQuery(accounts=accounts, first=date(2025, 1, 1), last=date(2027, 12, 31),
                          currency="EUR", timezone="Europe/Berlin", figures=figures,
                          area_ids=area_ids, shown_areas=shown)
        before = db.statements
        executed.clear()
        by_driver = await plan_figures(db, query)
        sent = db.statements - before
        assert sent >= 1
        if db.direct:
            assert executed == []
        uncached = planning._statements(query, len(by_driver.months), db.dialect)
        assert not isinstance(uncached.sums[0][1], Read)
        with monkeypatch.context() as patched:
            patched.setattr(planning, "_cached_statements",
                            lambda *_args, sums=uncached: sums)
            by_sqlalchemy = await plan_figures(db, query)
        assert db.statements - before == 2 * sent
        assert by_driver.groups, figures
        assert _cells(by_driver) == _cells(by_sqlalchemy), figures


async def _budget_plan(db: Database) -> PlanQuery:
    """A plan of every account's budgets only: the other figures' cells are found by
    the keys' statement, which reads no budgets."""
    await seed_demo(db)
    async with db.read() as connection:
        accounts = tuple((await connection.execute(select(ACCOUNTS.c.id))).scalars())
    return PlanQuery(accounts=accounts, first=date(2025, 1, 1), last=date(2027, 12, 31),
                     currency="EUR", timezone="Europe/Berlin", figures=frozenset({"budget"}))


async def test_a_plans_keys_are_read_beside_its_sums(db: Database) -> None:
    """The statement finding the cells of the figures not read runs beside the sums,
    on a connection of its own: sent while the sums wait for a lock on budgets."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one connection at a time")
    query = await _budget_plan(db)
    expected = _cells(await plan_figures(db, query))
    sent: list[str] = []
    async with holding(db, "LOCK TABLE budgets IN ACCESS EXCLUSIVE MODE"):
        db.watchers.append(sent.append)
        planned = asyncio.ensure_future(plan_figures(db, query))
        await eventually(lambda: _true(len(sent) == 2), "both statements sent")
        assert not planned.done()
    assert _cells(await planned) == expected
    assert db.in_use() == 0


async def test_a_plan_cancelled_cancels_its_keys_statement_too(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one connection at a time")
    query = await _budget_plan(db)
    sent: list[str] = []
    async with holding(db, "LOCK TABLE budgets IN ACCESS EXCLUSIVE MODE",
                       "LOCK TABLE forecasts IN ACCESS EXCLUSIVE MODE") as holder:
        db.watchers.append(sent.append)
        planned = asyncio.ensure_future(plan_figures(db, query))
        await eventually(lambda: _true(len(sent) == 2), "both statements sent")
        planned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await planned
        await quiet(db, holder)  # neither statement waits on its lock any more
    assert db.in_use() == 0
    assert db.custom_plan_engine.pool.checkedout() == 0


async def _true(value: bool) -> bool:
    return value


def _cells(figures: planning.PlanFigures) -> dict[Any, planning.GroupFigures]:
    return figures.groups


async def _burst(connect: Callable[[], Any], size: int) -> set[int]:
    """The backends of ``size`` connections held at once (``connect()`` gives each), all
    given back together."""
    held: list[int] = []
    all_held, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with connect() as connection:
            held.append((await connection.execute(select(func.pg_backend_pid()))).scalar())
            if len(held) == size:
                all_held.set()
            await release.wait()

    burst = [asyncio.create_task(hold()) for _ in range(size)]
    await asyncio.wait_for(all_held.wait(), 10)
    release.set()
    await asyncio.gather(*burst)
    return set(held)


async def test_the_pool_hands_out_the_connection_returned_last(db: Database) -> None:
    """After a burst, reads one at a time go on the connection used last, not on each
    connection the burst left in the pool in turn."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has no pool of server connections")
    await _burst(db.read, 3)
    pids = {await _backend_pid(db) for _ in range(5)}
    assert len(pids) == 1, pids


async def test_connections_a_burst_opened_are_kept_for_the_next(db: Database) -> None:
    """A burst that needs more connections than the pool held opens them, up to the
    most, and they stay open for the next burst: none is closed as it comes back and
    opened again (preparing every statement anew) when the load rises once more."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has no pool of server connections")
    small = Database(db.url, pool_size=2)
    try:
        # The most of each pool: twice the pool size and the driver's two; the plans'
        # pool twice half the pool size, at least two.
        for engine, most in ((small.read_engine, 6), (small.custom_plan_engine, 4)):
            first = await _burst(engine.connect, most)
            assert engine.pool.checkedin() == most, engine.pool.status()
            assert await _burst(engine.connect, most) == first  # none reopened
    finally:
        await small.dispose()


def test_rows_known_already_are_loaded_without_waiting_a_turn_of_the_loop() -> None:
    """A to-one field whose rows another statement read (an account's owner) has them
    at once: gather would wait a turn of the event loop to hear its futures were done.
    Rows still to read are waited for, and a known error is raised as gather raises it."""

    async def run() -> None:
        async def batch(keys: list[int]) -> list[Any]:
            return [f"row {key}" for key in keys]

        loader = DataLoader(batch)
        loader.prime(1, "one").prime(2, "two")
        step = load_all(loader, [2, 1])
        with pytest.raises(StopIteration) as done:
            step.send(None)  # finished in its first step: it never waited
        assert done.value.value == ["two", "one"]
        assert await load_all(loader, [1, 3]) == ["one", "row 3"]
        loader.prime(4, ValueError("gone"))
        with pytest.raises(ValueError, match="gone"):
            await load_all(loader, [1, 4])

    asyncio.run(run())


def test_a_leaf_of_the_type_its_coercion_takes_is_coerced_without_further_tests(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled plan trusts a coercion of a value of exactly the type it is listed
    for (compiled._EXACT_INPUTS) never to give null: one test and one call per leaf.
    Any other value still has every test, and a failed coercion leaves the object to
    the general path (None), which places and reports the error."""
    trusting = _trusted_null_coercion(monkeypatch)
    complete = compiled._leaves_function([("amount", _Reader("amount"), trusting, True)])
    assert complete.from_row({"amount": 7}) == {"amount": None}  # trusted, not tested
    assert complete.from_row({"amount": True}) is None  # a bool: tested, failed
    assert complete.from_row({"amount": None}) == {"amount": None}

    ours = EXACT_OUTPUT_INPUTS_BY_TYPE
    as_text = compiled._leaves_function([
        ("on", _Reader("on"), ours[date], False),
        ("amount", _Reader("amount"), ours[Decimal], True),
        ("count", _Reader("count"), GraphQLInt.coerce_output_value, True)])
    assert as_text.from_row({"on": date(2026, 3, 1), "amount": Decimal("1.50"),
                             "count": 3}) == {"on": "2026-03-01", "amount": "1.50",
                                              "count": 3}
    assert as_text.from_row({"on": None, "amount": None, "count": None}) is None
    assert as_text.from_row({"on": date(2026, 3, 1), "amount": None,
                             "count": 2**40}) is None  # out of Int's range: reported


EXACT_OUTPUT_INPUTS_BY_TYPE = {exact: coerce for coerce, exact in EXACT_OUTPUT_INPUTS.items()}


class _Reader:
    def __init__(self, key: str) -> None:
        self.read = itemgetter(key)

    def __call__(self, item: Any) -> Any:
        return self.read(item)


def _trusted_null_coercion(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An Int-like coercion that gives null for every value, listed as exact for int:
    the fast path shows by keeping that null where the general path would not."""

    def coerce(value: Any) -> Any:
        return None

    monkeypatch.setitem(compiled._EXACT_INPUTS, coerce, int)
    return coerce


def test_a_plans_figures_are_kept_by_figure_and_cell() -> None:
    """_add_sums: a single figure's rows of one cell add up (a null one as zero); a
    statement of several figures sets each; the cells of the figures not read are
    FOUND, and cell_keys gives every cell of a group."""
    groups: dict[Any, planning.GroupFigures] = {}
    planning._add_sums(groups, ("budget",), [
        (1, 0, 10, "100.5000"), (1, 0, 10, "20.0000"), (1, 0, 10, None), (1, 1, 10, None),
        (2, 0, None, "3.0000"), (1, None, 10, "999.0000")])
    planning._add_sums(groups, ("open_pipeline", "weighted_pipeline"), [
        (2, 0, None, "50.0000", "12.50"), (1, 2, 11, None, "0.00")])
    assert groups == {
        1: {"budget": {(0, 10): Decimal("120.5"), (1, 10): Decimal(0)},
            "open_pipeline": {(2, 11): Decimal(0)},
            "weighted_pipeline": {(2, 11): Decimal(0)}},
        2: {"budget": {(0, None): Decimal(3)}, "open_pipeline": {(0, None): Decimal(50)},
            "weighted_pipeline": {(0, None): Decimal("12.5")}}}
    groups[1][planning.FOUND] = {(3, 12): None}
    assert planning.cell_keys(groups[1]) == {(0, 10), (1, 10), (2, 11), (3, 12)}


def test_a_plain_read_of_a_row_is_written_into_the_plans_code() -> None:
    """A column read by name (reads(name="column")) and a plan line's key are read by
    the compiled leaves' code itself, not through a call of the read function."""
    assert reads(title="name", total=using("amount")(lambda row: row.amount)).inline == {
        "title": "row.name"}
    assert PlanRow._reads.inline["budget"] == "row['budget']"

    def never(row: Any) -> Any:
        raise AssertionError("read through its function")

    complete = compiled._leaves_function([
        ("title", compiled._row_getter("title", never, "row.name"),
         GraphQLString.coerce_output_value, False),
        ("budget", compiled._row_getter("budget", never, "row.amount"),
         EXACT_OUTPUT_INPUTS_BY_TYPE[Decimal], True)])
    row = namedtuple("row", "name amount")("Acme", Decimal("2.50"))
    assert complete.from_row(row) == {"title": "Acme", "budget": "2.50"}
