"""Pipeline administration through the API: createPipeline, updatePipeline, addPhase,
updatePhase, reorderPhases and removePhase, with their validation, the moves a removal
makes (phase history, events, live feeds), the audit log, and FORBIDDEN for everyone
but admins.

Every refusal also checks that nothing was written: pipelines, phases, opportunities,
leads, the phase history, the outbox and the audit log stand as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from loaders.ids import encode_id
from models.audit import AuditEntry
from models.db import Database
from models.events import Event
from models.leads import Lead
from models.opportunities import (
    Opportunity,
    Phase,
    PhaseChange,
    Pipeline,
    PipelineKind,
)
from tests.factories import (
    Org,
    gid,
    make_account,
    make_lead,
    make_opportunity,
    make_org,
    make_pipeline,
)
from tests.graphql_client import GraphQLClient
from tests.live import next_data, nothing_more, subscribed

ERRORS = "userErrors { field code message }"
PHASE = "id name position probability outcome forecastCategory version removedAt"
PIPELINE = f"id name kind active version phases {{ {PHASE} }}"

CREATE_PIPELINE = f"""mutation($input: CreatePipelineInput!) {{
  createPipeline(input: $input) {{ pipeline {{ {PIPELINE} }} {ERRORS} }} }}"""
UPDATE_PIPELINE = f"""mutation($input: UpdatePipelineInput!) {{
  updatePipeline(input: $input) {{ pipeline {{ {PIPELINE} }} {ERRORS} }} }}"""
ADD_PHASE = f"""mutation($input: AddPhaseInput!) {{
  addPhase(input: $input) {{ phase {{ {PHASE} pipeline {{ {PIPELINE} }} }} {ERRORS} }} }}"""
UPDATE_PHASE = f"""mutation($input: UpdatePhaseInput!) {{
  updatePhase(input: $input) {{ phase {{ {PHASE} }} {ERRORS} }} }}"""
REORDER = f"""mutation($input: ReorderPhasesInput!) {{
  reorderPhases(input: $input) {{ pipeline {{ {PIPELINE} }} {ERRORS} }} }}"""
REMOVE = f"""mutation($input: RemovePhaseInput!) {{
  removePhase(input: $input) {{
    phase {{ {PHASE} }} pipeline {{ {PIPELINE} }} movedOpportunityCount movedLeadCount
    {ERRORS} }} }}"""
MOVE = f"""mutation($input: MoveOpportunityPhaseInput!) {{
  moveOpportunityPhase(input: $input) {{ opportunity {{ id }} {ERRORS} }} }}"""
FEED = """subscription($pipelineId: ID) {
  opportunityPhaseChanged(pipelineId: $pipelineId) {
    eventId kind fromPhase { name } toPhase { name } changedBy { name }
    opportunity { id probability phase { name } }
  }
}"""
SUMMARY = """subscription($p: ID!) { pipelineSummaryChanged(pipelineId: $p) {
  open { count } phases { phase { name } count } } }"""


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(e["field"], e["code"]) for e in payload["userErrors"]}


def names(pipeline: dict[str, Any]) -> list[str]:
    return [p["name"] for p in pipeline["phases"]]


async def rows(db: Database, model: Any) -> list[dict[str, Any]]:
    table = model.__table__
    async with db.read() as connection:
        return [dict(r) for r in (await connection.execute(
            select(table).order_by(table.c.id))).mappings().all()]


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Everything pipeline administration may write."""
    return {model.__tablename__: await rows(db, model)
            for model in (Pipeline, Phase, Opportunity, Lead, PhaseChange, Event, AuditEntry)}


async def audit(db: Database, action: str) -> list[dict[str, Any]]:
    return [r for r in await rows(db, AuditEntry) if r["action"] == action]


@dataclass
class Setup:
    org: Org
    sales: Pipeline
    phases: dict[str, Phase]
    marketing: Pipeline
    lead_phases: dict[str, Phase]


@pytest.fixture
async def setup(db: Database) -> Setup:
    org = await make_org(db)
    sales, phases = await make_pipeline(db, name="Sales")
    marketing, lead_phases = await make_pipeline(db, PipelineKind.MARKETING, name="Leads")
    return Setup(org, sales, {p.name: p for p in phases}, marketing,
                 {p.name: p for p in lead_phases})


# --- removePhase --------------------------------------------------------------------------


async def test_removing_a_phase_with_opportunities_in_it_is_refused_and_nothing_changes(
        client: GraphQLClient, db: Database, setup: Setup) -> None:
    account = await make_account(db, setup.org.rep_a1)
    await make_opportunity(db, account, setup.phases["Propose"])
    await make_lead(db, setup.lead_phases["Engaged"], setup.org.rep_a1)
    before = await snapshot(db)

    for phase in (setup.phases["Propose"], setup.lead_phases["Engaged"]):
        data = await client.query(REMOVE, {"input": {"id": gid(phase)}}, as_user=setup.org.admin)
        payload = data["removePhase"]
        assert codes(payload) == {("moveToPhaseId", "VALIDATION")}
        assert payload["phase"] is None

    assert await snapshot(db) == before


async def test_removing_a_phase_moves_every_opportunity_with_history_and_an_event(
        app: Any, client: GraphQLClient, db: Database, setup: Setup) -> None:
    org, phases = setup.org, setup.phases
    moved = [await make_opportunity(db, await make_account(db, owner), phases["Propose"])
             for owner in (org.rep_a1, org.rep_a2, org.rep_b1)]
    stays = await make_opportunity(db, await make_account(db, org.rep_a1), phases["Qualify"])
    events_before = len(await rows(db, Event))

    async with subscribed(app, client, org.admin, FEED,
                          {"pipelineId": gid(setup.sales)}) as ws:
        data = await client.query(REMOVE, {"input": {
            "id": gid(phases["Propose"]), "moveToPhaseId": gid(phases["Negotiate"])}},
            as_user=org.admin)
        received = [(await next_data(ws))["opportunityPhaseChanged"] for _ in moved]
        await nothing_more(ws)

    payload = data["removePhase"]
    assert payload["userErrors"] == []
    assert payload["movedOpportunityCount"] == 3
    assert payload["movedLeadCount"] == 0
    assert payload["phase"]["name"] == "Propose"
    assert payload["phase"]["removedAt"] is not None
    assert names(payload["pipeline"]) == ["Qualify", "Negotiate", "Won", "Lost"]
    assert [p["position"] for p in payload["pipeline"]["phases"]] == [1, 2, 3, 4]

    # One event per moved deal, to every live board, as moveOpportunityPhase sends it.
    assert sorted(e["opportunity"]["id"] for e in received) == sorted(gid(o) for o in moved)
    for event in received:
        assert event["kind"] == "MOVED"
        assert event["fromPhase"] == {"name": "Propose"}
        assert event["toPhase"] == {"name": "Negotiate"}
        assert event["changedBy"] == {"name": "Admin"}
        assert event["opportunity"]["phase"] == {"name": "Negotiate"}
        assert event["opportunity"]["probability"] == 75

    events = (await rows(db, Event))[events_before:]
    assert len(events) == 3
    assert {e["payload"]["opportunityId"] for e in events} == {o.id for o in moved}
    assert {(e["topic"], e["payload"]["kind"], e["payload"]["fromPhaseId"],
             e["payload"]["toPhaseId"]) for e in events} == {
        ("opportunity.phase_changed", "MOVED", phases["Propose"].id, phases["Negotiate"].id)}

    opportunities = {r["id"]: r for r in await rows(db, Opportunity)}
    for opportunity in moved:
        assert opportunities[opportunity.id]["phase_id"] == phases["Negotiate"].id
        assert opportunities[opportunity.id]["probability"] == 75
        assert opportunities[opportunity.id]["version"] == opportunity.version + 1
    assert opportunities[stays.id]["phase_id"] == phases["Qualify"].id
    history = [r for r in await rows(db, PhaseChange) if r["from_phase_id"] is not None]
    assert sorted((h["opportunity_id"], h["from_phase_id"], h["to_phase_id"],
                   h["changed_by_id"]) for h in history) == sorted(
        (o.id, phases["Propose"].id, phases["Negotiate"].id, org.admin.id) for o in moved)
    assert {h["event_id"] for h in history} == {e["id"] for e in events}

    # The removed phase stays readable through the history and by id.
    data = await client.query("""query($id: ID!, $phase: ID!, $pipeline: ID!) {
      opportunity(id: $id) { phaseHistory { fromPhase { name } toPhase { name } } }
      node(id: $phase) { ... on Phase { name removedAt } }
      removedPhases(pipelineId: $pipeline) { name } }""",
        {"id": gid(moved[0]), "phase": gid(phases["Propose"]), "pipeline": gid(setup.sales)},
        as_user=org.rep_a1)
    assert [(h["fromPhase"] and h["fromPhase"]["name"], h["toPhase"]["name"])
            for h in data["opportunity"]["phaseHistory"]] == [
        (None, "Propose"), ("Propose", "Negotiate")]
    assert data["node"]["name"] == "Propose"
    assert data["node"]["removedAt"] is not None
    assert data["removedPhases"] == [{"name": "Propose"}]

    [entry] = await audit(db, "phase.removed")
    assert entry["actor_id"] == org.admin.id
    assert entry["entity_type"] == "Phase"
    assert entry["entity_id"] == phases["Propose"].id
    assert entry["before"]["name"] == "Propose"
    assert entry["after"]["movedToPhaseId"] == phases["Negotiate"].id
    assert sorted(entry["after"]["opportunityIds"]) == sorted(o.id for o in moved)


async def test_the_pipeline_summary_feed_sees_a_removal(
        app: Any, client: GraphQLClient, db: Database, setup: Setup) -> None:
    phases = setup.phases
    for _ in range(2):
        await make_opportunity(db, await make_account(db, setup.org.rep_a1),
                               phases["Propose"])
    async with subscribed(app, client, setup.org.admin, SUMMARY,
                          {"p": gid(setup.sales)}) as ws:
        first = (await next_data(ws))["pipelineSummaryChanged"]
        assert {p["phase"]["name"]: p["count"] for p in first["phases"]}["Propose"] == 2
        data = await client.query(REMOVE, {"input": {
            "id": gid(phases["Propose"]), "moveToPhaseId": gid(phases["Qualify"])}},
            as_user=setup.org.admin)
        assert data["removePhase"]["userErrors"] == []
        summary = (await next_data(ws))["pipelineSummaryChanged"]
        while {p["phase"]["name"]: p["count"] for p in summary["phases"]}.get("Qualify") != 2:
            summary = (await next_data(ws))["pipelineSummaryChanged"]
    assert [p["phase"]["name"] for p in summary["phases"]] == [
        "Qualify", "Negotiate", "Won", "Lost"]
    assert summary["open"]["count"] == 2


async def test_removing_a_marketing_phase_moves_its_leads(
        client: GraphQLClient, db: Database, setup: Setup) -> None:
    phases = setup.lead_phases
    leads = [await make_lead(db, phases["Engaged"], setup.org.rep_a1) for _ in range(2)]
    other = await make_lead(db, phases["New"], setup.org.rep_a2)

    data = await client.query(REMOVE, {"input": {
        "id": gid(phases["Engaged"]), "moveToPhaseId": gid(phases["New"])}},
        as_user=setup.org.admin)
    payload = data["removePhase"]
    assert payload["userErrors"] == []
    assert payload["movedLeadCount"] == 2
    assert payload["movedOpportunityCount"] == 0
    assert names(payload["pipeline"]) == ["New", "Qualified", "Disqualified"]

    stored = {r["id"]: r for r in await rows(db, Lead)}
    for lead in leads:
        assert stored[lead.id]["phase_id"] == phases["New"].id
        assert stored[lead.id]["version"] == lead.version + 1
        assert stored[lead.id]["phase_entered_at"] > lead.phase_entered_at
    assert stored[other.id]["version"] == other.version
    [entry] = await audit(db, "phase.removed")
    assert sorted(entry["after"]["leadIds"]) == sorted(lead.id for lead in leads)

    # A removed phase takes no new lead.
    before = await snapshot(db)
    created = await client.query(
        """mutation($input: CreateLeadInput!) { createLead(input: $input) {
            lead { id } userErrors { field code } } }""",
        {"input": {"company": "Late Oy", "lastName": "Late", "phaseId": gid(phases["Engaged"])}},
        as_user=setup.org.rep_a1)
    assert codes(created["createLead"]) == {("phaseId", "NOT_FOUND")}
    assert await snapshot(db) == before


async def test_an_empty_phase_is_removed_without_a_target_and_takes_no_more_entries(
        client: GraphQLClient, db: Database, setup: Setup) -> None:
    phases = setup.phases
    deal = await make_opportunity(db, await make_account(db, setup.org.rep_a1),
                                  phases["Qualify"])
    data = await client.query(REMOVE, {"input": {"id": gid(phases["Negotiate"])}},
                              as_user=setup.org.admin)
    assert data["removePhase"]["userErrors"] == []
    assert data["removePhase"]["movedOpportunityCount"] == 0

    before = await snapshot(db)
    moved = await client.query(MOVE, {"input": {
        "id": gid(deal), "phaseId": gid(phases["Negotiate"]), "expectedVersion": deal.version}},
        as_user=setup.org.rep_a1)
    assert codes(moved["moveOpportunityPhase"]) == {("phaseId", "NOT_FOUND")}
    again = await client.query(REMOVE, {"input": {"id": gid(phases["Negotiate"])}},
                               as_user=setup.org.admin)
    assert codes(again["removePhase"]) == {("id", "NOT_FOUND")}
    assert await snapshot(db) == before

    # Its name is free again for a new phase.
    added = await client.query(ADD_PHASE, {"input": {
        "pipelineId": gid(setup.sales), "name": "Negotiate", "probability": 80,
        "outcome": "OPEN", "position": 3}}, as_user=setup.org.admin)
    assert added["addPhase"]["userErrors"] == []
    assert names(added["addPhase"]["phase"]["pipeline"]) == [
        "Qualify", "Propose", "Negotiate", "Won", "Lost"]


@pytest.mark.parametrize(("phase", "target", "expected"), [
    pytest.param("Propose", "Won", {("moveToPhaseId", "VALIDATION")}, id="other-outcome"),
    pytest.param("Propose", "Propose", {("moveToPhaseId", "VALIDATION")}, id="itself"),
    pytest.param("Propose", "lead:New", {("moveToPhaseId", "NOT_FOUND")},
                 id="other-pipeline"),
    pytest.param("Propose", "unknown", {("moveToPhaseId", "NOT_FOUND")}, id="unknown"),
    pytest.param("Propose", "garbage", {("moveToPhaseId", "VALIDATION")}, id="not-an-id"),
    pytest.param("Won", None, {("id", "VALIDATION")}, id="last-won"),
    pytest.param("Lost", None, {("id", "VALIDATION")}, id="last-lost"),
])
async def test_remove_phase_targets_are_checked(
        client: GraphQLClient, db: Database, setup: Setup, phase: str, target: str | None,
        expected: set[tuple[str, str]]) -> None:
    await make_opportunity(db, await make_account(db, setup.org.rep_a1), setup.phases["Propose"])
    special = {"unknown": encode_id("Phase", 9999), "garbage": "nope",
               "lead:New": gid(setup.lead_phases["New"])}
    target_id = None if target is None else special.get(target) or gid(setup.phases[target])
    before = await snapshot(db)
    data = await client.query(REMOVE, {"input": {
        "id": gid(setup.phases[phase]), "moveToPhaseId": target_id}}, as_user=setup.org.admin)
    assert codes(data["removePhase"]) == expected
    assert await snapshot(db) == before


async def test_the_last_open_phase_of_a_pipeline_stays(
        client: GraphQLClient, db: Database, setup: Setup) -> None:
    for name in ("Qualify", "Propose"):
        data = await client.query(REMOVE, {"input": {"id": gid(setup.phases[name])}},
                                  as_user=setup.org.admin)
        assert data["removePhase"]["userErrors"] == []
    before = await snapshot(db)
    data = await client.query(REMOVE, {"input": {"id": gid(setup.phases["Negotiate"])}},
                              as_user=setup.org.admin)
    assert codes(data["removePhase"]) == {("id", "VALIDATION")}
    assert await snapshot(db) == before


# --- createPipeline -----------------------------------------------------------------------

SALES = [{"name": "Discover", "probability": 10, "outcome": "OPEN"},
         {"name": "Commit", "probability": 80, "outcome": "OPEN", "forecastCategory": "COMMIT"},
         {"name": "Won", "probability": 100, "outcome": "WON"},
         {"name": "Lost", "probability": 0, "outcome": "LOST"}]


async def test_create_pipeline_with_its_phases(
        client: GraphQLClient, db: Database, setup: Setup) -> None:
    data = await client.query(CREATE_PIPELINE, {"input": {
        "name": "  Enterprise ", "kind": "SALES", "phases": SALES}}, as_user=setup.org.admin)
    payload = data["createPipeline"]
    assert payload["userErrors"] == []
    pipeline = payload["pipeline"]
    assert (pipeline["name"], pipeline["kind"], pipeline["active"]) == (
        "Enterprise", "SALES", True)
    assert [(p["name"], p["position"], p["probability"], p["outcome"], p["forecastCategory"])
            for p in pipeline["phases"]] == [
        ("Discover", 1, 10, "OPEN", "PIPELINE"), ("Commit", 2, 80, "OPEN", "COMMIT"),
        ("Won", 3, 100, "WON", "CLOSED"), ("Lost", 4, 0, "LOST", "OMITTED")]

    # A deal can be opened in it at once.
    account = await make_account(db, setup.org.rep_a1)
    created = await client.query("""mutation($input: CreateOpportunityInput!) {
      createOpportunity(input: $input) { opportunity { phase { name } } userErrors { code } } }""",
        {"input": {"accountId": gid(account), "name": "Big", "amount": "10.00",
                   "currency": "EUR", "pipelineId": pipeline["id"]}}, as_user=setup.org.rep_a1)
    assert created["createOpportunity"]["opportunity"]["phase"] == {"name": "Discover"}

    [entry] = await audit(db, "pipeline.created")
    assert entry["actor_id"] == setup.org.admin.id
    assert entry["before"] is None
    assert entry["after"]["name"] == "Enterprise"
    assert entry["after"]["kind"] == "SALES"
    assert [p["name"] for p in entry["after"]["phases"]] == ["Discover", "Commit", "Won", "Lost"]


@pytest.mark.parametrize(("name", "kind", "phases", "expected"), [
    pytest.param("New", "SALES", [{**SALES[0], "probability": 101}, *SALES[1:]],
                 {("phases.0.probability", "VALIDATION")}, id="probability-above-100"),
    pytest.param("New", "SALES", [*SALES[:3], {**SALES[3], "probability": -1}],
                 {("phases.3.probability", "VALIDATION")}, id="probability-below-0"),
    pytest.param("New", "SALES", [*SALES, {**SALES[0], "name": "discover"}],
                 {("phases.4.name", "VALIDATION")}, id="duplicate-phase-name"),
    pytest.param("New", "SALES", SALES[:2], {("phases", "VALIDATION")}, id="no-won-or-lost"),
    pytest.param("New", "MARKETING", SALES[2:], {("phases", "VALIDATION")}, id="no-open"),
    pytest.param("sales", "SALES", SALES, {("name", "CONFLICT")}, id="duplicate-name"),
    pytest.param(" ", "SALES", [{**SALES[0], "name": ""}, *SALES[1:]],
                 {("name", "VALIDATION"), ("phases.0.name", "VALIDATION")}, id="empty-names"),
])
async def test_create_pipeline_validation(
        client: GraphQLClient, db: Database, setup: Setup, name: str, kind: str,
        phases: list[dict[str, Any]], expected: set[tuple[str, str]]) -> None:
    before = await snapshot(db)
    data = await client.query(CREATE_PIPELINE, {"input": {
        "name": name, "kind": kind, "phases": phases}}, as_user=setup.org.admin)
    assert codes(data["createPipeline"]) == expected
    assert data["createPipeline"]["pipeline"] is None
    assert await snapshot(db) == before


# --- updatePipeline -----------------------------------------------------------------------


async def test_update_pipeline_renames_and_switches_off_with_an_audit_entry(
        client: GraphQLClient, db: Database, setup: Setup) -> None:
    data = await client.query(UPDATE_PIPELINE, {"input": {
        "id": gid(setup.sales), "expectedVersion": setup.sales.version, "name": "Old sales",
        "active": False}}, as_user=setup.org.admin)
    payload = data["updatePipeline"]
    assert payload["userErrors"] == []
    assert (payload["pipeline"]["name"], payload["pipeline"]["active"],
            payload["pipeline"]["version"]) == ("Old sales", False, setup.sales.version + 1)
    [entry] = await audit(db, "pipeline.updated")
    assert (entry["entity_type"], entry["entity_id"]) == ("Pipeline", setup.sales.id)
    assert entry["before"] == {"name": "Sales", "kind": "SALES", "active": True}
    assert entry["after"] == {"name": "Old sales", "kind": "SALES", "active": False}


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"expectedVersion": 99}, {("expectedVersion", "CONFLICT")}, id="stale"),
    pytest.param({"name": "LEADS"}, {("name", "CONFLICT")}, id="duplicate-name"),
    pytest.param({"name": ""}, {("name", "VALIDATION")}, id="empty-name"),
    pytest.param({"active": None}, {("active", "VALIDATION")}, id="null-active"),
    pytest.param({"id": encode_id("Pipeline", 9999)}, {("id", "NOT_FOUND")}, id="unknown"),
])
async def test_update_pipeline_validation(
        client: GraphQLClient, db: Database, setup: Setup, changes: dict[str, Any],
        expected: set[tuple[str, str]]) -> None:
    before = await snapshot(db)
    data = await client.query(UPDATE_PIPELINE, {"input": {
        "id": gid(setup.sales), "expectedVersion": setup.sales.version, **changes}},
        as_user=setup.org.admin)
    assert codes(data["updatePipeline"]) == expected
    assert await snapshot(db) == before


# --- addPhase, updatePhase ----------------------------------------------------------------


async def test_add_phase_at_a_position_moves_the_rest_down(
        client: GraphQLClient, db: Database, setup: Setup) -> None:
    data = await client.query(ADD_PHASE, {"input": {
        "pipelineId": gid(setup.sales), "name": "Demo", "probability": 25, "outcome": "OPEN",
        "forecastCategory": "BEST_CASE", "position": 2}}, as_user=setup.org.admin)
    payload = data["addPhase"]
    assert payload["userErrors"] == []
    phase = payload["phase"]
    assert (phase["name"], phase["position"], phase["probability"], phase["outcome"],
            phase["forecastCategory"]) == ("Demo", 2, 25, "OPEN", "BEST_CASE")
    assert [(p["name"], p["position"]) for p in phase["pipeline"]["phases"]] == [
        ("Qualify", 1), ("Demo", 2), ("Propose", 3), ("Negotiate", 4), ("Won", 5), ("Lost", 6)]
    [entry] = await audit(db, "phase.added")
    assert entry["before"] is None
    assert entry["after"]["name"] == "Demo"
    assert entry["after"]["pipeline_id"] == setup.sales.id

    # Without a position, last.
    data = await client.query(ADD_PHASE, {"input": {
        "pipelineId": gid(setup.sales), "name": "Parked", "probability": 0,
        "outcome": "LOST"}}, as_user=setup.org.admin)
    assert data["addPhase"]["phase"]["position"] == 7
    assert data["addPhase"]["phase"]["forecastCategory"] == "OMITTED"


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"probability": 101}, {("probability", "VALIDATION")}, id="probability"),
    pytest.param({"probability": -5}, {("probability", "VALIDATION")}, id="negative"),
    pytest.param({"name": "won"}, {("name", "CONFLICT")}, id="duplicate-name"),
    pytest.param({"position": 0}, {("position", "VALIDATION")}, id="position-0"),
    pytest.param({"position": 7}, {("position", "VALIDATION")}, id="position-past-end"),
    pytest.param({"pipelineId": encode_id("Pipeline", 9999)}, {("pipelineId", "NOT_FOUND")},
                 id="unknown-pipeline"),
    pytest.param({"pipelineId": "nope"}, {("pipelineId", "VALIDATION")}, id="bad-id"),
])
async def test_add_phase_validation(
        client: GraphQLClient, db: Database, setup: Setup, changes: dict[str, Any],
        expected: set[tuple[str, str]]) -> None:
    before = await snapshot(db)
    data = await client.query(ADD_PHASE, {"input": {
        "pipelineId": gid(setup.sales), "name": "Demo", "probability": 25, "outcome": "OPEN",
        **changes}}, as_user=setup.org.admin)
    assert codes(data["addPhase"]) == expected
    assert await snapshot(db) == before


async def test_update_phase_changes_the_default_for_deals_entering_from_now_on(
        client: GraphQLClient, db: Database, setup: Setup) -> None:
    phase = setup.phases["Negotiate"]
    inside = await make_opportunity(db, await make_account(db, setup.org.rep_a1), phase)
    data = await client.query(UPDATE_PHASE, {"input": {
        "id": gid(phase), "expectedVersion": phase.version, "name": "Negotiation",
        "probability": 60, "forecastCategory": "BEST_CASE"}}, as_user=setup.org.admin)
    payload = data["updatePhase"]
    assert payload["userErrors"] == []
    assert (payload["phase"]["name"], payload["phase"]["probability"],
            payload["phase"]["forecastCategory"], payload["phase"]["version"]) == (
        "Negotiation", 60, "BEST_CASE", phase.version + 1)
    stored = {r["id"]: r for r in await rows(db, Opportunity)}
    assert stored[inside.id]["probability"] == 75  # kept what it had

    [entry] = await audit(db, "phase.updated")
    assert (entry["entity_type"], entry["entity_id"]) == ("Phase", phase.id)
    assert {k: entry["before"][k] for k in ("name", "probability", "forecast_category")} == {
        "name": "Negotiate", "probability": 75, "forecast_category": "COMMIT"}
    assert {k: entry["after"][k] for k in ("name", "probability", "forecast_category")} == {
        "name": "Negotiation", "probability": 60, "forecast_category": "BEST_CASE"}


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"probability": 101}, {("probability", "VALIDATION")}, id="probability"),
    pytest.param({"probability": None}, {("probability", "VALIDATION")}, id="null"),
    pytest.param({"name": "Propose"}, {("name", "CONFLICT")}, id="duplicate-name"),
    pytest.param({"name": ""}, {("name", "VALIDATION")}, id="empty-name"),
    pytest.param({"forecastCategory": None}, {("forecastCategory", "VALIDATION")},
                 id="null-category"),
    pytest.param({"expectedVersion": 42}, {("expectedVersion", "CONFLICT")}, id="stale"),
    pytest.param({"id": encode_id("Phase", 9999)}, {("id", "NOT_FOUND")}, id="unknown"),
])
async def test_update_phase_validation(
        client: GraphQLClient, db: Database, setup: Setup, changes: dict[str, Any],
        expected: set[tuple[str, str]]) -> None:
    phase = setup.phases["Negotiate"]
    before = await snapshot(db)
    data = await client.query(UPDATE_PHASE, {"input": {
        "id": gid(phase), "expectedVersion": phase.version, **changes}},
        as_user=setup.org.admin)
    assert codes(data["updatePhase"]) == expected
    assert await snapshot(db) == before


# --- reorderPhases ------------------------------------------------------------------------


async def test_reorder_phases(client: GraphQLClient, db: Database, setup: Setup) -> None:
    order = ["Propose", "Qualify", "Negotiate", "Lost", "Won"]
    data = await client.query(REORDER, {"input": {
        "pipelineId": gid(setup.sales), "phaseIds": [gid(setup.phases[n]) for n in order]}},
        as_user=setup.org.admin)
    payload = data["reorderPhases"]
    assert payload["userErrors"] == []
    assert names(payload["pipeline"]) == order
    assert [p["position"] for p in payload["pipeline"]["phases"]] == [1, 2, 3, 4, 5]
    [entry] = await audit(db, "pipeline.phases_reordered")
    assert entry["before"] == {"phaseIds": [setup.phases[n].id for n in
                                            ("Qualify", "Propose", "Negotiate", "Won", "Lost")]}
    assert entry["after"] == {"phaseIds": [setup.phases[n].id for n in order]}


@pytest.mark.parametrize(("ids", "expected"), [
    pytest.param(["Qualify", "Propose", "Negotiate", "Won"], {("phaseIds", "VALIDATION")},
                 id="missing"),
    pytest.param(["Qualify", "Propose", "Negotiate", "Won", "Lost", "lead:New"],
                 {("phaseIds.5", "NOT_FOUND")}, id="foreign"),
    pytest.param(["Qualify", "Propose", "Negotiate", "Won", "Lost", "Won"],
                 {("phaseIds.5", "VALIDATION")}, id="twice"),
    pytest.param(["Qualify", "Propose", "Negotiate", "Won", "nope"],
                 {("phaseIds.4", "VALIDATION"), ("phaseIds", "VALIDATION")}, id="bad-id"),
])
async def test_reorder_phases_validation(
        client: GraphQLClient, db: Database, setup: Setup, ids: list[str],
        expected: set[tuple[str, str]]) -> None:
    phase_ids = [gid(setup.lead_phases["New"]) if n == "lead:New" else
                 gid(setup.phases[n]) if n in setup.phases else n for n in ids]
    before = await snapshot(db)
    data = await client.query(REORDER, {"input": {
        "pipelineId": gid(setup.sales), "phaseIds": phase_ids}}, as_user=setup.org.admin)
    assert codes(data["reorderPhases"]) == expected
    assert await snapshot(db) == before


async def test_reorder_an_unknown_pipeline(
        client: GraphQLClient, db: Database, setup: Setup) -> None:
    before = await snapshot(db)
    data = await client.query(REORDER, {"input": {
        "pipelineId": encode_id("Pipeline", 9999), "phaseIds": []}}, as_user=setup.org.admin)
    assert codes(data["reorderPhases"]) == {("pipelineId", "NOT_FOUND")}
    assert await snapshot(db) == before


# --- who may ------------------------------------------------------------------------------


def _operations(setup: Setup) -> list[tuple[str, str, dict[str, Any]]]:
    phases = setup.phases
    return [
        ("createPipeline", CREATE_PIPELINE,
         {"name": "Mine", "kind": "SALES", "phases": SALES}),
        ("updatePipeline", UPDATE_PIPELINE,
         {"id": gid(setup.sales), "expectedVersion": setup.sales.version, "name": "Renamed"}),
        ("updatePhase", UPDATE_PHASE, {"id": gid(phases["Qualify"]),
                                       "expectedVersion": phases["Qualify"].version,
                                       "probability": 5}),
        ("reorderPhases", REORDER, {"pipelineId": gid(setup.sales), "phaseIds": [
            gid(phases[n]) for n in ("Propose", "Qualify", "Negotiate", "Won", "Lost")]}),
        ("addPhase", ADD_PHASE, {"pipelineId": gid(setup.sales), "name": "Demo",
                                 "probability": 20, "outcome": "OPEN"}),
        ("removePhase", REMOVE, {"id": gid(phases["Propose"]),
                                 "moveToPhaseId": gid(phases["Qualify"])}),
    ]


@pytest.mark.parametrize("who", ["manager_a", "rep_a1", "partner"])
async def test_only_admins_configure_pipelines(
        client: GraphQLClient, db: Database, setup: Setup, who: str) -> None:
    await make_opportunity(db, await make_account(db, setup.org.rep_a1), setup.phases["Propose"])
    before = await snapshot(db)
    for name, mutation, variables in _operations(setup):
        data = await client.query(mutation, {"input": variables},
                                  as_user=getattr(setup.org, who))
        assert codes(data[name]) == {(None, "FORBIDDEN")}, name
    assert await snapshot(db) == before

    # The same operations pass for an admin: the refusals above were about the role.
    for name, mutation, variables in _operations(setup):
        data = await client.query(mutation, {"input": variables}, as_user=setup.org.admin)
        assert data[name]["userErrors"] == [], name
    assert len(await rows(db, AuditEntry)) == 6
