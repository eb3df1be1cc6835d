"""Leads through the HTTP endpoint: createLead, updateLead, moveLeadPhase and
convertLead, each checked in the payload and in the database. A conversion writes the
account, the contact and the opportunity together or not at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from loaders.ids import decode_id, encode_id
from models.accounts import Account, AccountType, Contact
from models.db import Database
from models.events import Event
from models.leads import Lead
from models.opportunities import Opportunity, Phase, PhaseChange, PipelineKind
from tests.factories import (
    Org,
    gid,
    make_account,
    make_contact,
    make_lead,
    make_org,
    make_pipeline,
)
from tests.graphql_client import GraphQLClient

ERRORS = "userErrors { field code message }"
LEAD = """
  id version company firstName lastName name email phone title source daysInPhase
  convertedAt owner { id } pipeline { id } phase { id name }
  convertedAccount { id name type owner { id } }
  convertedContact { id firstName lastName email phone title account { id } owner { id } }
  convertedOpportunity {
    id name amount currency probability expectedCloseDate owner { id } account { id }
    phase { id name } phaseHistory { fromPhase { id } toPhase { id } changedBy { id } }
  }
"""
CREATE = f"""
mutation Create($input: CreateLeadInput!) {{
  createLead(input: $input) {{ lead {{ {LEAD} }} {ERRORS} }}
}}"""
UPDATE = f"""
mutation Update($input: UpdateLeadInput!) {{
  updateLead(input: $input) {{ lead {{ {LEAD} }} {ERRORS} }}
}}"""
MOVE = f"""
mutation Move($input: MoveLeadPhaseInput!) {{
  moveLeadPhase(input: $input) {{ lead {{ {LEAD} }} {ERRORS} }}
}}"""
CONVERT = f"""
mutation Convert($input: ConvertLeadInput!) {{
  convertLead(input: $input) {{ lead {{ {LEAD} }} {ERRORS} }}
}}"""

TABLES = [Lead.__table__, Account.__table__, Contact.__table__, Opportunity.__table__,
          PhaseChange.__table__, Event.__table__]
LEADS = Lead.__table__


# --- helpers ------------------------------------------------------------------------------


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


async def run(client: GraphQLClient, document: str, user: Any, **input: Any) -> dict[str, Any]:
    data = await client.query(document, {"input": input}, as_user=user)
    return next(iter(data.values()))


async def everything(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table a lead mutation may touch."""
    found = {}
    async with db.read() as conn:
        for table in TABLES:
            rows = (await conn.execute(select(table).order_by(table.c.id))).mappings().all()
            found[table.name] = [dict(r) for r in rows]
    return found


async def row_of(db: Database, table: Any, key: int) -> dict[str, Any]:
    async with db.read() as conn:
        return dict((await conn.execute(select(table).where(table.c.id == key))
                     ).mappings().one())


@dataclass
class Setup:
    org: Org
    marketing: Any
    new: Phase
    engaged: Phase
    qualified: Phase
    disqualified: Phase
    events: Any
    events_phases: list[Phase]
    sales: Any
    sales_phases: list[Phase]


@pytest.fixture
async def setup(db: Database) -> Setup:
    org = await make_org(db)
    # A sales pipeline first, so "the first MARKETING pipeline" is not just the first one.
    sales, sales_phases = await make_pipeline(db, PipelineKind.SALES, name="New business")
    marketing, phases = await make_pipeline(db, PipelineKind.MARKETING, name="Inbound",
                                            positions=[1, 2, 3, 4])
    events, events_phases = await make_pipeline(db, PipelineKind.MARKETING, name="Events")
    return Setup(org, marketing, *phases, events, events_phases, sales, sales_phases)


# --- createLead ---------------------------------------------------------------------------


async def test_create_lead_defaults_to_the_first_marketing_pipelines_first_phase(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    before = await everything(db)

    payload = await run(client, CREATE, setup.org.rep_a1, company=" Umbrella Corp ",
                        lastName="Wesker", firstName="Albert", email="albert@umbrella.example",
                        phone="+1 555 0100", title="CEO", source="Web form")

    assert payload["userErrors"] == []
    lead = payload["lead"]
    assert (lead["company"], lead["name"], lead["email"]) == (
        "Umbrella Corp", "Albert Wesker", "albert@umbrella.example")
    assert (lead["phone"], lead["title"], lead["source"]) == ("+1 555 0100", "CEO", "Web form")
    assert lead["pipeline"] == {"id": gid(setup.marketing)}
    assert lead["phase"] == {"id": gid(setup.new), "name": "New"}
    assert lead["owner"] == {"id": gid(setup.org.rep_a1)}
    assert (lead["version"], lead["daysInPhase"], lead["convertedAt"]) == (1, 0, None)
    assert lead["convertedAccount"] is lead["convertedOpportunity"] is None
    row = await row_of(db, LEADS, decode_id(lead["id"], "Lead"))
    assert (row["company"], row["first_name"], row["last_name"]) == (
        "Umbrella Corp", "Albert", "Wesker")
    assert (row["pipeline_id"], row["phase_id"], row["owner_id"]) == (
        setup.marketing.id, setup.new.id, setup.org.rep_a1.id)
    after = await everything(db)
    assert len(after["leads"]) == len(before["leads"]) + 1
    # A lead is no opportunity: nothing else is written.
    assert {k: v for k, v in after.items() if k != "leads"} == {
        k: v for k, v in before.items() if k != "leads"}


async def test_create_lead_in_a_named_phase_for_a_team_member(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    payload = await run(client, CREATE, setup.org.manager_a, company="Soylent",
                        lastName="Thorn", phaseId=gid(setup.events_phases[1]),
                        ownerId=gid(setup.org.rep_a2))

    assert payload["userErrors"] == []
    row = await row_of(db, LEADS, decode_id(payload["lead"]["id"], "Lead"))
    assert (row["pipeline_id"], row["phase_id"], row["owner_id"]) == (
        setup.events.id, setup.events_phases[1].id, setup.org.rep_a2.id)


@pytest.mark.parametrize(("case", "expected"), [
    ("sales-phase", {("phaseId", "VALIDATION")}),
    ("unknown-phase", {("phaseId", "NOT_FOUND")}),
    ("malformed-phase", {("phaseId", "VALIDATION")}),
    ("empty-company", {("company", "VALIDATION")}),
    ("empty-last-name", {("lastName", "VALIDATION")}),
    ("bad-email", {("email", "VALIDATION")}),
    ("long-first-name", {("firstName", "VALIDATION")}),
    ("other-reps-owner", {("ownerId", "FORBIDDEN")}),
    ("unknown-owner", {("ownerId", "NOT_FOUND")}),
])
async def test_create_lead_refusals_write_nothing(
    client: GraphQLClient, db: Database, setup: Setup, case: str,
    expected: set[tuple[str, str]]
) -> None:
    input: dict[str, Any] = {"company": "Initech", "lastName": "Lumbergh"}
    input.update({
        "sales-phase": {"phaseId": gid(setup.sales_phases[0])},
        "unknown-phase": {"phaseId": encode_id("Phase", 9999)},
        "malformed-phase": {"phaseId": gid(setup.marketing)},
        "empty-company": {"company": " "},
        "empty-last-name": {"lastName": ""},
        "bad-email": {"email": "not an email"},
        "long-first-name": {"firstName": "x" * 101},
        "other-reps-owner": {"ownerId": gid(setup.org.rep_a2)},
        "unknown-owner": {"ownerId": encode_id("User", 9999)},
    }[case])
    before = await everything(db)

    payload = await run(client, CREATE, setup.org.rep_a1, **input)

    assert payload["lead"] is None
    assert codes(payload) == expected
    assert await everything(db) == before


# --- updateLead and moveLeadPhase ---------------------------------------------------------


async def test_update_lead_changes_only_what_is_sent(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    lead = await make_lead(db, setup.new, setup.org.rep_a1, company="Hooli", last_name="Belson",
                           first_name="Gavin", email="gavin@hooli.example", title="CEO")
    original = await row_of(db, LEADS, lead.id)

    payload = await run(client, UPDATE, setup.org.rep_a1, id=gid(lead), expectedVersion=1,
                        company="Hooli XYZ", title=None, phone="+1 555")

    assert payload["userErrors"] == []
    assert payload["lead"]["version"] == 2
    row = await row_of(db, LEADS, lead.id)
    assert (row["company"], row["title"], row["phone"], row["version"]) == (
        "Hooli XYZ", None, "+1 555", 2)
    kept = ("first_name", "last_name", "email", "phase_id", "owner_id", "phase_entered_at")
    assert {k: row[k] for k in kept} == {k: original[k] for k in kept}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"company": None}, {("company", "VALIDATION")}),
    ({"lastName": " "}, {("lastName", "VALIDATION")}),
    ({"email": "nope"}, {("email", "VALIDATION")}),
    ({"firstName": "x" * 101}, {("firstName", "VALIDATION")}),
    ({"source": "x" * 101}, {("source", "VALIDATION")}),
    ({"ownerId": None}, {("ownerId", "VALIDATION")}),
    ({"ownerId": "x"}, {("ownerId", "VALIDATION")}),
])
async def test_update_lead_refusals_change_nothing(
    client: GraphQLClient, db: Database, setup: Setup, changes: dict[str, Any],
    expected: set[tuple[str, str]]
) -> None:
    lead = await make_lead(db, setup.new, setup.org.rep_a1)
    before = await everything(db)

    payload = await run(client, UPDATE, setup.org.rep_a1, id=gid(lead), expectedVersion=1,
                        **changes)

    assert payload["lead"] is None
    assert codes(payload) == expected
    assert await everything(db) == before


async def test_move_lead_phase_within_its_pipeline(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    lead = await make_lead(db, setup.new, setup.org.rep_a2,
                           phase_entered_at=datetime.now(UTC) - timedelta(days=4))

    payload = await run(client, MOVE, setup.org.manager_a, id=gid(lead),
                        phaseId=gid(setup.engaged), expectedVersion=1)

    assert payload["userErrors"] == []
    assert payload["lead"]["phase"] == {"id": gid(setup.engaged), "name": "Engaged"}
    assert (payload["lead"]["version"], payload["lead"]["daysInPhase"]) == (2, 0)
    row = await row_of(db, LEADS, lead.id)
    assert (row["phase_id"], row["pipeline_id"], row["version"]) == (
        setup.engaged.id, setup.marketing.id, 2)
    assert row["phase_entered_at"] > datetime.now(UTC) - timedelta(minutes=1)


@pytest.mark.parametrize(("target", "expected"), [
    ("other-marketing-pipeline", {("phaseId", "VALIDATION")}),
    ("sales-phase", {("phaseId", "VALIDATION")}),
    ("same", {("phaseId", "VALIDATION")}),
    ("unknown", {("phaseId", "NOT_FOUND")}),
    ("stale", {("expectedVersion", "CONFLICT")}),
])
async def test_move_lead_refusals_change_nothing(
    client: GraphQLClient, db: Database, setup: Setup, target: str,
    expected: set[tuple[str, str]]
) -> None:
    lead = await make_lead(db, setup.new, setup.org.rep_a1)
    phase_id, version = {
        "other-marketing-pipeline": (gid(setup.events_phases[1]), 1),
        "sales-phase": (gid(setup.sales_phases[1]), 1),
        "same": (gid(setup.new), 1),
        "unknown": (encode_id("Phase", 9999), 1),
        "stale": (gid(setup.engaged), 2),
    }[target]
    before = await everything(db)

    payload = await run(client, MOVE, setup.org.rep_a1, id=gid(lead), phaseId=phase_id,
                        expectedVersion=version)

    assert payload["lead"] is None
    assert codes(payload) == expected
    assert await everything(db) == before


# --- convertLead --------------------------------------------------------------------------


async def test_convert_creates_the_account_and_contact_from_the_lead(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    lead = await make_lead(db, setup.qualified, setup.org.rep_a2, company="Pied Piper",
                           first_name="Richard", last_name="Hendricks",
                           email="richard@piedpiper.example", phone="+1 555 0199",
                           title="CEO")
    before = await everything(db)

    payload = await run(client, CONVERT, setup.org.manager_a, id=gid(lead), expectedVersion=1)

    assert payload["userErrors"] == []
    converted = payload["lead"]
    assert converted["convertedAt"] is not None
    assert converted["version"] == 2
    account = converted["convertedAccount"]
    contact = converted["convertedContact"]
    assert (account["name"], account["type"], account["owner"]) == (
        "Pied Piper", "PROSPECT", {"id": gid(setup.org.rep_a2)})
    assert (contact["firstName"], contact["lastName"], contact["email"], contact["phone"],
            contact["title"]) == ("Richard", "Hendricks", "richard@piedpiper.example",
                                  "+1 555 0199", "CEO")
    assert contact["account"] == {"id": account["id"]}
    assert contact["owner"] == {"id": gid(setup.org.rep_a2)}
    assert converted["convertedOpportunity"] is None

    after = await everything(db)
    [new_account] = [a for a in after["accounts"] if a not in before["accounts"]]
    [new_contact] = [c for c in after["contacts"] if c not in before["contacts"]]
    assert (new_account["name"], new_account["type"], new_account["owner_id"]) == (
        "Pied Piper", AccountType.PROSPECT, setup.org.rep_a2.id)
    assert (new_contact["account_id"], new_contact["last_name"]) == (
        new_account["id"], "Hendricks")
    row = await row_of(db, LEADS, lead.id)
    assert (row["converted_account_id"], row["converted_contact_id"],
            row["converted_opportunity_id"]) == (new_account["id"], new_contact["id"], None)
    assert row["converted_at"] == datetime.fromisoformat(converted["convertedAt"])
    # No opportunity: no history, no event.
    for table in ("opportunities", "phase_changes", "events"):
        assert after[table] == before[table]


async def test_convert_links_an_existing_account_and_contact(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    account = await make_account(db, setup.org.rep_b1, name="Existing")
    contact = await make_contact(db, account, last_name="Known")
    lead = await make_lead(db, setup.engaged, setup.org.rep_a1)
    before = await everything(db)

    payload = await run(client, CONVERT, setup.org.rep_a1, id=gid(lead), expectedVersion=1,
                        accountId=gid(account), contactId=gid(contact))

    assert payload["userErrors"] == []
    assert payload["lead"]["convertedAccount"]["id"] == gid(account)
    assert payload["lead"]["convertedContact"]["id"] == gid(contact)
    after = await everything(db)
    assert (after["accounts"], after["contacts"]) == (before["accounts"], before["contacts"])
    row = await row_of(db, LEADS, lead.id)
    assert (row["converted_account_id"], row["converted_contact_id"]) == (
        account.id, contact.id)


async def test_convert_into_an_existing_account_creates_the_contact_there(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    account = await make_account(db, setup.org.rep_a1, name="Existing")
    lead = await make_lead(db, setup.engaged, setup.org.rep_a1, last_name="Newcomer")

    payload = await run(client, CONVERT, setup.org.rep_a1, id=gid(lead), expectedVersion=1,
                        accountId=gid(account))

    assert payload["userErrors"] == []
    contact = payload["lead"]["convertedContact"]
    assert (contact["lastName"], contact["account"]) == ("Newcomer", {"id": gid(account)})
    async with db.read() as conn:
        accounts = (await conn.execute(select(Account.__table__.c.id))).scalars().all()
    assert accounts == [account.id]


async def test_convert_with_an_opportunity_in_a_given_sales_phase(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    lead = await make_lead(db, setup.qualified, setup.org.rep_a2, company="Vandelay")
    before = await everything(db)
    propose = setup.sales_phases[1]

    payload = await run(client, CONVERT, setup.org.manager_a, id=gid(lead), expectedVersion=1,
                        opportunity={"name": "Vandelay import deal", "amount": "4200.00",
                                     "phaseId": gid(propose),
                                     "expectedCloseDate": "2026-09-30"})

    assert payload["userErrors"] == []
    deal = payload["lead"]["convertedOpportunity"]
    account = payload["lead"]["convertedAccount"]
    assert (deal["name"], deal["amount"], deal["currency"], deal["expectedCloseDate"]) == (
        "Vandelay import deal", "4200.00", "EUR", "2026-09-30")
    assert (deal["phase"]["id"], deal["probability"]) == (gid(propose), propose.probability)
    assert deal["account"] == {"id": account["id"]}
    # The lead's owner keeps what the lead became: account, contact and opportunity.
    assert deal["owner"] == account["owner"] == {"id": gid(setup.org.rep_a2)}
    assert deal["phaseHistory"] == [{"fromPhase": None, "toPhase": {"id": gid(propose)},
                                     "changedBy": {"id": gid(setup.org.manager_a)}}]

    after = await everything(db)
    [opportunity] = after["opportunities"]
    assert (opportunity["account_id"], opportunity["phase_id"], opportunity["pipeline_id"]) == (
        decode_id(account["id"], "Account"), propose.id, setup.sales.id)
    [change] = after["phase_changes"]
    assert (change["opportunity_id"], change["from_phase_id"], change["to_phase_id"]) == (
        opportunity["id"], None, propose.id)
    assert change["amount"] == Decimal("4200.00")
    [event] = [e for e in after["events"] if e not in before["events"]]
    assert event["topic"] == "opportunity.phase_changed"
    assert event["payload"]["kind"] == "CREATED"
    assert event["payload"]["opportunityId"] == opportunity["id"]
    assert (event["payload"]["fromPhaseId"], event["payload"]["toPhaseId"]) == (None, propose.id)
    assert event["payload"]["changedById"] == setup.org.manager_a.id
    assert Decimal(event["payload"]["amountDelta"]) == Decimal("4200.00")
    assert change["event_id"] == event["id"]
    row = await row_of(db, LEADS, lead.id)
    assert row["converted_opportunity_id"] == opportunity["id"]


async def test_convert_opens_the_opportunity_in_the_first_sales_phase_by_default(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    lead = await make_lead(db, setup.qualified, setup.org.rep_a1)

    payload = await run(client, CONVERT, setup.org.rep_a1, id=gid(lead), expectedVersion=1,
                        opportunity={"name": "First", "amount": "10", "currency": "SEK"})

    assert payload["userErrors"] == []
    deal = payload["lead"]["convertedOpportunity"]
    assert (deal["phase"]["id"], deal["currency"]) == (gid(setup.sales_phases[0]), "SEK")


@pytest.mark.parametrize(("case", "expected"), [
    ("negative-amount", {("opportunity.amount", "VALIDATION")}),
    ("fractions-of-a-cent", {("opportunity.amount", "VALIDATION")}),
    ("bad-currency", {("opportunity.currency", "VALIDATION")}),
    ("empty-name", {("opportunity.name", "VALIDATION")}),
    ("marketing-phase", {("opportunity.phaseId", "VALIDATION")}),
    ("won-phase", {("opportunity.phaseId", "VALIDATION")}),
    ("contact-of-another-account", {("contactId", "VALIDATION")}),
    ("unknown-account", {("accountId", "NOT_FOUND")}),
    ("archived-account", {("accountId", "VALIDATION")}),
    ("unknown-contact", {("contactId", "NOT_FOUND")}),
    ("stale", {("expectedVersion", "CONFLICT")}),
])
async def test_a_conversion_that_fails_part_way_writes_nothing(
    client: GraphQLClient, db: Database, setup: Setup, case: str,
    expected: set[tuple[str, str]]
) -> None:
    mine = await make_account(db, setup.org.rep_a1, name="Mine")
    theirs = await make_account(db, setup.org.rep_b1, name="Theirs")
    archived = await make_account(db, setup.org.rep_a1, name="Old")
    async with db.transaction() as session:
        await session.execute(Account.__table__.update().where(
            Account.__table__.c.id == archived.id).values(archived=True))
    stranger = await make_contact(db, theirs)
    lead = await make_lead(db, setup.qualified, setup.org.rep_a1)
    deal = {"name": "Deal", "amount": "100.00"}
    input: dict[str, Any] = {
        "negative-amount": {"opportunity": {**deal, "amount": "-100.00"}},
        "fractions-of-a-cent": {"opportunity": {**deal, "amount": "0.001"}},
        "bad-currency": {"opportunity": {**deal, "currency": "Euro"}},
        "empty-name": {"opportunity": {**deal, "name": " "}},
        "marketing-phase": {"opportunity": {**deal, "phaseId": gid(setup.engaged)}},
        "won-phase": {"opportunity": {**deal, "phaseId": gid(setup.sales_phases[3])}},
        "contact-of-another-account": {"accountId": gid(mine), "contactId": gid(stranger),
                                       "opportunity": deal},
        "unknown-account": {"accountId": encode_id("Account", 9999), "opportunity": deal},
        "archived-account": {"accountId": gid(archived)},
        "unknown-contact": {"contactId": encode_id("Contact", 9999)},
        "stale": {"expectedVersion": 2, "opportunity": deal},
    }[case]
    before = await everything(db)

    payload = await run(client, CONVERT, setup.org.rep_a1,
                        **{"id": gid(lead), "expectedVersion": 1, **input})

    assert payload["lead"] is None
    assert codes(payload) == expected
    # No account, contact, opportunity, history or event; the lead as it was.
    assert await everything(db) == before


async def test_a_converted_lead_is_read_only(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    lead = await make_lead(db, setup.qualified, setup.org.rep_a1)
    converted = await run(client, CONVERT, setup.org.rep_a1, id=gid(lead), expectedVersion=1)
    assert converted["userErrors"] == []
    before = await everything(db)

    attempts = [
        (UPDATE, {"company": "Renamed"}),
        (MOVE, {"phaseId": gid(setup.new)}),
        (CONVERT, {}),
        (CONVERT, {"opportunity": {"name": "Again", "amount": "1"}}),
    ]
    for document, extra in attempts:
        payload = await run(client, document, setup.org.admin, id=gid(lead),
                            expectedVersion=2, **extra)
        assert payload["lead"] is None
        assert codes(payload) == {("id", "VALIDATION")}

    assert await everything(db) == before


# --- permissions and visibility -----------------------------------------------------------


@pytest.mark.parametrize(("user_name", "owner_name", "allowed"), [
    ("rep_a1", "rep_a1", True),
    ("rep_a1", "rep_a2", False),
    ("manager_a", "rep_a2", True),
    ("manager_a", "rep_b1", False),
    ("manager_b", "rep_b1", True),
    ("admin", "rep_b1", True),
])
async def test_who_may_change_a_lead(
    client: GraphQLClient, db: Database, setup: Setup, user_name: str, owner_name: str,
    allowed: bool
) -> None:
    user = getattr(setup.org, user_name)
    owner = getattr(setup.org, owner_name)
    leads = [await make_lead(db, setup.new, owner) for _ in range(3)]
    before = await everything(db)

    results = [
        await run(client, UPDATE, user, id=gid(leads[0]), expectedVersion=1, source="Fair"),
        await run(client, MOVE, user, id=gid(leads[1]), expectedVersion=1,
                  phaseId=gid(setup.engaged)),
        await run(client, CONVERT, user, id=gid(leads[2]), expectedVersion=1),
    ]

    if allowed:
        assert [codes(r) for r in results] == [set(), set(), set()]
        assert (await row_of(db, LEADS, leads[0].id))["source"] == "Fair"
        assert (await row_of(db, LEADS, leads[1].id))["phase_id"] == setup.engaged.id
        assert (await row_of(db, LEADS, leads[2].id))["converted_at"] is not None
    else:
        assert [codes(r) for r in results] == [{(None, "FORBIDDEN")}] * 3
        assert await everything(db) == before


async def test_partner_can_neither_see_nor_change_leads(
    client: GraphQLClient, db: Database, setup: Setup
) -> None:
    lead = await make_lead(db, setup.new, setup.org.rep_a1)
    partner = setup.org.partner
    before = await everything(db)

    results = [
        await run(client, CREATE, partner, company="Partner lead", lastName="P"),
        await run(client, UPDATE, partner, id=gid(lead), expectedVersion=1, company="X"),
        await run(client, MOVE, partner, id=gid(lead), expectedVersion=1,
                  phaseId=gid(setup.engaged)),
        await run(client, CONVERT, partner, id=gid(lead), expectedVersion=1),
    ]
    data = await client.query("""
      query($id: ID!) {
        leads { totalCount nodes { id } }
        lead(id: $id) { id }
        node(id: $id) { id }
      }""", {"id": gid(lead)}, as_user=partner)

    assert [codes(r) for r in results] == [{(None, "FORBIDDEN")}] * 4
    assert await everything(db) == before
    assert data == {"leads": {"totalCount": 0, "nodes": []}, "lead": None, "node": None}


async def test_leads_filter_and_order(client: GraphQLClient, db: Database, setup: Setup) -> None:
    await make_lead(db, setup.new, setup.org.rep_a1, company="Cyberdyne", source="Web")
    await make_lead(db, setup.engaged, setup.org.rep_a2, company="Acme", source="Fair")
    await make_lead(db, setup.events_phases[0], setup.org.rep_b1, company="Blue Sun",
                    source="Web")
    query = """
    query($filter: LeadFilter, $orderBy: [LeadOrder!]) {
      leads(filter: $filter, orderBy: $orderBy) { totalCount nodes { company } }
    }"""

    async def companies(**variables: Any) -> list[str]:
        data = await client.query(query, variables, as_user=setup.org.rep_b1)
        return [n["company"] for n in data["leads"]["nodes"]]

    assert await companies(orderBy=[{"field": "COMPANY"}]) == ["Acme", "Blue Sun", "Cyberdyne"]
    assert await companies(orderBy=[{"field": "COMPANY", "direction": "DESC"}]) == [
        "Cyberdyne", "Blue Sun", "Acme"]
    assert await companies(filter={"pipelineId": {"eq": gid(setup.marketing)}},
                           orderBy=[{"field": "COMPANY"}]) == ["Acme", "Cyberdyne"]
    assert await companies(filter={"phaseId": {"eq": gid(setup.engaged)}}) == ["Acme"]
    assert await companies(filter={"ownerId": {"eq": gid(setup.org.rep_b1)}}) == ["Blue Sun"]
    assert await companies(filter={"source": {"eq": "Web"}, "not": {
        "company": {"startsWith": "cy"}}}) == ["Blue Sun"]
