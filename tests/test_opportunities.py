"""Pipelines and opportunities through the HTTP endpoint: the queries (filters, ordering,
paging, history, visibility, statement counts) and the mutations that move deals.

Every mutation is checked in its payload and in the database: the opportunity row,
its phase_changes rows and the events outbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select

from loaders.ids import decode_id, encode_id
from models.accounts import Account
from models.db import Database
from models.events import Event
from models.opportunities import (
    ForecastCategory,
    Opportunity,
    Phase,
    PhaseChange,
    PhaseOutcome,
    PipelineKind,
)
from models.users import Role
from tests.factories import (
    Org,
    gid,
    make_account,
    make_lead,
    make_offering_area,
    make_opportunity,
    make_org,
    make_pipeline,
    make_user,
    share,
)
from tests.graphql_client import GraphQLClient

TOPIC = "opportunity.phase_changed"
ERRORS = "userErrors { field code message }"
OPPORTUNITY = """
  id version name amount currency probability weightedAmount expectedCloseDate
  lostReason closedAt daysInPhase
  owner { id } account { id } pipeline { id } phase { id name }
"""

CREATE = f"""
mutation Create($input: CreateOpportunityInput!) {{
  createOpportunity(input: $input) {{ opportunity {{ {OPPORTUNITY} }} {ERRORS} }}
}}"""
UPDATE = f"""
mutation Update($input: UpdateOpportunityInput!) {{
  updateOpportunity(input: $input) {{ opportunity {{ {OPPORTUNITY} }} {ERRORS} }}
}}"""
MOVE = f"""
mutation Move($input: MoveOpportunityPhaseInput!) {{
  moveOpportunityPhase(input: $input) {{ opportunity {{ {OPPORTUNITY} }} {ERRORS} }}
}}"""
WON = f"""
mutation Won($input: CloseOpportunityWonInput!) {{
  closeOpportunityWon(input: $input) {{ opportunity {{ {OPPORTUNITY} }} {ERRORS} }}
}}"""
LOST = f"""
mutation Lost($input: CloseOpportunityLostInput!) {{
  closeOpportunityLost(input: $input) {{ opportunity {{ {OPPORTUNITY} }} {ERRORS} }}
}}"""

LIST = """
query List($filter: OpportunityFilter, $orderBy: [OpportunityOrder!], $first: Int,
           $after: String, $last: Int, $before: String) {
  opportunities(filter: $filter, orderBy: $orderBy, first: $first, after: $after,
                last: $last, before: $before) {
    totalCount
    nodes { name }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

OPPORTUNITIES = Opportunity.__table__
PHASE_CHANGES = PhaseChange.__table__
EVENTS = Event.__table__


# --- helpers ------------------------------------------------------------------------------


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


async def run(client: GraphQLClient, document: str, user: Any, **input: Any) -> dict[str, Any]:
    data = await client.query(document, {"input": input}, as_user=user)
    return next(iter(data.values()))


async def stored(db: Database, key: int) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(OPPORTUNITIES).where(OPPORTUNITIES.c.id == key))
               ).mappings().one()
    return dict(row)


async def history(db: Database, key: int) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = (await conn.execute(
            select(PHASE_CHANGES).where(PHASE_CHANGES.c.opportunity_id == key)
            .order_by(PHASE_CHANGES.c.id))).mappings().all()
    return [dict(row) for row in rows]


async def events(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(EVENTS).order_by(EVENTS.c.id))).mappings().all()
    return [dict(row) for row in rows]


async def count(db: Database, table: Any) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def names(client: GraphQLClient, user: Any, **variables: Any) -> list[str]:
    data = await client.query(LIST, variables, as_user=user)
    return [node["name"] for node in data["opportunities"]["nodes"]]


def key_of(global_id: str) -> int:
    return decode_id(global_id, "Opportunity")


@dataclass
class World:
    org: Org
    sales: Any
    qualify: Phase
    propose: Phase
    negotiate: Phase
    won: Phase
    lost: Phase
    renewals: Any
    renewals_phases: list[Phase]
    marketing: Any
    marketing_phases: list[Phase]
    acme: Account
    globex: Account
    initech: Account
    deals: dict[str, Opportunity]


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


@pytest.fixture
async def world(db: Database, org: Org) -> World:
    """Two sales pipelines, a marketing one, three accounts and six opportunities."""
    sales, (qualify, propose, negotiate, won, lost) = await make_pipeline(
        db, PipelineKind.SALES, name="New business")
    renewals, renewals_phases = await make_pipeline(db, PipelineKind.SALES, name="Renewals")
    marketing, marketing_phases = await make_pipeline(db, PipelineKind.MARKETING,
                                                      name="Inbound")
    acme = await make_account(db, org.rep_a1, name="Acme Oy")
    globex = await make_account(db, org.rep_b1, name="Globex Inc")
    initech = await make_account(db, org.rep_a2, name="Initech")
    closed = datetime(2025, 12, 30, 12, tzinfo=UTC)
    specs = [
        ("Alpha", acme, qualify, org.rep_a1, "100.00", date(2026, 1, 15), {}),
        ("Bravo", acme, propose, org.rep_a2, "2500.50", date(2026, 2, 1), {}),
        ("Charlie", globex, negotiate, org.rep_b1, "10000.00", None, {}),
        ("Delta", globex, won, org.rep_b1, "750.00", date(2025, 12, 31),
         {"closed_at": closed}),
        ("Echo", initech, lost, org.rep_a2, "50.00", date(2026, 3, 10),
         {"closed_at": closed, "lost_reason": "Budget cut"}),
        ("Foxtrot", initech, renewals_phases[0], org.manager_a, "2500.50", None, {}),
    ]
    deals = {}
    for name, account, phase, owner, amount, close, values in specs:
        deals[name] = await make_opportunity(
            db, account, phase, owner, name=name, amount=amount, expected_close_date=close,
            **values)
    return World(org, sales, qualify, propose, negotiate, won, lost, renewals,
                 renewals_phases, marketing, marketing_phases, acme, globex, initech, deals)


# --- pipelines ----------------------------------------------------------------------------


async def test_pipelines_list_their_phases_in_position_order_and_filter_by_kind(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    # Inserted out of order: positions, not insertion order, decide.
    await make_pipeline(db, PipelineKind.SALES, name="Direct", positions=[3, 1, 2, 5, 4])
    await make_pipeline(db, PipelineKind.MARKETING, name="Events")
    query = """
    query($kind: PipelineKind) {
      pipelines(kind: $kind) {
        name kind
        phases { name position probability outcome forecastCategory pipeline { name } }
      }
    }"""

    everything = (await client.query(query, as_user=org.rep_a1))["pipelines"]
    sales = (await client.query(query, {"kind": "SALES"}, as_user=org.rep_a1))["pipelines"]
    marketing = (await client.query(query, {"kind": "MARKETING"}, as_user=org.partner)
                 )["pipelines"]

    assert [(p["name"], p["kind"]) for p in everything] == [
        ("Direct", "SALES"), ("Events", "MARKETING")]
    assert [p["name"] for p in sales] == ["Direct"]
    assert [p["name"] for p in marketing] == ["Events"]
    assert sales[0]["phases"] == [
        {"name": "Propose", "position": 1, "probability": 40, "outcome": "OPEN",
         "forecastCategory": "BEST_CASE", "pipeline": {"name": "Direct"}},
        {"name": "Negotiate", "position": 2, "probability": 75, "outcome": "OPEN",
         "forecastCategory": "COMMIT", "pipeline": {"name": "Direct"}},
        {"name": "Qualify", "position": 3, "probability": 10, "outcome": "OPEN",
         "forecastCategory": "PIPELINE", "pipeline": {"name": "Direct"}},
        {"name": "Lost", "position": 4, "probability": 0, "outcome": "LOST",
         "forecastCategory": "OMITTED", "pipeline": {"name": "Direct"}},
        {"name": "Won", "position": 5, "probability": 100, "outcome": "WON",
         "forecastCategory": "CLOSED", "pipeline": {"name": "Direct"}},
    ]
    assert [p["name"] for p in marketing[0]["phases"]] == [
        "New", "Engaged", "Qualified", "Disqualified"]


# --- opportunities: filters ---------------------------------------------------------------


FILTERS = [
    pytest.param(lambda w: {"pipelineId": {"eq": gid(w.sales)}},
                 {"Alpha", "Bravo", "Charlie", "Delta", "Echo"}, id="pipeline"),
    pytest.param(lambda w: {"pipelineId": {"eq": gid(w.renewals)}}, {"Foxtrot"},
                 id="other-pipeline"),
    pytest.param(lambda w: {"phaseId": {"in": [gid(w.qualify), gid(w.negotiate)]}},
                 {"Alpha", "Charlie"}, id="phase-in"),
    pytest.param(lambda w: {"phaseId": {"eq": gid(w.renewals_phases[0])}}, {"Foxtrot"},
                 id="phase-eq"),
    pytest.param(lambda w: {"outcome": {"eq": "OPEN"}},
                 {"Alpha", "Bravo", "Charlie", "Foxtrot"}, id="outcome-open"),
    pytest.param(lambda w: {"outcome": {"in": ["WON", "LOST"]}}, {"Delta", "Echo"},
                 id="outcome-closed"),
    pytest.param(lambda w: {"outcome": {"ne": "OPEN"}}, {"Delta", "Echo"}, id="outcome-ne"),
    pytest.param(lambda w: {"forecastCategory": {"eq": "COMMIT"}}, {"Charlie"},
                 id="forecast-eq"),
    pytest.param(lambda w: {"forecastCategory": {"in": ["PIPELINE", "BEST_CASE"]}},
                 {"Alpha", "Bravo", "Foxtrot"}, id="forecast-in"),
    pytest.param(lambda w: {"ownerId": {"eq": gid(w.org.rep_a2)}}, {"Bravo", "Echo"},
                 id="owner"),
    pytest.param(lambda w: {"teamId": {"eq": gid(w.org.team_a)}},
                 {"Alpha", "Bravo", "Echo", "Foxtrot"}, id="team-a"),
    pytest.param(lambda w: {"teamId": {"eq": gid(w.org.team_b)}}, {"Charlie", "Delta"},
                 id="team-b"),
    pytest.param(lambda w: {"accountId": {"eq": gid(w.globex)}}, {"Charlie", "Delta"},
                 id="account-id"),
    pytest.param(lambda w: {"accountId": {"in": [gid(w.acme), gid(w.initech)]}},
                 {"Alpha", "Bravo", "Echo", "Foxtrot"}, id="account-in"),
    pytest.param(lambda w: {"amount": {"gte": "2500.50"}}, {"Bravo", "Charlie", "Foxtrot"},
                 id="amount-gte"),
    pytest.param(lambda w: {"amount": {"gt": "100", "lte": "2500.5"}},
                 {"Bravo", "Delta", "Foxtrot"}, id="amount-range"),
    pytest.param(lambda w: {"amount": {"lt": "100.00"}}, {"Echo"}, id="amount-lt"),
    pytest.param(lambda w: {"amount": {"eq": "2500.5"}}, {"Bravo", "Foxtrot"}, id="amount-eq"),
    pytest.param(lambda w: {"expectedCloseDate": {"gte": "2026-01-01", "lte": "2026-02-28"}},
                 {"Alpha", "Bravo"}, id="close-range"),
    pytest.param(lambda w: {"expectedCloseDate": {"lt": "2026-01-15"}}, {"Delta"},
                 id="close-before"),
    pytest.param(lambda w: {"expectedCloseDate": {"isNull": True}}, {"Charlie", "Foxtrot"},
                 id="close-null"),
    pytest.param(lambda w: {"account": {"name": {"startsWith": "acme"}}}, {"Alpha", "Bravo"},
                 id="account-name"),
    pytest.param(lambda w: {"account": {"name": {"contains": "E"}, "ownerId": {
        "eq": gid(w.org.rep_a2)}}}, {"Echo", "Foxtrot"}, id="account-name-and-owner"),
    pytest.param(lambda w: {"phase": {"name": {"eq": "Won"}}}, {"Delta"}, id="phase-name"),
    pytest.param(lambda w: {"owner": {"role": {"eq": "MANAGER"}}}, {"Foxtrot"},
                 id="owner-role"),
    pytest.param(lambda w: {"and": [{"outcome": {"eq": "OPEN"}},
                                    {"amount": {"gte": "1000"}}]},
                 {"Bravo", "Charlie", "Foxtrot"}, id="and"),
    pytest.param(lambda w: {"or": [{"ownerId": {"eq": gid(w.org.rep_b1)}},
                                   {"amount": {"lt": "100"}}]},
                 {"Charlie", "Delta", "Echo"}, id="or"),
    pytest.param(lambda w: {"not": {"pipelineId": {"eq": gid(w.sales)}}}, {"Foxtrot"},
                 id="not"),
    pytest.param(lambda w: {"not": {"or": [{"outcome": {"eq": "OPEN"}},
                                           {"account": {"name": {"eq": "Initech"}}}]}},
                 {"Delta"}, id="not-or-related"),
]


@pytest.mark.parametrize(("make_filter", "expected"), FILTERS)
async def test_opportunities_filter(
    client: GraphQLClient, world: World, make_filter: Any, expected: set[str]
) -> None:
    data = await client.query(LIST, {"filter": make_filter(world)}, as_user=world.org.rep_a1)

    found = [node["name"] for node in data["opportunities"]["nodes"]]
    assert sorted(found) == sorted(expected)
    assert data["opportunities"]["totalCount"] == len(expected)


async def test_opportunities_without_a_filter_are_every_one_in_creation_order(
    client: GraphQLClient, world: World
) -> None:
    assert await names(client, world.org.manager_b) == [
        "Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]


# --- opportunities: ordering and paging ---------------------------------------------------

ORDERS = [
    pytest.param("AMOUNT", "ASC",
                 ["Echo", "Alpha", "Delta", "Bravo", "Foxtrot", "Charlie"], id="amount-asc"),
    # Equal amounts keep the id order in both directions: the id is the last key.
    pytest.param("AMOUNT", "DESC",
                 ["Charlie", "Bravo", "Foxtrot", "Delta", "Alpha", "Echo"], id="amount-desc"),
    # Nulls are the greatest value: last ascending, first descending.
    pytest.param("EXPECTED_CLOSE_DATE", "ASC",
                 ["Delta", "Alpha", "Bravo", "Echo", "Charlie", "Foxtrot"], id="close-asc"),
    pytest.param("EXPECTED_CLOSE_DATE", "DESC",
                 ["Charlie", "Foxtrot", "Echo", "Bravo", "Alpha", "Delta"], id="close-desc"),
    pytest.param("NAME", "DESC",
                 ["Foxtrot", "Echo", "Delta", "Charlie", "Bravo", "Alpha"], id="name-desc"),
]


@pytest.mark.parametrize(("field", "direction", "expected"), ORDERS)
async def test_opportunities_order_and_page_through_every_row(
    client: GraphQLClient, world: World, field: str, direction: str, expected: list[str]
) -> None:
    order = [{"field": field, "direction": direction}]
    user = world.org.rep_b1
    assert await names(client, user, orderBy=order) == expected

    # Forward, two at a time.
    seen: list[str] = []
    after = None
    for _ in range(10):
        data = (await client.query(LIST, {"orderBy": order, "first": 2, "after": after},
                                   as_user=user))["opportunities"]
        seen += [node["name"] for node in data["nodes"]]
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert seen == expected

    # Backward from the end, two at a time.
    backward: list[str] = []
    before = None
    for _ in range(10):
        data = (await client.query(LIST, {"orderBy": order, "last": 2, "before": before},
                                   as_user=user))["opportunities"]
        backward = [node["name"] for node in data["nodes"]] + backward
        if not data["pageInfo"]["hasPreviousPage"]:
            break
        before = data["pageInfo"]["startCursor"]
    assert backward == expected


async def test_a_page_of_a_filtered_ordering_continues_where_it_stopped(
    client: GraphQLClient, world: World
) -> None:
    variables: dict[str, Any] = {
        "filter": {"outcome": {"eq": "OPEN"}},
        "orderBy": [{"field": "EXPECTED_CLOSE_DATE"}, {"field": "AMOUNT", "direction": "DESC"}],
        "first": 3,
    }
    first = (await client.query(LIST, variables, as_user=world.org.admin))["opportunities"]
    assert [n["name"] for n in first["nodes"]] == ["Alpha", "Bravo", "Charlie"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["totalCount"] == 4

    variables["after"] = first["pageInfo"]["endCursor"]
    rest = (await client.query(LIST, variables, as_user=world.org.admin))["opportunities"]
    assert [n["name"] for n in rest["nodes"]] == ["Foxtrot"]
    assert rest["pageInfo"]["hasNextPage"] is False


# --- opportunities on accounts ------------------------------------------------------------


async def test_account_opportunities_are_the_accounts_own_filtered_and_ordered(
    client: GraphQLClient, world: World
) -> None:
    query = """
    query($id: ID!, $filter: OpportunityFilter) {
      account(id: $id) {
        opportunities(filter: $filter, orderBy: [{field: AMOUNT, direction: DESC}]) {
          totalCount nodes { name account { name } }
        }
      }
    }"""
    user = world.org.rep_b1

    acme = (await client.query(query, {"id": gid(world.acme)}, as_user=user))["account"]
    open_initech = (await client.query(
        query, {"id": gid(world.initech), "filter": {"outcome": {"eq": "OPEN"}}},
        as_user=user))["account"]

    assert acme["opportunities"] == {"totalCount": 2, "nodes": [
        {"name": "Bravo", "account": {"name": "Acme Oy"}},
        {"name": "Alpha", "account": {"name": "Acme Oy"}}]}
    assert open_initech["opportunities"] == {"totalCount": 1, "nodes": [
        {"name": "Foxtrot", "account": {"name": "Initech"}}]}


@pytest.mark.parametrize(("relation", "expected"), [
    ({"some": {"amount": {"gte": "5000"}}}, ["Globex Inc"]),
    ({"some": {"outcome": {"eq": "LOST"}}}, ["Initech"]),
    ({"some": {"ownerId": {"eq": "OWNER"}}}, ["Acme Oy", "Initech"]),
    ({"none": {"outcome": {"ne": "OPEN"}}}, ["Acme Oy"]),
    ({"every": {"amount": {"gte": "100"}}}, ["Acme Oy", "Globex Inc"]),
])
async def test_accounts_filter_on_their_opportunities(
    client: GraphQLClient, world: World, relation: dict[str, Any], expected: list[str]
) -> None:
    if "some" in relation and "ownerId" in relation["some"]:
        relation = {"some": {"ownerId": {"eq": gid(world.org.rep_a2)}}}
    query = """
    query($filter: AccountFilter) {
      accounts(filter: $filter, orderBy: [{field: NAME}]) { nodes { name } }
    }"""

    data = await client.query(query, {"filter": {"opportunities": relation}},
                              as_user=world.org.rep_a1)

    assert [n["name"] for n in data["accounts"]["nodes"]] == expected


# --- history, days in phase, weighted amount ----------------------------------------------


async def test_phase_history_is_oldest_first_and_starts_with_the_creation(
    client: GraphQLClient, db: Database, world: World
) -> None:
    deal = world.deals["Bravo"]
    created = datetime(2025, 1, 1, 9, tzinfo=UTC)
    async with db.transaction() as session:
        await session.execute(PHASE_CHANGES.delete().where(
            PHASE_CHANGES.c.opportunity_id == deal.id))
        # Written out of time order: the history is ordered by when, not by id.
        session.add_all([
            PhaseChange(opportunity_id=deal.id, from_phase_id=world.qualify.id,
                        to_phase_id=world.propose.id, changed_by_id=world.org.manager_a.id,
                        changed_at=created + timedelta(days=10), amount=Decimal("2500.50"),
                        probability=40),
            PhaseChange(opportunity_id=deal.id, from_phase_id=None,
                        to_phase_id=world.qualify.id, changed_by_id=world.org.rep_a2.id,
                        changed_at=created, amount=Decimal("2000.00"), probability=10),
        ])
    query = """
    query($id: ID!) {
      opportunity(id: $id) {
        phaseHistory {
          id changedAt amount probability
          fromPhase { name } toPhase { name } changedBy { name }
        }
      }
    }"""

    data = await client.query(query, {"id": gid(deal)}, as_user=world.org.rep_b1)

    entries = data["opportunity"]["phaseHistory"]
    assert [(e["fromPhase"], e["toPhase"], e["changedBy"], e["amount"], e["probability"])
            for e in entries] == [
        (None, {"name": "Qualify"}, {"name": "Rep A2"}, "2000.00", 10),
        ({"name": "Qualify"}, {"name": "Propose"}, {"name": "Manager A"}, "2500.50", 40),
    ]
    assert datetime.fromisoformat(entries[0]["changedAt"]) == created
    assert datetime.fromisoformat(entries[1]["changedAt"]) == created + timedelta(days=10)


async def test_days_in_phase_counts_whole_days_since_the_phase_was_entered(
    client: GraphQLClient, db: Database, world: World
) -> None:
    now = datetime.now(UTC)
    long_ago = await make_opportunity(db, world.acme, world.propose, name="Stuck",
                                      entered_at=now - timedelta(days=5, hours=3))
    lead = await make_lead(db, world.marketing_phases[0], world.org.rep_a1,
                           phase_entered_at=now - timedelta(days=2, hours=23))
    query = """
    query($a: ID!, $b: ID!, $lead: ID!) {
      a: opportunity(id: $a) { daysInPhase }
      b: opportunity(id: $b) { daysInPhase }
      lead(id: $lead) { daysInPhase }
    }"""

    data = await client.query(query, {"a": gid(long_ago), "b": gid(world.deals["Alpha"]),
                                      "lead": gid(lead)}, as_user=world.org.rep_a1)

    assert data == {"a": {"daysInPhase": 5}, "b": {"daysInPhase": 0},
                    "lead": {"daysInPhase": 2}}


@pytest.mark.parametrize(("amount", "probability", "weighted"), [
    ("2500.50", 40, "1000.20"),
    ("10000.00", 75, "7500.00"),
    ("0.10", 25, "0.03"),  # 0.025: half a cent rounds up, as the pipeline summary does
    ("999.99", 33, "330.00"),  # 329.9967
    ("1234.56", 0, "0.00"),
])
async def test_weighted_amount_is_amount_times_probability_in_cents(
    client: GraphQLClient, db: Database, world: World, amount: str, probability: int,
    weighted: str
) -> None:
    deal = await make_opportunity(db, world.acme, world.propose, amount=amount,
                                  probability=probability, currency="SEK")
    query = """
    query($id: ID!, $pipeline: ID!) {
      opportunity(id: $id) { weightedAmount }
      pipelineSummary(pipelineId: $pipeline, currency: "SEK") {
        phases { phase { name } weightedAmount }
      }
    }"""

    data = await client.query(query, {"id": gid(deal), "pipeline": gid(world.sales)},
                              as_user=world.org.rep_a1)

    assert data["opportunity"]["weightedAmount"] == weighted
    by_phase = {p["phase"]["name"]: p["weightedAmount"] for p in
                data["pipelineSummary"]["phases"]}
    assert by_phase["Propose"] == weighted


# --- node ---------------------------------------------------------------------------------

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Opportunity { name }
    ... on Phase { name }
    ... on Pipeline { name }
    ... on Lead { company }
    ... on PhaseChange { toPhase { name } }
  }
}"""


async def test_node_finds_every_opportunity_area_type(
    client: GraphQLClient, db: Database, world: World
) -> None:
    lead = await make_lead(db, world.marketing_phases[1], world.org.rep_a1, company="Umbrella")
    change = (await history(db, world.deals["Charlie"].id))[0]
    cases = [
        (gid(world.deals["Charlie"]), "Opportunity", {"name": "Charlie"}),
        (gid(world.negotiate), "Phase", {"name": "Negotiate"}),
        (gid(world.renewals), "Pipeline", {"name": "Renewals"}),
        (gid(lead), "Lead", {"company": "Umbrella"}),
        (encode_id("PhaseChange", change["id"]), "PhaseChange",
         {"toPhase": {"name": "Negotiate"}}),
    ]
    for global_id, type_name, fields in cases:
        data = await client.query(NODE, {"id": global_id}, as_user=world.org.rep_b1)
        assert data["node"] == {"__typename": type_name, "id": global_id, **fields}

    missing = await client.query(NODE, {"id": encode_id("Opportunity", 10_000)},
                                 as_user=world.org.admin)
    assert missing["node"] is None


# --- partners -----------------------------------------------------------------------------


async def test_partner_sees_only_opportunities_of_shared_accounts_by_every_path(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await share(db, world.acme, world.org.partner_org)
    partner = world.org.partner
    visible = {"Alpha", "Bravo"}
    hidden = {"Charlie", "Delta", "Echo", "Foxtrot"}

    listed = await client.query("""
      { opportunities { totalCount nodes {
          name account { name } phase { name } pipeline { name }
          phaseHistory { fromPhase { name } toPhase { name } } } } }""", as_user=partner)
    assert {n["name"] for n in listed["opportunities"]["nodes"]} == visible
    assert listed["opportunities"]["totalCount"] == 2
    bravo = next(n for n in listed["opportunities"]["nodes"] if n["name"] == "Bravo")
    assert bravo["account"] == {"name": "Acme Oy"}
    assert bravo["phaseHistory"] == [{"fromPhase": None, "toPhase": {"name": "Propose"}}]

    for name, deal in world.deals.items():
        one = await client.query("query($id: ID!) { opportunity(id: $id) { name } }",
                                 {"id": gid(deal)}, as_user=partner)
        node = await client.query(NODE, {"id": gid(deal)}, as_user=partner)
        change = (await history(db, deal.id))[0]
        node_change = await client.query(
            NODE, {"id": encode_id("PhaseChange", change["id"])}, as_user=partner)
        if name in visible:
            assert one["opportunity"] == {"name": name}
            assert node["node"]["name"] == name
            assert node_change["node"] is not None
        else:
            assert name in hidden
            assert one["opportunity"] is None
            assert node["node"] is None
            assert node_change["node"] is None

    accounts = await client.query("""
      query($acme: ID!, $globex: ID!) {
        acme: account(id: $acme) { opportunities { totalCount nodes { name } } }
        globex: account(id: $globex) { opportunities { nodes { name } } }
        rich: accounts(filter: {opportunities: {some: {amount: {gte: "5000"}}}}) {
          nodes { name } }
      }""", {"acme": gid(world.acme), "globex": gid(world.globex)}, as_user=partner)
    assert {n["name"] for n in accounts["acme"]["opportunities"]["nodes"]} == visible
    assert accounts["acme"]["opportunities"]["totalCount"] == 2
    assert accounts["globex"] is None
    assert accounts["rich"]["nodes"] == []

    # A filter cannot reach past the policy either.
    assert await names(client, partner, filter={"accountId": {"eq": gid(world.globex)}}) == []


async def test_partner_reads_who_owns_and_moved_a_shared_opportunity(
    client: GraphQLClient, db: Database, world: World
) -> None:
    # Bravo's account is rep A1's; the deal is rep A2's, and rep A2 entered its phase.
    # Opportunity.owner and PhaseChange.changedBy are non-null, so the partner who may
    # read the deal must be able to read those users (and node(id) must agree).
    await share(db, world.acme, world.org.partner_org)

    data = await client.query("""
      query($id: ID!, $user: ID!) {
        opportunity(id: $id) { owner { id name } phaseHistory { changedBy { id } } }
        node(id: $user) { id }
      }""", {"id": gid(world.deals["Bravo"]), "user": gid(world.org.rep_a2)},
                              as_user=world.org.partner)

    assert data["opportunity"] == {
        "owner": {"id": gid(world.org.rep_a2), "name": "Rep A2"},
        "phaseHistory": [{"changedBy": {"id": gid(world.org.rep_a2)}}]}
    assert data["node"] == {"id": gid(world.org.rep_a2)}


async def test_partner_sees_no_leads(client: GraphQLClient, db: Database, world: World) -> None:
    await share(db, world.acme, world.org.partner_org)
    lead = await make_lead(db, world.marketing_phases[0], world.org.rep_a1, company="Acme Oy")

    data = await client.query("""
      query($id: ID!) { leads { totalCount nodes { id } } lead(id: $id) { id } }""",
                              {"id": gid(lead)}, as_user=world.org.partner)
    node = await client.query(NODE, {"id": gid(lead)}, as_user=world.org.partner)
    staff = await client.query("{ leads { totalCount } }", as_user=world.org.rep_b1)

    assert data == {"leads": {"totalCount": 0, "nodes": []}, "lead": None}
    assert node["node"] is None
    assert staff["leads"]["totalCount"] == 1


# --- statement counts ---------------------------------------------------------------------


async def test_statements_per_opportunity_page_do_not_grow_with_the_page(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    _, phases = await make_pipeline(db, PipelineKind.SALES)
    owners = [org.rep_a1, org.rep_a2, org.rep_b1, org.manager_a]
    accounts = [await make_account(db, owners[n % 4]) for n in range(7)]
    now = datetime.now(UTC)
    async with db.transaction() as session:
        rows = [{"account_id": accounts[n % 7].id, "name": f"Bulk {n:03}",
                 "amount": Decimal(n * 10), "currency": "EUR",
                 "pipeline_id": phases[0].pipeline_id, "phase_id": phases[n % 5].id,
                 "probability": phases[n % 5].probability, "owner_id": owners[n % 4].id,
                 "phase_entered_at": now, "created_at": now, "updated_at": now, "version": 1}
                for n in range(120)]
        await session.execute(OPPORTUNITIES.insert(), rows)
        ids = (await session.execute(select(OPPORTUNITIES.c.id))).scalars().all()
        await session.execute(PHASE_CHANGES.insert(), [
            {"opportunity_id": key, "from_phase_id": phases[0].id if step else None,
             "to_phase_id": phases[step].id, "changed_by_id": org.admin.id,
             "changed_at": now, "amount": Decimal(1), "probability": 10,
             "created_at": now, "updated_at": now}
            for key in ids for step in (0, 1)])
    query = """
    query($first: Int) {
      opportunities(first: $first) { nodes {
        name owner { name } account { name owner { name } } phase { name }
        pipeline { name phases { name } }
        phaseHistory { changedAt fromPhase { name } toPhase { name } changedBy { name } }
      } }
    }"""

    small, small_count = await client.counted(query, {"first": 10}, as_user=org.rep_a1)
    large, large_count = await client.counted(query, {"first": 100}, as_user=org.rep_a1)

    assert len(small["opportunities"]["nodes"]) == 10
    assert len(large["opportunities"]["nodes"]) == 100
    assert all(len(n["phaseHistory"]) == 2 for n in large["opportunities"]["nodes"])
    assert small_count == large_count
    # The viewer, the page, then one batch per kind of row asked for.
    assert large_count <= 9


# --- mutations: shared checks -------------------------------------------------------------


async def snapshot(db: Database) -> tuple[list[dict[str, Any]], int, int]:
    """Every opportunity row, and how many history and event rows there are."""
    async with db.read() as conn:
        rows = (await conn.execute(select(OPPORTUNITIES).order_by(OPPORTUNITIES.c.id))
                ).mappings().all()
    return [dict(r) for r in rows], await count(db, PHASE_CHANGES), await count(db, EVENTS)


async def new_events(db: Database, after: int) -> list[dict[str, Any]]:
    return [e for e in await events(db) if e["id"] > after]


async def last_event_id(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.max(EVENTS.c.id)))).scalar() or 0


def assert_event(event: dict[str, Any], *, kind: str, opportunity: int, from_phase: Phase | None,
                 to_phase: Phase, by: Any, delta: str) -> None:
    assert event["topic"] == TOPIC
    payload = event["payload"]
    assert payload["kind"] == kind
    assert payload["opportunityId"] == opportunity
    assert payload["fromPhaseId"] == (from_phase.id if from_phase else None)
    assert payload["toPhaseId"] == to_phase.id
    assert payload["changedById"] == by.id
    assert Decimal(payload["amountDelta"]) == Decimal(delta)


# --- createOpportunity --------------------------------------------------------------------


async def test_create_defaults_to_the_first_sales_pipelines_first_open_phase(
    client: GraphQLClient, db: Database, world: World
) -> None:
    before = await last_event_id(db)
    payload = await run(client, CREATE, world.org.rep_a1, accountId=gid(world.globex),
                        name="  New deal ", amount="1200.00")

    assert payload["userErrors"] == []
    deal = payload["opportunity"]
    assert deal["name"] == "New deal"
    assert (deal["amount"], deal["currency"], deal["probability"]) == ("1200.00", "EUR", 10)
    assert deal["weightedAmount"] == "120.00"
    assert deal["pipeline"] == {"id": gid(world.sales)}
    assert deal["phase"] == {"id": gid(world.qualify), "name": "Qualify"}
    assert deal["owner"] == {"id": gid(world.org.rep_a1)}
    assert deal["account"] == {"id": gid(world.globex)}
    assert (deal["version"], deal["daysInPhase"], deal["closedAt"]) == (1, 0, None)

    key = key_of(deal["id"])
    row = await stored(db, key)
    assert (row["pipeline_id"], row["phase_id"], row["probability"], row["owner_id"]) == (
        world.sales.id, world.qualify.id, 10, world.org.rep_a1.id)
    assert row["amount"] == Decimal("1200.00")
    [entry] = await history(db, key)
    assert (entry["from_phase_id"], entry["to_phase_id"], entry["changed_by_id"]) == (
        None, world.qualify.id, world.org.rep_a1.id)
    assert (entry["amount"], entry["probability"]) == (Decimal("1200.00"), 10)
    assert entry["changed_at"] == row["phase_entered_at"]
    [event] = await new_events(db, before)
    assert_event(event, kind="CREATED", opportunity=key, from_phase=None,
                 to_phase=world.qualify, by=world.org.rep_a1, delta="1200.00")
    assert entry["event_id"] == event["id"]


async def test_create_in_a_named_pipeline_or_phase_with_its_own_probability(
    client: GraphQLClient, db: Database, world: World
) -> None:
    in_pipeline = await run(client, CREATE, world.org.rep_a1, accountId=gid(world.acme),
                            name="Renewal", amount="10", pipelineId=gid(world.renewals))
    in_phase = await run(client, CREATE, world.org.rep_a1, accountId=gid(world.acme),
                         name="Late", amount="10", phaseId=gid(world.negotiate),
                         probability=90, currency="USD", expectedCloseDate="2026-06-30")

    assert in_pipeline["userErrors"] == in_phase["userErrors"] == []
    assert in_pipeline["opportunity"]["phase"]["id"] == gid(world.renewals_phases[0])
    assert in_pipeline["opportunity"]["pipeline"] == {"id": gid(world.renewals)}
    assert in_phase["opportunity"]["phase"]["name"] == "Negotiate"
    assert in_phase["opportunity"]["probability"] == 90
    row = await stored(db, key_of(in_phase["opportunity"]["id"]))
    assert (row["probability"], row["currency"], row["expected_close_date"]) == (
        90, "USD", date(2026, 6, 30))
    [entry] = await history(db, row["id"])
    assert (entry["to_phase_id"], entry["probability"]) == (world.negotiate.id, 90)


async def test_create_skips_a_closed_first_phase_and_orders_by_position(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    await make_pipeline(db, PipelineKind.SALES, [
        ("Parked", 0, PhaseOutcome.LOST, ForecastCategory.OMITTED),
        ("Later", 30, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
        ("Sooner", 20, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
    ], positions=[1, 3, 2])
    account = await make_account(db, org.rep_a1)

    payload = await run(client, CREATE, org.rep_a1, accountId=gid(account), name="D",
                        amount="1")

    assert payload["userErrors"] == []
    assert payload["opportunity"]["phase"]["name"] == "Sooner"
    assert payload["opportunity"]["probability"] == 20


@pytest.mark.parametrize(("case", "expected"), [
    ("marketing-phase", {("phaseId", "VALIDATION")}),
    ("won-phase", {("phaseId", "VALIDATION")}),
    ("lost-phase", {("phaseId", "VALIDATION")}),
    ("phase-of-another-pipeline", {("phaseId", "VALIDATION")}),
    ("marketing-pipeline", {("pipelineId", "VALIDATION")}),
    ("unknown-pipeline", {("pipelineId", "NOT_FOUND")}),
    ("archived-account", {("accountId", "VALIDATION")}),
    ("unknown-account", {("accountId", "NOT_FOUND")}),
    ("unknown-phase", {("phaseId", "NOT_FOUND")}),
    ("unknown-offering-area", {("offeringAreaId", "NOT_FOUND")}),
    ("negative-amount", {("amount", "VALIDATION")}),
    ("fractions-of-a-cent", {("amount", "VALIDATION")}),
    ("bad-currency", {("currency", "VALIDATION")}),
    ("probability-over-100", {("probability", "VALIDATION")}),
    ("empty-name", {("name", "VALIDATION")}),
    ("other-reps-owner", {("ownerId", "FORBIDDEN")}),
])
async def test_create_refusals_write_nothing(
    client: GraphQLClient, db: Database, world: World, case: str,
    expected: set[tuple[str, str]]
) -> None:
    archived = await make_account(db, world.org.rep_a1, name="Gone")
    async with db.transaction() as session:
        (await session.get(Account, archived.id)).archived = True  # type: ignore[union-attr]
    input: dict[str, Any] = {"accountId": gid(world.acme), "name": "Deal", "amount": "10.00"}
    input.update({
        "marketing-phase": {"phaseId": gid(world.marketing_phases[0])},
        "won-phase": {"phaseId": gid(world.won)},
        "lost-phase": {"phaseId": gid(world.lost)},
        "phase-of-another-pipeline": {"phaseId": gid(world.qualify),
                                      "pipelineId": gid(world.renewals)},
        "marketing-pipeline": {"pipelineId": gid(world.marketing)},
        "unknown-pipeline": {"pipelineId": encode_id("Pipeline", 9999)},
        "archived-account": {"accountId": gid(archived)},
        "unknown-account": {"accountId": encode_id("Account", 9999)},
        "unknown-phase": {"phaseId": encode_id("Phase", 9999)},
        "unknown-offering-area": {"offeringAreaId": encode_id("OfferingArea", 9999)},
        "negative-amount": {"amount": "-1.00"},
        "fractions-of-a-cent": {"amount": "1.005"},
        "bad-currency": {"currency": "eur"},
        "probability-over-100": {"probability": 101},
        "empty-name": {"name": "  "},
        "other-reps-owner": {"ownerId": gid(world.org.rep_a2)},
    }[case])
    before = await snapshot(db)

    payload = await run(client, CREATE, world.org.rep_a1, **input)

    assert payload["opportunity"] is None
    assert codes(payload) == expected
    assert await snapshot(db) == before


async def test_create_with_an_offering_area_and_an_owner_in_the_managers_team(
    client: GraphQLClient, db: Database, world: World
) -> None:
    area = await make_offering_area(db, "CLOUD")

    payload = await run(client, CREATE, world.org.manager_a, accountId=gid(world.acme),
                        name="Cloud", amount="5", offeringAreaId=gid(area),
                        ownerId=gid(world.org.rep_a2))
    refused = await run(client, CREATE, world.org.manager_a, accountId=gid(world.acme),
                        name="Cloud", amount="5", ownerId=gid(world.org.rep_b1))

    assert payload["userErrors"] == []
    row = await stored(db, key_of(payload["opportunity"]["id"]))
    assert (row["offering_area_id"], row["owner_id"]) == (area.id, world.org.rep_a2.id)
    [entry] = await history(db, row["id"])
    assert entry["changed_by_id"] == world.org.manager_a.id
    assert codes(refused) == {("ownerId", "FORBIDDEN")}


async def test_partner_cannot_create_opportunities(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await share(db, world.acme, world.org.partner_org)
    before = await snapshot(db)

    payload = await run(client, CREATE, world.org.partner, accountId=gid(world.acme),
                        name="Partner deal", amount="1")

    assert codes(payload) == {(None, "FORBIDDEN")}
    assert await snapshot(db) == before


# --- updateOpportunity --------------------------------------------------------------------


async def test_update_changes_only_what_is_sent_and_bumps_the_version(
    client: GraphQLClient, db: Database, world: World
) -> None:
    deal = world.deals["Alpha"]
    original = await stored(db, deal.id)
    before = await last_event_id(db)

    payload = await run(client, UPDATE, world.org.rep_a1, id=gid(deal), expectedVersion=1,
                        amount="400.00", expectedCloseDate=None)

    assert payload["userErrors"] == []
    assert payload["opportunity"]["version"] == 2
    assert payload["opportunity"]["amount"] == "400.00"
    assert payload["opportunity"]["name"] == "Alpha"
    row = await stored(db, deal.id)
    assert row["version"] == 2
    assert (row["amount"], row["expected_close_date"]) == (Decimal("400.00"), None)
    unchanged = ("name", "currency", "probability", "phase_id", "owner_id", "account_id",
                 "phase_entered_at")
    assert {k: row[k] for k in unchanged} == {k: original[k] for k in unchanged}
    # An update is no phase entry: no history row; one outbox row tells the boards.
    assert len(await history(db, deal.id)) == 1
    [event] = await new_events(db, before)
    assert event["payload"]["kind"] == "UPDATED"
    assert Decimal(event["payload"]["amountDelta"]) == Decimal("300.00")

    again = await run(client, UPDATE, world.org.rep_a1, id=gid(deal), expectedVersion=2,
                      name="Alpha 2", probability=55, expectedCloseDate="2027-01-31")
    assert again["userErrors"] == []
    row = await stored(db, deal.id)
    assert (row["name"], row["probability"], row["expected_close_date"], row["version"]) == (
        "Alpha 2", 55, date(2027, 1, 31), 3)
    assert row["amount"] == Decimal("400.00")


async def test_update_can_set_the_amount_to_zero(
    client: GraphQLClient, db: Database, world: World
) -> None:
    deal = world.deals["Alpha"]

    payload = await run(client, UPDATE, world.org.rep_a1, id=gid(deal), expectedVersion=1,
                        amount="0.00")

    assert payload["userErrors"] == []
    assert payload["opportunity"]["amount"] == "0.00"
    assert (await stored(db, deal.id))["amount"] == Decimal("0.00")


@pytest.mark.parametrize(("changes", "expected"), [
    ({"amount": None}, {("amount", "VALIDATION")}),
    ({"amount": "-5"}, {("amount", "VALIDATION")}),
    ({"name": ""}, {("name", "VALIDATION")}),
    ({"probability": None}, {("probability", "VALIDATION")}),
    ({"currency": "EURO"}, {("currency", "VALIDATION")}),
    ({"offeringAreaId": "OFFERING"}, {("offeringAreaId", "VALIDATION")}),
    ({"offeringAreaId": encode_id("OfferingArea", 9999)}, {("offeringAreaId", "NOT_FOUND")}),
    ({"ownerId": encode_id("User", 9999)}, {("ownerId", "NOT_FOUND")}),
])
async def test_update_refusals_change_nothing(
    client: GraphQLClient, db: Database, world: World, changes: dict[str, Any],
    expected: set[tuple[str, str]]
) -> None:
    before = await snapshot(db)

    payload = await run(client, UPDATE, world.org.rep_a1, id=gid(world.deals["Alpha"]),
                        expectedVersion=1, **changes)

    assert payload["opportunity"] is None
    assert codes(payload) == expected
    assert await snapshot(db) == before


async def test_closed_opportunities_take_no_updates(
    client: GraphQLClient, db: Database, world: World
) -> None:
    before = await snapshot(db)

    payload = await run(client, UPDATE, world.org.rep_b1, id=gid(world.deals["Delta"]),
                        expectedVersion=1, name="Changed")

    assert codes(payload) == {("id", "VALIDATION")}
    assert await snapshot(db) == before


# --- moveOpportunityPhase -----------------------------------------------------------------


async def test_move_writes_history_and_one_event_and_takes_the_phases_probability(
    client: GraphQLClient, db: Database, world: World
) -> None:
    created = await run(client, CREATE, world.org.rep_a1, accountId=gid(world.acme),
                        name="Mover", amount="1000.00", probability=15)
    key = key_of(created["opportunity"]["id"])
    await run(client, UPDATE, world.org.rep_a1, id=gid_of(key), expectedVersion=1,
              amount="1500.00")
    before = await last_event_id(db)
    started = datetime.now(UTC)

    payload = await run(client, MOVE, world.org.manager_a, id=gid_of(key),
                        phaseId=gid(world.propose), expectedVersion=2)

    assert payload["userErrors"] == []
    deal = payload["opportunity"]
    assert deal["phase"] == {"id": gid(world.propose), "name": "Propose"}
    assert (deal["probability"], deal["version"], deal["daysInPhase"]) == (40, 3, 0)
    assert deal["weightedAmount"] == "600.00"
    row = await stored(db, key)
    assert (row["phase_id"], row["probability"], row["version"]) == (world.propose.id, 40, 3)
    assert row["phase_entered_at"] >= started
    creation, move = await history(db, key)
    assert (creation["from_phase_id"], creation["amount"]) == (None, Decimal("1000.00"))
    assert (move["from_phase_id"], move["to_phase_id"], move["changed_by_id"]) == (
        world.qualify.id, world.propose.id, world.org.manager_a.id)
    assert (move["amount"], move["probability"]) == (Decimal("1500.00"), 40)
    assert move["changed_at"] == row["phase_entered_at"]
    [event] = await new_events(db, before)
    # The amount grew by 500 since the previous phase entry.
    assert_event(event, kind="MOVED", opportunity=key, from_phase=world.qualify,
                 to_phase=world.propose, by=world.org.manager_a, delta="500.00")
    assert move["event_id"] == event["id"]

    read = await client.query("""query($id: ID!) { opportunity(id: $id) {
        phaseHistory { fromPhase { name } toPhase { name } changedBy { name } amount } } }""",
                              {"id": gid_of(key)}, as_user=world.org.rep_b1)
    assert read["opportunity"]["phaseHistory"] == [
        {"fromPhase": None, "toPhase": {"name": "Qualify"}, "changedBy": {"name": "Rep A1"},
         "amount": "1000.00"},
        {"fromPhase": {"name": "Qualify"}, "toPhase": {"name": "Propose"},
         "changedBy": {"name": "Manager A"}, "amount": "1500.00"},
    ]



async def test_a_move_reads_its_owner_once(
    client: GraphQLClient, world: World
) -> None:
    """Who owns the deal (may the viewer move it?) and the owner's team (in the event)
    come from one read of the owner."""
    created = await run(client, CREATE, world.org.rep_a1, accountId=gid(world.acme),
                        name="Mover", amount="1000.00")
    owner_reads: list[str] = []

    def heard(_connection: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if sql.startswith(("SELECT users.id, users.team_id", "SELECT users.team_id")):
            owner_reads.append(sql)

    engine = client.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", heard)
    try:
        payload = await run(client, MOVE, world.org.manager_a, id=created["opportunity"]["id"],
                            phaseId=gid(world.propose), expectedVersion=1)
    finally:
        event.remove(engine, "before_cursor_execute", heard)
    assert payload["userErrors"] == []
    assert len(owner_reads) == 1, owner_reads


def gid_of(key: int) -> str:
    return encode_id("Opportunity", key)


@pytest.mark.parametrize(("target", "expected"), [
    ("renewals", {("phaseId", "VALIDATION")}),
    ("marketing", {("phaseId", "VALIDATION")}),
    ("won", {("phaseId", "VALIDATION")}),
    ("lost", {("phaseId", "VALIDATION")}),
    ("same", {("phaseId", "VALIDATION")}),
    ("unknown", {("phaseId", "NOT_FOUND")}),
    ("malformed", {("phaseId", "VALIDATION")}),
])
async def test_move_refusals_change_nothing(
    client: GraphQLClient, db: Database, world: World, target: str,
    expected: set[tuple[str, str]]
) -> None:
    phase_id = {
        "renewals": gid(world.renewals_phases[1]),
        "marketing": gid(world.marketing_phases[1]),
        "won": gid(world.won),
        "lost": gid(world.lost),
        "same": gid(world.qualify),
        "unknown": encode_id("Phase", 9999),
        "malformed": encode_id("Pipeline", world.sales.id),
    }[target]
    before = await snapshot(db)

    payload = await run(client, MOVE, world.org.rep_a1, id=gid(world.deals["Alpha"]),
                        phaseId=phase_id, expectedVersion=1)

    assert payload["opportunity"] is None
    assert codes(payload) == expected
    assert await snapshot(db) == before


async def test_a_stale_version_is_a_conflict_that_changes_nothing(
    client: GraphQLClient, db: Database, world: World
) -> None:
    deal = world.deals["Alpha"]
    moved = await run(client, MOVE, world.org.rep_a1, id=gid(deal),
                      phaseId=gid(world.propose), expectedVersion=1)
    assert moved["userErrors"] == []
    before = await snapshot(db)

    for document, extra in [(MOVE, {"phaseId": gid(world.negotiate)}), (WON, {}),
                            (LOST, {"reason": "Late"}), (UPDATE, {"name": "Late"})]:
        for version in (1, 3):
            payload = await run(client, document, world.org.rep_a1, id=gid(deal),
                                expectedVersion=version, **extra)
            assert payload["opportunity"] is None
            assert codes(payload) == {("expectedVersion", "CONFLICT")}

    assert await snapshot(db) == before


async def test_fifty_concurrent_moves_with_one_version_let_exactly_one_win(
    client: GraphQLClient, db: Database, world: World
) -> None:
    deal = world.deals["Alpha"]
    targets = [world.propose, world.negotiate]
    _, before_history, before_events = await snapshot(db)

    results = await asyncio.gather(*(
        run(client, MOVE, world.org.rep_a1, id=gid(deal), phaseId=gid(targets[n % 2]),
            expectedVersion=1) for n in range(50)))

    winners = [r for r in results if not r["userErrors"]]
    losers = [r for r in results if r["userErrors"]]
    assert len(winners) == 1
    assert len(losers) == 49
    assert all(codes(r) == {("expectedVersion", "CONFLICT")} for r in losers)
    assert all(r["opportunity"] is None for r in losers)
    winner = winners[0]["opportunity"]
    row = await stored(db, deal.id)
    assert row["version"] == 2
    assert gid_of(row["id"]) == winner["id"]
    assert encode_id("Phase", row["phase_id"]) == winner["phase"]["id"]
    assert await count(db, PHASE_CHANGES) == before_history + 1
    assert await count(db, EVENTS) == before_events + 1
    _, move = await history(db, deal.id)
    assert move["to_phase_id"] == row["phase_id"]


# --- closing and reopening ----------------------------------------------------------------


async def test_close_won_sets_closed_at_and_the_won_phase(
    client: GraphQLClient, db: Database, world: World
) -> None:
    deal = world.deals["Bravo"]
    before = await last_event_id(db)

    payload = await run(client, WON, world.org.rep_a2, id=gid(deal), expectedVersion=1)

    assert payload["userErrors"] == []
    closed = payload["opportunity"]
    assert closed["phase"]["name"] == "Won"
    assert (closed["probability"], closed["weightedAmount"], closed["lostReason"]) == (
        100, "2500.50", None)
    assert closed["closedAt"] is not None
    row = await stored(db, deal.id)
    assert (row["phase_id"], row["probability"], row["version"]) == (world.won.id, 100, 2)
    assert row["closed_at"] == datetime.fromisoformat(closed["closedAt"])
    _, entry = await history(db, deal.id)
    assert (entry["from_phase_id"], entry["to_phase_id"]) == (world.propose.id, world.won.id)
    [event] = await new_events(db, before)
    assert_event(event, kind="WON", opportunity=deal.id, from_phase=world.propose,
                 to_phase=world.won, by=world.org.rep_a2, delta="0")

    again = await run(client, WON, world.org.rep_a2, id=gid(deal), expectedVersion=2)
    lost = await run(client, LOST, world.org.rep_a2, id=gid(deal), expectedVersion=2,
                     reason="Changed mind")
    assert codes(again) == codes(lost) == {("id", "VALIDATION")}
    assert (await stored(db, deal.id))["version"] == 2


@pytest.mark.parametrize("reason", ["", "   "])
async def test_close_lost_needs_a_reason(
    client: GraphQLClient, db: Database, world: World, reason: str
) -> None:
    before = await snapshot(db)

    payload = await run(client, LOST, world.org.rep_a1, id=gid(world.deals["Alpha"]),
                        expectedVersion=1, reason=reason)

    assert codes(payload) == {("reason", "VALIDATION")}
    assert await snapshot(db) == before


async def test_close_lost_then_reopen_clears_closed_at_and_the_reason(
    client: GraphQLClient, db: Database, world: World
) -> None:
    deal = world.deals["Charlie"]
    before = await last_event_id(db)

    lost = await run(client, LOST, world.org.manager_b, id=gid(deal), expectedVersion=1,
                     reason="  Went with a competitor ")
    assert lost["userErrors"] == []
    assert lost["opportunity"]["lostReason"] == "Went with a competitor"
    assert lost["opportunity"]["phase"]["name"] == "Lost"
    assert (lost["opportunity"]["probability"], lost["opportunity"]["weightedAmount"]) == (
        0, "0.00")
    row = await stored(db, deal.id)
    assert row["closed_at"] is not None
    assert (row["lost_reason"], row["phase_id"]) == ("Went with a competitor", world.lost.id)

    reopened = await run(client, MOVE, world.org.rep_b1, id=gid(deal),
                         phaseId=gid(world.propose), expectedVersion=2)
    assert reopened["userErrors"] == []
    assert (reopened["opportunity"]["closedAt"], reopened["opportunity"]["lostReason"]) == (
        None, None)
    row = await stored(db, deal.id)
    assert (row["closed_at"], row["lost_reason"], row["phase_id"], row["probability"]) == (
        None, None, world.propose.id, 40)
    lost_event, reopen_event = await new_events(db, before)
    assert_event(lost_event, kind="LOST", opportunity=deal.id, from_phase=world.negotiate,
                 to_phase=world.lost, by=world.org.manager_b, delta="0")
    assert_event(reopen_event, kind="REOPENED", opportunity=deal.id, from_phase=world.lost,
                 to_phase=world.propose, by=world.org.rep_b1, delta="0")
    assert [(e["from_phase_id"], e["to_phase_id"]) for e in await history(db, deal.id)] == [
        (None, world.negotiate.id), (world.negotiate.id, world.lost.id),
        (world.lost.id, world.propose.id)]

    # Open again, it takes updates again.
    updated = await run(client, UPDATE, world.org.rep_b1, id=gid(deal), expectedVersion=3,
                        name="Charlie again")
    assert updated["userErrors"] == []


async def test_a_pipeline_with_several_won_phases_needs_the_phase_named(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    _, (open_phase, _signed, paid, lost) = await make_pipeline(db, PipelineKind.SALES, [
        ("Open", 30, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
        ("Signed", 100, PhaseOutcome.WON, ForecastCategory.CLOSED),
        ("Paid", 100, PhaseOutcome.WON, ForecastCategory.CLOSED),
        ("Lost", 0, PhaseOutcome.LOST, ForecastCategory.OMITTED),
    ])
    deal = await make_opportunity(db, await make_account(db, org.rep_a1), open_phase)
    before = await snapshot(db)

    unnamed = await run(client, WON, org.rep_a1, id=gid(deal), expectedVersion=1)
    not_won = await run(client, WON, org.rep_a1, id=gid(deal), expectedVersion=1,
                        phaseId=gid(lost))
    assert codes(unnamed) == codes(not_won) == {("phaseId", "VALIDATION")}
    assert await snapshot(db) == before

    named = await run(client, WON, org.rep_a1, id=gid(deal), expectedVersion=1,
                      phaseId=gid(paid))
    assert named["userErrors"] == []
    assert named["opportunity"]["phase"] == {"id": gid(paid), "name": "Paid"}
    assert (await stored(db, deal.id))["phase_id"] == paid.id


# --- permissions --------------------------------------------------------------------------


async def attempts(client: GraphQLClient, world: World, user: Any, deal: Opportunity
                   ) -> dict[str, set[tuple[str | None, str]]]:
    """Every mutation on ``deal`` as ``user``, each at the deal's version 1."""
    if deal.pipeline_id == world.renewals.id:
        target = world.renewals_phases[1]
    else:
        target = world.propose if deal.phase_id == world.negotiate.id else world.negotiate
    documents = {
        "update": (UPDATE, {"name": "Taken"}),
        "move": (MOVE, {"phaseId": gid(target)}),
        "won": (WON, {}),
        "lost": (LOST, {"reason": "No"}),
    }
    found = {}
    for name, (document, extra) in documents.items():
        payload = await run(client, document, user, id=gid(deal), expectedVersion=1, **extra)
        found[name] = codes(payload)
        if not payload["userErrors"]:
            # Put it back at version 1 in its old phase for the next attempt.
            async with client.db.transaction() as session:
                await session.execute(OPPORTUNITIES.update().where(
                    OPPORTUNITIES.c.id == deal.id).values(
                    version=1, phase_id=deal.phase_id, closed_at=None, lost_reason=None,
                    name=deal.name))
    return found


def every_mutation(found: set[tuple[str | None, str]]) -> dict[str, set[Any]]:
    return {name: found for name in ("update", "move", "won", "lost")}


@pytest.mark.parametrize(("user_name", "deal_name", "allowed"), [
    ("rep_a1", "Alpha", True),  # its own
    ("rep_a1", "Bravo", False),  # a team mate's
    ("rep_b1", "Alpha", False),
    ("manager_a", "Bravo", True),  # its team's
    ("manager_a", "Foxtrot", True),  # its own
    ("manager_a", "Charlie", False),  # the other team's
    ("manager_b", "Charlie", True),
    ("admin", "Alpha", True),
    ("admin", "Charlie", True),
])
async def test_who_may_change_an_opportunity(
    client: GraphQLClient, db: Database, world: World, user_name: str, deal_name: str,
    allowed: bool
) -> None:
    user = getattr(world.org, user_name)
    deal = world.deals[deal_name]
    before = await snapshot(db)

    found = await attempts(client, world, user, deal)

    if allowed:
        assert found == every_mutation(set())
    else:
        assert found == every_mutation({(None, "FORBIDDEN")})
        assert await snapshot(db) == before


async def test_partner_is_forbidden_on_shared_and_told_not_found_on_the_rest(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await share(db, world.acme, world.org.partner_org)
    before = await snapshot(db)

    shared = await attempts(client, world, world.org.partner, world.deals["Alpha"])
    unshared = await attempts(client, world, world.org.partner, world.deals["Charlie"])

    assert shared == every_mutation({(None, "FORBIDDEN")})
    assert unshared == every_mutation({("id", "NOT_FOUND")})
    assert await snapshot(db) == before


async def test_a_deactivated_or_partner_user_cannot_be_given_an_opportunity(
    client: GraphQLClient, db: Database, world: World
) -> None:
    gone = await make_user(db, Role.REP, team=world.org.team_a, active=False)
    before = await snapshot(db)

    for owner in (gone, world.org.partner):
        payload = await run(client, UPDATE, world.org.admin, id=gid(world.deals["Alpha"]),
                            expectedVersion=1, ownerId=gid(owner))
        assert codes(payload) == {("ownerId", "FORBIDDEN")}
    assert await snapshot(db) == before

    handed = await run(client, UPDATE, world.org.manager_a, id=gid(world.deals["Alpha"]),
                       expectedVersion=1, ownerId=gid(world.org.rep_a2))
    assert handed["userErrors"] == []
    assert (await stored(db, world.deals["Alpha"].id))["owner_id"] == world.org.rep_a2.id
