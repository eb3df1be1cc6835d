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
import sys
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
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from models.db import Database
from resolvers.documents import DocumentStore
from server.auth import Authenticator, AuthError
from server.context import Context
from server.http import request_id_of
from server.revocation import ViewerSockets
from server.settings import Settings
from subscriptions.fanout import (
    FRAMES,
    PROBE,
    Fanout,
    FrameGate,
    Group,
    Member,
    finish,
    group_key,
    groupable,
    text_frame,
)
from subscriptions.hub import EventHub

logger = logging.getLogger("crmgraph.websocket")
_OPEN = State.OPEN

TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
FORBIDDEN = 4403
INTERNAL_ERROR = 4500
# subscriptions-transport-ws clients give up on a connection that sends no `ka` for
# 30 seconds (their default timeout), whatever our ping setting says.
LEGACY_KEEP_ALIVE_MAX = 15.0
# A socket that said nothing for a whole ping interval after a ping, not even the pong
# graphql-transport-ws requires, is closed as uvicorn's keepalive closes one: 1011.
UNANSWERED = 1011
UNANSWERED_REASON = "keepalive ping timeout"
PING_FRAME = text_frame('{"type":"ping"}')
PONG = b'{"type":"pong"}'


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


class Pinger:
    """The graphql-transport-ws pings of one app's sockets, every ``seconds``, from one
    timer: the sockets are kept in slices (one per second of the interval, at most 20),
    and each tick pings one slice. A socket joins the slice pinged last, so its first
    ping comes one interval after its ack.

    A timer per socket, made anew at each ping (a handle, a libuv timer and a context),
    was three objects more per ping for the young collection and held by every idle
    board: with 10,000 idle, the server's RSS went 304-306 -> 298-299 MB and its CPU
    38-39 -> 24-27 ms per second with one timer (bench/README.md item 13).
    """

    def __init__(self, seconds: float) -> None:
        self.count = max(1, min(20, int(seconds)))
        self.tick = seconds / self.count
        self.slices: list[dict[PingingTransportWS, None]] = [{} for _ in range(self.count)]
        self.next = 0  # the slice the next tick pings
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, handler: PingingTransportWS) -> int:
        slot = (self.next - 1) % self.count
        self.slices[slot][handler] = None
        loop = asyncio.get_running_loop()
        if self._timer is None or self._loop is not loop:
            self._loop = loop
            self._timer = loop.call_later(self.tick, self._ping)
        return slot

    def remove(self, handler: PingingTransportWS, slot: int) -> None:
        self.slices[slot].pop(handler, None)

    def _ping(self) -> None:
        slot, self.next = self.next, (self.next + 1) % self.count
        for handler in list(self.slices[slot]):
            try:
                handler.ping()
            except Exception:  # one socket's trouble must not stop the others' pings
                logger.exception("pinging a socket failed")
        if any(self.slices):
            self._timer = self._loop.call_later(self.tick, self._ping)  # type: ignore[union-attr]
        else:
            self._timer = None


class PingingTransportWS(_Admission, BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with server pings (an idle board behind a proxy or load
    balancer would otherwise be cut off), strict message checks, the protocol's close
    codes, the viewer re-checked per subscribe, and a coded per-connection limit.

    The pings are also how a dead peer is found: a socket that sent nothing in a whole
    interval after a ping, not even its pong, is closed (1011). Under the server's own
    WebSocket protocol (LeanWebSocketProtocol) they replace its keepalive, which would
    otherwise ping the same socket once more per interval, with a second timer, write
    and pong: with 10,000 idle boards, 87 -> 56 ms of CPU per second (bench/README.md).
    """

    pinger: Pinger | None = None  # the app's, shared by its sockets
    _slot: int | None = None  # the pinger's slice this socket is in
    _sending: asyncio.Future[None] | None = None
    _heard = True  # a message from the client since the last ping

    async def handle_message(self, message: Any) -> None:
        self._heard = True
        reason = invalid_message(message)
        if reason is not None:
            await self.handle_invalid_message(reason)
            return
        if message["type"] == "connection_init" and message.get("payload") is None:
            message = {"type": "connection_init"}  # the protocol allows a null payload
        await self.handle_guarded(message, INTERNAL_ERROR)

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            # Its sleep (a task, a timer and a frame) would otherwise be held for the
            # rest of the wait by every board that connected within it.
            timeout, self.connection_init_timeout_task = self.connection_init_timeout_task, None
            if timeout is not None and not timeout.done():
                timeout.cancel()
            if self.pinger is not None and self._slot is None:
                self._slot = self.pinger.add(self)
                gate = self._extensions().get(FRAMES)
                if isinstance(gate, _ProtocolGate):
                    gate.protocol.stop_keepalive()
                    gate.heard = True  # from now on the protocol takes plain pongs

    def _extensions(self) -> dict[str, Any]:
        return self.websocket.ws.scope.get("extensions") or {}  # type: ignore[attr-defined]

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
        # Held for as long as the member stays: one copy for all boards asking the same.
        operation.query = sys.intern(operation.query)
        try:
            if await self._admitted(operation):
                self._join(operation)
                return  # a member now: its end is _member_ended's
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

    def _join(self, operation: Operation[Context, None]) -> None:
        """Makes the operation a member of its group. From then on it holds no task:
        ``operation.task`` is the member's ``ended`` future, which Strawberry cancels on
        `complete` or at shutdown (the member leaves its group), and which the group
        ends when its feed ends or is refused (then `error` and `complete` are sent)."""
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

        group = view.fanout.add(key, member, start)
        operation.task = member.ended  # type: ignore[assignment]
        member.ended.add_done_callback(
            lambda ended: self._member_ended(operation, group, member, ended))

    def _member_ended(self, operation: Operation[Context, None], group: Group,
                      member: Member, ended: asyncio.Future[list[Any] | None]) -> None:
        self.view.fanout.leave(group, member)
        if ended.cancelled():  # completed by the client, or the connection is closing
            return
        # Held as the operation's task, so a `complete` or the shutdown cancels it.
        operation.task = asyncio.ensure_future(  # type: ignore[assignment]
            self._end_member(operation, member, ended.result()))

    async def _end_member(self, operation: Operation[Context, None], member: Member,
                          errors: list[Any] | None) -> None:
        with contextlib.suppress(_OperationStreamClosed):
            await member.flushed()
            if errors:
                await operation.send_operation_message(
                    {"id": operation.id, "type": "error", "payload": errors})
            await operation.send_operation_message({"id": operation.id, "type": "complete"})

    def ping(self) -> None:
        """The pinger's call, once per interval: the ping is written at once when the
        socket takes it, as it nearly always does (through the protocol's FrameGate when
        it has one: a ready-made frame), else by a task of its own. A socket that said
        nothing since the last one is closed instead."""
        if self._sending is not None:  # the last ping, or the close, is still going out
            return
        gate = self._extensions().get(FRAMES)
        if not self._heard and not getattr(gate, "heard", False):
            self._stop_pinging()
            self._sending = asyncio.ensure_future(self._close_unanswered())
            return
        self._heard = False
        if isinstance(gate, _ProtocolGate):
            gate.heard = False
        if gate is not None and gate.open:
            gate.transport.write(PING_FRAME)
            return
        step = self._send_ping()
        try:
            waiting = step.send(None)
        except StopIteration:
            return
        except Exception:
            self._stop_pinging()  # gone: no more pings, as before
            return
        self._sending = asyncio.ensure_future(finish(step, waiting))
        self._sending.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending = None
        if task.cancelled() or task.exception() is not None:
            self._stop_pinging()

    def _stop_pinging(self) -> None:
        if self.pinger is not None and self._slot is not None:
            self.pinger.remove(self, self._slot)
        self._slot = None

    async def _send_ping(self) -> None:
        await self.send_message({"type": "ping"})

    async def _close_unanswered(self) -> None:
        with contextlib.suppress(Exception):  # gone already
            await self.websocket.close(UNANSWERED, UNANSWERED_REASON)

    async def shutdown(self) -> None:
        self._stop_pinging()
        if self._sending is not None:
            self._sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sending
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


class _Inbox:
    """asyncio.Queue as uvicorn's protocol uses it (put_nowait, get, empty), for one
    reader: a Queue holds four deques, about 3 KB per idle socket; this, two slots."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class _Writable:
    """asyncio.Event as uvicorn's protocol uses it for flow control, without an Event's
    deque (about 800 bytes) per idle socket."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class _ProtocolGate(FrameGate):
    """LeanWebSocketProtocol's FrameGate, through which the GraphQL protocol above
    also reaches the socket's keepalive (PingingTransportWS) and hears its pongs:
    ``heard`` is None until that protocol pings, then whether a plain
    ``{"type":"pong"}`` came since its last ping."""

    __slots__ = ("heard", "protocol")

    def __init__(self, protocol: LeanWebSocketProtocol) -> None:
        super().__init__(protocol.transport)
        self.protocol = protocol
        self.heard: bool | None = None


class _GatingFlag:
    """A flag of LeanWebSocketProtocol that uvicorn sets where the socket closes:
    setting it checks the gate again."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = "_" + name

    def __get__(self, protocol: Any, owner: type | None = None) -> Any:
        if protocol is None:
            return self
        return protocol.__dict__[self.field]

    def __set__(self, protocol: Any, value: bool) -> None:
        protocol.__dict__[self.field] = value
        protocol._check_gate()


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol (server/cli.py), lighter per idle socket and
    with a direct way out for fan-out frames.

    Ten thousand boards hold ten thousand of these: the receive queue and the
    flow-control flag are replaced by two-slot equivalents, and the handshake's request
    and response (their headers) are let go once the socket is accepted.

    Its ``FrameGate`` (subscriptions/fanout.py), offered in the scope's extensions,
    takes ready-made text frames (``text_frame``) straight to the transport while it is
    open: from the accept until a close is sent or received, the connection is lost,
    or the transport applies back-pressure (until it drains). The protocol keeps it so
    at each of those changes: uvicorn sets ``close_sent`` and ``disconnected`` (here
    properties), calls ``pause_writing`` and ``resume_writing``, and a close frame,
    a protocol error or the end of the stream arrive through ``data_received``.
    While the gate is shut a member goes the ordinary way (Starlette, ASGI
    ``websocket.send``), which waits. A fan-out group serializes one frame for all its
    members with the same operation id. graphql-transport-ws pings go the same way, and
    replace this protocol's keepalive on their socket (PingingTransportWS).
    """

    _gate: _ProtocolGate | None = None
    _paused = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Writable()  # type: ignore[assignment]
        self.writable.set()

    # uvicorn assigns these two, from __init__ on, wherever the socket closes.
    close_sent = _GatingFlag()
    disconnected = _GatingFlag()

    def _check_gate(self) -> None:
        gate = self._gate
        if gate is not None:
            gate.open = self.handshake_complete and not self._close_sent and \
                not self._disconnected and not self._paused and \
                self.conn.state is _OPEN and not self.transport.is_closing()

    def pause_writing(self) -> None:
        self._paused = True
        super().pause_writing()
        self._check_gate()

    def resume_writing(self) -> None:
        self._paused = False
        super().resume_writing()
        self._check_gate()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._gate is not None and self.conn.state is not _OPEN:
            self._gate.open = False

    def handle_text(self, event: Any) -> None:
        # A pong answers the GraphQL protocol's ping and asks for nothing: taken here,
        # it does not wake the socket's reader in the app (a chain of coroutines and a
        # future, made anew for each message): 10,000 idle boards 56-59 -> 43-51 ms of
        # CPU per second.
        gate = self._gate
        if gate is not None and gate.heard is not None and event.fin and \
                event.data == PONG:
            gate.heard = True
            return
        super().handle_text(event)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:
            self._gate = scope["extensions"][FRAMES] = _ProtocolGate(self)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self._check_gate()
            # The request also stays in websockets' parser (a local of its generator):
            # its headers, copied into the ASGI scope already, are emptied in place.
            for handshake in (self.request, self.response):
                if handshake is not None:
                    handshake.headers.clear()
            self.request = self.response = None  # type: ignore[assignment]


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
            "PingingTransportWS", (PingingTransportWS,),
            {"pinger": Pinger(ping) if ping > 0 else None})
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
        # Up and down by hand: a context manager (a generator) would be held by every
        # idle socket for its lifetime.
        open_sockets = websocket.app.state.metrics.websockets_open
        open_sockets.inc()
        try:
            await self.run(websocket)
        finally:
            self.viewer_sockets.discard(websocket)
            open_sockets.dec()
