"""The Starlette application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute, get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from models.db import Database
from resolvers.documents import DocumentStore
from server.auth import Authenticator
from server.context import AFTER_RESPONSE
from server.cost import CostLimits
from server.graphql import INTERNAL, executable_schema
from server.http import JSON, GraphQLHTTP, negotiate, request_id_of
from server.metrics import Metrics, metrics_endpoint
from server.migrate import current_revision, head_revision, upgrade_head
from server.revocation import ViewerSockets
from server.settings import Settings, SettingsError
from server.websocket import GraphQLWebSocket
from subscriptions.hub import EventHub

logger = logging.getLogger("crmgraph")


class MigrationsBehind(SettingsError):
    pass


async def ensure_migrated(settings: Settings, db: Database) -> None:
    """The embedded database migrates itself; PostgreSQL must be migrated on purpose."""
    async with db.engine.connect() as connection:
        current = await current_revision(connection)
    head = head_revision()
    if current == head:
        return
    if settings.is_embedded:
        logger.info("migrating the embedded database from %s to %s", current, head)
        await asyncio.to_thread(upgrade_head, settings.database_url)
        return
    raise MigrationsBehind(
        f"the database is at migration {current or 'none'}, the code needs {head}: "
        "run `crmgraph migrate` first"
    )


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class BodyLimit:
    """Refuses request bodies over the limit with 413, before they are read whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _json({"errors": [{
            "message": f"the request body is larger than {self.max_bytes} bytes",
            "extensions": {"code": "PAYLOAD_TOO_LARGE"},
        }]}, 413)
        response.headers["X-Request-Id"] = request_id_of(Headers(scope=scope))
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


# The youngest generation collected automatically only past a million objects more
# alive (instead of 700), the older ones every 50 and 100 of those (instead of 10 and
# 10); between requests, collect_garbage() collects the young every second.
GC_THRESHOLDS = (1_000_000, 50, 100)
GC_EVERY_SECONDS = 1.0
# A young generation this big at the clock's tick while HTTP requests are in flight is
# mostly their objects: alive, soon freed by reference counting, and walked for little
# (a request leaves no cycles of its rows, tests/test_gc.py). At 16 dashboards at once
# each tick walked 200,000 to 400,000 objects for 30-100 ms and freed ~2,600. The
# collection then waits for a tick with fewer or none in flight, at most
# GC_MAX_WAIT_SECONDS. Not without requests: ten thousand boards connecting leave
# garbage of their handshakes, which waiting let pile up (19.5 -> 22.2 KB per board).
GC_BUSY_YOUNG = 100_000
GC_MAX_WAIT_SECONDS = 10.0
# HTTP requests being served by this process, by any of its apps: the collector is the
# process's.
requests_in_flight = 0
_gc_tuned = False


def tune_gc() -> None:
    """Once per process, after start-up: the objects made so far (the schema, the
    tables, the plans' types: a few hundred thousand) leave the collector's view, and
    it runs on a clock (collect_garbage), not in the middle of requests.

    A response of 1,000 accounts with 10,000 deals allocates a few hundred thousand
    containers; with Python's defaults the cyclic collector ran hundreds of times per
    request and walked every start-up object at each older collection: about 40% of
    the CPU of such a request (bench/README.md). Counted in objects alive (garbage
    without cycles is freed by reference counting and does not add up), any threshold
    a large answer passes makes a collection walk that answer while it is being built;
    collected on a clock, the young are mostly the little a request left behind, and
    idle sockets' start-up cycles do not wait for a million more objects.
    """
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def collect_garbage() -> None:
    """Every GC_EVERY_SECONDS, the collection the thresholds' older generations say is
    due: the youngest, every 50th time also the middle one, every 100th of those all.
    Not while GC_BUSY_YOUNG objects or more are young and HTTP requests are in flight,
    unless it has waited GC_MAX_WAIT_SECONDS."""
    _young, middle, old = GC_THRESHOLDS
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(GC_EVERY_SECONDS)
        young, middle_count, old_count = gc.get_count()
        if young >= GC_BUSY_YOUNG and requests_in_flight and \
                loop.time() - last < GC_MAX_WAIT_SECONDS:
            continue
        gc.collect(2 if old_count >= old else 1 if middle_count >= middle else 0)
        last = loop.time()


class CrmApp(Starlette):
    """Starlette, with /graphql handed to its views directly: WebSockets to
    ``graphql_ws``, HTTP requests to ``graphql_http`` (an ASGI app with the body limit
    and CORS of its own); every other path goes through Starlette's stack.

    Through the middleware stack and the router, a WebSocket keeps a dozen suspended
    coroutines (about 5 KB) for as long as it is open, none of which does anything for
    it: the middlewares here act on HTTP only, and the view answers every error
    itself. A live board holds its socket all day, and a server ten thousand of them.
    An HTTP request went through seven layers of calls and wrapped ``send``s: about 8%
    of the CPU of a small query (bench/README.md). The view answers every method and
    error itself, so the router and the error middlewares had nothing to add.
    """

    graphql_ws: Any = None
    graphql_http: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and self.graphql_http is not None and \
                get_route_path(scope) == "/graphql":
            scope["app"] = self
            await self.graphql_http(scope, receive, send)
            return
        if kind == "websocket" and self.graphql_ws is not None and \
                get_route_path(scope) == "/graphql":
            scope["app"] = self
            await self.graphql_ws(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


def with_cors(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` answering browsers on the allowed origins (a frontend's dev server, a
    dashboard); as it is when none are set. Tokens travel in headers, never cookies,
    so no credentials mode."""
    if not settings.allowed_origins:
        return app
    return CORSMiddleware(
        app, allow_origins=settings.allowed_origins, allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "X-Api-Key", "Content-Type", "Accept", "X-Request-Id",
                       "Apollo-Require-Preflight", "X-Apollo-Operation-Name"],
        expose_headers=["X-Request-Id"], max_age=600,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url, pool_size=settings.db_pool_size)
        try:
            await ensure_migrated(settings, db)
            authenticator = Authenticator(settings, db)
            costs = CostLimits(settings)
            schema = executable_schema(settings, metrics=app.state.metrics, costs=costs)
            events = EventHub(
                db, settings.broadcast_url, queue_size=settings.subscription_queue_size,
                poll_seconds=settings.event_poll_seconds,
                retention=timedelta(days=settings.event_retention_days),
            )
            await events.start()
            viewer_sockets = ViewerSockets()
            viewer_sockets.attach(events)
            try:
                documents = DocumentStore(db)
                state.update(
                    db=db, events=events, authenticator=authenticator,
                    http=GraphQLHTTP(schema, settings, db, authenticator, events, documents,
                                     metrics=app.state.metrics),
                    ws=GraphQLWebSocket(schema, settings, db, authenticator, events,
                                        documents=documents, viewer_sockets=viewer_sockets),
                )
                app.state.db = db
                app.state.schema = schema
                app.state.compiler = getattr(schema, "compiler", None)
                app.state.events = events
                app.state.authenticator = authenticator
                app.state.viewer_sockets = viewer_sockets
                tune_gc()
                collector = asyncio.create_task(collect_garbage())
                try:
                    yield
                finally:
                    collector.cancel()
            finally:
                await events.stop()
                await costs.aclose()
        finally:
            await db.dispose()

    async def graphql_http(request: Request) -> Response:
        return await state["http"](request)

    async def graphql_http_app(scope: Scope, receive: Receive, send: Send) -> None:
        later: list[Callable[[], None]] = []
        token = AFTER_RESPONSE.set(later)
        try:
            await respond(scope, receive, send)
        finally:
            AFTER_RESPONSE.reset(token)
            for step in later:
                step()

    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        global requests_in_flight
        request = Request(scope, receive, send)
        requests_in_flight += 1
        try:
            response = await state["http"](request)
        except _TooLarge:  # the body over the limit: BodyLimit answers
            raise
        except Exception:  # a bug: answered as one, never left to the server's 500
            http: GraphQLHTTP = state["http"]
            request_id = request_id_of(request.headers)
            logger.exception("unexpected error in request %s", request_id)
            response = http.error(500, INTERNAL, "Internal server error",
                                  negotiate(request.headers.get("accept")) or JSON,
                                  request_id, extensions={"requestId": request_id})
        finally:
            requests_in_flight -= 1
        await response(scope, receive, send)

    async def graphql_ws(websocket: Any) -> None:
        await state["ws"].handle_websocket(websocket)

    async def healthz(_request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        db: Database = state["db"]
        checks: dict[str, str] = {}
        try:
            async with db.read() as connection:
                await connection.execute(text("SELECT 1"))
                current = await current_revision(connection)
            checks["database"] = "ok"
            checks["migrations"] = "ok" if current == head_revision() else (
                f"at {current or 'none'}, head is {head_revision()}")
        except Exception as exc:  # any failure to reach the database means not ready
            logger.warning("readiness check failed: %s", exc)
            checks["database"] = "unreachable"
        ready = all(value == "ok" for value in checks.values()) and "migrations" in checks
        return _json({"status": "ready" if ready else "unavailable", "checks": checks},
                     200 if ready else 503)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = CrmApp(
        routes=[
            Route("/graphql", graphql_http, methods=methods),
            WebSocketRoute("/graphql", graphql_ws),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        lifespan=lifespan,
    )
    app.graphql_ws = graphql_ws
    app.graphql_http = with_cors(BodyLimit(graphql_http_app, settings.max_body_bytes), settings)
    app.state.settings = settings
    app.state.metrics = Metrics()  # per app, so apps in one process keep apart figures
    # The other paths (/healthz, /readyz, /metrics, and /graphql/ redirected) through
    # Starlette's stack, with the same limit and CORS.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(with_cors, settings)
    return app
