"""A query by a staff user whose viewer was read before runs beside the viewer's read
instead of after it (server/access.py Confirmation), and is answered only as the
viewer is now: refused once deactivated, run again once changed (issue 9).

The changes are written straight into the database, as another process (or a DBA)
would: nothing in this process hears of them but the next read of the viewer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import update

from models.db import Database
from models.users import Role, User
from server.settings import Settings
from tests.factories import Org, gid, make_account, make_org
from tests.graphql_client import GraphQLClient
from tests.test_timeouts import (
    app_with,
    backends_at_work,
    eventually,
    holding,
    post,
    postgres_only,
    quiet,
    token,
    waiting_on_lock,
)

VIEWER = "{ viewer { name role } }"
ACCOUNTS = "{ accounts(first: 5) { nodes { name } } }"
ACME = {"accounts": {"nodes": [{"name": "Acme"}]}}
RENAME = """mutation($id: ID!, $version: Int!) {
  updateAccount(input: {id: $id, expectedVersion: $version, name: "Acme Oy"}) {
    account { name } userErrors { code } } }"""
AUDIT = """{ viewer { name } accounts(first: 5) { nodes { name } }
  auditLog(first: 1) { nodes { action } } }"""


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


async def _set_user(db: Database, user: Any, **values: Any) -> None:
    async with db.transaction() as session:
        await session.execute(update(User).where(User.id == user.id).values(**values))


async def test_a_query_runs_beside_the_read_of_a_viewer_read_before(
        client: GraphQLClient, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the viewer's read is held, the query's own statement is sent all the
    same; the answer waits for the read. A viewer never read before is read first."""
    account = await make_account(client.db, org.rep_a1, name="Acme")
    authenticator = client.app.state.authenticator
    read = authenticator.viewer_for
    gate = asyncio.Event()
    held: list[Any] = []

    async def held_read(credential: Any) -> Any:
        held.append(credential)
        await gate.wait()
        return await read(credential)

    sent: list[str] = []
    client.db.watchers.append(sent.append)
    monkeypatch.setattr(authenticator, "viewer_for", held_read)
    first = asyncio.create_task(client.post(ACCOUNTS, as_user=org.rep_a1))
    await eventually(_true(lambda: held), "the first viewer's read")
    await asyncio.sleep(0.2)
    assert not any("accounts" in statement for statement in sent), sent  # read first
    gate.set()
    assert (await first).json()["data"] == ACME

    gate.clear()
    held.clear()
    sent.clear()
    second = asyncio.create_task(client.post(ACCOUNTS, as_user=org.rep_a1))
    await eventually(_true(lambda: any("accounts" in s for s in sent)),
                     "the query's statement sent while its viewer's read is held")
    assert held
    assert not second.done()
    gate.set()
    assert (await second).json()["data"] == ACME

    # A mutation never runs as a viewer not read yet: nothing is sent until it is.
    gate.clear()
    held.clear()
    sent.clear()
    rename = {"id": gid(account), "version": account.version}
    third = asyncio.create_task(client.post(RENAME, rename, as_user=org.rep_a1))
    await eventually(_true(lambda: held), "the mutation's viewer's read")
    await asyncio.sleep(0.2)
    assert sent == []
    assert not third.done()
    gate.set()
    body = (await third).json()
    assert body["data"]["updateAccount"]["account"] == {"name": "Acme Oy"}, body


async def test_a_viewer_deactivated_since_its_last_request_is_refused(
        client: GraphQLClient, org: Org) -> None:
    token = client.token(org.rep_a1)
    assert (await client.query(VIEWER, token=token))["viewer"]["name"] == "Rep A1"
    await _set_user(client.db, org.rep_a1, active=False)
    response = await client.post(VIEWER, token=token)
    assert response.status_code == 401
    body = response.json()
    assert "data" not in body or body["data"] is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    # Refused also where the query never reaches its fields: variables that do not
    # coerce are not what a deactivated user is told.
    token = client.token(org.rep_a2)
    assert (await client.query(VIEWER, token=token))["viewer"]["name"] == "Rep A2"
    await _set_user(client.db, org.rep_a2, active=False)
    response = await client.post("query($id: ID!) { account(id: $id) { name } }", {},
                                 token=token)
    assert response.status_code == 401, response.json()
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == \
        ["UNAUTHENTICATED"]


async def test_a_viewer_changed_since_its_last_request_has_the_query_run_again_as_it_is(
        client: GraphQLClient, org: Org) -> None:
    token = client.token(org.rep_a1)
    assert (await client.query(VIEWER, token=token))["viewer"] == {
        "name": "Rep A1", "role": "REP"}
    await _set_user(client.db, org.rep_a1, name="Rita Admin", role=Role.ADMIN)
    before = client.db.statements
    response = await client.post(AUDIT, token=token)
    changed = client.db.statements - before
    body = response.json()
    # The answer of an admin, not a rep's FORBIDDEN on the audit log, nor her old name.
    assert response.status_code == 200, body
    assert "errors" not in body, body
    assert body["data"]["viewer"] == {"name": "Rita Admin"}
    assert isinstance(body["data"]["auditLog"]["nodes"], list)
    before = client.db.statements
    await client.query(AUDIT, token=token)
    same = client.db.statements - before
    # Run as the rep she was, then as the admin she is: the rep's run's statements
    # come on top of those of one run, as when her viewer is the same.
    assert changed > same, (changed, same)


async def test_a_partner_is_read_before_its_query_runs(
        client: GraphQLClient, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """The partner rules (trusted documents, introspection, a key's scopes) are applied
    before anything runs, so a partner's viewer is never taken from an earlier read."""
    token = client.token(org.partner)
    await client.query(VIEWER, token=token)
    assert client.app.state.authenticator.recent(
        client.app.state.authenticator.identify(f"Bearer {token}")) is None
    staff = client.token(org.rep_a1)
    await client.query(VIEWER, token=staff)
    assert client.app.state.authenticator.recent(
        client.app.state.authenticator.identify(f"Bearer {staff}")).name == "Rep A1"


@postgres_only
async def test_a_query_stopped_at_its_timeout_stops_its_viewers_read_too(
        settings: Settings, db: Database, org: Org) -> None:
    """The viewer's read waits on a lock in PostgreSQL while the query's own statement
    has run: at REQUEST_TIMEOUT both are stopped, in the server too."""
    await make_account(db, org.rep_a1, name="Acme")
    async with app_with(settings, request_timeout=0.5) as app:
        rep = token(app, org.rep_a1)
        assert (await post(app, ACCOUNTS, None, rep)).json()["data"] == ACME
        sent: list[str] = []
        app.state.db.watchers.append(sent.append)
        async with holding(db, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE") as holder:
            request = asyncio.create_task(post(app, ACCOUNTS, None, rep))
            await eventually(lambda: _waiting(db, holder), "the viewer's read on the lock")
            await eventually(_true(lambda: any("FROM accounts" in s for s in sent)),
                             "the query's statement sent beside its viewer's read")
            response = await request
            await quiet(db, holder)
            assert app.state.db.in_use() == 0
        assert response.status_code == 504, response.text
        assert (await post(app, ACCOUNTS, None, rep)).json()["data"] == ACME


async def _waiting(db: Database, holder: Any) -> list[dict[str, Any]]:
    return waiting_on_lock(await backends_at_work(db, holder), "SELECT")


def _true(probe: Any) -> Any:
    async def probed() -> Any:
        return probe()
    return probed
