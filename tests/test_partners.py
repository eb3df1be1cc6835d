"""Partners as a public API's clients: API keys and their scopes, introspection and
trusted documents per org, automatic persisted queries, and CSRF prevention.

Every request goes through the ASGI app as a client sends it; keys are made by the
same code the `crmgraph partner-key` command runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect
from sqlalchemy import update

from models.db import Database
from models.users import PartnerOrg
from resolvers import partner_keys
from resolvers.documents import trust_documents
from tests.factories import (
    Org,
    gid,
    make_account,
    make_opportunity,
    make_org,
    make_pipeline,
    share,
)
from tests.graphql_client import GraphQLClient, websocket
from tests.live import (
    FEED,
    create_deal,
    make_sales_pipeline,
    move_deal,
    next_data,
    nothing_more,
    settled,
)
from tests.processes import run, server_env

ACCOUNTS = "{ accounts(first: 50) { nodes { name } } }"
INTROSPECTION = "{ __schema { queryType { name } } }"
CREATE = """mutation($i: CreateOpportunityInput!) { createOpportunity(input: $i) {
  opportunity { name owner { name } account { name } } userErrors { code field message } } }"""
MOVE = """mutation($i: MoveOpportunityPhaseInput!) { moveOpportunityPhase(input: $i) {
  opportunity { phase { name } } userErrors { code message } } }"""


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


@pytest.fixture
async def accounts(db: Database, org: Org) -> dict[str, Any]:
    shared = await make_account(db, org.rep_a1, name="Shared Oy")
    hidden = await make_account(db, org.rep_a1, name="Hidden Ab")
    await share(db, shared, org.partner_org)
    return {"shared": shared, "hidden": hidden}


async def make_key(db: Database, org: Org, *scopes: str) -> str:
    _, key = await partner_keys.create_key(
        db, org_name=org.partner_org.name, scopes=partner_keys.parse_scopes(list(scopes)),
        name="test")
    return key


async def post(http: httpx.AsyncClient, query: str | None, variables: dict | None = None, *,
               key: str | None = None, header: str = "x-api-key",
               extensions: dict | None = None, accept: str = "application/json"
               ) -> httpx.Response:
    headers = {"Accept": accept}
    if key is not None:
        headers[header] = key if header == "x-api-key" else f"Bearer {key}"
    body: dict[str, Any] = {}
    if query is not None:
        body["query"] = query
    if variables is not None:
        body["variables"] = variables
    if extensions is not None:
        body["extensions"] = extensions
    return await http.post("/graphql", json=body, headers=headers)


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


def names(response: httpx.Response) -> list[str]:
    body = response.json()
    assert "errors" not in body, body
    return sorted(n["name"] for n in body["data"]["accounts"]["nodes"])


# --- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
async def test_a_key_sees_only_the_accounts_shared_with_its_org(
        http: httpx.AsyncClient, db: Database, org: Org, accounts: dict, header: str) -> None:
    key = await make_key(db, org, "read")
    response = await post(http, ACCOUNTS, key=key, header=header)
    assert names(response) == ["Shared Oy"]
    viewer = (await post(http, "{ viewer { role name } }", key=key)).json()["data"]["viewer"]
    assert viewer == {"role": "PARTNER", "name": f"{org.partner_org.name} API"}


async def test_only_the_hash_of_a_key_is_stored(db: Database, org: Org) -> None:
    key = await make_key(db, org, "read")
    [info] = await partner_keys.list_keys(db, org_name=org.partner_org.name)
    async with db.read() as connection:
        stored = (await connection.execute(partner_keys.KEYS.select())).one()
    assert stored.secret_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(value) for value in stored}
    assert key.startswith(f"crm_{info.prefix}_")


async def test_an_unknown_or_malformed_key_is_401(
        http: httpx.AsyncClient, db: Database, org: Org) -> None:
    key = await make_key(db, org, "read")
    forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    for bad in (forged, "not-a-key"):
        response = await post(http, ACCOUNTS, key=bad)
        assert response.status_code == 401, response.text
        assert codes(response) == ["UNAUTHENTICATED"]


async def test_a_revoked_key_is_refused_at_once(
        http: httpx.AsyncClient, db: Database, org: Org, accounts: dict) -> None:
    key = await make_key(db, org, "read")
    assert names(await post(http, ACCOUNTS, key=key)) == ["Shared Oy"]
    info, event = await partner_keys.revoke_key(db, key.split("_")[1])
    assert info.revoked_at is not None
    assert event is not None
    response = await post(http, ACCOUNTS, key=key)
    assert response.status_code == 401
    assert "revoked" in response.json()["errors"][0]["message"]
    # Revoking again changes nothing and announces nothing.
    assert (await partner_keys.revoke_key(db, key))[1] is None


async def test_a_key_of_a_deactivated_org_is_refused(
        http: httpx.AsyncClient, db: Database, org: Org) -> None:
    key = await make_key(db, org, "read")
    async with db.transaction() as session:
        await session.execute(update(PartnerOrg).where(PartnerOrg.id == org.partner_org.id)
                              .values(active=False))
    assert (await post(http, ACCOUNTS, key=key)).status_code == 401


async def test_a_key_costs_the_same_statements_as_a_token(
        client: GraphQLClient, db: Database, org: Org, accounts: dict) -> None:
    key = await make_key(db, org, "read")
    before = client.db.statements
    await client.query(ACCOUNTS, token=key)
    by_key = client.db.statements - before
    _, by_token = await client.counted(ACCOUNTS, as_user=org.partner)
    assert by_key == by_token


async def test_scopes_must_be_known() -> None:
    with pytest.raises(Exception, match="scopes are"):
        partner_keys.parse_scopes(["read", "admin"])
    assert partner_keys.parse_scopes(["write:opportunities"]) == {
        "read", "write:opportunities"}


# --- scopes -------------------------------------------------------------------------------


async def _deal_setup(db: Database, org: Org, accounts: dict) -> dict[str, Any]:
    _, phases = await make_pipeline(db, name="Sales")
    deal = await make_opportunity(db, accounts["shared"], phases[0], name="Shared deal")
    hidden = await make_opportunity(db, accounts["hidden"], phases[0], name="Hidden deal")
    return {"phases": phases, "deal": deal, "hidden": hidden}


async def test_a_read_key_cannot_write(
        http: httpx.AsyncClient, db: Database, org: Org, accounts: dict) -> None:
    key = await make_key(db, org, "read")
    response = await post(http, CREATE, {"i": {
        "accountId": gid(accounts["shared"]), "name": "Nope", "amount": "10"}}, key=key)
    assert codes(response) == ["FORBIDDEN"]
    assert "data" not in response.json()  # refused as a whole: nothing ran


async def test_a_partner_user_token_cannot_write(
        client: GraphQLClient, org: Org, accounts: dict) -> None:
    response = await client.post(CREATE, {"i": {
        "accountId": gid(accounts["shared"]), "name": "Nope", "amount": "10"}},
        as_user=org.partner)
    payload = response.json()["data"]["createOpportunity"]
    assert payload["opportunity"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]


async def test_a_write_key_creates_and_moves_opportunities_on_shared_accounts(
        http: httpx.AsyncClient, client: GraphQLClient, db: Database, org: Org,
        accounts: dict) -> None:
    setup = await _deal_setup(db, org, accounts)
    key = await make_key(db, org, "write:opportunities")
    created = (await post(http, CREATE, {"i": {
        "accountId": gid(accounts["shared"]), "name": "Partner deal", "amount": "2500.00"}},
        key=key)).json()
    assert created["data"]["createOpportunity"] == {"opportunity": {
        "name": "Partner deal", "owner": {"name": org.rep_a1.name},
        "account": {"name": "Shared Oy"}}, "userErrors": []}
    moved = (await post(http, MOVE, {"i": {
        "id": gid(setup["deal"]), "phaseId": gid(setup["phases"][1]), "expectedVersion": 1}},
        key=key)).json()
    assert moved["data"]["moveOpportunityPhase"] == {
        "opportunity": {"phase": {"name": setup["phases"][1].name}}, "userErrors": []}
    # Who moved it is on the record: the org's API user.
    history = await client.query("""query($id: ID!) { node(id: $id) { ... on Opportunity {
        phaseHistory { changedBy { name } } } } }""", {"id": gid(setup["deal"])},
        as_user=org.admin)
    assert history["node"]["phaseHistory"][-1]["changedBy"]["name"] == \
        f"{org.partner_org.name} API"


async def test_a_write_key_cannot_reach_what_is_not_shared(
        http: httpx.AsyncClient, db: Database, org: Org, accounts: dict) -> None:
    setup = await _deal_setup(db, org, accounts)
    key = await make_key(db, org, "write:opportunities")
    created = (await post(http, CREATE, {"i": {
        "accountId": gid(accounts["hidden"]), "name": "Sneaky", "amount": "1"}},
        key=key)).json()
    assert created["data"]["createOpportunity"]["opportunity"] is None
    assert [e["code"] for e in created["data"]["createOpportunity"]["userErrors"]] == [
        "NOT_FOUND"]
    moved = (await post(http, MOVE, {"i": {
        "id": gid(setup["hidden"]), "phaseId": gid(setup["phases"][1]),
        "expectedVersion": 1}}, key=key)).json()
    assert [e["code"] for e in moved["data"]["moveOpportunityPhase"]["userErrors"]] == [
        "NOT_FOUND"]
    other = await post(http, 'mutation { createAccount(input: {name: "X"}) { account { id } } }',
                       key=key)
    assert codes(other) == ["FORBIDDEN"]
    assert "createAccount" in other.json()["errors"][0]["message"]


# --- introspection and trusted documents ----------------------------------------------------


async def _set_org(db: Database, org: Org, **values: bool) -> None:
    async with db.transaction() as session:
        await session.execute(update(PartnerOrg).where(PartnerOrg.id == org.partner_org.id)
                              .values(**values))


async def test_introspection_is_off_for_partners_unless_their_org_allows_it(
        http: httpx.AsyncClient, client: GraphQLClient, db: Database, org: Org) -> None:
    key = await make_key(db, org, "read")
    refused = await post(http, INTROSPECTION, key=key)
    assert codes(refused) == ["FORBIDDEN"]
    fragment = await post(http, "query { ...F } fragment F on Query { __type(name: \"Account\")"
                          " { name } }", key=key)
    assert codes(fragment) == ["FORBIDDEN"]
    # The federation SDL shows as much as introspection does.
    assert codes(await post(http, "{ _service { sdl } }", key=key)) == ["FORBIDDEN"]
    assert "errors" not in (await post(http, "{ __typename }", key=key)).json()
    staff = await client.query(INTROSPECTION, as_user=org.rep_a1)
    assert staff == {"__schema": {"queryType": {"name": "Query"}}}
    await _set_org(db, org, allow_introspection=True)
    allowed = await post(http, INTROSPECTION, key=key)
    assert allowed.json()["data"] == {"__schema": {"queryType": {"name": "Query"}}}


async def test_trusted_documents_mode_runs_only_registered_documents(
        http: httpx.AsyncClient, db: Database, org: Org, accounts: dict,
        tmp_path: Path) -> None:
    key = await make_key(db, org, "read")
    document = tmp_path / "accounts.graphql"
    document.write_text(ACCOUNTS)
    [(sha256, name)] = await trust_documents(db, org_name=org.partner_org.name,
                                             paths=[document])
    assert (sha256, name) == (hashlib.sha256(ACCOUNTS.encode()).hexdigest(), "accounts.graphql")
    await _set_org(db, org, trusted_documents_only=True)

    untrusted = await post(http, "{ accounts(first: 5) { nodes { name } } }", key=key)
    assert codes(untrusted) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    assert untrusted.status_code == 200  # application/json: a GraphQL response
    strict = await post(http, "{ accounts(first: 5) { nodes { name } } }", key=key,
                        accept="application/graphql-response+json")
    assert strict.status_code == 403
    assert codes(strict) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    assert names(await post(http, ACCOUNTS, key=key)) == ["Shared Oy"]
    by_hash = await post(http, None, key=key, extensions={
        "persistedQuery": {"version": 1, "sha256Hash": sha256}})
    assert names(by_hash) == ["Shared Oy"]
    # Another org's partner is not bound by it, and neither are staff.
    await _set_org(db, org, trusted_documents_only=False)
    assert "errors" not in (await post(
        http, "{ accounts(first: 5) { nodes { name } } }", key=key)).json()


# --- automatic persisted queries -------------------------------------------------------------


def _apq(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1,
                               "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_apq_miss_then_register_then_hit(
        http: httpx.AsyncClient, client: GraphQLClient, org: Org, accounts: dict,
        accept: str) -> None:
    token = client.token(org.rep_a1)
    query = "{ accounts(first: 3) { nodes { name } } } # " + accept
    headers = {"Authorization": f"Bearer {token}", "Accept": accept}
    miss = await http.post("/graphql", json={"extensions": _apq(query)}, headers=headers)
    assert miss.status_code == (200 if accept == "application/json" else 404)
    assert miss.json()["errors"][0] == {"message": "PersistedQueryNotFound",
                                        "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    assert "data" not in miss.json()
    registered = await http.post("/graphql", json={"query": query, "extensions": _apq(query)},
                                 headers=headers)
    assert registered.status_code == 200
    assert len(registered.json()["data"]["accounts"]["nodes"]) == 2
    hit = await http.post("/graphql", json={"extensions": _apq(query)}, headers=headers)
    assert hit.json()["data"] == registered.json()["data"]
    # Apollo's clients send hits over GET; CSRF prevention wants the preflight header.
    import json as _json
    got = await http.get("/graphql", params={"extensions": _json.dumps(_apq(query))},
                         headers={**headers, "Apollo-Require-Preflight": "true"})
    assert got.json()["data"] == registered.json()["data"]


async def test_apq_refuses_a_hash_that_does_not_match(
        http: httpx.AsyncClient, client: GraphQLClient, org: Org) -> None:
    response = await http.post("/graphql", json={
        "query": "{ __typename }", "extensions": _apq("{ viewer { name } }")},
        headers={"Authorization": f"Bearer {client.token(org.rep_a1)}"})
    assert response.status_code == 400
    assert codes(response) == ["BAD_REQUEST"]


async def test_apq_keeps_no_document_that_does_not_validate(
        http: httpx.AsyncClient, client: GraphQLClient, org: Org) -> None:
    query = "{ noSuchField }"
    headers = {"Authorization": f"Bearer {client.token(org.rep_a1)}"}
    first = await http.post("/graphql", json={"query": query, "extensions": _apq(query)},
                            headers=headers)
    assert codes(first) == ["GRAPHQL_VALIDATION_FAILED"]
    again = await http.post("/graphql", json={"extensions": _apq(query)}, headers=headers)
    assert codes(again) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize("extensions", [
    {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
    {"persistedQuery": {"version": 1, "sha256Hash": "xyz"}},
    {"persistedQuery": "yes"},
])
async def test_apq_malformed_extension_is_400(http: httpx.AsyncClient, extensions: dict) -> None:
    response = await http.post("/graphql", json={"extensions": extensions})
    assert response.status_code == 400
    assert codes(response)[0] in ("BAD_REQUEST", "PERSISTED_QUERY_NOT_SUPPORTED")


# --- CSRF prevention ----------------------------------------------------------------------


async def test_get_without_a_preflight_header_is_refused(
        http: httpx.AsyncClient, client: GraphQLClient, org: Org) -> None:
    token = {"Authorization": f"Bearer {client.token(org.rep_a1)}"}
    params = {"query": "{ viewer { name } }"}
    refused = await http.get("/graphql", params=params, headers=token)
    assert refused.status_code == 400
    assert codes(refused) == ["BAD_REQUEST"]
    assert "Apollo-Require-Preflight" in refused.json()["errors"][0]["message"]
    for header in ({"Apollo-Require-Preflight": "true"},
                   {"X-Apollo-Operation-Name": "Viewer"},
                   {"Content-Type": "application/json"}):
        allowed = await http.get("/graphql", params=params, headers={**token, **header})
        assert allowed.json()["data"] == {"viewer": {"name": org.rep_a1.name}}, header
    simple = await http.get("/graphql", params=params,
                            headers={**token, "Content-Type": "text/plain"})
    assert simple.status_code == 400


# --- the command ----------------------------------------------------------------------------


def test_partner_key_command_creates_lists_and_revokes(tmp_path: Path) -> None:
    org_name = "Northwind Partners"
    env = server_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    assert run("seed-demo", env=env, cwd=tmp_path).returncode == 0
    created = run("partner-key", "create", "--org", "Northwind Partners", "--scopes", "read",
                  "--name", "Portal", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert partner_keys.looks_like_key(key)
    assert "shown only this once" in created.stderr
    prefix = key.split("_")[1]
    listed = run("partner-key", "list", env=env, cwd=tmp_path).stdout
    assert f"{prefix}\t{org_name}\tPortal\tread\t" in listed
    assert listed.rstrip().endswith("active")
    assert key not in listed
    revoked = run("partner-key", "revoke", prefix, env=env, cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in run("partner-key", "list", env=env, cwd=tmp_path).stdout
    unknown = run("partner-key", "create", "--org", "No Such Org", "--scopes", "read",
                  env=env, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no partner org" in unknown.stderr
    bad_scope = run("partner-key", "create", "--org", "Northwind Partners", "--scopes",
                    "admin", env=env, cwd=tmp_path)
    assert bad_scope.returncode == 2
    assert "scopes are" in bad_scope.stderr
    switched = run("partner-org", "Northwind Partners", "--introspection",
                   "--trusted-documents-only", env=env, cwd=tmp_path)
    assert "introspection on, trusted documents only on" in switched.stdout
    (tmp_path / "q.graphql").write_text(ACCOUNTS)
    trusted = run("trust-documents", "--org", "Northwind Partners", str(tmp_path / "q.graphql"),
                  env=env, cwd=tmp_path)
    assert trusted.stdout.split()[0] == hashlib.sha256(ACCOUNTS.encode()).hexdigest()


# --- over WebSocket ---------------------------------------------------------------------------


async def _connect_with_key(ws: Any, key: str) -> None:
    await ws.send_json({"type": "connection_init", "payload": {"X-Api-Key": key}})
    assert (await ws.receive_json(timeout=20))["type"] == "connection_ack"


async def test_a_key_hears_only_of_shared_accounts_and_is_closed_when_revoked(
        app: Any, client: GraphQLClient, db: Database, org: Org, accounts: dict) -> None:
    _, phases = await make_sales_pipeline(db, "Sales")
    hidden = await create_deal(client, org.rep_a1, accounts["hidden"], phases["Prospect"])
    shared = await create_deal(client, org.rep_a1, accounts["shared"], phases["Prospect"])
    key = await make_key(db, org, "read")
    async with websocket(app) as ws:
        await _connect_with_key(ws, key)
        await ws.send_json({"id": "feed", "type": "subscribe", "payload": {"query": FEED}})
        await settled(app)
        await move_deal(client, org.rep_a1, hidden, phases["Offer"])
        await move_deal(client, org.rep_a1, shared, phases["Offer"])
        event = (await next_data(ws))["opportunityPhaseChanged"]
        assert event["opportunity"]["name"] == "Deal Shared Oy"
        await nothing_more(ws)
        # Revoked (as the command does it, in another transaction): the hub hears of it
        # and the socket is closed, with the subscription still open.
        _, announced = await partner_keys.revoke_key(db, key)
        assert announced is not None
        await app.state.events.announce(announced)
        with pytest.raises(WebSocketDisconnect) as closed:  # noqa: PT012
            for _ in range(10):
                await ws.receive_json(timeout=20)
        assert closed.value.code == 4403


async def test_over_websocket_a_key_keeps_to_its_scopes_and_its_orgs_documents(
        app: Any, db: Database, org: Org, accounts: dict) -> None:
    key = await make_key(db, org, "read")
    await _set_org(db, org, trusted_documents_only=True)
    async with websocket(app) as ws:
        await _connect_with_key(ws, key)
        await ws.send_json({"id": "w", "type": "subscribe", "payload": {
            "query": 'mutation { createAccount(input: {name: "X"}) { account { id } } }'}})
        refused = await ws.receive_json(timeout=20)
        assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == [
            "PERSISTED_QUERY_NOT_IN_LIST"]
        await ws.send_json({"id": "s", "type": "subscribe", "payload": {"query": FEED}})
        message = await ws.receive_json(timeout=20)
        while message["id"] != "s":
            message = await ws.receive_json(timeout=20)
        errors = message["payload"] if message["type"] == "error" else \
            message["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["PERSISTED_QUERY_NOT_IN_LIST"]
    await _set_org(db, org, trusted_documents_only=False)
    async with websocket(app) as ws:
        await _connect_with_key(ws, key)
        await ws.send_json({"id": "w", "type": "subscribe", "payload": {
            "query": 'mutation { createAccount(input: {name: "X"}) { account { id } } }'}})
        refused = await ws.receive_json(timeout=20)
        assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == ["FORBIDDEN"]
