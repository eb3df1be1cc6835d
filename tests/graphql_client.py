"""One client helper for the tests: GraphQL over the app's real HTTP endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.applications import Starlette

from models.db import Database


class GraphQLClient:
    def __init__(self, app: Starlette, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http

    @property
    def db(self) -> Database:
        return self.app.state.db

    def token(self, user: Any) -> str:
        return self.app.state.authenticator.mint(user.id)

    async def post(self, query: str, variables: dict[str, Any] | None = None, *,
                   as_user: Any = None, token: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        all_headers = dict(headers or {})
        if as_user is not None:
            token = self.token(as_user)
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.http.post("/graphql", json=body, headers=all_headers)

    async def query(self, query: str, variables: dict[str, Any] | None = None, *,
                    as_user: Any = None, token: str | None = None) -> dict[str, Any]:
        """The response body of a request expected to succeed without errors."""
        response = await self.post(query, variables, as_user=as_user, token=token)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def errors(self, query: str, variables: dict[str, Any] | None = None, *,
                     as_user: Any = None) -> list[dict[str, Any]]:
        response = await self.post(query, variables, as_user=as_user)
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]

    async def counted(self, query: str, variables: dict[str, Any] | None = None, *,
                      as_user: Any = None) -> tuple[dict[str, Any], int]:
        """The data and the number of SQL statements the request made."""
        before = self.db.statements
        data = await self.query(query, variables, as_user=as_user)
        return data, self.db.statements - before


# How long the app may take to accept a WebSocket: httpx-ws's 1 s (meant to catch a
# forgotten accept()) was once passed on CI's loaded two-CPU machine, in the fuzzed
# message sequences on SQLite. Like the tests' other timeouts, this only bounds a hang.
ACCEPT_TIMEOUT = 20.0


@asynccontextmanager
async def websocket(app: Starlette, subprotocol: str = "graphql-transport-ws"
                    ) -> AsyncIterator[AsyncWebSocketSession]:
    """A WebSocket to /graphql through the ASGI app. Open it inside the test itself:
    the transport's task group must start and end in the same task."""
    transport = ASGIWebSocketTransport(app, initial_receive_timeout=ACCEPT_TIMEOUT)
    async with httpx.AsyncClient(transport=transport,
                                 base_url="http://testserver") as client, aconnect_ws(
        "/graphql", client, subprotocols=[subprotocol]
    ) as ws:
        yield ws


COST_KEYS = {"requested", "actual", "remaining", "resetAt"}


def without_cost(body: dict[str, Any]) -> dict[str, Any]:
    """A response body without its extensions.cost, which every response carries
    (checked here, so a test comparing whole bodies still sees it is there)."""
    extensions = dict(body.get("extensions") or {})
    cost = extensions.pop("cost", None)
    assert cost is not None, f"no extensions.cost in {body}"
    assert set(cost) == COST_KEYS, cost
    rest = {k: v for k, v in body.items() if k != "extensions"}
    return rest | ({"extensions": extensions} if extensions else {})
