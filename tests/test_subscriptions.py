"""Live pipeline feeds over graphql-transport-ws: delivery, filters, visibility,
replay with `after`, slow subscribers, server pings and summary coalescing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect
from sqlalchemy import func, select

from models.db import Database
from models.events import Event
from models.opportunities import ForecastCategory, Phase, PhaseOutcome, Pipeline, PipelineKind
from server.app import create_app
from subscriptions.hub import Overflowed, Subscription
from subscriptions.outbox import OPPORTUNITY_TOPIC, EventRecord, prune_events, record_event
from tests.factories import gid, make_account, make_org, share
from tests.graphql_client import GraphQLClient, websocket

FEED = """subscription($pipelineId: ID, $ownerId: ID, $teamId: ID, $accountId: ID,
                       $after: String) {
  opportunityPhaseChanged(pipelineId: $pipelineId, ownerId: $ownerId, teamId: $teamId,
                          accountId: $accountId, after: $after) {
    eventId kind amountDelta changedAt
    fromPhase { name } toPhase { name } changedBy { name }
    opportunity { name version phase { name } }
  }
}"""

CREATE = """mutation($input: CreateOpportunityInput!) { createOpportunity(input: $input) {
  opportunity { id version } userErrors { field code message } } }"""
MOVE = """mutation($input: MoveOpportunityPhaseInput!) { moveOpportunityPhase(input: $input) {
  opportunity { id version } userErrors { field code message } } }"""

PHASES = [("Prospect", 10, PhaseOutcome.OPEN), ("Offer", 50, PhaseOutcome.OPEN),
          ("Deal", 90, PhaseOutcome.OPEN), ("Won", 100, PhaseOutcome.WON),
          ("Lost", 0, PhaseOutcome.LOST)]


async def _pipeline(db: Database, name: str) -> tuple[Pipeline, dict[str, Phase]]:
    async with db.transaction() as session:
        pipeline = Pipeline(name=name, kind=PipelineKind.SALES)
        session.add(pipeline)
        await session.flush()
        phases = {}
        for position, (phase_name, probability, outcome) in enumerate(PHASES, 1):
            phase = Phase(pipeline_id=pipeline.id, name=phase_name, position=position,
                          probability=probability, outcome=outcome,
                          forecast_category=ForecastCategory.PIPELINE)
            session.add(phase)
            phases[phase_name] = phase
    return pipeline, phases


@dataclasses.dataclass
class Deal:
    id: str
    version: int


async def _create(client: GraphQLClient, user: Any, account: Any, phase: Phase,
                  amount: str = "1000.00") -> Deal:
    data = await client.query(CREATE, {"input": {
        "accountId": gid(account), "name": f"Deal {account.name}", "amount": amount,
        "phaseId": gid(phase)}}, as_user=user)
    payload = data["createOpportunity"]
    assert payload["userErrors"] == []
    return Deal(payload["opportunity"]["id"], payload["opportunity"]["version"])


async def _move(client: GraphQLClient, user: Any, deal: Deal, phase: Phase) -> Deal:
    data = await client.query(MOVE, {"input": {
        "id": deal.id, "phaseId": gid(phase), "expectedVersion": deal.version}}, as_user=user)
    payload = data["moveOpportunityPhase"]
    assert payload["userErrors"] == []
    return Deal(deal.id, payload["opportunity"]["version"])


@asynccontextmanager
async def _subscribed(app: Any, client: GraphQLClient, user: Any, query: str = FEED,
                      variables: dict[str, Any] | None = None
                      ) -> AsyncIterator[AsyncWebSocketSession]:
    async with websocket(app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {
            "Authorization": f"Bearer {client.token(user)}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "feed", "type": "subscribe",
                            "payload": {"query": query, "variables": variables or {}}})
        await _settled(app)
        yield ws


async def _settled(app: Any) -> None:
    # The subscription registers with the hub as its first step; give it the turn.
    for _ in range(50):
        await asyncio.sleep(0.02)
        if app.state.events._subscriptions:
            return


async def _next(ws: AsyncWebSocketSession, within: float = 5) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive_json(), within)
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]


async def _nothing_more(ws: AsyncWebSocketSession, within: float = 0.5) -> None:
    try:
        extra = await asyncio.wait_for(ws.receive_json(), within)
    except TimeoutError:
        return
    pytest.fail(f"unexpected message: {extra}")


async def test_a_phase_move_reaches_a_subscriber(app, client, db):
    org = await make_org(db)
    _, phases = await _pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1, name="Acme")
    deal = await _create(client, org.rep_a1, account, phases["Prospect"], "1500.00")
    async with _subscribed(app, client, org.manager_a) as ws:
        await _move(client, org.rep_a1, deal, phases["Offer"])
        event = (await _next(ws))["opportunityPhaseChanged"]
    assert event["kind"] == "MOVED"
    assert event["fromPhase"] == {"name": "Prospect"}
    assert event["toPhase"] == {"name": "Offer"}
    assert event["changedBy"] == {"name": "Rep A1"}
    assert event["amountDelta"] == "0.00"
    assert event["opportunity"] == {"name": "Deal Acme", "version": 2,
                                    "phase": {"name": "Offer"}}


async def test_creation_and_closing_are_phase_entries_too(app, client, db):
    org = await make_org(db)
    _, phases = await _pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1, name="Acme")
    async with _subscribed(app, client, org.admin) as ws:
        deal = await _create(client, org.rep_a1, account, phases["Prospect"], "700.00")
        created = (await _next(ws))["opportunityPhaseChanged"]
        await client.query("""mutation($i: CloseOpportunityLostInput!) {
            closeOpportunityLost(input: $i) { userErrors { code } } }""",
                           {"i": {"id": deal.id, "expectedVersion": 1, "reason": "Price"}},
                           as_user=org.rep_a1)
        lost = (await _next(ws))["opportunityPhaseChanged"]
    assert (created["kind"], created["fromPhase"], created["toPhase"]["name"],
            created["amountDelta"]) == ("CREATED", None, "Prospect", "700.00")
    assert (lost["kind"], lost["toPhase"]["name"]) == ("LOST", "Lost")


async def test_after_replays_exactly_what_was_missed_then_goes_live(app, client, db):
    org = await make_org(db)
    _, phases = await _pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1, name="Acme")
    deal = await _create(client, org.rep_a1, account, phases["Prospect"])
    async with _subscribed(app, client, org.admin) as ws:
        deal = await _move(client, org.rep_a1, deal, phases["Offer"])
        last_seen = (await _next(ws))["opportunityPhaseChanged"]["eventId"]

    # While the board is away: three more moves.
    for target in ("Deal", "Offer", "Prospect"):
        deal = await _move(client, org.rep_a1, deal, phases[target])

    async with _subscribed(app, client, org.admin, variables={"after": last_seen}) as ws:
        missed = [(await _next(ws))["opportunityPhaseChanged"] for _ in range(3)]
        assert [e["toPhase"]["name"] for e in missed] == ["Deal", "Offer", "Prospect"]
        ids = [int(e["eventId"]) for e in missed]
        assert ids == sorted(ids)
        assert ids[0] > int(last_seen)
        await _nothing_more(ws)
        deal = await _move(client, org.rep_a1, deal, phases["Deal"])
        live = (await _next(ws))["opportunityPhaseChanged"]
        assert int(live["eventId"]) > ids[-1]
        assert live["toPhase"]["name"] == "Deal"
        await _nothing_more(ws)


async def test_arguments_filter_the_feed(app, client, db):
    org = await make_org(db)
    sales, phases = await _pipeline(db, "Sales")
    _, other_phases = await _pipeline(db, "Other")
    mine = await make_account(db, org.rep_a1, name="Mine")
    theirs = await make_account(db, org.rep_b1, name="Theirs")
    other_pipeline = await _create(client, org.rep_a1, mine, other_phases["Prospect"])
    team_b = await _create(client, org.rep_b1, theirs, phases["Prospect"])
    wanted = await _create(client, org.rep_a1, mine, phases["Prospect"])
    variables = {"pipelineId": gid(sales), "teamId": gid(org.team_a),
                 "accountId": gid(mine), "ownerId": gid(org.rep_a1)}
    async with _subscribed(app, client, org.admin, variables=variables) as ws:
        await _move(client, org.rep_a1, other_pipeline, other_phases["Offer"])
        await _move(client, org.rep_b1, team_b, phases["Offer"])
        await _move(client, org.rep_a1, wanted, phases["Offer"])
        event = (await _next(ws))["opportunityPhaseChanged"]
        assert event["opportunity"]["name"] == "Deal Mine"
        assert event["toPhase"]["name"] == "Offer"
        await _nothing_more(ws)


async def test_partners_hear_only_of_shared_accounts(app, client, db):
    org = await make_org(db)
    _, phases = await _pipeline(db, "Sales")
    hidden = await make_account(db, org.rep_a1, name="Hidden")
    shared = await make_account(db, org.rep_a1, name="Shared")
    await share(db, shared, org.partner_org)
    hidden_deal = await _create(client, org.rep_a1, hidden, phases["Prospect"])
    shared_deal = await _create(client, org.rep_a1, shared, phases["Prospect"])
    async with _subscribed(app, client, org.partner) as ws:
        await _move(client, org.rep_a1, hidden_deal, phases["Offer"])
        await _move(client, org.rep_a1, shared_deal, phases["Offer"])
        event = (await _next(ws))["opportunityPhaseChanged"]
        assert event["opportunity"]["name"] == "Deal Shared"
        await _nothing_more(ws)


async def test_a_subscriber_that_falls_behind_is_closed_with_1013(settings, db):
    org = await make_org(db)
    _, phases = await _pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1)
    app = create_app(dataclasses.replace(settings, subscription_queue_size=5))
    async with app.router.lifespan_context(app):
        client = GraphQLClient(app, None)  # type: ignore[arg-type]
        async with _subscribed(app, client, org.admin) as ws:
            # 200 events committed at once: the hub hands them over in one batch, far
            # more than the subscriber's queue holds.
            async with db.transaction() as session:
                events = [await record_event(session, topic=OPPORTUNITY_TOPIC, payload={
                    "kind": "MOVED", "opportunityId": 1, "accountId": account.id,
                    "pipelineId": phases["Offer"].pipeline_id, "ownerId": org.rep_a1.id,
                    "ownerTeamId": org.team_a.id, "fromPhaseId": phases["Prospect"].id,
                    "toPhaseId": phases["Offer"].id, "changedById": org.rep_a1.id,
                    "changedAt": "2026-01-01T00:00:00+00:00", "amount": "1.00",
                    "amountDelta": "0.00", "currency": "EUR"}) for _ in range(200)]
            await app.state.events.announce(events[-1])
            with pytest.raises(WebSocketDisconnect) as closed:
                await _drain(ws)
            assert closed.value.code == 1013
        assert app.state.events._subscriptions == set()


async def _drain(ws: AsyncWebSocketSession) -> None:
    for _ in range(200):
        await asyncio.wait_for(ws.receive_json(), 5)


def test_a_subscription_queue_is_bounded():
    subscription = Subscription(frozenset({"t"}), capacity=3)
    for i in range(10_000):
        subscription.offer(EventRecord(i + 1, "t", {}, None))  # type: ignore[arg-type]
    assert subscription.overflowed
    assert subscription._queue.qsize() == 1  # only the overflow marker is kept
    with pytest.raises(Overflowed):
        asyncio.run(subscription.next())


async def test_the_server_pings_idle_sockets(settings, db):
    org = await make_org(db)
    app = create_app(dataclasses.replace(settings, ws_ping_seconds=0.2))
    async with app.router.lifespan_context(app), websocket(app) as ws:
        client = GraphQLClient(app, None)  # type: ignore[arg-type]
        await ws.send_json({"type": "connection_init",
                            "payload": {"token": client.token(org.admin)}})
        assert (await ws.receive_json()) == {"type": "connection_ack"}
        assert await asyncio.wait_for(ws.receive_json(), 3) == {"type": "ping"}
        await ws.send_json({"type": "pong"})
        assert await asyncio.wait_for(ws.receive_json(), 3) == {"type": "ping"}


SUMMARY = """subscription($p: ID!) { pipelineSummaryChanged(pipelineId: $p) {
  open { count amount weightedAmount } phases { phase { name } count } } }"""


async def test_summary_changes_are_coalesced(app, client, db):
    org = await make_org(db)
    sales, phases = await _pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1)
    deals = [await _create(client, org.rep_a1, account, phases["Prospect"], "100.00")
             for _ in range(3)]
    async with _subscribed(app, client, org.admin, SUMMARY, {"p": gid(sales)}) as ws:
        first = (await _next(ws))["pipelineSummaryChanged"]
        assert first["open"] == {"count": 3, "amount": "300.00", "weightedAmount": "30.00"}
        await asyncio.gather(*(_move(client, org.rep_a1, deal, phases["Deal"])
                               for deal in deals))
        summaries = []
        while True:
            summary = (await _next(ws))["pipelineSummaryChanged"]
            summaries.append(summary)
            if summary["open"]["weightedAmount"] == "270.00":
                break
        # Three moves within a moment: one or two summaries, never one per move.
        assert len(summaries) <= 2
        counts = {p["phase"]["name"]: p["count"] for p in summaries[-1]["phases"]}
        assert counts["Deal"] == 3
        assert counts["Prospect"] == 0


async def test_old_events_are_pruned(db):
    async with db.transaction() as session:
        await record_event(session, topic=OPPORTUNITY_TOPIC, payload={"kind": "MOVED"})
    assert await prune_events(db, older_than=timedelta(days=1)) == 0
    assert await prune_events(db, older_than=timedelta(0)) == 1
    async with db.read() as connection:
        assert (await connection.execute(select(func.count()).select_from(Event))).scalar() == 0
