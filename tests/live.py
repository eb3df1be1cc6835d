"""Helpers for tests of live feeds: a pipeline, deals moved over HTTP, and a
subscribed WebSocket."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from httpx_ws import AsyncWebSocketSession

from models.db import Database
from models.opportunities import ForecastCategory, Phase, PhaseOutcome, Pipeline, PipelineKind
from tests.factories import gid
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


async def make_sales_pipeline(db: Database, name: str) -> tuple[Pipeline, dict[str, Phase]]:
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


async def create_deal(client: GraphQLClient, user: Any, account: Any, phase: Phase,
                  amount: str = "1000.00") -> Deal:
    data = await client.query(CREATE, {"input": {
        "accountId": gid(account), "name": f"Deal {account.name}", "amount": amount,
        "phaseId": gid(phase)}}, as_user=user)
    payload = data["createOpportunity"]
    assert payload["userErrors"] == []
    return Deal(payload["opportunity"]["id"], payload["opportunity"]["version"])


async def move_deal(client: GraphQLClient, user: Any, deal: Deal, phase: Phase) -> Deal:
    data = await client.query(MOVE, {"input": {
        "id": deal.id, "phaseId": gid(phase), "expectedVersion": deal.version}}, as_user=user)
    payload = data["moveOpportunityPhase"]
    assert payload["userErrors"] == []
    return Deal(deal.id, payload["opportunity"]["version"])


@asynccontextmanager
async def subscribed(app: Any, client: GraphQLClient, user: Any, query: str = FEED,
                      variables: dict[str, Any] | None = None
                      ) -> AsyncIterator[AsyncWebSocketSession]:
    async with websocket(app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {
            "Authorization": f"Bearer {client.token(user)}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "feed", "type": "subscribe",
                            "payload": {"query": query, "variables": variables or {}}})
        await settled(app)
        yield ws


async def settled(app: Any) -> None:
    # The subscription registers with the hub as its first step; give it the turn.
    for _ in range(50):
        await asyncio.sleep(0.02)
        if app.state.events._subscriptions:
            return


async def next_data(ws: AsyncWebSocketSession, within: float = 15) -> dict[str, Any]:
    # The default bounds a hang, not a latency: a loaded CI machine once took past 5 s
    # to deliver a summary recomputed on SQLite. Tests of how soon pass their own.
    message = await asyncio.wait_for(ws.receive_json(), within)
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]


async def nothing_more(ws: AsyncWebSocketSession, within: float = 0.5) -> None:
    try:
        extra = await asyncio.wait_for(ws.receive_json(), within)
    except TimeoutError:
        return
    pytest.fail(f"unexpected message: {extra}")


