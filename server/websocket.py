"""GraphQL over WebSocket on /graphql: graphql-transport-ws and the legacy graphql-ws.

The token comes in the connection_init payload (browsers cannot set headers on a
WebSocket). The server pings idle connections, so proxies keep them open.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types.unset import UNSET

from models.db import Database
from server.auth import Authenticator, AuthError
from server.context import Context
from server.http import request_id_of
from server.settings import Settings
from subscriptions.hub import EventHub


class PingingTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with server pings: an idle board behind a proxy or load
    balancer would otherwise be cut off, and a dead peer would never be noticed."""

    ping_seconds: float = 20.0
    _pinger: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self.ping_seconds > 0 and self._pinger is None:
            self._pinger = asyncio.create_task(self._ping())

    async def _ping(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.ping_seconds)
                await self.send_message({"type": "ping"})

    async def shutdown(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        await super().shutdown()


class _SocketAdapter(ASGIWebSocketAdapter):
    """Says nothing once the socket is closed: a subscriber closed for falling behind
    (1013) still has its operation wound down by Strawberry, which then has no one to
    tell."""

    async def send_json(self, message: Any) -> None:
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            return
        await super().send_json(message)


class GraphQLWebSocket(GraphQL):
    """graphql-transport-ws and the legacy graphql-ws protocol on /graphql.

    The token comes in the connection_init payload (browsers cannot set headers on
    a WebSocket): ``{"Authorization": "Bearer <token>"}`` or ``{"token": "<token>"}``.
    A missing or bad one closes the socket with 4403.
    """

    def __init__(self, schema: Any, settings: Settings, db: Database,
                 authenticator: Authenticator, events: EventHub) -> None:
        super().__init__(
            schema, graphql_ide=None, keep_alive=True, keep_alive_interval=15,
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
        )
        self.settings = settings
        self.db = db
        self.authenticator = authenticator
        self.events = events
        self.websocket_adapter_class = _SocketAdapter  # type: ignore[assignment]
        self.graphql_transport_ws_handler_class = type(
            "PingingTransportWS", (PingingTransportWS,), {"ping_seconds": settings.ws_ping_seconds})

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        return Context(db=self.db, settings=self.settings, viewer=None,
                       request_id=request_id_of(request.headers), events=self.events,
                       websocket=response)

    async def on_ws_connect(self, context: Context) -> Any:  # type: ignore[override]
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization")
        token = params.get("token") or params.get("authToken")
        if not header and isinstance(token, str):
            header = f"Bearer {token}"
        try:
            viewer = await self.authenticator.viewer_for_header(
                header if isinstance(header, str) else None)
        except AuthError as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from None
        if viewer is None:
            raise ConnectionRejectionError({"message": "authentication required"})
        context.viewer = viewer
        return UNSET  # connection_ack without a payload

    def encode_json(self, data: object) -> bytes | str:
        return orjson.dumps(data).decode()

    async def handle_websocket(self, websocket: WebSocket) -> None:
        await self.run(websocket)
