"""Partner organisations and account sharing, administered through the API: the partner
loses an unshared account on its next request and on its open subscriptions, with a
user token and with an API key alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect
from sqlalchemy import func, select

from loaders.ids import decode_id, encode_id
from loaders.users import PARTNER_ORGS, SHARES
from models.audit import AuditEntry
from models.db import Database
from models.events import Event
from resolvers import partner_keys
from subscriptions.outbox import ORG_DEACTIVATED_TOPIC
from tests.factories import (
    Org,
    gid,
    make_account,
    make_contact,
    make_opportunity,
    make_org,
    make_partner_org,
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

AUDIT = AuditEntry.__table__
EVENTS = Event.__table__

SHARE = """mutation($i: AccountSharingInput!) { shareAccounts(input: $i) {
  partnerOrg { name } sharedAccounts { name } sharedCount alreadySharedCount
  userErrors { field code message } } }"""
UNSHARE = """mutation($i: AccountSharingInput!) { unshareAccounts(input: $i) {
  partnerOrg { name } unsharedAccounts { name } unsharedCount notSharedCount
  userErrors { field code message } } }"""
CREATE_ORG = """mutation($i: CreatePartnerOrgInput!) { createPartnerOrg(input: $i) {
  partnerOrg { id name active allowIntrospection trustedDocumentsOnly version }
  userErrors { field code message } } }"""
UPDATE_ORG = """mutation($i: UpdatePartnerOrgInput!) { updatePartnerOrg(input: $i) {
  partnerOrg { id name active allowIntrospection trustedDocumentsOnly version }
  userErrors { field code message } } }"""
PARTNER_ORGS_QUERY = """query($filter: PartnerOrgFilter) { partnerOrgs(filter: $filter) {
  totalCount nodes { name } } }"""

# Everything a partner could reach an account by.
REACH = """query($account: ID!, $contact: ID!, $opportunity: ID!) {
  accounts(first: 50) { nodes { name } }
  account(id: $account) { name }
  node(id: $account) { id }
  contact(id: $contact) { name account { name } }
  opportunity(id: $opportunity) { name }
  viewer { partnerOrg { accounts { totalCount nodes { name } } } }
}"""

SUMMARY = """subscription($pipelineId: ID!) { pipelineSummaryChanged(pipelineId: $pipelineId) {
  totals { count amount } } }"""


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


async def make_key(db: Database, org: Org) -> str:
    _, key = await partner_keys.create_key(
        db, org_name=org.partner_org.name, scopes=partner_keys.parse_scopes(["read"]),
        name="test")
    return key


Ask = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@pytest.fixture(params=["token", "key"])
async def credential(request: pytest.FixtureRequest, client: GraphQLClient, db: Database,
                     org: Org) -> dict[str, str]:
    """How the partner signs in: its user's bearer token, or its org's API key."""
    if request.param == "token":
        return {"Authorization": f"Bearer {client.token(org.partner)}"}
    return {"X-Api-Key": await make_key(db, org)}


def asking(client: GraphQLClient, credential: dict[str, str]) -> Ask:
    async def ask(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(query, variables, headers=credential)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body
        return body["data"]

    return ask


async def admin_share(client: GraphQLClient, org: Org, mutation: str, *accounts: Any,
                      partner_org_id: str | None = None) -> dict[str, Any]:
    data = await client.query(mutation, {"i": {
        "partnerOrgId": partner_org_id or gid(org.partner_org),
        "accountIds": [gid(a) for a in accounts]}}, as_user=org.admin)
    payload = next(iter(data.values()))
    assert payload["userErrors"] == []
    return payload


async def count(db: Database, table: Any) -> int:
    async with db.read() as connection:
        return int((await connection.execute(select(func.count()).select_from(table)))
                   .scalar_one())


async def audit_entries(db: Database) -> list[Any]:
    async with db.read() as connection:
        return list((await connection.execute(AUDIT.select().order_by(AUDIT.c.id))).all())


# --- the next request ------------------------------------------------------------------


async def test_unshare_takes_the_account_away_on_the_next_request_and_share_gives_it_back(
        client: GraphQLClient, db: Database, org: Org, credential: dict[str, str]) -> None:
    kept = await make_account(db, org.rep_a1, name="Kept Oy")
    lost = await make_account(db, org.rep_a1, name="Lost Ab")
    await share(db, kept, org.partner_org)
    await share(db, lost, org.partner_org)
    contact = await make_contact(db, lost, last_name="Virtanen")
    _, phases = await make_sales_pipeline(db, "Sales")
    deal = await make_opportunity(db, lost, phases["Prospect"], name="Lost deal")
    ask = asking(client, credential)
    ids = {"account": gid(lost), "contact": gid(contact), "opportunity": gid(deal)}

    before = await ask(REACH, ids)
    assert before["accounts"]["nodes"] == [{"name": "Kept Oy"}, {"name": "Lost Ab"}]
    assert before["account"] == {"name": "Lost Ab"}
    assert before["node"] == {"id": gid(lost)}
    assert before["contact"] == {"name": "Virtanen", "account": {"name": "Lost Ab"}}
    assert before["opportunity"] == {"name": "Lost deal"}
    assert before["viewer"]["partnerOrg"]["accounts"]["totalCount"] == 2

    unshared = await admin_share(client, org, UNSHARE, lost)
    assert unshared == {"partnerOrg": {"name": "Partner Org"},
                        "unsharedAccounts": [{"name": "Lost Ab"}], "unsharedCount": 1,
                        "notSharedCount": 0, "userErrors": []}

    after = await ask(REACH, ids)
    assert after["accounts"]["nodes"] == [{"name": "Kept Oy"}]
    assert after["account"] is None
    assert after["node"] is None
    assert after["contact"] is None
    assert after["opportunity"] is None
    assert after["viewer"]["partnerOrg"]["accounts"] == {
        "totalCount": 1, "nodes": [{"name": "Kept Oy"}]}

    shared = await admin_share(client, org, SHARE, lost)
    assert shared["sharedAccounts"] == [{"name": "Lost Ab"}]
    again = await ask(REACH, ids)
    assert again == before


async def test_share_and_unshare_are_idempotent_and_count_what_changed(
        client: GraphQLClient, db: Database, org: Org) -> None:
    first = await make_account(db, org.rep_a1, name="First Oy")
    second = await make_account(db, org.rep_a1, name="Second Oy")
    await share(db, first, org.partner_org)
    shared = await admin_share(client, org, SHARE, first, second, second)
    assert (shared["sharedAccounts"], shared["sharedCount"], shared["alreadySharedCount"]) == (
        [{"name": "Second Oy"}], 1, 1)
    entries, events = len(await audit_entries(db)), await count(db, EVENTS)
    # Nothing left to do: nothing changes, nothing is recorded or announced.
    shared = await admin_share(client, org, SHARE, first, second)
    assert (shared["sharedCount"], shared["alreadySharedCount"]) == (0, 2)
    assert await count(db, SHARES) == 2
    unshared = await admin_share(client, org, UNSHARE, first, second)
    assert (unshared["unsharedCount"], unshared["notSharedCount"]) == (2, 0)
    unshared = await admin_share(client, org, UNSHARE, first, second)
    assert (unshared["unsharedAccounts"], unshared["unsharedCount"],
            unshared["notSharedCount"]) == ([], 0, 2)
    assert await count(db, SHARES) == 0
    assert len(await audit_entries(db)) == entries + 1  # the one real unshare
    assert await count(db, EVENTS) == events  # no opportunities: no summary to recompute


# --- open subscriptions -----------------------------------------------------------------


@asynccontextmanager
async def partner_socket(app: Any, credential: dict[str, str], query: str,
                         variables: dict[str, Any] | None = None
                         ) -> AsyncIterator[AsyncWebSocketSession]:
    async with websocket(app) as ws:
        await ws.send_json({"type": "connection_init", "payload": credential})
        assert (await ws.receive_json(timeout=20))["type"] == "connection_ack"
        await ws.send_json({"id": "feed", "type": "subscribe",
                            "payload": {"query": query, "variables": variables or {}}})
        await settled(app)
        yield ws


async def test_an_open_phase_feed_stops_hearing_of_an_unshared_account(
        app: Any, client: GraphQLClient, db: Database, org: Org,
        credential: dict[str, str]) -> None:
    kept = await make_account(db, org.rep_a1, name="Kept Oy")
    lost = await make_account(db, org.rep_a1, name="Lost Ab")
    await share(db, kept, org.partner_org)
    await share(db, lost, org.partner_org)
    _, phases = await make_sales_pipeline(db, "Sales")
    kept_deal = await create_deal(client, org.rep_a1, kept, phases["Prospect"])
    lost_deal = await create_deal(client, org.rep_a1, lost, phases["Prospect"])
    async with partner_socket(app, credential, FEED) as ws:
        lost_deal = await move_deal(client, org.rep_a1, lost_deal, phases["Offer"])
        heard = (await next_data(ws))["opportunityPhaseChanged"]
        assert heard["opportunity"]["name"] == "Deal Lost Ab"

        assert (await admin_share(client, org, UNSHARE, lost))["unsharedCount"] == 1
        await move_deal(client, org.rep_a1, lost_deal, phases["Deal"])
        await move_deal(client, org.rep_a1, kept_deal, phases["Offer"])
        heard = (await next_data(ws))["opportunityPhaseChanged"]
        assert heard["opportunity"]["name"] == "Deal Kept Oy"
        await nothing_more(ws)


async def test_an_open_pipeline_summary_shrinks_on_unshare_and_grows_on_share(
        app: Any, client: GraphQLClient, db: Database, org: Org,
        credential: dict[str, str]) -> None:
    kept = await make_account(db, org.rep_a1, name="Kept Oy")
    lost = await make_account(db, org.rep_a1, name="Lost Ab")
    hidden = await make_account(db, org.rep_b1, name="Hidden Ab")
    await share(db, kept, org.partner_org)
    await share(db, lost, org.partner_org)
    pipeline, phases = await make_sales_pipeline(db, "Sales")
    await make_opportunity(db, kept, phases["Prospect"], amount="100.00")
    await make_opportunity(db, lost, phases["Offer"], amount="20.00")
    await make_opportunity(db, lost, phases["Prospect"], org.rep_b1, amount="3.00")
    await make_opportunity(db, hidden, phases["Prospect"], amount="4000.00")
    async with partner_socket(app, credential, SUMMARY, {"pipelineId": gid(pipeline)}) as ws:
        totals = (await next_data(ws))["pipelineSummaryChanged"]["totals"]
        assert totals == {"count": 3, "amount": "123.00"}

        await admin_share(client, org, UNSHARE, lost)
        totals = (await next_data(ws))["pipelineSummaryChanged"]["totals"]
        assert totals == {"count": 1, "amount": "100.00"}
        await nothing_more(ws)

        await admin_share(client, org, SHARE, lost, hidden)
        totals = (await next_data(ws))["pipelineSummaryChanged"]["totals"]
        assert totals == {"count": 4, "amount": "4123.00"}


async def test_unsharing_from_another_org_leaves_a_partners_summary_as_it_was(
        app: Any, client: GraphQLClient, db: Database, org: Org) -> None:
    other = await make_partner_org(db, "Other Org")
    account = await make_account(db, org.rep_a1, name="Both Oy")
    await share(db, account, org.partner_org)
    await share(db, account, other)
    pipeline, phases = await make_sales_pipeline(db, "Sales")
    await make_opportunity(db, account, phases["Prospect"], amount="10.00")
    credential = {"Authorization": f"Bearer {client.token(org.partner)}"}
    async with partner_socket(app, credential, SUMMARY, {"pipelineId": gid(pipeline)}) as ws:
        assert (await next_data(ws))["pipelineSummaryChanged"]["totals"]["count"] == 1
        await admin_share(client, org, UNSHARE, account, partner_org_id=gid(other))
        # The account is still shared with this org: a recomputed summary still has it.
        again = (await next_data(ws))["pipelineSummaryChanged"]["totals"]
        assert again == {"count": 1, "amount": "10.00"}


# --- deactivation -----------------------------------------------------------------------


async def test_deactivating_an_org_closes_its_open_websockets_and_refuses_its_requests(
        app: Any, client: GraphQLClient, db: Database, org: Org,
        credential: dict[str, str]) -> None:
    staff = {"Authorization": f"Bearer {client.token(org.rep_a1)}"}
    async with partner_socket(app, credential, FEED) as ws, \
            partner_socket(app, staff, FEED) as staff_ws:
        data = await client.query(UPDATE_ORG, {"i": {
            "id": gid(org.partner_org), "expectedVersion": org.partner_org.version,
            "active": False}}, as_user=org.admin)
        assert data["updatePartnerOrg"]["userErrors"] == []
        assert data["updatePartnerOrg"]["partnerOrg"]["active"] is False
        with pytest.raises(WebSocketDisconnect) as closed:  # noqa: PT012
            for _ in range(10):
                await ws.receive_json(timeout=20)
        assert closed.value.code == 4403
        await nothing_more(staff_ws)  # staff sockets stay open
    response = await client.post("{ accounts { nodes { name } } }", headers=credential)
    assert response.status_code == 401
    async with db.read() as connection:
        topics = list((await connection.execute(select(EVENTS.c.topic, EVENTS.c.payload)))
                      .all())
    assert [(t, p) for t, p in topics] == [
        (ORG_DEACTIVATED_TOPIC, {"partnerOrgId": org.partner_org.id})]

    # Reactivated, the same credential is let in again.
    data = await client.query(UPDATE_ORG, {"i": {
        "id": gid(org.partner_org), "expectedVersion": org.partner_org.version + 1,
        "active": True}}, as_user=org.admin)
    assert data["updatePartnerOrg"]["partnerOrg"]["active"] is True
    assert (await client.post("{ accounts { nodes { name } } }",
                              headers=credential)).status_code == 200


# --- the connections --------------------------------------------------------------------

SHARED_WITH = """{ accounts(first: 20) { nodes { name sharedWith(first: 10) {
  totalCount nodes { name accounts(first: 10) { totalCount nodes { name } } } } } } }"""
ORG_ACCOUNTS = """{ partnerOrgs(first: 20) { nodes { name
  accounts(first: 10) { totalCount nodes { name sharedWith(first: 10) { totalCount } } } } } }"""


async def _shares(db: Database, org: Org, accounts: int, orgs: int, prefix: str) -> None:
    extra = [await make_partner_org(db, f"{prefix} org {n}") for n in range(orgs)]
    for n in range(accounts):
        account = await make_account(db, org.rep_a1, name=f"{prefix} account {n}")
        for partner_org in [org.partner_org, *extra]:
            await share(db, account, partner_org)


async def _counted(client: GraphQLClient, org: Org, query: str) -> tuple[dict[str, Any], int]:
    # The fewest of three: a broker message from another test run (Redis pub/sub ignores
    # the database number) wakes the event hub, whose outbox read is counted too.
    runs = [await client.counted(query, as_user=org.admin) for _ in range(3)]
    return runs[0][0], min(statements for _, statements in runs)


async def test_shared_with_and_org_accounts_cost_the_same_statements_for_more_rows(
        client: GraphQLClient, db: Database, org: Org) -> None:
    await _shares(db, org, accounts=2, orgs=1, prefix="Small")
    small_shared, small_shared_count = await _counted(client, org, SHARED_WITH)
    small_orgs, small_orgs_count = await _counted(client, org, ORG_ACCOUNTS)
    assert small_shared["accounts"]["nodes"][0]["sharedWith"]["totalCount"] == 2
    assert [o["accounts"]["totalCount"] for o in small_orgs["partnerOrgs"]["nodes"]] == [2, 2]

    await _shares(db, org, accounts=6, orgs=3, prefix="Big")
    big_shared, big_shared_count = await _counted(client, org, SHARED_WITH)
    big_orgs, big_orgs_count = await _counted(client, org, ORG_ACCOUNTS)
    assert len(big_shared["accounts"]["nodes"]) == 8
    assert len(big_orgs["partnerOrgs"]["nodes"]) == 5
    assert (big_shared_count, big_orgs_count) == (small_shared_count, small_orgs_count)


async def test_a_partner_sees_only_its_own_org_among_those_an_account_is_shared_with(
        client: GraphQLClient, db: Database, org: Org) -> None:
    other = await make_partner_org(db, "Other Org")
    both = await make_account(db, org.rep_a1, name="Both Oy")
    theirs = await make_account(db, org.rep_a1, name="Theirs Oy")
    await share(db, both, org.partner_org)
    await share(db, both, other)
    await share(db, theirs, other)
    admin = await client.query(SHARED_WITH, as_user=org.admin)
    assert {a["name"]: [o["name"] for o in a["sharedWith"]["nodes"]]
            for a in admin["accounts"]["nodes"]} == {
        "Both Oy": ["Other Org", "Partner Org"], "Theirs Oy": ["Other Org"]}
    partner = await client.query(SHARED_WITH, as_user=org.partner)
    assert partner["accounts"]["nodes"] == [{"name": "Both Oy", "sharedWith": {
        "totalCount": 1, "nodes": [{"name": "Partner Org", "accounts": {
            "totalCount": 1, "nodes": [{"name": "Both Oy"}]}}]}}]
    other_org = await client.query("query($id: ID!) { node(id: $id) { id } }",
                                   {"id": gid(other)}, as_user=org.partner)
    assert other_org["node"] is None


async def test_admins_list_partner_orgs_with_filters(
        client: GraphQLClient, db: Database, org: Org) -> None:
    await make_partner_org(db, "Acme Partners")
    data = await client.query(PARTNER_ORGS_QUERY, {"filter": {"name": {"contains": "acme"}}},
                              as_user=org.admin)
    assert data["partnerOrgs"] == {"totalCount": 1, "nodes": [{"name": "Acme Partners"}]}
    data = await client.query(PARTNER_ORGS_QUERY, as_user=org.admin)
    assert [n["name"] for n in data["partnerOrgs"]["nodes"]] == ["Acme Partners", "Partner Org"]


# --- validation -------------------------------------------------------------------------


async def test_create_and_update_validate_names_and_versions(
        client: GraphQLClient, db: Database, org: Org) -> None:
    async def create(name: str) -> dict[str, Any]:
        return (await client.query(CREATE_ORG, {"i": {"name": name}},
                                   as_user=org.admin))["createPartnerOrg"]

    made = await create("  New Partner  ")
    assert made["userErrors"] == []
    assert made["partnerOrg"] | {"id": None} == {
        "id": None, "name": "New Partner", "active": True, "allowIntrospection": False,
        "trustedDocumentsOnly": False, "version": 1}
    orgs = await count(db, PARTNER_ORGS)
    for name, code in (("partner org", "CONFLICT"), ("  ", "VALIDATION"),
                       ("x" * 201, "VALIDATION")):
        refused = await create(name)
        assert refused["partnerOrg"] is None
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("name", code)]
    assert await count(db, PARTNER_ORGS) == orgs

    async def update(**values: Any) -> dict[str, Any]:
        return (await client.query(UPDATE_ORG, {"i": {"id": made["partnerOrg"]["id"], **values}},
                                   as_user=org.admin))["updatePartnerOrg"]

    renamed = await update(expectedVersion=1, name="Renamed", allowIntrospection=True)
    assert renamed["userErrors"] == []
    assert (renamed["partnerOrg"]["name"], renamed["partnerOrg"]["allowIntrospection"],
            renamed["partnerOrg"]["version"]) == ("Renamed", True, 2)
    stale = await update(expectedVersion=1, name="Stale")
    assert [(e["field"], e["code"]) for e in stale["userErrors"]] == [
        ("expectedVersion", "CONFLICT")]
    taken = await update(expectedVersion=2, name="PARTNER ORG", active=False)
    assert [(e["field"], e["code"]) for e in taken["userErrors"]] == [("name", "CONFLICT")]
    null = await update(expectedVersion=2, trustedDocumentsOnly=None)
    assert [(e["field"], e["code"]) for e in null["userErrors"]] == [
        ("trustedDocumentsOnly", "VALIDATION")]
    unknown = await client.query(UPDATE_ORG, {"i": {
        "id": encode_id("PartnerOrg", 999_999), "expectedVersion": 1, "name": "X"}},
        as_user=org.admin)
    assert [(e["field"], e["code"]) for e in unknown["updatePartnerOrg"]["userErrors"]] == [
        ("id", "NOT_FOUND")]
    async with db.read() as connection:
        row = (await connection.execute(PARTNER_ORGS.select().where(
            PARTNER_ORGS.c.name == "Renamed"))).one()
    assert (row.version, row.active, row.trusted_documents_only) == (2, True, False)


async def test_sharing_with_unknown_ids_fails_whole_and_writes_nothing(
        client: GraphQLClient, db: Database, org: Org) -> None:
    account = await make_account(db, org.rep_a1, name="Real Oy")
    cases = [
        ({"partnerOrgId": encode_id("PartnerOrg", 999_999), "accountIds": [gid(account)]},
         [("partnerOrgId", "NOT_FOUND")]),
        ({"partnerOrgId": gid(org.partner_org),
          "accountIds": [gid(account), encode_id("Account", 999_999), "junk"]},
         [("accountIds.2", "VALIDATION"), ("accountIds.1", "NOT_FOUND")]),
        ({"partnerOrgId": gid(org.partner_org), "accountIds": [gid(org.rep_a1)]},
         [("accountIds.0", "VALIDATION")]),
    ]
    for mutation, name in ((SHARE, "shareAccounts"), (UNSHARE, "unshareAccounts")):
        for variables, expected in cases:
            data = (await client.query(mutation, {"i": variables}, as_user=org.admin))[name]
            assert data["partnerOrg"] is None
            assert sorted((e["field"], e["code"]) for e in data["userErrors"]) == sorted(
                expected)
    assert await count(db, SHARES) == 0
    assert await audit_entries(db) == []
    assert await count(db, EVENTS) == 0


# --- who may ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["manager_a", "rep_a1", "partner"])
async def test_only_admins_administer_partner_orgs_and_sharing(
        client: GraphQLClient, db: Database, org: Org, who: str) -> None:
    user = getattr(org, who)
    account = await make_account(db, org.rep_a1, name="Shared Oy")
    await share(db, account, org.partner_org)
    other = await make_account(db, org.rep_a1, name="Other Oy")
    sharing = {"partnerOrgId": gid(org.partner_org), "accountIds": [gid(account), gid(other)]}
    attempts = [
        (CREATE_ORG, {"name": "Sneaky"}, "createPartnerOrg"),
        (UPDATE_ORG, {"id": gid(org.partner_org), "expectedVersion": 1, "active": False},
         "updatePartnerOrg"),
        (SHARE, sharing, "shareAccounts"),
        (UNSHARE, sharing, "unshareAccounts"),
    ]
    for mutation, variables, name in attempts:
        data = (await client.query(mutation, {"i": variables}, as_user=user))[name]
        assert [e["code"] for e in data["userErrors"]] == ["FORBIDDEN"], name
    errors = await client.errors(PARTNER_ORGS_QUERY, as_user=user)
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    async with db.read() as connection:
        orgs = (await connection.execute(select(PARTNER_ORGS.c.name, PARTNER_ORGS.c.active))
                ).all()
        shares = (await connection.execute(select(SHARES.c.account_id))).scalars().all()
    assert [tuple(o) for o in orgs] == [("Partner Org", True)]
    assert shares == [account.id]
    assert await audit_entries(db) == []
    assert await count(db, EVENTS) == 0


# --- the audit log ----------------------------------------------------------------------


async def test_every_change_writes_an_audit_entry(
        client: GraphQLClient, db: Database, org: Org) -> None:
    account = await make_account(db, org.rep_a1, name="Audited Oy")
    made = (await client.query(CREATE_ORG, {"i": {"name": "Audit Partner"}},
                               as_user=org.admin))["createPartnerOrg"]["partnerOrg"]
    key = decode_id(made["id"], "PartnerOrg")
    new = {"id": made["id"]}
    await client.query(UPDATE_ORG, {"i": new | {"expectedVersion": 1, "name": "Audit P"}},
                       as_user=org.admin)
    await client.query(UPDATE_ORG, {"i": new | {"expectedVersion": 2, "active": False}},
                       as_user=org.admin)
    await client.query(UPDATE_ORG, {"i": new | {"expectedVersion": 3, "active": True}},
                       as_user=org.admin)
    # A change to nothing is no change: no entry.
    await client.query(UPDATE_ORG, {"i": new | {"expectedVersion": 4, "active": True}},
                       as_user=org.admin)
    await admin_share(client, org, SHARE, account, partner_org_id=made["id"])
    await admin_share(client, org, UNSHARE, account, partner_org_id=made["id"])
    entries = [(e.actor_id, e.action, e.entity_type, e.entity_id, e.before, e.after)
               for e in await audit_entries(db)]
    admin = org.admin.id
    assert entries == [
        (admin, "partner_org.created", "PartnerOrg", key, None,
         {"name": "Audit Partner", "active": True, "allow_introspection": False,
          "trusted_documents_only": False}),
        (admin, "partner_org.updated", "PartnerOrg", key, {"name": "Audit Partner"},
         {"name": "Audit P"}),
        (admin, "partner_org.deactivated", "PartnerOrg", key, {"active": True},
         {"active": False}),
        (admin, "partner_org.reactivated", "PartnerOrg", key, {"active": False},
         {"active": True}),
        (admin, "partner_org.accounts_shared", "PartnerOrg", key, None,
         {"accountIds": [account.id]}),
        (admin, "partner_org.accounts_unshared", "PartnerOrg", key,
         {"accountIds": [account.id]}, None),
    ]
