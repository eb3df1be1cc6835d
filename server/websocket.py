"""GraphQL over WebSocket on /graphql: graphql-transport-ws and the legacy graphql-ws.

The token comes in the connection_init payload (browsers cannot set headers on a
WebSocket). The server pings idle connections, so proxies keep them open.

graphql-transport-ws follows https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md
and closes with its codes: 4400 a message the protocol does not allow, 4401 subscribe
before connection_ack, 4403 credentials refused (at connection_init, or at a later
subscribe once the user is deactivated or the key revoked), 4406 no subprotocol we
speak, 4408 no connection_init in time, 4409 an id already in use, 4429 a second
connection_init, 4500 an unexpected server error. A subscribe beyond
WS_MAX_SUBSCRIPTIONS operations in flight gets an `error` for that id with code
TOO_MANY_SUBSCRIPTIONS; the connection and its other operations carry on.

On graphql-transport-ws, subscribers of the same event feed with the same document,
variables and visibility share one execution per event (subscriptions/fanout.py);
replays (`after`), feeds that open with a snapshot, and the legacy protocol run alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import timedelta
from typing import Any

import anyio
import orjson
from graphql import GraphQLError
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.unset import UNSET

from models.db import Database
from resolvers.documents import DocumentStore
from server.auth import Authenticator, AuthError
from server.context import Context
from server.http import request_id_of
from server.revocation import ViewerSockets
from server.settings import Settings
from subscriptions.fanout import PROBE, Fanout, Group, Member, group_key, groupable
from subscriptions.hub import EventHub

logger = logging.getLogger("crmgraph.websocket")

TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
FORBIDDEN = 4403
INTERNAL_ERROR = 4500
# subscriptions-transport-ws clients give up on a connection that sends no `ka` for
# 30 seconds (their default timeout), whatever our ping setting says.
LEGACY_KEEP_ALIVE_MAX = 15.0


def invalid_message(message: Any) -> str | None:
    """Why a graphql-transport-ws message is not one the protocol allows (4400), or
    None. The same checks as the graphql-ws reference server's validateMessage."""
    if not isinstance(message, dict):
        return "a message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message must have a string 'type'"
    if kind in ("connection_init", "ping", "pong"):
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            return f"the '{kind}' payload must be an object"
    elif kind in ("subscribe", "complete"):
        operation_id = message.get("id")
        if not isinstance(operation_id, str) or not operation_id:
            return f"'{kind}' needs a non-empty string 'id'"
        if kind == "subscribe":
            return _invalid_subscribe_payload(message.get("payload"))
    return None  # other types: Strawberry closes with 4400 for an unknown type


def _invalid_subscribe_payload(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "the 'subscribe' payload must be an object"
    if not isinstance(payload.get("query"), str):
        return "the 'subscribe' payload needs a string 'query'"
    for name, kind in (("variables", dict), ("extensions", dict), ("operationName", str)):
        if payload.get(name) is not None and not isinstance(payload[name], kind):
            return f"'{name}' in the 'subscribe' payload must be " + (
                "a string" if kind is str else "an object")
    return None


def too_many(limit: int) -> dict[str, Any]:
    return GraphQLError(
        f"at most {limit} operations may run at once on one connection: complete one "
        "before subscribing again", extensions={"code": TOO_MANY_SUBSCRIPTIONS},
    ).formatted  # type: ignore[return-value]


class _Admission:
    """What both protocols check before an operation starts, beyond Strawberry's own
    checks: that the connection's viewer is still let in, and the per-connection limit.

    The viewer is read again on every subscribe, not trusted from connection_init: a
    board holds its socket all day, and a user deactivated or a key revoked meanwhile
    must not start anything new. A changed role or team applies to the operations
    started from then on; those already running keep the viewer they started with.
    """

    view: GraphQLWebSocket
    context: Context
    websocket: Any

    async def viewer_admitted(self) -> bool:
        viewer = self.context.viewer
        fresh = None if viewer is None else await self.view.authenticator.refresh(viewer)
        if fresh is None:
            await self.websocket.close(FORBIDDEN, "Forbidden")
            return False
        self.context.viewer = fresh
        return True

    async def handle_guarded(self, message: dict[str, Any], close_code: int) -> None:
        """Strawberry's handling of a message; an unexpected failure (a bug, or the
        database gone while checking credentials) closes the socket with
        ``close_code``, so the client reconnects rather than waits on a socket nobody
        serves."""
        try:
            await super().handle_message(message)  # type: ignore[misc]
        except WebSocketDisconnected:
            raise
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            # The socket was closed meanwhile (by a protocol close such as 4429 for a
            # second connection_init, or by the client): nobody is left to answer.
            return
        except Exception:
            logger.exception("unexpected error handling a %r message", message["type"])
            with contextlib.suppress(Exception):
                await self.websocket.close(close_code, "Internal server error")


class PingingTransportWS(_Admission, BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with server pings (an idle board behind a proxy or load
    balancer would otherwise be cut off), strict message checks, the protocol's close
    codes, the viewer re-checked per subscribe, and a coded per-connection limit."""

    ping_seconds: float = 20.0
    _pinger: asyncio.Task[None] | None = None

    async def handle_message(self, message: Any) -> None:
        reason = invalid_message(message)
        if reason is not None:
            await self.handle_invalid_message(reason)
            return
        if message["type"] == "connection_init" and message.get("payload") is None:
            message = {"type": "connection_init"}  # the protocol allows a null payload
        await self.handle_guarded(message, INTERNAL_ERROR)

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self.ping_seconds > 0 and self._pinger is None:
            self._pinger = asyncio.create_task(self._ping())

    async def handle_subscribe(self, message: Any) -> None:
        # Unacknowledged (4401) and duplicate ids (4409) are Strawberry's to refuse.
        if self.connection_acknowledged and message["id"] not in self.operations:
            if not await self.viewer_admitted():
                return
            limit = self.max_subscriptions_per_connection
            if limit is not None and len(self.operations) >= limit:
                await self.send_message(
                    {"id": message["id"], "type": "error", "payload": [too_many(limit)]})
                return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """A feed that can be shared (subscriptions/fanout.py) joins the group of its
        (document, variables, visibility) once its own run of the pipeline passed;
        anything else runs alone, as Strawberry runs it."""
        if not groupable(operation.query, operation.operation_name, operation.variables):
            await super().run_operation(operation)
            return
        try:
            if await self._admitted(operation):
                await self._grouped(operation)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except _OperationStreamClosed:
            return
        except Exception as error:  # as Strawberry's run_operation
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _admitted(self, operation: Operation[Context, None]) -> bool:
        """Runs the operation for this member with a hub whose feed ends at once: every
        check it would meet alone (validation, trusted documents, cost, its arguments)
        is met. Whatever that sends (errors) is sent as Strawberry would, and then the
        operation is over; one that sent nothing may join."""
        sent = 0

        async def counted(results: Any) -> Any:
            nonlocal sent
            async for result in results:
                sent += 1
                yield result

        probe = await self.schema.stream(
            operation.query, variable_values=operation.variables,
            context_value=dataclasses.replace(self.context, events=PROBE),
            root_value=self.root_value, operation_name=operation.operation_name)
        async with contextlib.aclosing(probe), contextlib.aclosing(counted(probe)) as each:
            await self._send_result_stream(operation, each)
        return sent == 0

    async def _grouped(self, operation: Operation[Context, None]) -> None:
        view = self.view
        viewer = self.context.viewer
        assert viewer is not None  # admitted
        key = group_key(operation.query, operation.operation_name, operation.variables, viewer)
        member = Member(operation.id, self.websocket.ws,  # type: ignore[attr-defined]
                        view.settings.subscription_queue_size)

        async def start(group: Group) -> Any:
            # The group runs with the context of whoever starts it: the key says every
            # member would read the same with theirs.
            context = dataclasses.replace(self.context, viewer=viewer, websocket=group.socket)
            return await self.schema.stream(
                operation.query, variable_values=operation.variables, context_value=context,
                root_value=self.root_value, operation_name=operation.operation_name)

        errors = await view.fanout.join(key, member, start)
        await member.flushed()
        if errors:
            await operation.send_operation_message(
                {"id": operation.id, "type": "error", "payload": errors})

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


class LegacyWS(_Admission, BaseGraphQLWSHandler[Context, None]):
    """The legacy graphql-ws protocol (subscriptions-transport-ws) with the same
    viewer re-check and limit; `ka` messages keep its connections alive."""

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return  # as Strawberry does with text that is not JSON: ignored
        if message["type"] == "start":
            reason = _invalid_start(message)
            if reason is not None:
                await self.send_message({"type": "error", "id": message.get("id"),
                                         "payload": {"message": reason}})
                return
        await self.handle_guarded(message, 1011)  # the legacy protocol's internal error

    async def handle_start(self, message: Any) -> None:
        if self.connection_acknowledged:
            if not await self.viewer_admitted():
                return
            limit = self.max_subscriptions_per_connection
            # Strawberry replaces an operation started again under the same id: that
            # one does not add to the count.
            if limit is not None and message["id"] not in self.tasks and \
                    len(self.tasks) >= limit:
                await self.send_message({"type": "error", "id": message["id"],
                                         "payload": too_many(limit)})
                return
        await super().handle_start(message)


def _invalid_start(message: dict[str, Any]) -> str | None:
    operation_id = message.get("id")
    if not isinstance(operation_id, str) or not operation_id:
        return "'start' needs a non-empty string 'id'"
    return _invalid_subscribe_payload(message.get("payload"))


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
    A missing or bad one closes the socket with 4403. A client that offers neither
    subprotocol is closed with 4406, as the graphql-ws reference server does.
    """

    def __init__(self, schema: Any, settings: Settings, db: Database,
                 authenticator: Authenticator, events: EventHub, *,
                 documents: DocumentStore | None = None,
                 viewer_sockets: ViewerSockets | None = None) -> None:
        ping = settings.ws_ping_seconds
        super().__init__(
            schema, graphql_ide=None, keep_alive=ping > 0,
            keep_alive_interval=min(ping, LEGACY_KEEP_ALIVE_MAX),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
        )
        self.settings = settings
        self.db = db
        self.authenticator = authenticator
        self.events = events
        self.documents = documents
        self.viewer_sockets = viewer_sockets or ViewerSockets()
        self.fanout = Fanout()
        self.websocket_adapter_class = _SocketAdapter  # type: ignore[assignment]
        self.graphql_transport_ws_handler_class = type(
            "PingingTransportWS", (PingingTransportWS,), {"ping_seconds": ping})
        self.graphql_ws_handler_class = LegacyWS

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        return Context(db=self.db, settings=self.settings, viewer=None,
                       request_id=request_id_of(request.headers), events=self.events,
                       websocket=response, authenticator=self.authenticator,
                       documents=self.documents)

    async def on_ws_connect(self, context: Context) -> Any:  # type: ignore[override]
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization")
        token = params.get("token") or params.get("authToken")
        if not header and isinstance(token, str):
            header = f"Bearer {token}"
        api_key = params.get("X-Api-Key") or params.get("x-api-key") or params.get("apiKey")
        try:
            credential = self.authenticator.identify(
                header if isinstance(header, str) else None,
                api_key if isinstance(api_key, str) else None)
            if credential is None:
                raise ConnectionRejectionError({"message": "authentication required"})
            viewer = await self.authenticator.viewer_for(credential)
        except AuthError as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from None
        context.viewer = viewer
        # Operations over the socket spend this client's cost budget, not the one all
        # anonymous clients share (server/cost.py).
        context.client_id = credential.client_id
        # Closed with 4403 when the key is revoked or the user or org deactivated.
        self.viewer_sockets.add(viewer, context.websocket)
        return UNSET  # connection_ack without a payload

    def encode_json(self, data: object) -> bytes | str:
        return orjson.dumps(data).decode()

    async def handle_websocket(self, websocket: WebSocket) -> None:
        with websocket.app.state.metrics.websocket_open():
            try:
                await self.run(websocket)
            finally:
                self.viewer_sockets.discard(websocket)
