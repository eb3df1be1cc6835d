"""Strict protocol compliance: GraphQL over HTTP, checked by graphql-http's own audit
against a real server process, and graphql-transport-ws per its PROTOCOL.md, checked
through the app and with the unchanged graphql-ws client.

What tests/test_websocket.py and tests/test_subscriptions.py already pin is not
repeated here: 4401 (subscribe before ack), 4403 (bad credentials at init), 4408 (no
init in time), 4429 (a second init), server pings on graphql-transport-ws.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession
from sqlalchemy import update
from starlette.applications import Starlette

from models.db import Database
from models.users import Role, User
from server.app import create_app
from server.demo import DEMO_EMAILS
from server.settings import Settings
from tests.databases import scratch_database
from tests.factories import Org, make_account, make_org
from tests.graphql_client import GraphQLClient, websocket
from tests.live import create_deal, make_sales_pipeline, nothing_more, settled
from tests.processes import run, server_env, serving
from tests.test_websocket import (
    LEGACY_WS,
    TIMEOUT,
    TRANSPORT_WS,
    ack,
    bearer,
    closed_with,
    receive,
)
from tests.test_websocket import run as run_operation

JS = Path(__file__).parent / "js"
FEED = "subscription { opportunityPhaseChanged { eventId kind opportunity { name } } }"
LIMIT = 2


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


@pytest.fixture
async def limited(settings: Settings, db: Database) -> AsyncIterator[GraphQLClient]:
    """A client of an app that lets a connection run LIMIT operations at once."""
    application = create_app(replace(settings, ws_max_subscriptions=LIMIT))
    async with application.router.lifespan_context(application), httpx.AsyncClient(
        transport=httpx.ASGITransport(application), base_url="http://testserver"
    ) as http:
        yield GraphQLClient(application, http)


async def subscribe(ws: AsyncWebSocketSession, operation_id: str, query: str = FEED) -> None:
    await ws.send_json({"id": operation_id, "type": "subscribe", "payload": {"query": query}})


async def handled(ws: AsyncWebSocketSession) -> None:
    """Every message sent before has been handled: the server reads in order."""
    await ws.send_json({"type": "ping"})
    assert await receive(ws) == {"type": "pong"}


async def data_of(ws: AsyncWebSocketSession, query: str, operation_id: str) -> Any:
    """The data of one operation: the rest of its payload is not this file's business."""
    return (await run_operation(ws, query, operation_id=operation_id))["data"]


async def set_user(db: Database, user: Any, **values: Any) -> None:
    async with db.transaction() as session:
        await session.execute(update(User).where(User.id == user.id).values(**values))


# --- graphql-transport-ws: close codes -----------------------------------------------------


async def test_a_client_offering_no_subprotocol_we_speak_is_closed_4406(app: Starlette) -> None:
    async with websocket(app, "graphql-sse") as ws:
        assert ws.subprotocol is None
        assert await closed_with(ws) == 4406


async def test_a_good_handshake_waits_for_connection_init(app: Starlette) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        assert ws.subprotocol == TRANSPORT_WS
        # The server waits for connection_init: it does not close a good handshake.
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


INVALID_MESSAGES = [
    pytest.param("not json", id="not-json"),
    pytest.param([1, 2], id="array"),
    pytest.param(None, id="null"),
    pytest.param("string", id="json-string"),
    pytest.param({"id": "1"}, id="no-type"),
    pytest.param({"type": 7}, id="type-not-a-string"),
    pytest.param({"type": "shout"}, id="unknown-type"),
    pytest.param({"type": "next", "id": "1", "payload": {"data": {}}}, id="server-message"),
    pytest.param({"type": "connection_ack"}, id="ack-from-the-client"),
    pytest.param({"type": "ping", "payload": "hello"}, id="ping-payload-not-object"),
    pytest.param({"type": "subscribe", "payload": {"query": "{ __typename }"}}, id="no-id"),
    pytest.param({"type": "subscribe", "id": "", "payload": {"query": "{ __typename }"}},
                 id="empty-id"),
    pytest.param({"type": "subscribe", "id": 1, "payload": {"query": "{ __typename }"}},
                 id="numeric-id"),
    pytest.param({"type": "subscribe", "id": "1"}, id="no-payload"),
    pytest.param({"type": "subscribe", "id": "1", "payload": "{ __typename }"},
                 id="payload-not-object"),
    pytest.param({"type": "subscribe", "id": "1", "payload": {"query": 42}},
                 id="query-not-a-string"),
    pytest.param({"type": "subscribe", "id": "1",
                  "payload": {"query": "{ __typename }", "variables": [1]}},
                 id="variables-not-object"),
    pytest.param({"type": "subscribe", "id": "1",
                  "payload": {"query": "{ __typename }", "operationName": 5}},
                 id="operation-name-not-string"),
    pytest.param({"type": "subscribe", "id": "1",
                  "payload": {"query": "{ __typename }", "extensions": "x"}},
                 id="extensions-not-object"),
    pytest.param({"type": "complete"}, id="complete-without-id"),
]


@pytest.mark.parametrize("message", INVALID_MESSAGES)
async def test_a_message_the_protocol_does_not_allow_closes_4400(
    app: Starlette, client: GraphQLClient, org: Org, message: Any
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        if message == "not json":
            await ws.send_text(message)
        else:
            await ws.send_json(message)
        assert await closed_with(ws) == 4400


async def test_a_binary_message_closes_4400(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        await ws.send_bytes(b'{"type": "ping"}')
        assert await closed_with(ws) == 4400


async def test_an_init_payload_that_is_not_an_object_closes_4400(app: Starlette) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": ["token"]})
        assert await closed_with(ws) == 4400


async def test_a_null_init_payload_is_an_absent_one(app: Starlette) -> None:
    # PROTOCOL.md allows `payload: null`; without credentials that is a 4403, not a 4400.
    async with websocket(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": None})
        assert await closed_with(ws) == 4403


async def test_an_id_already_in_use_closes_4409(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        await subscribe(ws, "feed")
        await handled(ws)
        await settled(app)
        await subscribe(ws, "feed")
        assert await closed_with(ws) == 4409


async def test_an_id_is_free_again_once_its_operation_completed(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        await subscribe(ws, "same")
        await ws.send_json({"id": "same", "type": "complete"})
        await handled(ws)
        # Completed by the client or by the server: the id may be used again.
        for _ in range(2):
            assert await data_of(ws, "{ viewer { name } }", "same") == {
                "viewer": {"name": "Admin"}}


async def test_an_unexpected_error_at_init_closes_4500(
    app: Starlette, client: GraphQLClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def database_gone(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionRefusedError("the database is not answering")

    monkeypatch.setattr(app.state.authenticator, "viewer_for", database_gone)
    async with websocket(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": bearer(client, org.admin)})
        assert await closed_with(ws) == 4500


async def test_an_unexpected_error_at_subscribe_closes_4500(
    app: Starlette, client: GraphQLClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def database_gone(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionRefusedError("the database is not answering")

    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        monkeypatch.setattr(app.state.authenticator, "refresh", database_gone)
        await subscribe(ws, "1", "{ __typename }")
        assert await closed_with(ws) == 4500


# --- graphql-transport-ws: the viewer, re-checked on every subscribe ------------------------


async def test_a_user_deactivated_between_two_subscribes_is_closed_4403(
    app: Starlette, client: GraphQLClient, org: Org, db: Database
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.rep_a1))
        await subscribe(ws, "feed")
        assert await data_of(ws, "{ viewer { name } }", "q1") == {"viewer": {"name": "Rep A1"}}
        await set_user(db, org.rep_a1, active=False)
        await subscribe(ws, "q2", "{ viewer { name } }")
        assert await closed_with(ws) == 4403


async def test_a_changed_role_applies_to_the_next_operation(
    app: Starlette, client: GraphQLClient, org: Org, db: Database
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.rep_a1))
        assert await data_of(ws, "{ viewer { role } }", "before") == {"viewer": {"role": "REP"}}
        await set_user(db, org.rep_a1, role=Role.MANAGER)
        assert await data_of(ws, "{ viewer { role } }", "after") == {"viewer": {"role": "MANAGER"}}


async def test_operations_over_a_socket_spend_their_users_budget(
    settings: Settings, db: Database, org: Org
) -> None:
    # A budget so small it refills by a tenth of a point a second: nothing refills
    # in between. (The settings fixture keeps buckets in the app's own memory.)
    app = create_app(replace(settings, cost_budget_per_minute=6))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://testserver"
    ) as http:
        client = GraphQLClient(app, http)

        async def remaining(user: Any) -> int:
            async with websocket(app, TRANSPORT_WS) as ws:
                await ack(ws, bearer(client, user))
                await subscribe(ws, "1", "{ viewer { name } }")
                result = await receive(ws)
            assert result["type"] == "next", result
            return result["payload"]["extensions"]["cost"]["remaining"]

        first = await remaining(org.rep_a1)
        assert await remaining(org.rep_a2) == first  # a budget of its own
        assert await remaining(org.rep_a1) == first - 1  # the same user's, again
        response = await client.post("{ viewer { name } }", as_user=org.rep_a1)
        assert response.json()["extensions"]["cost"]["remaining"] == first - 2


# --- graphql-transport-ws: operations per connection ---------------------------------------


async def test_a_subscribe_beyond_the_limit_gets_an_error_and_the_rest_carry_on(
    limited: GraphQLClient, org: Org
) -> None:
    _, phases = await make_sales_pipeline(limited.db, "Sales")
    account = await make_account(limited.db, org.admin, name="Limit Oy")
    async with websocket(limited.app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(limited, org.admin))
        for operation_id in ("1", "2"):
            await subscribe(ws, operation_id)
        await subscribe(ws, "3")
        refused = await receive(ws)
        assert refused["id"] == "3"
        assert refused["type"] == "error"
        assert [e["extensions"]["code"] for e in refused["payload"]] == [
            "TOO_MANY_SUBSCRIPTIONS"]
        # Queries count too: the limit bounds what is in flight on the connection.
        await subscribe(ws, "4", "{ __typename }")
        assert (await receive(ws))["id"] == "4"

        # The connection stays open: completing one makes room, and the other one
        # still hears events.
        await ws.send_json({"id": "1", "type": "complete"})
        await handled(ws)
        assert await data_of(ws, "{ viewer { name } }", "3") == {"viewer": {"name": "Admin"}}
        await settled(limited.app)
        await create_deal(limited, org.admin, account, phases["Prospect"])
        event = await receive(ws)
        assert event["id"] == "2", event
        assert event["payload"]["data"]["opportunityPhaseChanged"]["opportunity"] == {
            "name": "Deal Limit Oy"}
        await nothing_more(ws)


async def test_legacy_start_beyond_the_limit_gets_an_error(
    limited: GraphQLClient, org: Org
) -> None:
    async with websocket(limited.app, LEGACY_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": bearer(limited, org.admin)})
        assert await receive(ws) == {"type": "connection_ack"}
        for operation_id in ("1", "2", "3"):
            await ws.send_json({"id": operation_id, "type": "start", "payload": {"query": FEED}})
        refused = await receive(ws)
        assert refused["type"] == "error"
        assert refused["id"] == "3"
        assert refused["payload"]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"


async def test_legacy_start_by_a_deactivated_user_is_closed_4403(
    app: Starlette, client: GraphQLClient, org: Org, db: Database
) -> None:
    async with websocket(app, LEGACY_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": bearer(client, org.rep_b1)})
        assert await receive(ws) == {"type": "connection_ack"}
        await set_user(db, org.rep_b1, active=False)
        await ws.send_json({"id": "1", "type": "start", "payload": {"query": "{ __typename }"}})
        assert await closed_with(ws) == 4403


async def test_legacy_start_without_a_query_gets_an_error(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, LEGACY_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": bearer(client, org.admin)})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "1", "type": "start", "payload": {}})
        assert (await receive(ws))["type"] == "error"
        # The connection carries on.
        await ws.send_json({"id": "2", "type": "start", "payload": {"query": "{ __typename }"}})
        answer = await receive(ws)
        assert (answer["id"], answer["type"]) == ("2", "data")
        assert answer["payload"]["data"] == {"__typename": "Query"}


async def test_legacy_keep_alive_messages_arrive(
    settings: Settings, db: Database, org: Org
) -> None:
    quick = create_app(replace(settings, ws_ping_seconds=0.2))
    async with quick.router.lifespan_context(quick), websocket(quick, LEGACY_WS) as ws:
        token = quick.state.authenticator.mint(org.admin.id)
        await ws.send_json({"type": "connection_init", "payload": {"token": token}})
        assert await ws.receive_json(timeout=TIMEOUT) == {"type": "connection_ack"}
        # One at once, then one every WS_PING_SECONDS while the socket is idle.
        for _ in range(3):
            assert await ws.receive_json(timeout=3) == {"type": "ka"}


# --- against a real server process ----------------------------------------------------------

ADMIN = DEMO_EMAILS[Role.ADMIN]
# GET requests of the audit; the others are POSTs with an application/json body.
AUDIT_GETS = {"5A70", "9C48", "D6D5", "6A70"}
PREFLIGHT = "Apollo-Require-Preflight:true"


def node(*args: str, timeout: float = 120) -> list[dict[str, Any]]:
    result = subprocess.run(["node", *args], cwd=JS, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def live_server(node_clients: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[str, str]]:
    """A seeded demo server process, its URL and an admin's token. A connection may run
    LIMIT operations at once."""
    directory = tmp_path_factory.mktemp("conformance")
    with scratch_database("sqlite", "conformance", directory) as database_url:
        env = server_env(DATABASE_URL=database_url, WS_MAX_SUBSCRIPTIONS=str(LIMIT))
        assert run("seed-demo", env=env, cwd=directory).returncode == 0
        token = run("token", "--email", ADMIN, env=env, cwd=directory).stdout.strip()
        with serving(env, directory) as (url, _):
            yield url, token


def test_graphql_over_http_audit_finds_no_failing_must_or_should(
    live_server: tuple[str, str]
) -> None:
    url, _ = live_server
    results = node("audit.mjs", f"{url}/graphql")
    assert len(results) == len({r["id"] for r in results}) > 50
    # The audit sends no credentials: `{ __typename }` and introspection answer anyone.
    failed = [r for r in results if r["status"] in ("error", "warn")]
    assert failed == [], json.dumps(failed, indent=1)
    for result in results:
        if result["status"] == "notice":  # a MAY we do otherwise: shown with -s
            print("audit notice:", json.dumps(result))


def test_get_queries_answer_when_they_carry_a_preflight_header(
    live_server: tuple[str, str]
) -> None:
    # A browser cannot send this header cross-origin without a CORS preflight: with
    # it, GET queries run whatever CSRF rule the server applies to GET.
    url, _ = live_server
    results = {r["id"]: r for r in node("audit.mjs", f"{url}/graphql", PREFLIGHT)}
    assert {i: results[i]["status"] for i in AUDIT_GETS} == dict.fromkeys(AUDIT_GETS, "ok")
    assert [r for r in results.values() if r["status"] in ("error", "warn")] == []


# The unchanged graphql-ws client: LIMIT live subscriptions on one connection, one more
# refused, then a query once one was completed. Prints one JSON line per outcome.
LIMIT_CLIENT = """
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, limit] = process.argv.slice(1);
let connections = 0;
let closed;
const done = new Promise((resolve) => { closed = resolve; });
const client = createClient({
  url, webSocketImpl: WebSocket, retryAttempts: 0,
  connectionParams: { Authorization: `Bearer ${token}` },
  on: {
    connected: () => { connections += 1; },
    closed: (event) => { console.log(JSON.stringify({ closed: event.code })); closed(); },
  },
});
const feed = { query: "subscription { opportunityPhaseChanged { eventId } }" };
const live = [];
for (let i = 0; i < Number(limit); i++) {
  live.push(client.subscribe(feed, {
    next: () => {}, complete: () => {},
    error: (error) => console.log(JSON.stringify({ unexpected: error })),
  }));
}
const refused = await new Promise((resolve) => client.subscribe(feed, {
  next: (value) => resolve({ next: value }), error: resolve,
  complete: () => resolve("complete"),
}));
console.log(JSON.stringify({ refused }));
live[0]();
const result = await new Promise((resolve, reject) => {
  let value;
  client.subscribe({ query: "{ viewer { email } }" }, {
    next: (data) => { value = data; }, error: reject, complete: () => resolve(value),
  });
});
console.log(JSON.stringify({ result, connections }));
await client.dispose();
await done;
process.exit(0);
"""


def test_graphql_ws_client_hears_the_subscription_limit(live_server: tuple[str, str]) -> None:
    url, token = live_server
    ws_url = url.replace("http://", "ws://") + "/graphql"
    lines = node("--input-type=module", "-e", LIMIT_CLIENT, ws_url, token, str(LIMIT))
    refused, result, *closed = lines
    assert [e["extensions"]["code"] for e in refused["refused"]] == ["TOO_MANY_SUBSCRIPTIONS"]
    # One connection all along, closed once, by the client's dispose: the refusal
    # did not end it, and the query ran on it.
    assert result["result"]["data"] == {"viewer": {"email": ADMIN}}
    assert result["connections"] == 1
    assert closed == [{"closed": 1000}]
