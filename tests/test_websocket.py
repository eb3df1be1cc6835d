"""GraphQL over WebSocket on /graphql: graphql-transport-ws and the legacy graphql-ws.

The token travels in the connection_init payload, as browsers cannot set headers on a
WebSocket. Every socket is opened inside the test body, as the transport requires.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect
from starlette.applications import Starlette

from models.db import Database
from models.users import Role
from resolvers import users as users_resolvers
from server.app import create_app
from server.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import Org, gid, make_account, make_org, make_user
from tests.graphql_client import GraphQLClient, websocket, without_cost

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
# Generous: messages come in milliseconds; only a hang, or a machine loaded by other
# test runs, gets near it.
TIMEOUT = 20


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


async def receive(ws: AsyncWebSocketSession) -> dict[str, Any]:
    """The next message, skipping legacy keep-alives."""
    while True:
        message = await ws.receive_json(timeout=TIMEOUT)
        if message.get("type") != "ka":
            return message


async def closed_with(ws: AsyncWebSocketSession) -> int:
    """The close code of a socket the server closes (after any messages it sent)."""
    with pytest.raises(WebSocketDisconnect) as closed:  # noqa: PT012
        for _ in range(10):
            await ws.receive_json(timeout=TIMEOUT)
    return closed.value.code


async def ack(ws: AsyncWebSocketSession, payload: dict[str, Any] | None) -> None:
    await ws.send_json({"type": "connection_init", "payload": payload or {}})
    assert (await receive(ws))["type"] == "connection_ack"


async def run(
    ws: AsyncWebSocketSession,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    operation_id: str = "1",
) -> dict[str, Any]:
    """One operation over graphql-transport-ws: its one `next` payload (without the
    cost every result carries), then `complete`."""
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    await ws.send_json({"id": operation_id, "type": "subscribe", "payload": payload})
    result = await receive(ws)
    assert result["type"] == "next", result
    assert result["id"] == operation_id
    assert await receive(ws) == {"id": operation_id, "type": "complete"}
    return without_cost(result["payload"])


def bearer(client: GraphQLClient, user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token(user)}"}


# --- graphql-transport-ws ----------------------------------------------------------------


async def test_query_with_authorization_payload(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        assert ws.subprotocol == TRANSPORT_WS
        await ack(ws, bearer(client, org.rep_a1))
        assert await run(ws, "{ viewer { name role } }") == {
            "data": {"viewer": {"name": "Rep A1", "role": "REP"}}
        }


async def test_query_with_token_payload(app: Starlette, client: GraphQLClient, org: Org) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, {"token": client.token(org.manager_a)})
        assert await run(ws, "{ viewer { name } }") == {"data": {"viewer": {"name": "Manager A"}}}


async def test_lowercase_authorization_payload(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, {"authorization": f"Bearer {client.token(org.admin)}"})
        assert await run(ws, "{ viewer { name } }") == {"data": {"viewer": {"name": "Admin"}}}


async def test_several_operations_on_one_socket_see_their_own_data(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    account = await make_account(client.db, org.rep_a1, name="Before")
    query = "query ($id: ID!) { account(id: $id) { name version } }"
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.rep_a1))
        first = await run(ws, query, {"id": gid(account)}, operation_id="a")
        assert first == {"data": {"account": {"name": "Before", "version": 1}}}
        updated = await client.query(
            "mutation ($id: ID!) { updateAccount(input: {id: $id, expectedVersion: 1, "
            'name: "After"}) { userErrors { code } } }',
            {"id": gid(account)},
            as_user=org.rep_a1,
        )
        assert updated == {"updateAccount": {"userErrors": []}}
        # A new operation gets new loaders, not the rows the first one cached.
        second = await run(ws, query, {"id": gid(account)}, operation_id="b")
        assert second == {"data": {"account": {"name": "After", "version": 2}}}


async def test_mutation_over_the_socket(app: Starlette, client: GraphQLClient, org: Org) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        result = await run(
            ws,
            'mutation { createAccount(input: {name: "Socket Ltd"}) '
            "{ account { name } userErrors { code } } }",
        )
    assert result == {
        "data": {"createAccount": {"account": {"name": "Socket Ltd"}, "userErrors": []}}
    }
    data = await client.query("{ accounts { edges { node { name } } } }", as_user=org.admin)
    assert data == {"accounts": {"edges": [{"node": {"name": "Socket Ltd"}}]}}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer not-a-jwt"}, id="garbage-token"),
        pytest.param({"token": "not-a-jwt"}, id="garbage-token-field"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic-scheme"),
        pytest.param({"Authorization": 42}, id="not-a-string"),
    ],
)
async def test_missing_or_bad_token_closes_4403(app: Starlette, payload: dict[str, Any]) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": payload})
        assert await closed_with(ws) == 4403


async def test_init_without_payload_closes_4403(app: Starlette) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init"})
        assert await closed_with(ws) == 4403


async def test_expired_token_closes_4403(app: Starlette, org: Org) -> None:
    now = datetime.now(UTC)
    token = jwt.encode(
        {
            "sub": str(org.admin.id),
            "iat": now - timedelta(hours=2),
            "exp": now - timedelta(hours=1),
            "iss": "crmgraph",
            "aud": "crmgraph",
        },
        TEST_SECRET,
        algorithm="HS256",
    )
    async with websocket(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"token": token}})
        assert await closed_with(ws) == 4403


async def test_deactivated_user_closes_4403(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    former = await make_user(client.db, Role.REP, team=org.team_a, active=False)
    async with websocket(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": bearer(client, former)})
        assert await closed_with(ws) == 4403


async def test_subscribe_before_init_closes_4401(app: Starlette) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}})
        assert await closed_with(ws) == 4401


async def test_second_init_closes_4429(app: Starlette, client: GraphQLClient, org: Org) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        await ws.send_json({"type": "connection_init", "payload": bearer(client, org.admin)})
        assert await closed_with(ws) == 4429


async def test_ping_gets_pong(app: Starlette, client: GraphQLClient, org: Org) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        await ws.send_json({"type": "ping"})
        assert (await receive(ws))["type"] == "pong"
        # The socket still serves operations afterwards.
        assert await run(ws, "{ __typename }") == {"data": {"__typename": "Query"}}


async def test_no_init_within_the_timeout_closes_4408(settings: Settings) -> None:
    quick = create_app(replace(settings, ws_init_timeout_seconds=0.2))
    async with quick.router.lifespan_context(quick), websocket(quick, TRANSPORT_WS) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json(timeout=TIMEOUT)
    assert closed.value.code == 4408


async def test_a_socket_that_answers_no_ping_is_closed_1011(
    settings: Settings, org: Org
) -> None:
    """The server's pings find dead peers: a socket silent for a whole interval after
    a ping, not even with the pong the protocol requires, is closed as uvicorn's own
    keepalive closes one. Any message counts as an answer."""
    quick = create_app(replace(settings, ws_ping_seconds=0.2))
    async with quick.router.lifespan_context(quick), websocket(quick, TRANSPORT_WS) as ws:
        token = quick.state.authenticator.mint(org.admin.id)
        await ack(ws, {"token": token})
        assert await ws.receive_json(timeout=TIMEOUT) == {"type": "ping"}
        await ws.send_json({"type": "ping"})  # not a pong, but a word from the client
        assert await ws.receive_json(timeout=TIMEOUT) == {"type": "pong"}
        assert await ws.receive_json(timeout=TIMEOUT) == {"type": "ping"}
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json(timeout=TIMEOUT)
    assert closed.value.code == 1011
    assert closed.value.reason == "keepalive ping timeout"


# --- error codes over the socket -----------------------------------------------------------


async def test_bad_id_error_carries_its_code(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        result = await run(ws, '{ account(id: "x") { id } }')
    assert result["data"] == {"account": None}
    [error] = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["account"]


async def test_bad_page_size_error_carries_its_code(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        result = await run(ws, "{ accounts(first: 100000) { totalCount } }")
    assert result["data"] is None
    assert [e["extensions"]["code"] for e in result["errors"]] == ["BAD_USER_INPUT"]


async def test_request_errors_come_as_an_error_message_with_codes(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    cases = [
        ("{ noSuchField }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("{ viewer { name ", None, "GRAPHQL_PARSE_FAILED"),
        ("{a" * 5_000 + "}" * 5_000, None, "QUERY_TOO_COMPLEX"),
        ("{ viewer { " + " name" * 6_000 + " } }", None, "QUERY_TOO_COMPLEX"),
        (
            "{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }",
            None,
            "QUERY_TOO_COMPLEX",
        ),
        ("query A { viewer { name } } query B { viewer { email } }", "C", "BAD_USER_INPUT"),
    ]
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        for number, (query, operation_name, code) in enumerate(cases):
            payload: dict[str, Any] = {"query": query}
            if operation_name is not None:
                payload["operationName"] = operation_name
            await ws.send_json({"id": str(number), "type": "subscribe", "payload": payload})
            message = await receive(ws)
            assert message["type"] == "error", (query[:40], message)
            assert message["id"] == str(number)
            assert [e["extensions"]["code"] for e in message["payload"]] == [code], message
        # The socket survives them all.
        assert await run(ws, "{ viewer { name } }", operation_id="last") == {
            "data": {"viewer": {"name": "Admin"}}
        }


async def test_variable_coercion_error_carries_its_code(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        result = await run(
            ws, "query ($n: Int) { accounts(first: $n) { totalCount } }", {"n": "ten"}
        )
    # Strawberry sends it as a `next` without data rather than as an `error`.
    assert result["data"] is None
    assert [e["extensions"]["code"] for e in result["errors"]] == ["BAD_USER_INPUT"]
    assert "ten" in result["errors"][0]["message"]


async def test_depth_limit_applies_over_the_socket(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    inner = "id"
    for _ in range(50):
        inner = f"parent {{ {inner} }}"
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        await ws.send_json(
            {
                "id": "deep",
                "type": "subscribe",
                "payload": {"query": f"{{ accounts {{ edges {{ node {{ {inner} }} }} }} }}"},
            }
        )
        message = await receive(ws)
    assert message["type"] == "error"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["QUERY_TOO_COMPLEX"]


async def test_unexpected_error_is_masked_over_the_socket(
    app: Starlette, client: GraphQLClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_list_teams(**_kwargs: Any) -> list[Any]:
        raise RuntimeError("SELECT password FROM users -- /work/main/resolvers/users.py")

    monkeypatch.setattr(users_resolvers, "list_teams", broken_list_teams)
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.admin))
        result = await run(ws, "{ teams { name } }")
    [error] = result["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "SELECT" not in str(result)
    assert "/work/" not in str(result)


async def test_concurrent_operations_each_complete(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, TRANSPORT_WS) as ws:
        await ack(ws, bearer(client, org.partner))
        for n in range(5):
            await ws.send_json(
                {
                    "id": f"op{n}",
                    "type": "subscribe",
                    "payload": {"query": "{ viewer { name role } }"},
                }
            )
        messages = [await receive(ws) for _ in range(10)]
    for n in range(5):
        mine = [m for m in messages if m["id"] == f"op{n}"]
        mine[0]["payload"] = without_cost(mine[0]["payload"])
        assert mine == [
            {
                "id": f"op{n}",
                "type": "next",
                "payload": {"data": {"viewer": {"name": "Partner", "role": "PARTNER"}}},
            },
            {"id": f"op{n}", "type": "complete"},
        ]


# --- legacy graphql-ws ----------------------------------------------------------------------


async def test_legacy_protocol_runs_a_query(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, LEGACY_WS) as ws:
        assert ws.subprotocol == LEGACY_WS
        await ws.send_json({"type": "connection_init", "payload": bearer(client, org.rep_b1)})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json(
            {"id": "1", "type": "start", "payload": {"query": "{ viewer { name } }"}}
        )
        message = await receive(ws)
        message["payload"] = without_cost(message["payload"])
        assert message == {
            "id": "1",
            "type": "data",
            "payload": {"data": {"viewer": {"name": "Rep B1"}}},
        }
        assert await receive(ws) == {"id": "1", "type": "complete"}


async def test_legacy_protocol_with_token_payload(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app, LEGACY_WS) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"token": client.token(org.admin)}}
        )
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json(
            {"id": "7", "type": "start", "payload": {"query": '{ account(id: "x") { id } }'}}
        )
        message = await receive(ws)
        assert message["type"] == "data"
        assert message["payload"]["data"] == {"account": None}
        assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["BAD_USER_INPUT"]
        assert await receive(ws) == {"id": "7", "type": "complete"}


async def test_legacy_protocol_refuses_a_bad_token(app: Starlette) -> None:
    async with websocket(app, LEGACY_WS) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": "Bearer not-a-jwt"}}
        )
        message = await receive(ws)
        assert message["type"] == "connection_error"
        assert await closed_with(ws) != 1000


async def test_legacy_start_before_init_closes_4401(app: Starlette) -> None:
    async with websocket(app, LEGACY_WS) as ws:
        await ws.send_json({"id": "1", "type": "start", "payload": {"query": "{ __typename }"}})
        assert await closed_with(ws) == 4401


async def test_graphql_goes_straight_to_its_views(
        app: Starlette, client: GraphQLClient, org: Org) -> None:
    """server/app.py CrmApp: the middlewares and the router (a dozen coroutines held
    for a socket's lifetime, seven layers of calls for a request) are for the other
    paths; WebSockets and HTTP requests on /graphql do not enter them. With the stack
    broken, both still work and /healthz does not."""

    async def broken(_scope: Any, _receive: Any, _send: Any) -> None:
        raise RuntimeError("the middleware stack was entered")

    app.middleware_stack = broken  # type: ignore[assignment]
    async with websocket(app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {
            "Authorization": f"Bearer {client.token(org.rep_a1)}"}})
        assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=10))["type"] == "pong"
    assert await client.query("{ viewer { id } }", as_user=org.rep_a1) == {
        "viewer": {"id": gid(org.rep_a1)}}
    with pytest.raises(RuntimeError, match="middleware stack"):
        await client.http.get("/healthz")
