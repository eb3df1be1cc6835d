"""REQUEST_TIMEOUT and client disconnects: the request is cancelled with its database
work, and nothing it half-did is kept.

On PostgreSQL a request is made slow honestly: a second connection holds a lock the
request's SQL must wait for. pg_stat_activity then shows whether a cancelled
request's statement really stopped in the server, not only in Python. Waits here
poll the database for a state; nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette

from loaders.ids import encode_id
from models.db import Database
from server.app import create_app
from server.settings import Settings
from tests.databases import POSTGRES_URL, scratch_database
from tests.factories import (
    Org,
    gid,
    make_account,
    make_contact,
    make_opportunity,
    make_org,
    make_pipeline,
)
from tests.processes import run, server_env, serving

GRAPHQL_RESPONSE = "application/graphql-response+json"
MEDIA = [GRAPHQL_RESPONSE, "application/json"]

UPDATE = """mutation Update($input: UpdateAccountInput!) {
  updateAccount(input: $input) { account { id industry version } userErrors { code } } }"""
MOVE = """mutation Move($input: MoveOpportunityPhaseInput!) {
  moveOpportunityPhase(input: $input) { opportunity { id version } userErrors { code } } }"""
CONTACTS = "{ accounts(first: 10) { nodes { id contacts(first: 5) { nodes { id } } } } }"
ACCOUNT = "query Account($id: ID!) { account(id: $id) { id industry version } }"

needs_postgres = pytest.mark.skipif(POSTGRES_URL is None, reason="needs TEST_DATABASE_URL")


def postgres_only(test: Any) -> Any:
    """A test of PostgreSQL's locks, run on that backend alone."""
    return needs_postgres(pytest.mark.parametrize(
        "database_url", ["postgresql"], indirect=True)(test))


# --- helpers --------------------------------------------------------------------------------


@asynccontextmanager
async def app_with(settings: Settings, **changes: Any) -> AsyncIterator[Starlette]:
    application = create_app(dataclasses.replace(settings, **changes))
    async with application.router.lifespan_context(application):
        yield application


async def post(app: Starlette, query: str, variables: dict[str, Any] | None, token: str, *,
               accept: str = GRAPHQL_RESPONSE) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="http://testserver") as http:
        # A generous bound turns a request that is never cancelled into a failure.
        return await asyncio.wait_for(http.post(
            "/graphql", json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", "Accept": accept}), 60)


def token(app: Starlette, user: Any) -> str:
    return app.state.authenticator.mint(user.id)


@asynccontextmanager
async def holding(db: Database, *statements: str) -> AsyncIterator[AsyncConnection]:
    """A transaction on a connection of its own that takes locks with ``statements``
    and keeps them until the block ends (then it commits)."""
    async with db.engine.connect() as connection:
        transaction = await connection.begin()
        for statement in statements:
            await connection.execute(text(statement))
        try:
            yield connection
        finally:
            await transaction.commit()


async def backends_at_work(db: Database, holder: AsyncConnection) -> list[dict[str, Any]]:
    """Every other session of this database that is running a statement, or waiting
    for a lock, or sitting in a transaction: the request's, if any is left."""
    holder_pid = (await holder.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with db.read() as connection:
        rows = await connection.execute(text(
            "SELECT pid, state, wait_event_type, backend_xid IS NOT NULL AS wrote, query "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND pid <> :holder AND state <> 'idle'"
        ), {"holder": holder_pid})
        return [dict(row._mapping) for row in rows]


async def eventually(probe: Callable[[], Awaitable[Any]], what: str,
                     seconds: float = 20.0) -> Any:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"never saw {what}"
        await asyncio.sleep(0.02)


async def quiet(db: Database, holder: AsyncConnection) -> None:
    """Waits until no other session works in the database, and says what was left."""
    last: list[dict[str, Any]] = []

    async def probe() -> bool:
        nonlocal last
        last = await backends_at_work(db, holder)
        return not last

    try:
        await eventually(probe, "the database quiet", seconds=10)
    except AssertionError:
        raise AssertionError(f"statements left running: {last}") from None


def waiting_on_lock(rows: list[dict[str, Any]], statement: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["wait_event_type"] == "Lock"
            and r["query"].lstrip().upper().startswith(statement)]


async def account_row(db: Database, account_id: int) -> tuple[Any, ...]:
    async with db.read() as connection:
        return tuple((await connection.execute(text(
            "SELECT industry, version FROM accounts WHERE id = :id"), {"id": account_id})).one())


async def counts(db: Database) -> tuple[int, int]:
    async with db.read() as connection:
        return tuple((await connection.execute(text(
            "SELECT (SELECT count(*) FROM phase_changes), (SELECT count(*) FROM events)"
        ))).one())  # type: ignore[return-value]


class RawRequest:
    """One HTTP request straight through the ASGI app, whose client can leave: the
    http.disconnect a server sends when the TCP connection closes."""

    def __init__(self, app: Starlette, body: dict[str, Any], token: str) -> None:
        self.app = app
        self.body = orjson.dumps(body)
        self.headers = [(b"host", b"testserver"), (b"content-type", b"application/json"),
                        (b"accept", GRAPHQL_RESPONSE.encode()),
                        (b"authorization", f"Bearer {token}".encode()),
                        (b"content-length", str(len(self.body)).encode())]
        self.sent: list[dict[str, Any]] = []
        self._left = asyncio.Event()
        self._body_sent = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/graphql",
                 "raw_path": b"/graphql", "query_string": b"", "root_path": "",
                 "headers": self.headers, "client": ("127.0.0.1", 50000),
                 "server": ("testserver", 80)}
        self.task = asyncio.create_task(self.app(scope, self._receive, self._send))

    def leave(self) -> None:
        self._left.set()

    async def finished(self) -> None:
        """The app's call returns; a generous bound turns a hang into a failure."""
        assert self.task is not None
        await asyncio.wait_for(self.task, 60)

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"),
                    None)

    async def _receive(self) -> dict[str, Any]:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self._left.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


# --- on every backend: no timing involved ----------------------------------------------------


@pytest.mark.parametrize("accept", MEDIA)
async def test_a_request_past_its_deadline_gets_504_and_changes_nothing(
    settings: Settings, db: Database, org: Org, accept: str
) -> None:
    account = await make_account(db, org.rep_a1, industry="Retail")
    # A deadline that has passed before the request's work can start: the work is
    # cancelled before it ran a statement, every time.
    async with app_with(settings, request_timeout=1e-9) as app:
        response = await post(app, UPDATE, {"input": {
            "id": gid(account), "expectedVersion": 1, "industry": "Energy"}},
            token(app, org.rep_a1), accept=accept)
        assert app.state.db.in_use() == 0

    assert response.status_code == 504
    assert response.headers["content-type"].startswith(accept)
    assert response.headers["x-request-id"]
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "REQUEST_TIMEOUT", "timeoutSeconds": 1e-9,
                                   "retryable": True}
    assert "was cancelled" in error["message"]
    assert await account_row(db, account.id) == ("Retail", 1)


async def test_a_timeout_of_zero_is_no_limit(settings: Settings, db: Database,
                                             org: Org) -> None:
    account = await make_account(db, org.rep_a1, industry="Retail")
    async with app_with(settings, request_timeout=0) as app:
        response = await post(app, UPDATE, {"input": {
            "id": gid(account), "expectedVersion": 1, "industry": "Energy"}},
            token(app, org.rep_a1))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["updateAccount"]["account"]["version"] == 2
    assert await account_row(db, account.id) == ("Energy", 2)


async def test_a_request_whose_client_left_is_not_carried_out(
    settings: Settings, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1, industry="Retail")
    async with app_with(settings) as app:
        request = RawRequest(app, {"query": UPDATE, "variables": {"input": {
            "id": gid(account), "expectedVersion": 1, "industry": "Energy"}}},
            token(app, org.rep_a1))
        request.leave()  # gone as soon as the body is read, before any statement
        request.start()
        await request.finished()
        assert app.state.db.in_use() == 0
        # The server keeps serving.
        after = await post(app, ACCOUNT, {"id": gid(account)}, token(app, org.rep_a1))
    assert request.status == 499
    assert after.json()["data"]["account"] == {"id": gid(account), "industry": "Retail",
                                               "version": 1}


# --- PostgreSQL: work that really waits in the database --------------------------------------


@postgres_only
async def test_a_mutation_waiting_on_a_lock_is_cancelled_at_the_timeout(
    settings: Settings, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1, industry="Retail")
    variables = {"input": {"id": gid(account), "expectedVersion": 1, "industry": "Energy"}}
    async with app_with(settings, request_timeout=0.5) as app:
        async with holding(db, f"SELECT id FROM accounts WHERE id = {account.id} FOR UPDATE"
                           ) as holder:
            response = await post(app, UPDATE, variables, token(app, org.rep_a1))
            # Stopped in PostgreSQL too, while the lock it waited for is still held.
            await quiet(db, holder)
            assert app.state.db.in_use() == 0
        assert response.status_code == 504, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
        assert response.json()["errors"][0]["extensions"]["retryable"] is True
        assert await account_row(db, account.id) == ("Retail", 1)
        # Retried once the lock is gone, it runs as if the first had never been sent.
        again = await post(app, UPDATE, variables, token(app, org.rep_a1))
    assert again.json()["data"]["updateAccount"] == {
        "account": {"id": gid(account), "industry": "Energy", "version": 2}, "userErrors": []}


@postgres_only
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "graphql-core"])
async def test_loaders_running_in_tasks_of_their_own_are_cancelled_too(
    settings: Settings, db: Database, org: Org, compiled: bool
) -> None:
    account = await make_account(db, org.rep_a1)
    await make_contact(db, account)
    async with app_with(settings, request_timeout=0.5, compiled_execution=compiled) as app:
        # Reads wait for nothing but an ACCESS EXCLUSIVE lock: the contacts loader,
        # batching in a task aiodataloader made, waits for this one.
        async with holding(db, "LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE") as holder:
            response = await post(app, CONTACTS, None, token(app, org.rep_a1))
            await quiet(db, holder)
            assert app.state.db.in_use() == 0
        assert response.status_code == 504, response.text
        served = await post(app, CONTACTS, None, token(app, org.rep_a1))
    assert served.json()["data"]["accounts"]["nodes"][0]["contacts"]["nodes"]


@postgres_only
async def test_a_mutation_cancelled_mid_transaction_when_its_client_leaves_keeps_nothing(
    settings: Settings, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)
    _, phases = await make_pipeline(db)
    deal = await make_opportunity(db, account, phases[0])
    before = await counts(db)
    # The move updates the opportunity, then waits to write its event to the outbox.
    async with app_with(settings, request_timeout=0) as app, \
            holding(db, "LOCK TABLE events IN EXCLUSIVE MODE") as holder:
        request = RawRequest(app, {"query": MOVE, "variables": {"input": {
            "id": gid(deal), "phaseId": gid(phases[1]), "expectedVersion": 1}}},
            token(app, org.rep_a1))
        request.start()
        # The event's insert is one statement with the outbox lock it takes first, a
        # CTE (subscriptions/outbox.py): it waits on the table's lock at its INSERT.
        [blocked] = await eventually(
            lambda: _waiting(db, holder, "WITH OUTBOX_LOCK"), "the outbox insert wait")
        assert blocked["wrote"], "the opportunity's UPDATE came first, in the transaction"
        request.leave()
        await request.finished()
        await quiet(db, holder)
        assert app.state.db.in_use() == 0
    assert request.status == 499
    async with db.read() as connection:
        row = (await connection.execute(text(
            "SELECT phase_id, version FROM opportunities WHERE id = :id"), {"id": deal.id})).one()
    assert tuple(row) == (phases[0].id, 1)
    assert await counts(db) == before


@postgres_only
async def test_a_request_stopped_after_its_commit_says_it_may_have_changed_something(
    settings: Settings, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)
    _, phases = await make_pipeline(db)
    deal = await make_opportunity(db, account, phases[0])
    move = """mutation Move($input: MoveOpportunityPhaseInput!) {
      moveOpportunityPhase(input: $input) {
        opportunity { id account { contacts(first: 1) { nodes { id } } } } } }"""
    # The move commits; reading its payload then waits for the contacts.
    async with app_with(settings, request_timeout=0.5) as app, \
            holding(db, "LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE") as holder:
        response = await post(app, move, {"input": {
            "id": gid(deal), "phaseId": gid(phases[1]), "expectedVersion": 1}},
            token(app, org.rep_a1))
        await quiet(db, holder)
    assert response.status_code == 504, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["retryable"] is False
    assert "may have been committed" in error["message"]
    async with db.read() as connection:
        assert (await connection.execute(text(
            "SELECT phase_id FROM opportunities WHERE id = :id"), {"id": deal.id})
        ).scalar_one() == phases[1].id


async def _waiting(db: Database, holder: AsyncConnection, statement: str
                   ) -> list[dict[str, Any]]:
    return waiting_on_lock(await backends_at_work(db, holder), statement)


# --- a real server process: clients that hang up ---------------------------------------------


POOL_SIZE = 2


@needs_postgres
def test_a_server_cancels_the_work_of_clients_that_hang_up_and_keeps_serving(
    tmp_path: Path
) -> None:
    with scratch_database("postgresql", "crmgraph_cancel_hangup", tmp_path) as url:
        account_id, email = asyncio.run(_seed(url))
        env = server_env(DATABASE_URL=url, JWT_SECRET="hang-up-secret-0123456789abcdef0123",
                         BROADCAST_URL="memory://", RATE_LIMIT_URL="memory://",
                         EVENT_POLL_SECONDS="600", DB_POOL_SIZE=str(POOL_SIZE),
                         REQUEST_TIMEOUT="300")
        bearer = run("token", "--email", email, env=env, cwd=tmp_path).stdout.strip()
        with serving(env, tmp_path) as (base, _):
            asyncio.run(_hang_up_then_serve(base, url, bearer, account_id))


async def _seed(url: str) -> tuple[int, str]:
    db = Database(url)
    try:
        org = await make_org(db)
        account = await make_account(db, org.rep_a1, industry="Retail")
        return account.id, org.rep_a1.email
    finally:
        await db.dispose()


async def _hang_up_then_serve(base: str, url: str, bearer: str, account_id: int) -> None:
    db = Database(url)
    host, port = base.removeprefix("http://").split(":")
    update = orjson.dumps({"query": UPDATE, "variables": {"input": {
        "id": gid_of_account(account_id), "expectedVersion": 1, "industry": "Energy"}}})
    raw = (f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
           f"Authorization: Bearer {bearer}\r\nContent-Length: {len(update)}\r\n\r\n"
           ).encode() + update
    try:
        async with holding(db, f"SELECT id FROM accounts WHERE id = {account_id} FOR UPDATE"
                           ) as holder:
            # More hang-ups than the pool has connections (with its overflow): each
            # would hold one for good if its work were left running.
            for _ in range(2 * POOL_SIZE + 1):
                with socket.create_connection((host, int(port))) as client:
                    client.sendall(raw)
                    await eventually(lambda: _waiting(db, holder, "UPDATE ACCOUNTS"),
                                     "the update waiting for the lock")
                await quiet(db, holder)
            # Still serving, with more requests at once than the pool holds.
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                responses = await asyncio.gather(*(
                    http.post("/graphql", json={"query": ACCOUNT, "variables": {
                        "id": gid_of_account(account_id)}},
                        headers={"Authorization": f"Bearer {bearer}"})
                    for _ in range(3 * POOL_SIZE)))
        assert [r.status_code for r in responses] == [200] * (3 * POOL_SIZE)
        assert {r.json()["data"]["account"]["version"] for r in responses} == {1}
        assert await account_row(db, account_id) == ("Retail", 1)
    finally:
        await db.dispose()


def gid_of_account(key: int) -> str:
    return encode_id("Account", key)
