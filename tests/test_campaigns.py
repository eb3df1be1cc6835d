"""Campaigns through the HTTP endpoint: members added by hand or set-based from a target
group with the channel's consent, the event waiting list, campaign status, stats, call
agents and logged calls, who may see and change what, and the links from opportunities,
leads and activities. Each checked in the response and in the database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from loaders.ids import decode_id, encode_id
from models.accounts import Account, Contact
from models.activities import ActivityType
from models.campaigns import Campaign, CampaignMember
from models.db import Database
from models.opportunities import Opportunity, Phase, PipelineKind
from tests.factories import (
    Org,
    gid,
    make_account,
    make_activity_type,
    make_campaign,
    make_campaign_audience,
    make_campaign_member,
    make_contact,
    make_lead,
    make_opportunity,
    make_org,
    make_pipeline,
    share,
)
from tests.graphql_client import GraphQLClient

CAMPAIGNS = Campaign.__table__
MEMBERS = CampaignMember.__table__
OPPORTUNITIES = Opportunity.__table__

ERRORS = "userErrors { field code message }"
CAMPAIGN = """
  id version name type status startsOn endsOn currency budget actualCost expectedRevenue
  description eventPlace eventStartsAt capacity owner { id }
"""
CREATE = f"""
mutation Create($input: CreateCampaignInput!) {{
  createCampaign(input: $input) {{ campaign {{ {CAMPAIGN} }} {ERRORS} }}
}}"""
UPDATE = f"""
mutation Update($input: UpdateCampaignInput!) {{
  updateCampaign(input: $input) {{ campaign {{ {CAMPAIGN} }} {ERRORS} }}
}}"""
ADDED = f"campaign {{ id version }} added skippedExisting skippedNoConsent {ERRORS}"
ADD_MEMBERS = f"""
mutation Add($input: AddCampaignMembersInput!) {{
  addCampaignMembers(input: $input) {{ {ADDED} }}
}}"""
ADD_GROUP = f"""
mutation AddGroup($input: AddTargetGroupToCampaignInput!) {{
  addTargetGroupToCampaign(input: $input) {{ {ADDED} }}
}}"""
MEMBER = "id version status respondedAt notes contact { id } agent { id } campaign { id }"
SET_STATUS = f"""
mutation SetStatus($input: SetCampaignMemberStatusInput!) {{
  setCampaignMemberStatus(input: $input) {{ campaignMember {{ {MEMBER} }} {ERRORS} }}
}}"""
ASSIGN = f"""
mutation Assign($input: AssignCampaignAgentsInput!) {{
  assignCampaignAgents(input: $input) {{ campaign {{ id version }} {ERRORS} }}
}}"""
CREATE_GROUP = f"""
mutation CreateGroup($input: CreateTargetGroupInput!) {{
  createTargetGroup(input: $input) {{ targetGroup {{ id }} {ERRORS} }}
}}"""
ADD_GROUP_MEMBERS = f"""
mutation AddGroupMembers($input: TargetGroupMembersInput!) {{
  addTargetGroupMembers(input: $input) {{ targetGroup {{ id memberCount }} {ERRORS} }}
}}"""
LOG = f"""
mutation Log($input: LogActivityInput!) {{
  logActivity(input: $input) {{
    activity {{ id version status campaign {{ id }} contact {{ id }} }} {ERRORS}
  }}
}}"""
COMPLETE = f"""
mutation Complete($input: CompleteActivityInput!) {{
  completeActivity(input: $input) {{ activity {{ id status }} {ERRORS} }}
}}"""
STATS_FIELDS = """
  membersByStatus { status count } memberCount responseCount responseRate
  sourcedOpportunityCount sourcedOpportunityAmount wonAmount costPerResponse roi
"""
STATS = f"""
query Stats($id: ID!) {{ campaign(id: $id) {{ id currency stats {{ {STATS_FIELDS} }} }} }}
"""
MEMBERS_QUERY = f"""
query Members($id: ID!, $filter: CampaignMemberFilter, $first: Int, $after: String) {{
  campaign(id: $id) {{
    members(filter: $filter, first: $first, after: $after) {{
      totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {MEMBER} }}
    }}
  }}
}}"""
LIST = """
query List($filter: CampaignFilter, $orderBy: [CampaignOrder!], $first: Int, $after: String) {
  campaigns(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } nodes { id name type status }
  }
}"""


# --- helpers ------------------------------------------------------------------------------


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


async def run(client: GraphQLClient, document: str, user: Any, **input: Any) -> dict[str, Any]:
    """The payload of a one-mutation document."""
    data = await client.query(document, {"input": input}, as_user=user)
    return next(iter(data.values()))


def member_gid(key: int) -> str:
    return encode_id("CampaignMember", key)


async def members_of(db: Database, campaign: Any) -> list[dict[str, Any]]:
    """The campaign's member rows, in member (id) order."""
    key = campaign if isinstance(campaign, int) else campaign.id
    async with db.read() as conn:
        rows = (await conn.execute(select(MEMBERS).where(MEMBERS.c.campaign_id == key)
                                   .order_by(MEMBERS.c.id))).mappings().all()
    return [dict(row) for row in rows]


async def member_row(db: Database, key: int) -> dict[str, Any]:
    async with db.read() as conn:
        return dict((await conn.execute(select(MEMBERS).where(MEMBERS.c.id == key))
                     ).mappings().one())


async def campaign_row(db: Database, key: int) -> dict[str, Any]:
    async with db.read() as conn:
        return dict((await conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.id == key))
                     ).mappings().one())


async def count_rows(db: Database, table: Any) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


def status_of(rows: list[dict[str, Any]]) -> dict[int, str]:
    """contact id -> member status name."""
    return {row["contact_id"]: row["status"].name for row in rows}


async def contact_group(client: GraphQLClient, user: Any, account: Account) -> str:
    """A SHARED CONTACT group whose saved filter picks the account's contacts."""
    payload = await run(client, CREATE_GROUP, user, name=f"Contacts of {account.name}",
                        kind="CONTACT", visibility="SHARED",
                        contactFilter={"accountId": {"eq": gid(account)}})
    assert payload["userErrors"] == []
    return payload["targetGroup"]["id"]


async def static_group(client: GraphQLClient, user: Any, kind: str, members: list[Any]) -> str:
    """A group of static members (accounts or contacts, by kind), no saved filter."""
    payload = await run(client, CREATE_GROUP, user, name=f"Static {kind}", kind=kind,
                        visibility="SHARED")
    assert payload["userErrors"] == []
    group = payload["targetGroup"]["id"]
    added = await run(client, ADD_GROUP_MEMBERS, user, id=group,
                      memberIds=[gid(member) for member in members])
    assert added["userErrors"] == []
    assert added["targetGroup"]["memberCount"] == len(members)
    return group


async def set_status(client: GraphQLClient, user: Any, member: int, status: str,
                     **extra: Any) -> dict[str, Any]:
    return await run(client, SET_STATUS, user, id=member_gid(member), status=status, **extra)


async def stats_of(client: GraphQLClient, user: Any, campaign: Any) -> dict[str, Any]:
    data = await client.query(STATS, {"id": gid(campaign)}, as_user=user)
    return data["campaign"]["stats"]


@dataclass
class World:
    org: Org
    acme: Account  # rep_a1's
    globex: Account  # rep_b1's
    call: ActivityType
    meeting: ActivityType
    phases: list[Phase]  # Qualify, Propose, Negotiate, Won, Lost


@pytest.fixture
async def world(db: Database) -> World:
    org = await make_org(db)
    acme = await make_account(db, org.rep_a1, name="Acme")
    globex = await make_account(db, org.rep_b1, name="Globex")
    call = await make_activity_type(db, "CALL", 1)
    meeting = await make_activity_type(db, "MEETING", 3)
    _, phases = await make_pipeline(db)
    return World(org, acme, globex, call, meeting, phases)


# --- 1. members and consent ---------------------------------------------------------------


async def test_email_campaign_from_contact_group_adds_consenting_contacts_once(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    consenting = await make_campaign_audience(db, world.acme, 60, email="reader@acme.example",
                                              email_consent=True)
    # Without consent, and with consent but no address: neither can be emailed.
    await make_campaign_audience(db, world.acme, 20, email="other@acme.example",
                                 email_consent=False)
    await make_campaign_audience(db, world.acme, 20, email=None, email_consent=True)
    outsider = await make_contact(db, world.globex, email="x@globex.example",
                                  email_consent=True)
    group = await contact_group(client, admin, world.acme)
    campaign = await make_campaign(db, admin, kind="EMAIL")

    first = await run(client, ADD_GROUP, admin, campaignId=gid(campaign), targetGroupId=group)
    assert first["userErrors"] == []
    assert (first["added"], first["skippedExisting"], first["skippedNoConsent"]) == (60, 0, 40)
    rows = await members_of(db, campaign)
    assert sorted(row["contact_id"] for row in rows) == consenting
    assert {row["status"].name for row in rows} == {"SENT"}
    assert outsider.id not in {row["contact_id"] for row in rows}

    again = await run(client, ADD_GROUP, admin, campaignId=gid(campaign), targetGroupId=group)
    assert again["userErrors"] == []
    assert (again["added"], again["skippedExisting"], again["skippedNoConsent"]) == (0, 60, 40)
    assert await members_of(db, campaign) == rows


async def test_call_campaign_needs_phone_consent_and_a_number(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    callable_ = await make_contact(db, world.acme, phone="+358 40 111", phone_consent=True)
    no_number = await make_contact(db, world.acme, phone=None, phone_consent=True)
    no_consent = await make_contact(db, world.acme, phone="+358 40 222", phone_consent=False)
    email_only = await make_contact(db, world.acme, phone="+358 40 333", phone_consent=False,
                                    email="e@acme.example", email_consent=True)
    everyone = [callable_, no_number, no_consent, email_only]

    by_group = await make_campaign(db, admin, kind="CALL")
    group = await static_group(client, admin, "CONTACT", everyone)
    payload = await run(client, ADD_GROUP, admin, campaignId=gid(by_group),
                        targetGroupId=group)
    assert (payload["added"], payload["skippedExisting"], payload["skippedNoConsent"]) == (
        1, 0, 3)
    assert status_of(await members_of(db, by_group)) == {callable_.id: "TO_CALL"}

    by_hand = await make_campaign(db, admin, kind="CALL")
    payload = await run(client, ADD_MEMBERS, admin, campaignId=gid(by_hand),
                        contactIds=[gid(contact) for contact in everyone])
    assert payload["userErrors"] == []
    assert (payload["added"], payload["skippedExisting"], payload["skippedNoConsent"]) == (
        1, 0, 3)
    assert status_of(await members_of(db, by_hand)) == {callable_.id: "TO_CALL"}


async def test_account_group_contributes_its_accounts_contacts(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    initech = await make_account(db, world.org.rep_a2, name="Initech")
    at_acme = [await make_contact(db, world.acme) for _ in range(3)]
    at_globex = [await make_contact(db, world.globex) for _ in range(2)]
    at_initech = await make_contact(db, initech)
    group = await static_group(client, admin, "ACCOUNT", [world.acme, world.globex])
    event = await make_campaign(db, admin, kind="EVENT")

    payload = await run(client, ADD_GROUP, admin, campaignId=gid(event), targetGroupId=group)
    assert payload["userErrors"] == []
    # Events ask no channel consent: every contact of the group's accounts is invited.
    assert (payload["added"], payload["skippedExisting"], payload["skippedNoConsent"]) == (
        5, 0, 0)
    rows = await members_of(db, event)
    assert status_of(rows) == {c.id: "INVITED" for c in [*at_acme, *at_globex]}
    assert at_initech.id not in status_of(rows)


async def test_add_members_by_id_applies_consent_and_counts(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    ann = await make_contact(db, world.acme, email="ann@acme.example", email_consent=True)
    bob = await make_contact(db, world.acme, email="bob@acme.example", email_consent=True)
    cid = await make_contact(db, world.acme, email="cid@acme.example", email_consent=False)
    dan = await make_contact(db, world.globex, email="dan@globex.example", email_consent=True)
    campaign = await make_campaign(db, admin, kind="EMAIL")

    first = await run(client, ADD_MEMBERS, admin, campaignId=gid(campaign),
                      contactIds=[gid(ann), gid(bob), gid(cid)])
    assert first["userErrors"] == []
    assert (first["added"], first["skippedExisting"], first["skippedNoConsent"]) == (2, 0, 1)
    assert status_of(await members_of(db, campaign)) == {ann.id: "SENT", bob.id: "SENT"}

    second = await run(client, ADD_MEMBERS, admin, campaignId=gid(campaign),
                       contactIds=[gid(ann), gid(dan), gid(cid)])
    assert (second["added"], second["skippedExisting"], second["skippedNoConsent"]) == (
        1, 1, 1)
    assert status_of(await members_of(db, campaign)) == {
        ann.id: "SENT", bob.id: "SENT", dan.id: "SENT"}


async def test_unknown_contact_is_not_found_and_nothing_is_written(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    ann = await make_contact(db, world.acme, email="ann@acme.example", email_consent=True)
    campaign = await make_campaign(db, admin, kind="EMAIL")
    before = await campaign_row(db, campaign.id)

    payload = await run(client, ADD_MEMBERS, admin, campaignId=gid(campaign),
                        contactIds=[gid(ann), encode_id("Contact", 999_999)])
    assert codes(payload) == {("contactIds.1", "NOT_FOUND")}
    assert (payload["campaign"], payload["added"]) == (None, 0)
    assert await count_rows(db, MEMBERS) == 0
    assert await campaign_row(db, campaign.id) == before


async def test_members_added_together_page_through_without_gaps_or_repeats(
    client: GraphQLClient, db: Database, world: World
) -> None:
    # One INSERT ... SELECT gives every member the same createdAt: the id breaks the tie.
    admin = world.org.admin
    ids = await make_campaign_audience(db, world.acme, 60, email="a@acme.example",
                                       email_consent=True)
    campaign = await make_campaign(db, admin, kind="EMAIL")
    group = await contact_group(client, admin, world.acme)
    assert (await run(client, ADD_GROUP, admin, campaignId=gid(campaign),
                      targetGroupId=group))["added"] == 60
    seen: list[str] = []
    after = None
    while True:
        data = await client.query(MEMBERS_QUERY, {"id": gid(campaign), "first": 25,
                                                  "after": after}, as_user=admin)
        page = data["campaign"]["members"]
        assert page["totalCount"] == 60
        seen += [node["contact"]["id"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [encode_id("Contact", key) for key in ids]


async def test_only_who_may_change_the_campaign_adds_members_and_personal_groups_stay_so(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    ann = await make_contact(db, world.acme, email="ann@acme.example", email_consent=True)
    campaign = await make_campaign(db, org.rep_a1, kind="EMAIL")
    for user in (org.rep_a2, org.rep_b1, org.partner):
        payload = await run(client, ADD_MEMBERS, user, campaignId=gid(campaign),
                            contactIds=[gid(ann)])
        assert {code for _, code in codes(payload)} == {"FORBIDDEN"}, user.name
        payload = await run(client, ASSIGN, user, campaignId=gid(campaign),
                            agentIds=[gid(user)])
        assert {code for _, code in codes(payload)} == {"FORBIDDEN"}, user.name

    # rep_a2's own PERSONAL group is not rep_a1's to use.
    personal = await run(client, CREATE_GROUP, org.rep_a2, name="Mine", kind="CONTACT",
                         contactFilter={"accountId": {"eq": gid(world.acme)}})
    payload = await run(client, ADD_GROUP, org.rep_a1, campaignId=gid(campaign),
                        targetGroupId=personal["targetGroup"]["id"])
    assert codes(payload) == {("targetGroupId", "NOT_FOUND")}
    assert await count_rows(db, MEMBERS) == 0


async def test_a_malformed_target_group_id_is_a_user_error_like_a_malformed_contact_id(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    campaign = await make_campaign(db, admin, kind="EMAIL")
    by_hand = await run(client, ADD_MEMBERS, admin, campaignId=gid(campaign),
                        contactIds=["not-an-id"])
    assert codes(by_hand) == {("contactIds.0", "VALIDATION")}
    for wrong in ("not-an-id", gid(world.acme)):
        response = await client.post(ADD_GROUP, {"input": {
            "campaignId": gid(campaign), "targetGroupId": wrong}}, as_user=admin)
        body = response.json()
        assert "errors" not in body, body
        assert codes(body["data"]["addTargetGroupToCampaign"]) == {
            ("targetGroupId", "VALIDATION")}, wrong


async def test_deleting_a_contact_removes_its_memberships_and_frees_its_place(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    event, (ann, bob) = await invited(db, world, 2, capacity=1)
    await set_status(client, rep, ann, "REGISTERED")
    assert (await set_status(client, rep, bob, "REGISTERED"))["campaignMember"][
        "status"] == "WAITLISTED"
    ann_contact = (await member_row(db, ann))["contact_id"]
    email = await make_campaign(db, rep, kind="EMAIL")
    await make_campaign_member(db, email, await make_contact(db, world.acme), "SENT")

    payload = await run(client, """
    mutation($input: DeleteContactInput!) {
      deleteContact(input: $input) { deletedContactId userErrors { field code message } }
    }""", rep, id=encode_id("Contact", ann_contact))
    assert payload == {"deletedContactId": encode_id("Contact", ann_contact),
                       "userErrors": []}
    assert [row["id"] for row in await members_of(db, event)] == [bob]
    assert len(await members_of(db, email)) == 1
    # Ann's place was freed like a decline frees it: the waiting list moves up.
    assert (await member_row(db, bob))["status"].name == "REGISTERED"


# --- 2. set-based -------------------------------------------------------------------------


async def test_adding_a_target_group_costs_the_same_statements_for_20_or_2000_contacts(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    small_account = await make_account(db, admin, name="Small")
    big_account = await make_account(db, admin, name="Big")
    await make_campaign_audience(db, small_account, 20, email="a@small.example",
                                 email_consent=True)
    await make_campaign_audience(db, big_account, 2000, email="a@big.example",
                                 email_consent=True)
    small_group = await contact_group(client, admin, small_account)
    big_group = await contact_group(client, admin, big_account)
    small_campaign = await make_campaign(db, admin, kind="EMAIL")
    big_campaign = await make_campaign(db, admin, kind="EMAIL")

    small, small_statements = await client.counted(
        ADD_GROUP, {"input": {"campaignId": gid(small_campaign), "targetGroupId": small_group}},
        as_user=admin)
    big, big_statements = await client.counted(
        ADD_GROUP, {"input": {"campaignId": gid(big_campaign), "targetGroupId": big_group}},
        as_user=admin)

    assert small["addTargetGroupToCampaign"]["added"] == 20
    assert big["addTargetGroupToCampaign"]["added"] == 2000
    assert len(await members_of(db, big_campaign)) == 2000
    assert big_statements == small_statements, (small_statements, big_statements)


async def test_adding_members_by_id_costs_the_same_statements_for_20_or_2000_contacts(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    ids = await make_campaign_audience(db, world.acme, 2000, email="a@acme.example",
                                       email_consent=True)
    small_campaign = await make_campaign(db, admin, kind="EMAIL")
    big_campaign = await make_campaign(db, admin, kind="EMAIL")

    def body(campaign: Any, keys: list[int]) -> dict[str, Any]:
        return {"input": {"campaignId": gid(campaign),
                          "contactIds": [encode_id("Contact", key) for key in keys]}}

    small, small_statements = await client.counted(ADD_MEMBERS, body(small_campaign, ids[:20]),
                                                   as_user=admin)
    big, big_statements = await client.counted(ADD_MEMBERS, body(big_campaign, ids),
                                               as_user=admin)
    assert small["addCampaignMembers"]["added"] == 20
    assert big["addCampaignMembers"]["added"] == 2000
    assert big_statements == small_statements, (small_statements, big_statements)


# --- 3. the event waiting list ------------------------------------------------------------


async def invited(db: Database, world: World, count: int, **campaign_values: Any
                  ) -> tuple[Any, list[int]]:
    """An EVENT campaign of rep_a1 and ``count`` INVITED members (their ids in order)."""
    event = await make_campaign(db, world.org.rep_a1, kind="EVENT", status="ACTIVE",
                                **campaign_values)
    keys = []
    for _ in range(count):
        contact = await make_contact(db, world.acme)
        keys.append((await make_campaign_member(db, event, contact, "INVITED")).id)
    return event, keys


async def test_a_registration_beyond_capacity_is_waitlisted_and_moves_up_when_a_place_frees(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    event, (ann, bob, cid) = await invited(db, world, 3, capacity=2)

    for member in (ann, bob):
        payload = await set_status(client, rep, member, "REGISTERED")
        assert payload["campaignMember"]["status"] == "REGISTERED"
    third = await set_status(client, rep, cid, "REGISTERED")
    assert third["userErrors"] == []
    assert third["campaignMember"]["status"] == "WAITLISTED"
    assert (await member_row(db, cid))["waitlisted_at"] is not None

    declined = await set_status(client, rep, bob, "DECLINED")
    assert declined["campaignMember"]["status"] == "DECLINED"
    moved_up = await member_row(db, cid)
    assert (moved_up["status"].name, moved_up["waitlisted_at"]) == ("REGISTERED", None)
    data = await client.query(MEMBERS_QUERY, {"id": gid(event), "filter": {
        "status": {"eq": "REGISTERED"}}}, as_user=rep)
    assert {n["id"] for n in data["campaign"]["members"]["nodes"]} == {
        member_gid(ann), member_gid(cid)}


async def test_the_earliest_on_the_waiting_list_moves_up_first(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    _, (ann, bob, cid, dan) = await invited(db, world, 4, capacity=2)
    await set_status(client, rep, ann, "REGISTERED")
    await set_status(client, rep, bob, "REGISTERED")
    # Dan joins the waiting list before Cid, though Cid was invited first.
    assert (await set_status(client, rep, dan, "REGISTERED"))["campaignMember"][
        "status"] == "WAITLISTED"
    assert (await set_status(client, rep, cid, "REGISTERED"))["campaignMember"][
        "status"] == "WAITLISTED"

    # Asking again to register while the event is full keeps the place in the queue.
    joined = (await member_row(db, dan))["waitlisted_at"]
    again = await set_status(client, rep, dan, "REGISTERED")
    assert again["campaignMember"]["status"] == "WAITLISTED"
    assert (await member_row(db, dan))["waitlisted_at"] == joined

    await set_status(client, rep, ann, "DECLINED")
    assert (await member_row(db, dan))["status"].name == "REGISTERED"
    assert (await member_row(db, cid))["status"].name == "WAITLISTED"

    await set_status(client, rep, bob, "DECLINED")
    assert (await member_row(db, cid))["status"].name == "REGISTERED"


async def test_attended_holds_a_place(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    _, (ann, bob) = await invited(db, world, 2, capacity=1)
    await set_status(client, rep, ann, "REGISTERED")
    attended = await set_status(client, rep, ann, "ATTENDED")
    assert attended["campaignMember"]["status"] == "ATTENDED"
    # Moving from REGISTERED to ATTENDED frees nothing; the place is still taken.
    assert (await set_status(client, rep, bob, "REGISTERED"))["campaignMember"][
        "status"] == "WAITLISTED"

    # Recorded as a no-show after all: the place is free again.
    await set_status(client, rep, ann, "NO_SHOW")
    assert (await member_row(db, bob))["status"].name == "REGISTERED"


async def test_a_status_of_another_campaign_type_is_refused(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    _, (ann,) = await invited(db, world, 1)
    before = await member_row(db, ann)
    for status in ("SENT", "TO_CALL", "RESPONDED"):
        payload = await set_status(client, rep, ann, status)
        assert codes(payload) == {("status", "VALIDATION")}, status
        assert payload["campaignMember"] is None
    assert await member_row(db, ann) == before


async def test_responded_at_is_set_on_the_first_response_and_kept(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    _, (ann,) = await invited(db, world, 1)
    assert (await member_row(db, ann))["responded_at"] is None

    registered = await set_status(client, rep, ann, "REGISTERED")
    first = registered["campaignMember"]["respondedAt"]
    assert first is not None
    stored = (await member_row(db, ann))["responded_at"]
    assert stored is not None

    attended = await set_status(client, rep, ann, "ATTENDED", notes="Came early")
    assert attended["campaignMember"]["respondedAt"] == first
    assert attended["campaignMember"]["notes"] == "Came early"
    assert (await member_row(db, ann))["responded_at"] == stored


async def test_concurrent_registrations_never_seat_more_than_the_capacity(
    client: GraphQLClient, db: Database, world: World
) -> None:
    # Twenty people register for the last place at the same moment.
    rep = world.org.rep_a1
    _, keys = await invited(db, world, 20, capacity=1)
    results = await asyncio.gather(*(set_status(client, rep, key, "REGISTERED")
                                     for key in keys))
    assert all(result["userErrors"] == [] for result in results)
    statuses = [(await member_row(db, key))["status"].name for key in keys]
    assert sorted(statuses) == ["REGISTERED"] + ["WAITLISTED"] * 19, statuses
    assert sorted(r["campaignMember"]["status"] for r in results) == sorted(statuses)


async def test_a_freed_place_is_not_given_beyond_a_reduced_capacity(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    event, (ann, bob, cid) = await invited(db, world, 3, capacity=2)
    for member in (ann, bob, cid):
        await set_status(client, rep, member, "REGISTERED")
    # The venue shrinks to one place; the two already registered keep theirs.
    smaller = await run(client, UPDATE, rep, id=gid(event), expectedVersion=1, capacity=1)
    assert smaller["userErrors"] == []

    await set_status(client, rep, ann, "DECLINED")
    # Bob alone now fills the one place: nothing was freed for Cid.
    assert [(await member_row(db, key))["status"].name for key in (ann, bob, cid)] == [
        "DECLINED", "REGISTERED", "WAITLISTED"]


async def test_a_stale_member_version_is_a_conflict(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    _, (ann,) = await invited(db, world, 1)
    moved = await set_status(client, rep, ann, "REGISTERED", expectedVersion=1)
    assert moved["campaignMember"]["version"] == 2
    stale = await set_status(client, rep, ann, "DECLINED", expectedVersion=1)
    assert codes(stale) == {("expectedVersion", "CONFLICT")}
    assert (await member_row(db, ann))["status"].name == "REGISTERED"


# --- 4. campaign status -------------------------------------------------------------------


async def move(client: GraphQLClient, user: Any, campaign: dict[str, Any], status: str
               ) -> dict[str, Any]:
    return await run(client, UPDATE, user, id=campaign["id"],
                     expectedVersion=campaign["version"], status=status)


async def created(client: GraphQLClient, user: Any, **input: Any) -> dict[str, Any]:
    payload = await run(client, CREATE, user, **{"name": "Spring", "type": "EMAIL", **input})
    assert payload["userErrors"] == []
    return payload["campaign"]


async def test_campaign_status_moves_forward_only(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    campaign = await created(client, rep)
    assert (campaign["status"], campaign["version"]) == ("PLANNED", 1)
    active = (await move(client, rep, campaign, "ACTIVE"))["campaign"]
    assert (active["status"], active["version"]) == ("ACTIVE", 2)
    completed = (await move(client, rep, active, "COMPLETED"))["campaign"]
    assert (completed["status"], completed["version"]) == ("COMPLETED", 3)

    key = decode_id(campaign["id"], "Campaign")
    before = await campaign_row(db, key)
    for status in ("ACTIVE", "PLANNED", "CANCELLED"):
        payload = await move(client, rep, completed, status)
        assert codes(payload) == {("status", "VALIDATION")}, status
        assert payload["campaign"] is None
    assert await campaign_row(db, key) == before


async def test_only_an_open_campaign_is_cancelled_and_a_cancelled_one_stays_so(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    planned = await created(client, rep, name="Planned")
    cancelled = (await move(client, rep, planned, "CANCELLED"))["campaign"]
    assert cancelled["status"] == "CANCELLED"

    active = (await move(client, rep, await created(client, rep, name="Active"), "ACTIVE")
              )["campaign"]
    assert (await move(client, rep, active, "CANCELLED"))["campaign"]["status"] == "CANCELLED"

    key = decode_id(cancelled["id"], "Campaign")
    before = await campaign_row(db, key)
    for status in ("PLANNED", "ACTIVE", "COMPLETED"):
        payload = await move(client, rep, cancelled, status)
        assert codes(payload) == {("status", "VALIDATION")}, status
    assert await campaign_row(db, key) == before


async def test_a_completed_or_cancelled_campaign_takes_no_members(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    ann = await make_contact(db, world.acme, email="ann@acme.example", email_consent=True)
    group = await static_group(client, admin, "CONTACT", [ann])
    for status in ("COMPLETED", "CANCELLED"):
        campaign = await make_campaign(db, admin, kind="EMAIL", status=status)
        by_hand = await run(client, ADD_MEMBERS, admin, campaignId=gid(campaign),
                            contactIds=[gid(ann)])
        assert codes(by_hand) == {("campaignId", "VALIDATION")}, status
        by_group = await run(client, ADD_GROUP, admin, campaignId=gid(campaign),
                             targetGroupId=group)
        assert codes(by_group) == {("campaignId", "VALIDATION")}, status
    assert await count_rows(db, MEMBERS) == 0


async def test_a_stale_campaign_version_is_a_conflict_and_changes_nothing(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    campaign = await created(client, rep)
    renamed = await run(client, UPDATE, rep, id=campaign["id"], expectedVersion=1,
                        name="Renamed")
    assert renamed["campaign"]["version"] == 2
    key = decode_id(campaign["id"], "Campaign")
    before = await campaign_row(db, key)
    stale = await run(client, UPDATE, rep, id=campaign["id"], expectedVersion=1,
                      name="Lost update", status="ACTIVE")
    assert codes(stale) == {("expectedVersion", "CONFLICT")}
    assert await campaign_row(db, key) == before


async def test_event_fields_belong_to_event_campaigns(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    for field, value in (("capacity", 40), ("eventPlace", "Hall 2"),
                         ("eventStartsAt", "2026-05-01T09:00:00+03:00")):
        payload = await run(client, CREATE, rep, name="Mail", type="EMAIL", **{field: value})
        assert codes(payload) == {("type", "VALIDATION")}, field
    assert await count_rows(db, CAMPAIGNS) == 0

    email = await created(client, rep)
    payload = await run(client, UPDATE, rep, id=email["id"], expectedVersion=1,
                        eventPlace="Hall 2")
    assert codes(payload) == {("type", "VALIDATION")}
    assert (await campaign_row(db, decode_id(email["id"], "Campaign")))["event_place"] is None

    event = await created(client, rep, type="EVENT", capacity=40, eventPlace="Hall 2",
                          eventStartsAt="2026-05-01T09:00:00+03:00")
    assert (event["capacity"], event["eventPlace"]) == (40, "Hall 2")
    stored = await campaign_row(db, decode_id(event["id"], "Campaign"))
    assert (stored["capacity"], stored["event_place"]) == (40, "Hall 2")
    assert stored["event_starts_at"].isoformat() == "2026-05-01T06:00:00+00:00"


# --- 5. stats -----------------------------------------------------------------------------


async def with_statuses(db: Database, campaign: Any, account: Account,
                        statuses: dict[str, int]) -> None:
    for status, count in statuses.items():
        for _ in range(count):
            await make_campaign_member(db, campaign, await make_contact(db, account), status)


async def test_stats_match_hand_computed_figures(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    qualify, _, _, won, lost = world.phases
    event = await make_campaign(db, admin, kind="EVENT", actual_cost=Decimal("500.00"))
    other = await make_campaign(db, admin, kind="EVENT")
    await with_statuses(db, event, world.acme, {"INVITED": 3, "REGISTERED": 2, "ATTENDED": 2,
                                                "NO_SHOW": 1, "DECLINED": 1})
    await with_statuses(db, other, world.acme, {"REGISTERED": 4})
    for phase, amount, currency in ((qualify, "1000.00", "EUR"), (won, "3000.00", "EUR"),
                                    (won, "1500.50", "EUR"), (lost, "700.00", "EUR"),
                                    (won, "9999.00", "USD")):
        await make_opportunity(db, world.acme, phase, amount=amount, currency=currency,
                               source_campaign_id=event.id)
    # Neither of these was sourced by the event.
    await make_opportunity(db, world.acme, won, amount="8888.00", source_campaign_id=other.id)
    await make_opportunity(db, world.acme, won, amount="7777.00")

    stats = await stats_of(client, admin, event)
    assert stats["membersByStatus"] == [
        {"status": "INVITED", "count": 3}, {"status": "REGISTERED", "count": 2},
        {"status": "WAITLISTED", "count": 0}, {"status": "ATTENDED", "count": 2},
        {"status": "NO_SHOW", "count": 1}, {"status": "DECLINED", "count": 1}]
    assert (stats["memberCount"], stats["responseCount"]) == (9, 6)
    assert stats["responseRate"] == pytest.approx(6 / 9, abs=1e-4)
    # Five sourced, one of them in USD: counted, but its amount is not in EUR.
    assert stats["sourcedOpportunityCount"] == 5
    assert Decimal(stats["sourcedOpportunityAmount"]) == Decimal("6200.50")
    assert Decimal(stats["wonAmount"]) == Decimal("4500.50")
    assert Decimal(stats["costPerResponse"]) == Decimal("83.33")  # 500 / 6
    assert stats["roi"] == pytest.approx((4500.50 - 500) / 500)


async def test_stats_without_members_responses_or_cost(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    email = await make_campaign(db, admin, kind="EMAIL")
    stats = await stats_of(client, admin, email)
    assert stats == {
        "membersByStatus": [{"status": s, "count": 0}
                            for s in ("SENT", "OPENED", "BOUNCED", "UNSUBSCRIBED")],
        "memberCount": 0, "responseCount": 0, "responseRate": None,
        "sourcedOpportunityCount": 0, "sourcedOpportunityAmount": "0.00", "wonAmount": "0.00",
        "costPerResponse": None, "roi": None}

    # Spent, called, nobody reached: no cost per response, and all of the money lost.
    call = await make_campaign(db, admin, kind="CALL", actual_cost=Decimal("100.00"))
    await with_statuses(db, call, world.acme, {"TO_CALL": 1, "CALLED": 2, "NOT_REACHED": 1})
    stats = await stats_of(client, admin, call)
    assert [(s["status"], s["count"]) for s in stats["membersByStatus"]] == [
        ("TO_CALL", 1), ("CALLED", 2), ("REACHED", 0), ("NOT_REACHED", 1)]
    assert (stats["memberCount"], stats["responseCount"], stats["responseRate"]) == (4, 0, 0)
    assert stats["costPerResponse"] is None
    assert stats["roi"] == pytest.approx(-1.0)


async def test_stats_for_a_list_of_campaigns_is_a_constant_number_of_statements(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    query = f"""
    query {{ campaigns(first: 100) {{ nodes {{
      id name owner {{ id name }} stats {{ {STATS_FIELDS} }}
      members(first: 5) {{ nodes {{ id status contact {{ id name }} }} }}
    }} }} }}"""
    _, won = world.phases[0], world.phases[3]

    async def campaigns(count: int) -> None:
        for n in range(count):
            owner = (world.org.rep_a1, world.org.rep_b1, world.org.manager_a)[n % 3]
            campaign = await make_campaign(db, owner, kind="CALL",
                                           actual_cost=Decimal("10.00"))
            await with_statuses(db, campaign, world.acme, {"TO_CALL": 1, "REACHED": 2})
            await make_opportunity(db, world.acme, won, amount="100.00",
                                   source_campaign_id=campaign.id)

    await campaigns(2)
    few, few_statements = await client.counted(query, as_user=admin)
    await campaigns(10)
    many, many_statements = await client.counted(query, as_user=admin)
    assert len(few["campaigns"]["nodes"]) == 2
    assert len(many["campaigns"]["nodes"]) == 12
    assert {n["stats"]["responseCount"] for n in many["campaigns"]["nodes"]} == {2}
    assert {Decimal(n["stats"]["wonAmount"]) for n in many["campaigns"]["nodes"]} == {
        Decimal("100.00")}
    assert many_statements == few_statements, (few_statements, many_statements)


# --- 6. call campaigns --------------------------------------------------------------------


async def call_campaign(db: Database, world: World, count: int, owner: Any = None
                        ) -> tuple[Any, list[int], list[Contact]]:
    """A CALL campaign (rep_a1's unless told) with ``count`` TO_CALL members."""
    campaign = await make_campaign(db, owner or world.org.rep_a1, kind="CALL",
                                   status="ACTIVE")
    contacts = [await make_contact(db, world.acme, phone=f"+358 40 {n}", phone_consent=True)
                for n in range(count)]
    keys = [(await make_campaign_member(db, campaign, c, "TO_CALL")).id for c in contacts]
    return campaign, keys, contacts


async def test_agents_are_dealt_members_round_robin_in_member_order(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    campaign, keys, _ = await call_campaign(db, world, 7)
    agents = [org.rep_a1, org.rep_a2, org.rep_b1]
    payload = await run(client, ASSIGN, org.rep_a1, campaignId=gid(campaign),
                        agentIds=[gid(agent) for agent in agents])
    assert payload["userErrors"] == []
    rows = await members_of(db, campaign)
    assert [row["agent_id"] for row in rows] == [agents[n % 3].id for n in range(7)]
    assert [sum(row["agent_id"] == a.id for row in rows) for a in agents] == [3, 2, 2]
    assert {row["version"] for row in rows} == {2}

    # Two more members: only they are dealt, the earlier assignments stay.
    more = [await make_contact(db, world.acme, phone="+358 40 9", phone_consent=True)
            for _ in range(2)]
    added = await run(client, ADD_MEMBERS, org.rep_a1, campaignId=gid(campaign),
                      contactIds=[gid(c) for c in more])
    assert added["added"] == 2
    payload = await run(client, ASSIGN, org.rep_a1, campaignId=gid(campaign),
                        agentIds=[gid(org.manager_a)])
    assert payload["userErrors"] == []
    after = await members_of(db, campaign)
    assert [row["agent_id"] for row in after] == [
        *(row["agent_id"] for row in rows), org.manager_a.id, org.manager_a.id]

    # Everyone again, between two agents.
    payload = await run(client, ASSIGN, org.rep_a1, campaignId=gid(campaign),
                        agentIds=[gid(org.rep_a2), gid(org.rep_b1)], onlyUnassigned=False)
    assert payload["userErrors"] == []
    assert [row["agent_id"] for row in await members_of(db, campaign)] == [
        (org.rep_a2.id, org.rep_b1.id)[n % 2] for n in range(9)]
    data = await client.query(MEMBERS_QUERY, {"id": gid(campaign), "first": 1},
                              as_user=org.rep_a1)
    assert data["campaign"]["members"]["nodes"][0]["agent"] == {"id": gid(org.rep_a2)}
    assert keys[0] == decode_id(data["campaign"]["members"]["nodes"][0]["id"],
                                "CampaignMember")


async def test_agents_call_only_call_campaigns_and_are_active_staff(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    email = await make_campaign(db, org.rep_a1, kind="EMAIL")
    contact = await make_contact(db, world.acme)
    await make_campaign_member(db, email, contact, "SENT")
    payload = await run(client, ASSIGN, org.rep_a1, campaignId=gid(email),
                        agentIds=[gid(org.rep_a2)])
    assert codes(payload) == {("campaignId", "VALIDATION")}
    assert [row["agent_id"] for row in await members_of(db, email)] == [None]

    call, _, _ = await call_campaign(db, world, 2)
    payload = await run(client, ASSIGN, org.rep_a1, campaignId=gid(call),
                        agentIds=[gid(org.rep_a2), gid(org.partner)])
    assert codes(payload) == {("agentIds.1", "VALIDATION")}
    assert [row["agent_id"] for row in await members_of(db, call)] == [None, None]


async def test_a_done_call_logged_for_a_member_marks_it_called(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    campaign, (to_call, not_reached, reached, meeting_only, planned), contacts = (
        await call_campaign(db, world, 5))
    async with db.transaction() as session:
        for key, status in ((not_reached, "NOT_REACHED"), (reached, "REACHED")):
            member = await session.get(CampaignMember, key)
            assert member is not None
            member.status = type(member.status)[status]

    async def log(contact: Contact, kind: ActivityType, status: str) -> dict[str, Any]:
        payload = await run(client, LOG, rep, typeId=gid(kind), subject="Call", status=status,
                            contactId=gid(contact), campaignId=gid(campaign))
        assert payload["userErrors"] == []
        assert payload["activity"]["campaign"] == {"id": gid(campaign)}
        return payload["activity"]

    for contact in contacts[:3]:
        await log(contact, world.call, "DONE")
    await log(contacts[3], world.meeting, "DONE")
    planned_call = await log(contacts[4], world.call, "PLANNED")

    async def statuses() -> list[str]:
        return [(await member_row(db, key))["status"].name
                for key in (to_call, not_reached, reached, meeting_only, planned)]

    # Reached stays reached; a meeting or a call not yet made is no call.
    assert await statuses() == ["CALLED", "CALLED", "REACHED", "TO_CALL", "TO_CALL"]

    # Completing the planned call later counts as the call.
    done = await run(client, COMPLETE, rep, id=planned_call["id"],
                     expectedVersion=planned_call["version"])
    assert done["userErrors"] == []
    assert await statuses() == ["CALLED", "CALLED", "REACHED", "TO_CALL", "CALLED"]


async def test_a_call_for_another_campaign_type_changes_no_member(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    email = await make_campaign(db, rep, kind="EMAIL", status="ACTIVE")
    contact = await make_contact(db, world.acme)
    member = await make_campaign_member(db, email, contact, "SENT")
    payload = await run(client, LOG, rep, typeId=gid(world.call), subject="Call",
                        status="DONE", contactId=gid(contact), campaignId=gid(email))
    assert payload["userErrors"] == []
    assert (await member_row(db, member.id))["status"].name == "SENT"


async def test_the_members_agent_may_set_its_status_other_reps_may_not(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    campaign, (first, second), _ = await call_campaign(db, world, 2)  # rep_a1's
    payload = await run(client, ASSIGN, org.rep_a1, campaignId=gid(campaign),
                        agentIds=[gid(org.rep_b1), gid(org.rep_a2)])
    assert payload["userErrors"] == []

    # rep_b1 is of another team, but first is its member to call.
    reached = await set_status(client, org.rep_b1, first, "REACHED")
    assert reached["userErrors"] == []
    assert reached["campaignMember"]["status"] == "REACHED"
    assert reached["campaignMember"]["agent"] == {"id": gid(org.rep_b1)}

    before = await member_row(db, second)
    for user in (org.rep_b1, org.manager_b):
        payload = await set_status(client, user, second, "REACHED")
        assert codes(payload) == {(None, "FORBIDDEN")}, user.name
    assert await member_row(db, second) == before

    # The campaign's owner and its manager may, as may an admin.
    for user, status in ((org.rep_a1, "CALLED"), (org.manager_a, "NOT_REACHED"),
                         (org.admin, "REACHED")):
        payload = await set_status(client, user, second, status)
        assert payload["userErrors"] == [], user.name
    assert (await member_row(db, second))["status"].name == "REACHED"


async def test_other_reps_may_not_set_a_members_status(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    _, (member,), _ = await call_campaign(db, world, 1)  # rep_a1's, no agent
    before = await member_row(db, member)
    for user in (org.rep_a2, org.rep_b1, org.partner):
        payload = await set_status(client, user, member, "REACHED")
        assert codes(payload) == {(None, "FORBIDDEN")}, user.name
    assert await member_row(db, member) == before


# --- 7. permissions and visibility --------------------------------------------------------


async def test_partners_see_no_campaigns_and_cannot_create_them(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    await share(db, world.acme, org.partner_org)
    contact = await make_contact(db, world.acme)
    campaign = await make_campaign(db, org.rep_a1, kind="EVENT")
    member = await make_campaign_member(db, campaign, contact, "INVITED")
    deal = await make_opportunity(db, world.acme, world.phases[0],
                                  source_campaign_id=campaign.id)

    data = await client.query("""
    query($c: ID!, $m: ID!, $contact: ID!, $deal: ID!) {
      campaigns { totalCount nodes { id } }
      campaign(id: $c) { id }
      node(id: $c) { id }
      member: node(id: $m) { id }
      contact(id: $contact) { id campaigns { id } campaignMemberships { id } }
      opportunity(id: $deal) { id sourceCampaign { id } }
    }""", {"c": gid(campaign), "m": gid(member), "contact": gid(contact),
            "deal": gid(deal)}, as_user=org.partner)
    assert data == {
        "campaigns": {"totalCount": 0, "nodes": []}, "campaign": None, "node": None,
        "member": None,
        "contact": {"id": gid(contact), "campaigns": [], "campaignMemberships": []},
        "opportunity": {"id": gid(deal), "sourceCampaign": None}}

    payload = await run(client, CREATE, org.partner, name="Partner push", type="EMAIL")
    assert codes(payload) == {(None, "FORBIDDEN")}
    assert payload["campaign"] is None
    assert await count_rows(db, CAMPAIGNS) == 1


async def test_reps_create_their_own_campaigns(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    campaign = await created(client, org.rep_a1, name="Trade fair", type="EVENT",
                             startsOn="2026-05-01", endsOn="2026-05-02", budget="2500.00",
                             capacity=120, eventPlace="Expo")
    assert (campaign["status"], campaign["version"], campaign["owner"]) == (
        "PLANNED", 1, {"id": gid(org.rep_a1)})
    stored = await campaign_row(db, decode_id(campaign["id"], "Campaign"))
    assert (stored["owner_id"], stored["type"].name, stored["budget"], stored["capacity"]) == (
        org.rep_a1.id, "EVENT", Decimal("2500.00"), 120)

    payload = await run(client, CREATE, org.rep_a1, name="For a2", type="EMAIL",
                        ownerId=gid(org.rep_a2))
    assert codes(payload) == {("ownerId", "FORBIDDEN")}
    assert await count_rows(db, CAMPAIGNS) == 1


async def test_only_the_owner_its_manager_or_an_admin_updates_a_campaign(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    campaign = await created(client, org.rep_a1)
    key = decode_id(campaign["id"], "Campaign")
    before = await campaign_row(db, key)
    for user in (org.rep_a2, org.rep_b1, org.manager_b, org.partner):
        payload = await run(client, UPDATE, user, id=campaign["id"], expectedVersion=1,
                            name="Hijacked")
        # Partners are refused before the campaign is looked at.
        field = None if user is org.partner else "id"
        assert codes(payload) == {(field, "FORBIDDEN")}, user.name
    assert await campaign_row(db, key) == before

    version = 1
    for user in (org.rep_a1, org.manager_a, org.admin):
        payload = await run(client, UPDATE, user, id=campaign["id"], expectedVersion=version,
                            name=f"By {user.name}")
        assert payload["userErrors"] == [], user.name
        version = payload["campaign"]["version"]
    assert (await campaign_row(db, key))["name"] == "By Admin"


async def test_campaigns_are_filtered_by_type_and_status_ordered_and_paged(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    for name, kind, status in (("Echo", "EVENT", "ACTIVE"), ("Alpha", "CALL", "ACTIVE"),
                               ("Delta", "EMAIL", "ACTIVE"), ("Bravo", "EVENT", "ACTIVE"),
                               ("Charlie", "CALL", "PLANNED"), ("Foxtrot", "CALL", "ACTIVE"),
                               ("Golf", "PROJECT", "ACTIVE")):
        await make_campaign(db, rep, kind=kind, status=status, name=name)
    variables: dict[str, Any] = {
        "filter": {"type": {"in": ["EVENT", "CALL"]}, "status": {"eq": "ACTIVE"}},
        "orderBy": [{"field": "NAME"}], "first": 2}
    first = (await client.query(LIST, variables, as_user=rep))["campaigns"]
    assert [n["name"] for n in first["nodes"]] == ["Alpha", "Bravo"]
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (4, True)
    rest = (await client.query(LIST, {**variables, "after": first["pageInfo"]["endCursor"]},
                               as_user=rep))["campaigns"]
    assert [n["name"] for n in rest["nodes"]] == ["Echo", "Foxtrot"]
    assert rest["pageInfo"]["hasNextPage"] is False

    descending = (await client.query(LIST, {
        "filter": {"type": {"eq": "CALL"}}, "orderBy": [{"field": "NAME", "direction": "DESC"}]
    }, as_user=rep))["campaigns"]
    assert [n["name"] for n in descending["nodes"]] == ["Foxtrot", "Charlie", "Alpha"]


async def test_members_are_filtered_by_status_and_agent(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    campaign = await make_campaign(db, org.rep_a1, kind="CALL")
    rows = []
    for status, agent in (("TO_CALL", org.rep_a1), ("TO_CALL", org.rep_a2),
                          ("REACHED", org.rep_a2), ("TO_CALL", org.rep_a2),
                          ("NOT_REACHED", None)):
        contact = await make_contact(db, world.acme)
        rows.append(await make_campaign_member(db, campaign, contact, status, agent=agent))

    async def ids(filter: dict[str, Any]) -> list[str]:
        data = await client.query(MEMBERS_QUERY, {"id": gid(campaign), "filter": filter},
                                  as_user=org.rep_b1)
        members = data["campaign"]["members"]
        assert members["totalCount"] == len(members["nodes"])
        return [n["id"] for n in members["nodes"]]

    assert await ids({"status": {"eq": "TO_CALL"}, "agentId": {"eq": gid(org.rep_a2)}}) == [
        gid(rows[1]), gid(rows[3])]
    assert await ids({"agentId": {"eq": gid(org.rep_a2)}}) == [
        gid(rows[1]), gid(rows[2]), gid(rows[3])]
    assert await ids({"status": {"in": ["REACHED", "NOT_REACHED"]}}) == [
        gid(rows[2]), gid(rows[4])]
    assert await ids({"agentId": {"isNull": True}}) == [gid(rows[4])]


async def test_contact_campaigns_lists_the_campaigns_a_contact_is_in(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    ann = await make_contact(db, world.acme, email="ann@acme.example", email_consent=True)
    bob = await make_contact(db, world.acme)
    older = await make_campaign(db, rep, kind="EMAIL", name="Older")
    newer = await make_campaign(db, rep, kind="EVENT", name="Newer")
    await make_campaign(db, rep, kind="CALL", name="Unrelated")
    for campaign in (older, newer):
        payload = await run(client, ADD_MEMBERS, rep, campaignId=gid(campaign),
                            contactIds=[gid(ann)])
        assert payload["added"] == 1

    query = """
    query($id: ID!) { contact(id: $id) {
      campaigns { id name } campaignMemberships { status campaign { id } contact { id } }
    } }"""
    data = (await client.query(query, {"id": gid(ann)}, as_user=world.org.rep_b1))["contact"]
    assert data["campaigns"] == [{"id": gid(newer), "name": "Newer"},
                                 {"id": gid(older), "name": "Older"}]
    assert data["campaignMemberships"] == [
        {"status": "INVITED", "campaign": {"id": gid(newer)}, "contact": {"id": gid(ann)}},
        {"status": "SENT", "campaign": {"id": gid(older)}, "contact": {"id": gid(ann)}}]
    none = (await client.query(query, {"id": gid(bob)}, as_user=rep))["contact"]
    assert none == {"campaigns": [], "campaignMemberships": []}


# --- 8. links -----------------------------------------------------------------------------


async def test_an_opportunity_names_its_source_campaign_and_counts_in_its_stats(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    campaign = await make_campaign(db, rep, kind="EVENT", actual_cost=Decimal("100.00"))
    create = f"""
    mutation($input: CreateOpportunityInput!) {{
      createOpportunity(input: $input) {{
        opportunity {{ id version sourceCampaign {{ id name }} }} {ERRORS}
      }}
    }}"""
    payload = await run(client, create, rep, accountId=gid(world.acme), name="From the fair",
                        amount="2000.00", sourceCampaignId=gid(campaign))
    assert payload["userErrors"] == []
    assert payload["opportunity"]["sourceCampaign"] == {"id": gid(campaign),
                                                        "name": campaign.name}
    key = decode_id(payload["opportunity"]["id"], "Opportunity")
    async with db.read() as conn:
        stored = (await conn.execute(select(OPPORTUNITIES.c.source_campaign_id).where(
            OPPORTUNITIES.c.id == key))).scalar_one()
    assert stored == campaign.id
    stats = await stats_of(client, rep, campaign)
    assert (stats["sourcedOpportunityCount"], Decimal(stats["sourcedOpportunityAmount"]),
            Decimal(stats["wonAmount"])) == (1, Decimal("2000.00"), Decimal("0.00"))
    assert stats["roi"] == pytest.approx(-1.0)

    update = f"""
    mutation($input: UpdateOpportunityInput!) {{
      updateOpportunity(input: $input) {{ opportunity {{ sourceCampaign {{ id }} }} {ERRORS} }}
    }}"""
    cleared = await run(client, update, rep, id=payload["opportunity"]["id"],
                        expectedVersion=payload["opportunity"]["version"],
                        sourceCampaignId=None)
    assert cleared == {"opportunity": {"sourceCampaign": None}, "userErrors": []}
    assert (await stats_of(client, rep, campaign))["sourcedOpportunityCount"] == 0

    unknown = await run(client, create, rep, accountId=gid(world.acme), name="Nowhere",
                        amount="1.00", sourceCampaignId=encode_id("Campaign", 999_999))
    assert codes(unknown) == {("sourceCampaignId", "NOT_FOUND")}
    assert await count_rows(db, OPPORTUNITIES) == 1


async def test_converting_a_lead_of_a_campaign_sources_its_opportunity(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    campaign = await make_campaign(db, rep, kind="EVENT")
    _, marketing = await make_pipeline(db, PipelineKind.MARKETING)
    lead = await make_lead(db, marketing[1], rep, company="Fairgoer Oy",
                           campaign_id=campaign.id)
    convert = f"""
    mutation($input: ConvertLeadInput!) {{
      convertLead(input: $input) {{
        lead {{ campaign {{ id }} convertedOpportunity {{ id sourceCampaign {{ id }} }} }}
        {ERRORS}
      }}
    }}"""
    payload = await run(client, convert, rep, id=gid(lead), expectedVersion=lead.version,
                        opportunity={"name": "Fair deal", "amount": "900.00"})
    assert payload["userErrors"] == []
    assert payload["lead"]["campaign"] == {"id": gid(campaign)}
    opportunity = payload["lead"]["convertedOpportunity"]
    assert opportunity["sourceCampaign"] == {"id": gid(campaign)}
    async with db.read() as conn:
        stored = (await conn.execute(select(OPPORTUNITIES.c.source_campaign_id).where(
            OPPORTUNITIES.c.id == decode_id(opportunity["id"], "Opportunity")))).scalar_one()
    assert stored == campaign.id
    stats = await stats_of(client, rep, campaign)
    assert (stats["sourcedOpportunityCount"], Decimal(stats["sourcedOpportunityAmount"])) == (
        1, Decimal("900.00"))
