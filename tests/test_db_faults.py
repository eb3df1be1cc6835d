"""PostgreSQL restarted under a running server (issue 11, item 2).

A private PostgreSQL server (never the shared one) is stopped while `crmgraph serve`
answers a stream of queries and versioned mutations, and started again. Meanwhile
/readyz says 503; every request that fails says SERVICE_UNAVAILABLE with
``retryable``; once the database is back the same server process answers again, its
pool replacing the dead connections (pool_pre_ping); and every mutation is applied
whole or not at all: the versions, the phase history and the outbox agree, and a
request the server called retryable had changed nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from models.db import Database
from models.events import Event
from models.opportunities import Opportunity, PhaseChange
from server.auth import Authenticator
from server.faults import SERVICE_UNAVAILABLE, classify
from server.migrate import upgrade_head
from server.settings import Settings
from subscriptions.outbox import OPPORTUNITY_TOPIC
from tests.databases import POSTGRES_URL
from tests.factories import gid, make_account, make_opportunity, make_org, make_pipeline
from tests.processes import PostgresServer, free_port, postgres_missing, server_env, serving

SECRET = "faults-secret-that-is-long-enough-for-hs256-0123456789"
GRAPHQL_RESPONSE = "application/graphql-response+json"
WRITERS = 4
BACK_WITHIN_SECONDS = 10.0

MOVE = """
mutation Move($input: MoveOpportunityPhaseInput!) {
  moveOpportunityPhase(input: $input) {
    opportunity { id version } userErrors { field code message }
  }
}"""
READ = "query Read($id: ID!) { node(id: $id) { ... on Opportunity { id name version } } }"


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    reason = postgres_missing()
    if reason is not None:
        # Where PostgreSQL is the test database (TEST_DATABASE_URL, as in CI) its server
        # binaries are there too: missing, the test must fail, not pass by skipping.
        if POSTGRES_URL is not None:
            pytest.fail(f"no private PostgreSQL server: {reason}")
        pytest.skip(f"no private PostgreSQL server: {reason}")
    server = PostgresServer(free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


@dataclass
class Writer:
    """Moves one opportunity back and forth, sending a failed move again as long as
    the server calls it retryable, and keeping count of what it was told."""

    opportunity: str
    phases: tuple[str, str]
    version: int = 1
    applied: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    unsure: int = 0  # failed without "retryable": may or may not have been applied

    def next_input(self) -> dict[str, Any]:
        return {"id": self.opportunity, "phaseId": self.phases[self.version % 2],
                "expectedVersion": self.version}


def coded_failure(response: httpx.Response) -> dict[str, Any]:
    """A request that failed for want of a database: one coded error, never a 500."""
    body = response.json()
    assert response.status_code in (200, 503), (response.status_code, body)
    errors = body.get("errors") or []
    assert len(errors) == 1, body
    extensions = errors[0]["extensions"]
    assert extensions["code"] == "SERVICE_UNAVAILABLE", body
    assert isinstance(extensions["retryable"], bool), body
    if response.status_code == 503:
        assert response.headers["retry-after"].isdigit()
    # A mutation's payload is non-null: no data at all. A query's node is nullable.
    assert body.get("data") in (None, {"node": None}), body
    return extensions


async def write(http: httpx.AsyncClient, token: str, writer: Writer, stop: asyncio.Event
                ) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": GRAPHQL_RESPONSE}
    while not stop.is_set():
        try:
            response = await http.post("/graphql", headers=headers, json={
                "query": MOVE, "variables": {"input": writer.next_input()}})
        except httpx.TransportError as exc:  # the server must never drop a request
            raise AssertionError(f"the server dropped a request: {exc!r}") from exc
        body = response.json()
        if response.status_code == 200 and "errors" not in body:
            payload = body["data"]["moveOpportunityPhase"]
            # A CONFLICT here would mean an earlier "retryable" failure was applied.
            assert payload["userErrors"] == [], payload
            assert payload["opportunity"]["version"] == writer.version + 1
            writer.version += 1
            writer.applied += 1
            continue
        extensions = coded_failure(response)
        writer.failures.append(extensions)
        if not extensions["retryable"]:
            # Maybe committed: a client reads it back (the next read that answers).
            writer.unsure += 1
            return
        await asyncio.sleep(0.05)


async def read(http: httpx.AsyncClient, token: str, opportunity: str, stop: asyncio.Event,
               failures: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": GRAPHQL_RESPONSE}
    while not stop.is_set():
        response = await http.post("/graphql", headers=headers, json={
            "query": READ, "variables": {"id": opportunity}})
        body = response.json()
        if response.status_code == 200 and "errors" not in body:
            assert body["data"]["node"]["id"] == opportunity
        else:
            extensions = coded_failure(response)
            assert extensions["retryable"] is True  # a query changes nothing
            failures.append(extensions)
        await asyncio.sleep(0.02)


async def until(condition: Any, seconds: float, what: str) -> float:
    """Seconds until ``await condition()`` is true; fails after ``seconds``."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < seconds, f"{what} not within {seconds} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_postgres_restart_under_load_is_survived_without_half_writes(
    private_postgres: PostgresServer, tmp_path: Path, mode: str
) -> None:
    """``fast`` ends the sessions with a message; ``immediate`` as good as kills the
    server, so connections just break (and it recovers from its WAL on start)."""
    url = private_postgres.url
    await asyncio.to_thread(upgrade_head, url)  # it runs a loop of its own
    db = Database(url)
    try:
        org = await make_org(db)
        account = await make_account(db, org.rep_a1)
        _, phases = await make_pipeline(db)
        deals = [await make_opportunity(db, account, phases[0]) for _ in range(WRITERS)]
        token = Authenticator(Settings(database_url=url, jwt_secret=SECRET), db).mint(
            org.admin.id)
    finally:
        await db.dispose()
    env = server_env(DATABASE_URL=url, JWT_SECRET=SECRET, BROADCAST_URL="memory://",
                     EVENT_POLL_SECONDS="3600", LOG_FORMAT="text")
    writers = [Writer(gid(deal), (gid(phases[0]), gid(phases[1]))) for deal in deals]
    read_failures: list[dict[str, Any]] = []

    with serving(env, tmp_path) as (base, _):
        # A connection per request: a kept-alive one that uvicorn closes as idle just
        # as a request goes out would read as a dropped request.
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(
                max_keepalive_connections=0)) as http:
            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            async def unready() -> bool:
                response = await http.get("/readyz")
                return response.status_code == 503 and \
                    response.json()["checks"]["database"] == "unreachable"

            stop = asyncio.Event()
            load = [asyncio.create_task(write(http, token, w, stop)) for w in writers]
            load.append(asyncio.create_task(read(http, token, writers[0].opportunity, stop,
                                                 read_failures)))
            await asyncio.sleep(1.0)  # a stream under way
            assert all(w.applied for w in writers), "no move went through before the stop"
            applied_before = sum(w.applied for w in writers)

            await asyncio.to_thread(private_postgres.stop, mode)
            await until(unready, 5, "/readyz reporting the outage")
            await asyncio.sleep(1.0)  # requests keep coming while it is down
            for task in load:  # a request answered wrongly fails here, with its body
                if task.done():
                    task.result()
            assert read_failures, "no query was answered while the database was down"
            assert all(w.failures for w in writers if not w.unsure)

            await asyncio.to_thread(private_postgres.start)
            back = await until(ready, BACK_WITHIN_SECONDS, "/readyz ready again")
            await asyncio.sleep(1.0)  # and the stream goes on
            stop.set()
            await asyncio.gather(*load)
            assert sum(w.applied for w in writers) > applied_before, \
                "no move went through after the restart"
            print(f"PostgreSQL restart ({mode}): back within {back:.1f} s; "
                  f"{sum(len(w.failures) for w in writers)} mutations and "
                  f"{len(read_failures)} queries refused while down, "
                  f"{sum(w.unsure for w in writers)} of unknown outcome")

    db = Database(url)
    try:
        async with db.read() as connection:
            moves = 0
            for writer, deal in zip(writers, deals, strict=True):
                version = (await connection.execute(select(Opportunity.version).where(
                    Opportunity.id == deal.id))).scalar_one()
                history = (await connection.execute(select(func.count()).select_from(
                    PhaseChange).where(PhaseChange.opportunity_id == deal.id))).scalar_one()
                # Whole or nothing: every version step has its history row (and, below,
                # its event in the outbox).
                assert history == version, (version, history)
                moves += version - 1
                # What the client was told holds: each success is there, each retryable
                # failure is not; only a failure at COMMIT may have gone either way.
                assert writer.version <= version <= writer.version + writer.unsure
            events = (await connection.execute(select(func.count()).select_from(Event).where(
                Event.topic == OPPORTUNITY_TOPIC))).scalar_one()
            assert events == moves
    finally:
        await db.dispose()


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator "
                                          "command"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of "
                                                   "operation"),
    # A pooled connection handed out while it still consumed PostgreSQL's shutdown error.
    asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation "
                                           "(2) is in progress"),
    ConnectionRefusedError(111, "Connection refused"),
])
def test_a_connection_being_lost_is_the_database_unavailable(error: Exception) -> None:
    fault = classify(error)
    assert fault is not None
    assert (fault.code, fault.retryable) == (SERVICE_UNAVAILABLE, True)


def test_an_error_of_the_statement_itself_is_no_outage() -> None:
    assert classify(asyncpg.exceptions.DivisionByZeroError("division by zero")) is None
