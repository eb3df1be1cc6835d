"""What the lean request path keeps across requests must not change an answer: a
verified token still expires, statements built once still apply each viewer's policy,
and a pooled connection the server closed is replaced without a round trip per
checkout (issue 9)."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from sqlalchemy import text

import models.db
from models.db import Database
from tests.conftest import TEST_SECRET
from tests.factories import Org, gid, make_account, make_org, share
from tests.graphql_client import GraphQLClient

VIEWER = "{ viewer { name } }"
ACCOUNT = "query($id: ID!) { account(id: $id) { name owner { name } } }"


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


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
    monkeypatch.setattr(models.db, "PING_AFTER_IDLE_SECONDS", 0.0)
    pid = await _backend_pid(db)
    assert await _backend_pid(db) == pid  # pinged, alive, reused
