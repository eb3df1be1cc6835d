"""Apollo Federation v2: the subgraph SDL, `_entities` through the read policies and
the loaders, and Apollo's own composition and gateway in front of a real server."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from loaders.ids import encode_id
from models.users import Role
from schema.root import FEDERATION_VERSION
from server.demo import DEMO_EMAILS
from tests.databases import scratch_database
from tests.factories import (
    gid,
    make_account,
    make_contact,
    make_offering_area,
    make_opportunity,
    make_org,
    make_pipeline,
    make_product,
    share,
)
from tests.processes import run, server_env, serving

ROOT = Path(__file__).resolve().parent.parent
JS = Path(__file__).parent / "js"
CONTRACT = ROOT / "schema" / "schema.graphql"
KEY = ' @key(fields: "id")'
LINK = (f'extend schema @link(url: "https://specs.apollo.dev/federation/v{FEDERATION_VERSION}"'
        ', import: ["@key"])\n\n')

ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) { __typename
    ... on Account { id name owner { name } }
    ... on Contact { id lastName account { name } }
    ... on Opportunity { id name amount }
    ... on Product { id code }
    ... on User { id name } } }"""

# A second subgraph, owned by another team, that adds reviews to accounts by their key.
REVIEWS_SDL = """extend schema @link(url: "https://specs.apollo.dev/federation/v2.3",
                   import: ["@key"])

type Review {
  id: ID!
  stars: Int!
  account: Account
}

type Account @key(fields: "id") {
  id: ID!
  reviews: [Review!]!
}

type Query {
  reviews: [Review!]!
}
"""


def _refs(*records: object) -> list[dict[str, str]]:
    return [{"__typename": type(record).__name__, "id": gid(record)} for record in records]


async def _entities(client, viewer, representations: list[dict]) -> list[dict | None]:
    data = await client.query(ENTITIES, {"r": representations}, as_user=viewer)
    return data["_entities"]


# --- the subgraph SDL -----------------------------------------------------------------------


async def test_service_sdl_keys_the_entities_and_is_what_export_subgraph_prints(client, db):
    response = await client.post("{ _service { sdl } }")  # as a gateway asks: no credentials
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    sdl = body["data"]["_service"]["sdl"]

    keyed = re.findall(r'^type (\w+) implements Node @key\(fields: "id"\) \{$', sdl, re.M)
    assert sorted(keyed) == ["Account", "Contact", "Opportunity", "Product", "User"]
    assert sdl.count(KEY) == 5
    export = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "export-schema", "--subgraph", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE)
    printed, _ = await export.communicate()
    assert export.returncode == 0
    assert printed.decode() == sdl

    # The same API as the client contract, which keeps no federation internals.
    contract = CONTRACT.read_text()
    assert sdl.startswith(LINK)
    assert sdl.removeprefix(LINK).replace(KEY, "") == contract
    for internal in ("_service", "_entities", "_Any", "_Entity", "_Service", "@link", "@key"):
        assert internal not in contract, internal


async def test_entities_need_a_viewer(client, db):
    org = await make_org(db)
    account = await make_account(db, org.rep_a1)
    response = await client.post(ENTITIES, {"r": _refs(account)})
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


# --- _entities ------------------------------------------------------------------------------


async def test_entities_make_the_same_statements_for_10_and_100_accounts(client, db):
    org = await make_org(db)
    accounts = [await make_account(db, org.rep_a1 if i % 2 else org.rep_b1, name=f"A{i:03}")
                for i in range(100)]
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Account { id name owner { name } } } }"""
    small, small_count = await client.counted(
        query, {"r": _refs(*accounts[:10])}, as_user=org.admin)
    # In an order of the gateway's, which the answer keeps.
    large, large_count = await client.counted(
        query, {"r": _refs(*reversed(accounts))}, as_user=org.admin)

    assert [e["name"] for e in small["_entities"]] == [f"A{i:03}" for i in range(10)]
    assert [e["name"] for e in large["_entities"]] == [f"A{i:03}" for i in range(99, -1, -1)]
    assert large["_entities"][0]["owner"] == {"name": "Rep A1"}
    assert large["_entities"][-1]["owner"] == {"name": "Rep B1"}
    # viewer, accounts, owners: the shape decides, never the number of representations.
    assert small_count == large_count == 3


async def test_every_entity_type_resolves_in_the_order_asked(client, db):
    org = await make_org(db)
    account = await make_account(db, org.rep_a1, name="Acme")
    contact = await make_contact(db, account, last_name="Doe")
    _, phases = await make_pipeline(db)
    deal = await make_opportunity(db, account, phases[0], name="Big deal", amount="2500.00")
    product = await make_product(db, await make_offering_area(db), code="LIC")

    entities = await _entities(client, org.admin,
                               _refs(product, org.rep_a1, deal, contact, account))
    assert entities == [
        {"__typename": "Product", "id": gid(product), "code": "LIC"},
        {"__typename": "User", "id": gid(org.rep_a1), "name": "Rep A1"},
        {"__typename": "Opportunity", "id": gid(deal), "name": "Big deal", "amount": "2500.00"},
        {"__typename": "Contact", "id": gid(contact), "lastName": "Doe",
         "account": {"name": "Acme"}},
        {"__typename": "Account", "id": gid(account), "name": "Acme",
         "owner": {"name": "Rep A1"}},
    ]


async def test_partner_gets_entities_shared_with_its_org_and_null_for_the_rest(client, db):
    org = await make_org(db)
    shared = await make_account(db, org.rep_a1, name="Shared")
    hidden = await make_account(db, org.rep_b1, name="Hidden")
    await share(db, shared, org.partner_org)
    _, phases = await make_pipeline(db)
    records = [
        shared, hidden,
        await make_contact(db, shared, last_name="Visible"),
        await make_contact(db, hidden, last_name="Secret"),
        await make_opportunity(db, shared, phases[0], name="Shared deal", amount="10.00"),
        await make_opportunity(db, hidden, phases[0], name="Hidden deal"),
        org.rep_a1,  # owns what is shared
        org.rep_b1,  # owns only what is hidden
        await make_product(db, await make_offering_area(db), code="CAT"),  # the catalogue
    ]

    entities = await _entities(client, org.partner, _refs(*records))
    assert [e and e["__typename"] for e in entities] == [
        "Account", None, "Contact", None, "Opportunity", None, "User", None, "Product"]
    assert entities[0]["name"] == "Shared"
    assert entities[2] == {"__typename": "Contact", "id": gid(records[2]),
                           "lastName": "Visible", "account": {"name": "Shared"}}
    assert entities[4]["name"] == "Shared deal"

    # Staff see every one of them by the same path.
    assert None not in await _entities(client, org.admin, _refs(*records))


async def test_ids_that_name_nothing_of_their_type_give_null(client, db):
    org = await make_org(db)
    account = await make_account(db, org.rep_a1, name="Acme")
    contact = await make_contact(db, account)
    entities = await _entities(client, org.admin, [
        {"__typename": "Account", "id": "not-an-id"},
        {"__typename": "Account", "id": gid(contact)},  # a Contact's id
        {"__typename": "Account", "id": encode_id("Account", 999_999)},
        {"__typename": "Account", "id": encode_id("Account", 2**40)},
        {"__typename": "Account", "id": gid(account)},
    ])
    assert entities == [None, None, None, None, {
        "__typename": "Account", "id": gid(account), "name": "Acme",
        "owner": {"name": "Rep A1"}}]


async def test_a_representation_without_an_entity_key_is_bad_user_input(client, db):
    org = await make_org(db)
    for representation in ({"__typename": "Team", "id": gid(org.team_a)},
                           {"__typename": "Account"}, {"id": encode_id("Account", 1)},
                           {"__typename": "Account", "id": 1}, "Account:1"):
        errors = await client.errors(ENTITIES, {"r": [representation]}, as_user=org.admin)
        assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"], representation


# --- Apollo composition and gateway ---------------------------------------------------------


def _node(*args: str, stdin: str | None = None, timeout: float = 120) -> dict:
    result = subprocess.run(["node", *args], cwd=JS, input=stdin, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _joins(supergraph: str, type_name: str) -> list[str]:
    """The arguments of a supergraph type's @join__type directives: which subgraphs
    define it, and by which key."""
    header = re.search(rf"^type {type_name}\b([^{{]*)\{{", supergraph, re.M)
    assert header is not None, type_name
    return re.findall(r"@join__type\(([^)]*)\)", header.group(1))


def test_apollo_composition_accepts_the_subgraph_and_its_keys(node_clients: Path,
                                                              tmp_path: Path):
    subgraph = run("export-schema", "--subgraph", env=server_env(), cwd=tmp_path).stdout
    reviews = tmp_path / "reviews.graphql"
    reviews.write_text(REVIEWS_SDL)

    alone = _node("compose.mjs", "crm=-", stdin=subgraph)
    assert alone["errors"] == [], alone["errors"]
    for entity in ("Account", "Contact", "Opportunity", "Product", "User"):
        assert _joins(alone["supergraphSdl"], entity) == ['graph: CRM, key: "id"'], entity
    assert _joins(alone["supergraphSdl"], "Team") == ["graph: CRM"]

    # Another team's subgraph reaches accounts by their key, both ways.
    (tmp_path / "crm.graphql").write_text(subgraph)
    both = _node("compose.mjs", f"crm={tmp_path / 'crm.graphql'}", f"reviews={reviews}")
    assert both["errors"] == [], both["errors"]
    assert _joins(both["supergraphSdl"], "Account") == [
        'graph: CRM, key: "id"', 'graph: REVIEWS, key: "id"']
    # The client contract has no keys: composed with the reviews it cannot be satisfied.
    without_keys = _node("compose.mjs", f"crm={CONTRACT}", f"reviews={reviews}")
    assert {e["code"] for e in without_keys["errors"]} == {"SATISFIABILITY_ERROR"}


def _post(url: str, token: str, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
    body = response.json()
    assert "errors" not in body, body
    return body


ACCOUNTS = """{ accounts(first: 20, orderBy: [{field: NAME}]) { totalCount nodes { id name
    industry owner { name email } contacts(first: 2) { nodes { name email } }
    opportunities(first: 2) { nodes { name amount currency } } } } }"""
REVIEWS = "{ reviews { id stars account { id name owner { name } } } }"
ACCOUNT_REVIEWS = """query($ids: [ID!]) { accounts(filter: {id: {in: $ids}},
    orderBy: [{field: NAME}]) { nodes { name reviews { id stars } } } }"""


def test_apollo_gateway_in_front_of_the_server_answers_as_the_server(node_clients: Path,
                                                                    tmp_path: Path):
    with scratch_database("sqlite", "federation_gateway", tmp_path) as database_url:
        env = server_env(DATABASE_URL=database_url)
        assert run("seed-demo", env=env, cwd=tmp_path).returncode == 0
        admin, partner = (run("token", "--email", DEMO_EMAILS[role], env=env,
                              cwd=tmp_path).stdout.strip() for role in (Role.ADMIN, Role.PARTNER))
        with serving(env, tmp_path) as (url, _):
            direct = {token: _post(url, token, ACCOUNTS) for token in (admin, partner)}
            shared = [a["id"] for a in direct[partner]["data"]["accounts"]["nodes"]]
            hidden = next(a["id"] for a in direct[admin]["data"]["accounts"]["nodes"]
                          if a["id"] not in shared)
            reviewed = [shared[0], hidden, shared[1]]
            reviews = [{"id": f"r{i}", "stars": i + 3, "accountId": account_id}
                       for i, account_id in enumerate(reviewed)]
            by_id = {token: _post(url, token, """query($ids: [ID!]!) { nodes(ids: $ids) {
                ... on Account { id name owner { name } } } }""", {"ids": reviewed}
                                  )["data"]["nodes"] for token in (admin, partner)}
            config = {"crm": f"{url}/graphql", "reviews": {"typeDefs": REVIEWS_SDL,
                                                           "data": reviews},
                      "requests": [
                          {"token": admin, "query": ACCOUNTS},
                          {"token": partner, "query": ACCOUNTS},
                          {"token": admin, "query": REVIEWS},
                          {"token": partner, "query": REVIEWS},
                          {"token": partner, "query": ACCOUNT_REVIEWS,
                           "variables": {"ids": reviewed}},
                          {"token": None, "query": "{ accounts { totalCount } }"},
                      ]}
            result = subprocess.run(["node", "gateway.mjs", json.dumps(config)], cwd=JS,
                                    capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (gateway_admin, gateway_partner, admin_reviews, partner_reviews, partner_accounts,
     anonymous) = [json.loads(line) for line in result.stdout.splitlines()]

    # Fields of this subgraph alone: the very data the server gives.
    for through_gateway, token in ((gateway_admin, admin), (gateway_partner, partner)):
        assert "errors" not in through_gateway, through_gateway
        assert through_gateway["data"] == direct[token]["data"]
    assert 0 < direct[partner]["data"]["accounts"]["totalCount"] < (
        direct[admin]["data"]["accounts"]["totalCount"])

    # Reviews -> accounts through `_entities` with the caller's credentials: the
    # partner gets null for the account not shared with its org.
    def joined(body: dict) -> list[dict]:
        assert "errors" not in body, body
        return [review.pop("account") for review in body["data"]["reviews"]]

    assert joined(admin_reviews) == by_id[admin]
    assert joined(partner_reviews) == by_id[partner] == [by_id[admin][0], None,
                                                         by_id[admin][2]]
    assert partner_reviews["data"]["reviews"] == [
        {"id": r["id"], "stars": r["stars"]} for r in reviews]

    # Accounts -> reviews by the key, with only what the partner may see.
    assert "errors" not in partner_accounts, partner_accounts
    assert partner_accounts["data"]["accounts"]["nodes"] == sorted((
        {"name": account["name"], "reviews": [{"id": r["id"], "stars": r["stars"]}
                                              for r in reviews if r["accountId"] == account["id"]]}
        for account in by_id[partner] if account), key=lambda a: a["name"])

    # No credentials: the gateway composed without any, but no data passes without them.
    assert anonymous["data"] is None
    assert [e["extensions"]["code"] for e in anonymous["errors"]] == ["UNAUTHENTICATED"]
