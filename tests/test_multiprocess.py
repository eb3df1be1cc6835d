"""Several server processes share one event stream: a move served by one process
reaches a subscriber held by another, through Redis or PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url
from websockets.asyncio.client import connect

from tests.databases import POSTGRES_URL, REDIS_URL, scratch_database
from tests.processes import run, server_env, serving

ADMIN = "ada.lindqvist@demo.crmgraph.dev"
BROKERS = [name for name, available in (("redis", REDIS_URL), ("postgres", POSTGRES_URL))
           if available]


def _broker_url(broker: str, database_url: str) -> str:
    if broker == "redis":
        assert REDIS_URL is not None
        return REDIS_URL
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


def _post(url: str, token: str, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.mark.skipif(POSTGRES_URL is None, reason="two processes share a PostgreSQL database")
@pytest.mark.parametrize("broker", BROKERS)
def test_a_move_on_one_process_reaches_a_subscriber_on_another(broker: str, tmp_path: Path):
    with scratch_database("postgresql", f"crmgraph_two_{broker}", tmp_path) as database_url:
        env = server_env(
            DATABASE_URL=database_url, JWT_SECRET="two-processes-secret-0123456789abcdef",
            BROADCAST_URL=_broker_url(broker, database_url),
            # Polling would find the event too, only later: a long interval leaves
            # the broker as the only way to hear of it in time.
            EVENT_POLL_SECONDS="600",
        )
        assert run("seed-demo", env=env, cwd=tmp_path).returncode == 0
        token = run("token", "--email", ADMIN, env=env, cwd=tmp_path).stdout.strip()
        with serving(env, tmp_path) as (first, _), serving(env, tmp_path) as (second, _):
            deal = _post(second, token, """{ opportunities(first: 1, filter: {outcome: {eq:
                OPEN}}) { nodes { id version phase { id }
                pipeline { phases { id outcome } } } } }""")["opportunities"]["nodes"][0]
            target = next(p["id"] for p in deal["pipeline"]["phases"]
                          if p["outcome"] == "OPEN" and p["id"] != deal["phase"]["id"])
            event = asyncio.run(_subscribe_then_move(first, second, token, deal, target))
    assert event["opportunity"]["id"] == deal["id"]
    assert event["toPhase"]["id"] == target


async def _subscribe_then_move(subscriber_url: str, mutation_url: str, token: str,
                               deal: dict, target: str) -> dict:
    ws_url = subscriber_url.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": """
            subscription { opportunityPhaseChanged { eventId opportunity { id }
            toPhase { id } } }"""}}))
        await asyncio.sleep(0.5)  # the subscription registers on the other process
        await asyncio.to_thread(_post, mutation_url, token, """mutation($i:
            MoveOpportunityPhaseInput!) { moveOpportunityPhase(input: $i) {
            userErrors { code message } } }""", {"i": {
            "id": deal["id"], "phaseId": target, "expectedVersion": deal["version"]}})
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message["type"] == "next":
                return message["payload"]["data"]["opportunityPhaseChanged"]
