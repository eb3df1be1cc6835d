"""Administration through the API: users and teams, deactivation (tokens and open
WebSockets refused at once), ownership transfers, and the audit log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from httpx_ws import WebSocketDisconnect
from sqlalchemy import func, select

from loaders.ids import decode_id
from models.accounts import Account, Contact
from models.activities import Activity
from models.audit import AuditEntry
from models.db import Database
from models.events import Event
from models.opportunities import Opportunity
from models.users import Role, Team, User
from tests.factories import (
    Org,
    gid,
    make_account,
    make_activity,
    make_activity_type,
    make_contact,
    make_opportunity,
    make_org,
    make_user,
)
from tests.graphql_client import GraphQLClient
from tests.live import make_sales_pipeline, settled, subscribed

ERRORS = "userErrors { field code message }"
USER = "user { id email name role active version team { id name } }"
TEAM = "team { id name version manager { id name } members { nodes { name } } }"


def mutation(name: str, input_type: str, selection: str) -> str:
    return f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ {selection} {ERRORS} }} }}"


CREATE_USER = mutation("createUser", "CreateUserInput", USER)
UPDATE_USER = mutation("updateUser", "UpdateUserInput", USER)
DEACTIVATE = mutation("deactivateUser", "UserIdInput", USER)
REACTIVATE = mutation("reactivateUser", "UserIdInput", USER)
MOVE = mutation("moveUserToTeam", "MoveUserToTeamInput", USER)
CREATE_TEAM = mutation("createTeam", "CreateTeamInput", TEAM)
UPDATE_TEAM = mutation("updateTeam", "UpdateTeamInput", TEAM)
TRANSFER = f"""mutation($i: TransferOwnershipInput!) {{ transferOwnership(input: $i) {{
  transfer {{ fromUser {{ name }} toUser {{ name }} accounts contacts opportunities activities }}
  {ERRORS} }} }}"""
AUDIT = """query($filter: AuditLogFilter, $first: Int, $after: String) {
  auditLog(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id at action entityType entityId before after actor { name } } }
    pageInfo { hasNextPage endCursor } } }"""
CREATE_ACCOUNT = """mutation($i: CreateAccountInput!) { createAccount(input: $i) {
  account { name owner { name } } userErrors { code message } } }"""
SUMMARY = """subscription($pipelineId: ID!, $teamId: ID) {
  pipelineSummaryChanged(pipelineId: $pipelineId, teamId: $teamId) { totals { count } } }"""


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


def as_key(global_id: str, type_name: str = "User") -> Any:
    """Something with the ``.id`` the client mints tokens for."""
    return SimpleNamespace(id=decode_id(global_id, type_name))


async def ok(client: GraphQLClient, query: str, input: dict[str, Any], as_user: Any
             ) -> dict[str, Any]:
    data = await client.query(query, {"i": input}, as_user=as_user)
    (payload,) = data.values()
    assert payload["userErrors"] == [], payload
    return payload


async def refused(client: GraphQLClient, query: str, input: dict[str, Any], as_user: Any
                  ) -> list[dict[str, Any]]:
    data = await client.query(query, {"i": input}, as_user=as_user)
    (payload,) = data.values()
    assert payload["userErrors"], payload
    assert all(v is None for k, v in payload.items() if k != "userErrors"), payload
    return [{"field": e["field"], "code": e["code"]} for e in payload["userErrors"]]


async def audit_log(client: GraphQLClient, admin: Any, filter: dict[str, Any] | None = None,
                    first: int | None = None, after: str | None = None) -> dict[str, Any]:
    data = await client.query(AUDIT, {"filter": filter, "first": first, "after": after},
                              as_user=admin)
    return data["auditLog"]


async def snapshot(db: Database) -> dict[str, Any]:
    """Everything an administration operation could write."""
    async with db.read() as connection:
        async def rows(statement: Any) -> list[Any]:
            return [tuple(r) for r in (await connection.execute(statement)).all()]
        return {
            "users": await rows(select(User.id, User.email, User.name, User.role,
                                       User.team_id, User.active, User.version)
                                .order_by(User.id)),
            "teams": await rows(select(Team.id, Team.name, Team.manager_id, Team.version)
                                .order_by(Team.id)),
            "owners": await rows(select(Account.id, Account.owner_id).order_by(Account.id))
            + await rows(select(Contact.id, Contact.owner_id).order_by(Contact.id))
            + await rows(select(Opportunity.id, Opportunity.owner_id).order_by(Opportunity.id))
            + await rows(select(Activity.id, Activity.owner_id).order_by(Activity.id)),
            "audit": await rows(select(func.count()).select_from(AuditEntry)),
            "events": await rows(select(func.count()).select_from(Event)),
        }


# --- the check ------------------------------------------------------------------------


async def test_an_admin_builds_a_team_and_a_deactivated_reps_token_is_refused_at_once(
        app: Any, client: GraphQLClient, db: Database) -> None:
    admin = await make_user(db, Role.ADMIN, name="Admin")
    pipeline, _ = await make_sales_pipeline(db, "Sales")

    team = (await ok(client, CREATE_TEAM, {"name": "North"}, admin))["team"]
    assert (team["name"], team["manager"], team["members"]) == ("North", None, {"nodes": []})
    people = {}
    for name, role in (("Maria Manager", "MANAGER"), ("Rita Rep", "REP"),
                       ("Ron Rep", "REP")):
        people[name] = (await ok(client, CREATE_USER, {
            "email": f"{name.split()[0]}@North.example", "name": name, "role": role,
            "teamId": team["id"]}, admin))["user"]
    assert people["Rita Rep"]["email"] == "rita@north.example"  # stored lower-cased
    assert people["Rita Rep"]["active"] is True
    team = (await ok(client, UPDATE_TEAM, {
        "id": team["id"], "expectedVersion": team["version"],
        "managerId": people["Maria Manager"]["id"]}, admin))["team"]
    assert team["manager"]["name"] == "Maria Manager"
    assert team["members"]["nodes"] == [{"name": n} for n in
                                        ("Maria Manager", "Rita Rep", "Ron Rep")]

    # The new rep signs in with a token and works.
    rita = as_key(people["Rita Rep"]["id"])
    token = client.token(rita)
    created = (await client.query(CREATE_ACCOUNT, {"i": {"name": "Rita's First Oy"}},
                                  token=token))["createAccount"]
    assert created == {"account": {"name": "Rita's First Oy", "owner": {"name": "Rita Rep"}},
                       "userErrors": []}

    # A board of hers is open when she is deactivated: it is closed with 4403 at once,
    # and the same token is refused on HTTP.
    async with subscribed(app, client, rita, SUMMARY, {"pipelineId": gid(pipeline)}) as ws:
        first = await asyncio.wait_for(ws.receive_json(), 5)
        assert first["type"] == "next"
        assert app.state.viewer_sockets.count("user", rita.id) == 1
        user = (await ok(client, DEACTIVATE, {"id": people["Rita Rep"]["id"]}, admin))["user"]
        assert user["active"] is False
        with pytest.raises(WebSocketDisconnect) as closed:  # noqa: PT012
            for _ in range(10):
                await ws.receive_json(timeout=5)
        assert closed.value.code == 4403
    response = await client.post("{ viewer { name } }", token=token)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # Her account keeps its owner.
    async with db.read() as connection:
        owner = (await connection.execute(select(Account.owner_id).where(
            Account.name == "Rita's First Oy"))).scalar_one()
    assert owner == rita.id

    # The audit log has an entry for every change the check made, newest first.
    entries = [edge["node"] for edge in (await audit_log(client, admin))["edges"]]
    assert [(e["action"], e["entityType"], e["actor"]["name"]) for e in entries] == [
        ("user.deactivated", "User", "Admin"),
        ("team.updated", "Team", "Admin"),
        ("user.created", "User", "Admin"),
        ("user.created", "User", "Admin"),
        ("user.created", "User", "Admin"),
        ("team.created", "Team", "Admin"),
    ]
    deactivated, manager_named = entries[0], entries[1]
    assert deactivated["entityId"] == people["Rita Rep"]["id"]
    assert (deactivated["before"], deactivated["after"]) == ({"active": True},
                                                             {"active": False})
    assert manager_named["before"] == {"name": "North", "manager_id": None}
    assert manager_named["after"] == {"name": "North",
                                      "manager_id": decode_id(people["Maria Manager"]["id"],
                                                              "User")}
    assert entries[2]["before"] is None
    assert entries[2]["after"]["email"] == "ron@north.example"
    assert entries[2]["after"]["role"] == "REP"

    # Reactivated, the same token works again.
    await ok(client, REACTIVATE, {"id": people["Rita Rep"]["id"]}, admin)
    assert (await client.query("{ viewer { name } }", token=token)) == {
        "viewer": {"name": "Rita Rep"}}


async def test_an_admin_cannot_deactivate_itself_nor_a_user_twice(
        client: GraphQLClient, db: Database, org: Org) -> None:
    before = await snapshot(db)
    assert await refused(client, DEACTIVATE, {"id": gid(org.admin)}, org.admin) == [
        {"field": "id", "code": "VALIDATION"}]
    assert await refused(client, REACTIVATE, {"id": gid(org.rep_a1)}, org.admin) == [
        {"field": "id", "code": "VALIDATION"}]
    assert await snapshot(db) == before


# --- validation ---------------------------------------------------------------------------


async def test_user_and_team_input_is_checked_field_by_field_and_nothing_is_written(
        client: GraphQLClient, db: Database, org: Org) -> None:
    taken = org.rep_a1.email.upper()
    before = await snapshot(db)
    assert await refused(client, CREATE_USER, {
        "email": taken, "name": "Twin", "role": "REP"}, org.admin) == [
        {"field": "email", "code": "CONFLICT"}]
    assert await refused(client, CREATE_USER, {
        "email": "new@example.com", "name": " ", "role": "REP",
        "teamId": gid(Team(id=999))}, org.admin) == [
        {"field": "name", "code": "VALIDATION"}, {"field": "teamId", "code": "NOT_FOUND"}]
    assert await refused(client, CREATE_USER, {
        "email": "not-an-email", "name": "X", "role": "REP",
        "teamId": "bm9wZQ=="}, org.admin) == [
        {"field": "email", "code": "VALIDATION"}, {"field": "teamId", "code": "VALIDATION"}]
    assert await refused(client, CREATE_USER, {
        "email": "p@example.com", "name": "P", "role": "PARTNER"}, org.admin) == [
        {"field": "partnerOrgId", "code": "VALIDATION"}]
    assert await refused(client, CREATE_USER, {
        "email": "r@example.com", "name": "R", "role": "REP",
        "partnerOrgId": gid(org.partner_org)}, org.admin) == [
        {"field": "partnerOrgId", "code": "VALIDATION"}]
    # A manager who is not in the team, or not of a managing role.
    assert await refused(client, UPDATE_TEAM, {
        "id": gid(org.team_a), "expectedVersion": org.team_a.version,
        "managerId": gid(org.manager_b)}, org.admin) == [
        {"field": "managerId", "code": "VALIDATION"}]
    assert await refused(client, UPDATE_TEAM, {
        "id": gid(org.team_a), "expectedVersion": org.team_a.version,
        "managerId": gid(org.rep_a1)}, org.admin) == [
        {"field": "managerId", "code": "VALIDATION"}]
    assert await refused(client, UPDATE_TEAM, {
        "id": gid(org.team_a), "expectedVersion": org.team_a.version,
        "name": "team b"}, org.admin) == [{"field": "name", "code": "CONFLICT"}]
    assert await refused(client, CREATE_TEAM, {
        "name": "Team A", "managerId": gid(org.rep_b1)}, org.admin) == [
        {"field": "name", "code": "CONFLICT"}, {"field": "managerId", "code": "VALIDATION"}]
    # Stale versions, a role a team's manager cannot have, an admin's own role.
    assert await refused(client, UPDATE_USER, {
        "id": gid(org.rep_a1), "expectedVersion": org.rep_a1.version + 1, "name": "X"},
        org.admin) == [{"field": "expectedVersion", "code": "CONFLICT"}]
    assert await refused(client, UPDATE_USER, {
        "id": gid(org.manager_a), "expectedVersion": org.manager_a.version, "role": "REP"},
        org.admin) == [{"field": "role", "code": "VALIDATION"}]
    assert await refused(client, UPDATE_USER, {
        "id": gid(org.admin), "expectedVersion": org.admin.version, "role": "REP"},
        org.admin) == [{"field": "role", "code": "VALIDATION"}]
    assert await refused(client, UPDATE_USER, {
        "id": gid(org.partner), "expectedVersion": org.partner.version,
        "teamId": gid(org.team_a)}, org.admin) == [{"field": "teamId", "code": "VALIDATION"}]
    assert await refused(client, MOVE, {"userId": gid(org.rep_a1), "teamId": gid(org.team_a)},
                         org.admin) == [{"field": "teamId", "code": "VALIDATION"}]
    assert await snapshot(db) == before


async def test_a_partner_user_is_created_in_its_org(
        client: GraphQLClient, db: Database, org: Org) -> None:
    data = await client.query(
        "mutation($i: CreateUserInput!) { createUser(input: $i) { "
        "user { role partnerOrg { name } team { name } } userErrors { code } } }",
        {"i": {"email": "Pat@Partner.example", "name": "Pat", "role": "PARTNER",
               "partnerOrgId": gid(org.partner_org)}}, as_user=org.admin)
    assert data["createUser"] == {"user": {"role": "PARTNER",
                                           "partnerOrg": {"name": "Partner Org"},
                                           "team": None}, "userErrors": []}


async def test_update_user_and_move_user_to_team(
        client: GraphQLClient, db: Database, org: Org) -> None:
    user = (await ok(client, UPDATE_USER, {
        "id": gid(org.rep_a1), "expectedVersion": org.rep_a1.version, "name": "Rep A1 Senior",
        "role": "MANAGER"}, org.admin))["user"]
    assert (user["name"], user["role"], user["version"]) == (
        "Rep A1 Senior", "MANAGER", org.rep_a1.version + 1)
    # The manager of team A moves to team B: team A is left without a manager.
    user = (await ok(client, MOVE, {"userId": gid(org.manager_a), "teamId": gid(org.team_b)},
                     org.admin))["user"]
    assert user["team"]["name"] == "Team B"
    teams = await client.query("{ teams { name manager { name } } }", as_user=org.admin)
    assert teams["teams"] == [{"name": "Team A", "manager": None},
                              {"name": "Team B", "manager": {"name": "Manager B"}}]
    # Now team A can have the promoted rep as its manager; she can leave the team later.
    data = await client.query("{ teams { id version } }", as_user=org.admin)
    team_a = data["teams"][0]
    await ok(client, UPDATE_TEAM, {"id": team_a["id"], "expectedVersion": team_a["version"],
                                   "managerId": gid(org.rep_a1)}, org.admin)
    user = (await ok(client, UPDATE_USER, {
        "id": gid(org.rep_a1), "expectedVersion": org.rep_a1.version + 1, "teamId": None},
        org.admin))["user"]
    assert user["team"] is None
    entries = [e["node"] for e in (await audit_log(client, org.admin))["edges"]]
    assert [e["action"] for e in entries] == [
        "user.updated", "team.updated", "team.updated", "user.moved", "team.updated",
        "user.updated"]
    assert entries[0]["before"]["team_id"] == org.team_a.id
    assert entries[0]["after"]["team_id"] is None
    assert entries[1]["after"]["manager_id"] is None  # she left the team she managed
    assert (entries[-1]["before"]["role"], entries[-1]["after"]["role"]) == ("REP", "MANAGER")


# --- ownership ----------------------------------------------------------------------------


async def test_transfer_ownership_moves_exactly_the_scopes_asked(
        client: GraphQLClient, db: Database, org: Org) -> None:
    pipeline, phases = await make_sales_pipeline(db, "Sales")
    accounts = [await make_account(db, org.rep_a1) for _ in range(2)]
    other = await make_account(db, org.rep_a2)
    contacts = [await make_contact(db, accounts[0]), await make_contact(db, other,
                                                                        owner=org.rep_a1)]
    open_deal = await make_opportunity(db, accounts[0], phases["Offer"])
    won = await make_opportunity(db, accounts[1], phases["Won"],
                                 closed_at=datetime.now(UTC))
    kind = await make_activity_type(db, "CALL")
    planned = await make_activity(db, org.rep_a1, kind)
    done = await make_activity(db, org.rep_a1, kind, completed_at=datetime.now(UTC))

    # The rep leaves: deactivated first, the records keep their owner.
    await ok(client, DEACTIVATE, {"id": gid(org.rep_a1)}, org.admin)
    before = await snapshot(db)
    assert await refused(client, TRANSFER, {
        "fromUserId": gid(org.rep_a1), "toUserId": gid(org.partner),
        "scopes": ["ACCOUNTS"]}, org.admin) == [{"field": "toUserId", "code": "VALIDATION"}]
    assert await refused(client, TRANSFER, {
        "fromUserId": gid(org.rep_a2), "toUserId": gid(org.rep_a1),
        "scopes": ["ACCOUNTS"]}, org.admin) == [{"field": "toUserId", "code": "VALIDATION"}]
    assert await refused(client, TRANSFER, {
        "fromUserId": gid(org.rep_a1), "toUserId": gid(org.rep_b1),
        "scopes": []}, org.admin) == [{"field": "scopes", "code": "VALIDATION"}]
    assert await snapshot(db) == before

    transfer = (await ok(client, TRANSFER, {
        "fromUserId": gid(org.rep_a1), "toUserId": gid(org.rep_b1),
        "scopes": ["ACCOUNTS", "OPPORTUNITIES"]}, org.admin))["transfer"]
    assert transfer == {"fromUser": {"name": "Rep A1"}, "toUser": {"name": "Rep B1"},
                        "accounts": 2, "contacts": None, "opportunities": 1,
                        "activities": None}
    async with db.read() as connection:
        async def owner(model: Any, record: Any) -> int:
            return (await connection.execute(select(model.owner_id).where(
                model.id == record.id))).scalar_one()
        assert [await owner(Account, a) for a in accounts] == [org.rep_b1.id] * 2
        assert await owner(Account, other) == org.rep_a2.id
        assert [await owner(Contact, c) for c in contacts] == [org.rep_a1.id] * 2
        assert await owner(Opportunity, open_deal) == org.rep_b1.id
        assert await owner(Opportunity, won) == org.rep_a1.id  # history stays
        assert [await owner(Activity, a) for a in (planned, done)] == [org.rep_a1.id] * 2
        versions = (await connection.execute(select(Account.version).where(
            Account.id == accounts[0].id))).scalar_one()
        events = list((await connection.execute(
            select(Event.payload).order_by(Event.id))).scalars())
    assert versions == accounts[0].version + 1  # an editor holding the old one conflicts
    # The boards of both teams hear of the open deal changing team.
    moved = [e for e in events if e.get("opportunityId") == open_deal.id]
    assert [(e["kind"], e["ownerId"], e["ownerTeamId"]) for e in moved] == [
        ("UPDATED", org.rep_b1.id, org.team_b.id), ("UPDATED", org.rep_a1.id, org.team_a.id)]
    assert Decimal(moved[0]["amountDelta"]) == 0
    assert moved[0]["pipelineId"] == pipeline.id

    rest = (await ok(client, TRANSFER, {
        "fromUserId": gid(org.rep_a1), "toUserId": gid(org.rep_a2),
        "scopes": ["CONTACTS", "ACTIVITIES", "ACCOUNTS"]}, org.admin))["transfer"]
    assert (rest["accounts"], rest["contacts"], rest["opportunities"], rest["activities"]) == (
        0, 2, None, 1)

    entries = (await audit_log(client, org.admin, {"action": "ownership.transferred"}))["edges"]
    assert [(e["node"]["entityId"], e["node"]["before"], e["node"]["after"])
            for e in entries] == [
        (gid(org.rep_a1), {"owner_id": org.rep_a1.id},
         {"owner_id": org.rep_a2.id, "moved": {"CONTACTS": 2, "ACTIVITIES": 1, "ACCOUNTS": 0}}),
        (gid(org.rep_a1), {"owner_id": org.rep_a1.id},
         {"owner_id": org.rep_b1.id, "moved": {"ACCOUNTS": 2, "OPPORTUNITIES": 1}}),
    ]


async def test_a_team_board_hears_of_a_transfer(
        app: Any, client: GraphQLClient, db: Database, org: Org) -> None:
    pipeline, phases = await make_sales_pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1)
    await make_opportunity(db, account, phases["Offer"])
    variables = {"pipelineId": gid(pipeline), "teamId": gid(org.team_b)}
    async with subscribed(app, client, org.manager_b, SUMMARY, variables) as ws:
        first = await asyncio.wait_for(ws.receive_json(), 5)
        assert first["payload"]["data"]["pipelineSummaryChanged"]["totals"]["count"] == 0
        await settled(app)
        await ok(client, TRANSFER, {"fromUserId": gid(org.rep_a1),
                                    "toUserId": gid(org.rep_b1),
                                    "scopes": ["OPPORTUNITIES"]}, org.admin)
        later = await asyncio.wait_for(ws.receive_json(), 5)
        assert later["payload"]["data"]["pipelineSummaryChanged"]["totals"]["count"] == 1


# --- who may ------------------------------------------------------------------------------


async def test_non_admins_are_forbidden_everything_and_nothing_is_written(
        client: GraphQLClient, db: Database, org: Org) -> None:
    await make_account(db, org.rep_a1)
    operations = [
        (CREATE_USER, {"email": "x@example.com", "name": "X", "role": "REP"}),
        (UPDATE_USER, {"id": gid(org.rep_a1), "expectedVersion": 1, "name": "X"}),
        (DEACTIVATE, {"id": gid(org.rep_a2)}),
        (REACTIVATE, {"id": gid(org.rep_a2)}),
        (MOVE, {"userId": gid(org.rep_a1), "teamId": gid(org.team_b)}),
        (CREATE_TEAM, {"name": "Rogue"}),
        (UPDATE_TEAM, {"id": gid(org.team_a), "expectedVersion": 1, "name": "Rogue"}),
        (TRANSFER, {"fromUserId": gid(org.rep_a1), "toUserId": gid(org.rep_a2),
                    "scopes": ["ACCOUNTS"]}),
    ]
    before = await snapshot(db)
    for who in (org.manager_a, org.rep_a1, org.partner):
        for query, input in operations:
            assert await refused(client, query, input, who) == [
                {"field": None, "code": "FORBIDDEN"}], (who.name, query)
        errors = await client.errors(AUDIT, {}, as_user=who)
        assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    assert await snapshot(db) == before


# --- the audit log ------------------------------------------------------------------------


async def test_the_audit_log_pages_newest_first_and_filters(
        client: GraphQLClient, db: Database, org: Org) -> None:
    other_admin = await make_user(db, Role.ADMIN, name="Other Admin")
    start = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(5):
        await ok(client, CREATE_TEAM, {"name": f"Team {n}"}, org.admin)
    await ok(client, DEACTIVATE, {"id": gid(org.rep_b1)}, other_admin)
    await ok(client, REACTIVATE, {"id": gid(org.rep_b1)}, org.admin)

    pages, cursor = [], None
    while True:
        page = await audit_log(client, org.admin, first=3, after=cursor)
        pages.append([(e["node"]["action"], e["node"]["entityType"]) for e in page["edges"]])
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]
    assert pages == [
        [("user.reactivated", "User"), ("user.deactivated", "User"), ("team.created", "Team")],
        [("team.created", "Team")] * 3,
        [("team.created", "Team")],
    ]

    async def actions(filter: dict[str, Any]) -> list[str]:
        return [e["node"]["action"] for e in (await audit_log(client, org.admin, filter))[
            "edges"]]

    assert await actions({"actorId": gid(other_admin)}) == ["user.deactivated"]
    assert await actions({"entityId": gid(org.rep_b1)}) == ["user.reactivated",
                                                            "user.deactivated"]
    assert await actions({"entityType": "Team", "action": "team.created"}) == [
        "team.created"] * 5
    assert await actions({"action": "user.deactivated", "entityType": "User"}) == [
        "user.deactivated"]
    assert await actions({"from": start.isoformat()}) == await actions({})
    assert len(await actions({})) == 7
    assert await actions({"to": start.isoformat()}) == []
    future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert await actions({"from": future}) == []


async def test_a_team_board_hears_of_a_rep_moving_in_with_open_deals(
        app: Any, client: GraphQLClient, db: Database, org: Org) -> None:
    pipeline, phases = await make_sales_pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1)
    await make_opportunity(db, account, phases["Offer"])
    await make_opportunity(db, account, phases["Won"], closed_at=datetime.now(UTC))
    variables = {"pipelineId": gid(pipeline), "teamId": gid(org.team_b)}
    async with subscribed(app, client, org.manager_b, SUMMARY, variables) as ws:
        first = await asyncio.wait_for(ws.receive_json(), 5)
        assert first["payload"]["data"]["pipelineSummaryChanged"]["totals"]["count"] == 0
        await ok(client, MOVE, {"userId": gid(org.rep_a1), "teamId": gid(org.team_b)},
                 org.admin)
        later = await asyncio.wait_for(ws.receive_json(), 5)
        assert later["payload"]["data"]["pipelineSummaryChanged"]["totals"]["count"] == 2
