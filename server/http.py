"""GraphQL over HTTP (GET and POST) and over WebSocket, on /graphql.

HTTP follows the GraphQL-over-HTTP specification: content negotiation between
application/graphql-response+json and application/json, 405 for mutations over
GET, 400 for request errors under the new media type and 200 under the legacy one.

Once its body is read, a request's work runs as a task of its own: it is cancelled,
with its database work, when REQUEST_TIMEOUT passes (504) or when the client goes away.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from functools import lru_cache
from random import getrandbits
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.http.ides import get_graphql_ide_html
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from models.db import Database, RequestWork
from resolvers.documents import SHA256, DocumentStore, document_hash
from server import faults
from server.auth import Authenticator, AuthError
from server.context import Context
from server.metrics import Metrics
from server.settings import Settings
from subscriptions.hub import EventHub

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

logger = logging.getLogger("crmgraph")


def request_id_of(headers: Any) -> str:
    """The client's X-Request-Id when it is safe to log, else 32 random hex digits: an
    id to find a request by, not a secret, so not worth uuid4's system call (getrandom)
    per request."""
    given = headers.get("x-request-id")
    return given if given and REQUEST_ID.match(given) else f"{getrandbits(128):032x}"


@lru_cache(maxsize=256)
def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None for 406.

    No Accept header, or */*, gets application/json, which every client reads. A
    client sends the same header with every request: its answer is kept.
    """
    if not accept:
        return JSON
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        media = media.lower()
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            candidate = (quality, 2, GRAPHQL_RESPONSE)
        elif media == JSON:
            candidate = (quality, 1, JSON)
        elif media in ("*/*", "application/*"):
            candidate = (quality, 0, JSON)
        else:
            continue
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else None


class GraphQLHTTP:
    """The HTTP endpoint. Thin on purpose: parse, authenticate, execute, encode."""

    def __init__(self, schema: Any, settings: Settings, db: Database,
                 authenticator: Authenticator, events: EventHub,
                 documents: DocumentStore, metrics: Metrics | None = None) -> None:
        self.schema = schema
        self.settings = settings
        self.db = db
        self.authenticator = authenticator
        self.events = events
        self.documents = documents
        self.metrics = metrics
        self.ide_html = get_graphql_ide_html(graphql_ide="graphiql")

    async def __call__(self, request: Request) -> Response:
        arrived = asyncio.get_running_loop().time()
        request_id = request_id_of(request.headers)
        method = request.method
        if method not in ("GET", "POST"):
            return self.error(405, "METHOD_NOT_ALLOWED", "use GET or POST", JSON, request_id,
                              {"Allow": "GET, POST"})
        if (method == "GET" and "query" not in request.query_params and self.settings.graphiql
                and "text/html" in request.headers.get("accept", "")):
            return HTMLResponse(self.ide_html, headers={"X-Request-Id": request_id})
        media = negotiate(request.headers.get("accept"))
        if media is None:
            return self.error(406, "NOT_ACCEPTABLE", f"responses are {GRAPHQL_RESPONSE} or "
                              f"{JSON}", JSON, request_id)
        if self.settings.csrf_prevention and method == "GET" and _may_be_forged(request):
            return self.error(400, BAD_REQUEST, CSRF_MESSAGE, media, request_id)
        try:
            params = await self.read_params(request)
        except _BadRequest as exc:
            return self.error(exc.status, exc.code, exc.message, media, request_id,
                              exc.headers, graphql=exc.graphql)
        return await self.within_limits(request, self.run(request, params, media, request_id),
                                        arrived, media, request_id)

    async def within_limits(self, request: Request, work: Awaitable[Response], arrived: float,
                            media: str, request_id: str) -> Response:
        """``work``'s response, unless REQUEST_TIMEOUT (counted from the request's
        arrival) passes or the client disconnects first: then the work is cancelled,
        its database work with it, and this returns once all of it has stopped."""
        scope = RequestWork()

        async def run() -> Response:
            with scope.within():
                return await work

        task = asyncio.create_task(run())
        gone = asyncio.create_task(_client_gone(request))
        limit = self.settings.request_timeout
        timeout = max(0.0, arrived + limit - asyncio.get_running_loop().time()) if limit \
            else None
        try:
            done, _ = await asyncio.wait({task, gone}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is stopping: so does the work
            await _stop(task, scope)
            raise
        finally:
            gone.cancel()
        if task in done:
            return task.result()
        await _stop(task, scope)
        if gone in done:
            # Nobody will read the answer; 499 (nginx's "client closed request") is for
            # the metrics and the access log.
            logger.info("request %s cancelled: the client disconnected", request_id)
            return self.error(499, "CLIENT_CLOSED_REQUEST", "the client closed the request",
                              media, request_id)
        logger.warning("request %s cancelled after REQUEST_TIMEOUT (%s s)", request_id, limit)
        retryable = not scope.committing
        return self.error(
            504, "REQUEST_TIMEOUT",
            f"the request ran longer than the server's limit ({limit:g} s) and was cancelled"
            + ("; nothing it changed was kept, so it may be sent again" if retryable else
               "; a change it made may have been committed: read it back before retrying"),
            media, request_id, extensions={"timeoutSeconds": limit, "retryable": retryable})

    async def run(self, request: Request, params: dict[str, Any], media: str,
                  request_id: str) -> Response:
        try:
            credential = self.authenticator.identify(
                request.headers.get("authorization"), request.headers.get("x-api-key"))
            await self.resolve_document(params)
        except _BadRequest as exc:
            return self.error(exc.status, exc.code, exc.message, media, request_id,
                              exc.headers, graphql=exc.graphql)
        except AuthError as exc:
            return self.unauthenticated(str(exc), media, request_id)
        method = request.method
        context = Context(db=self.db, settings=self.settings, viewer=None,
                          request_id=request_id, events=self.events,
                          client_id=credential.client_id if credential else "anonymous",
                          credential=credential, authenticator=self.authenticator,
                          documents=self.documents)
        allowed = ({OperationType.QUERY} if method == "GET"
                   else {OperationType.QUERY, OperationType.MUTATION})
        try:
            result: ExecutionResult = await self.schema.execute(
                params["query"], variable_values=params["variables"], context_value=context,
                operation_name=params["operationName"], allowed_operation_types=allowed,
                operation_extensions=params["extensions"],
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                return self.error(400, BAD_REQUEST, "subscriptions run over WebSocket at "
                                  "/graphql (graphql-transport-ws)", media, request_id,
                                  counted=True)
            return self.error(405, "METHOD_NOT_ALLOWED", "mutations must be sent with POST",
                              media, request_id, {"Allow": "POST"}, counted=True)
        except CannotGetOperationTypeError as exc:
            return self.error(400, "BAD_USER_INPUT", exc.as_http_error_reason(), media,
                              request_id, graphql=True, counted=True)
        except MissingQueryError:
            return self.error(400, BAD_REQUEST, "no GraphQL query in the request", media,
                              request_id, counted=True)
        if _code_of(result) == "UNAUTHENTICATED":
            # Refused when the credential was read (server/access.py): counted there.
            return self.unauthenticated(result.errors[0].message, media,  # type: ignore[index]
                                        request_id, counted=True)
        if params["persist"] and not _request_error(result):
            # Kept once it has proved to parse and validate: no junk under a hash.
            await self.documents.persist(params["hash"], params["query"])
        return self.respond(result, media, request_id)

    def unauthenticated(self, message: str, media: str, request_id: str, *,
                        counted: bool = False) -> Response:
        return self.error(401, "UNAUTHENTICATED", message, media, request_id,
                          {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                          counted=counted)

    async def resolve_document(self, params: dict[str, Any]) -> None:
        """Apollo's automatic persisted queries: a hash alone names a document sent
        before; a hash with its document registers it (after it has run)."""
        params["hash"] = params["persist"] = None
        persisted = (params["extensions"] or {}).get("persistedQuery")
        if persisted is None:
            if params["query"] is None:
                raise _BadRequest(400, BAD_REQUEST, "'query' must be a non-empty string")
            return  # nothing to hash: server/access.py hashes for trusted-documents orgs
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise _BadRequest(400, "PERSISTED_QUERY_NOT_SUPPORTED",
                              "persistedQuery must be {version: 1, sha256Hash: <hex>}")
        sha256 = persisted.get("sha256Hash")
        if not isinstance(sha256, str) or not SHA256.match(sha256.lower()):
            raise _BadRequest(400, BAD_REQUEST, "sha256Hash must be 64 hexadecimal digits")
        sha256 = sha256.lower()
        params["hash"] = sha256
        if params["query"] is not None:
            if document_hash(params["query"]) != sha256:
                raise _BadRequest(400, BAD_REQUEST, "provided sha does not match query")
            params["persist"] = True
            return
        document = await self.documents.text(sha256)
        if document is None:
            # Apollo's clients answer this by sending the document with its hash.
            raise _BadRequest(404, PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound",
                              {"Cache-Control": "private, no-cache, must-revalidate"},
                              graphql=True)
        params["query"] = document

    async def read_params(self, request: Request) -> dict[str, Any]:
        if request.method == "GET":
            # An empty parameter is an absent one (?variables=&operationName=).
            raw: dict[str, Any] = {k: v for k, v in request.query_params.items() if v}
            for name in ("variables", "extensions"):
                if name in raw:
                    raw[name] = _json(raw[name], name)
        else:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != JSON:
                raise _BadRequest(415, "UNSUPPORTED_MEDIA_TYPE",
                                  f"send the request body as {JSON}")
            raw = _json(await request.body(), "request body")
            if not isinstance(raw, dict):
                raise _BadRequest(400, BAD_REQUEST, "the request body must be a JSON object")
        query = raw.get("query")
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise _BadRequest(400, BAD_REQUEST, "'query' must be a non-empty string")
        # Only null means absent: [], 0 or "" are not objects and are refused.
        variables = raw.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise _BadRequest(400, BAD_REQUEST, "'variables' must be an object")
        operation_name = raw.get("operationName")
        if operation_name is not None and not isinstance(operation_name, str):
            raise _BadRequest(400, BAD_REQUEST, "'operationName' must be a string")
        operation_name = operation_name or None  # "" is absent, as in GET
        extensions = raw.get("extensions")
        if extensions is not None and not isinstance(extensions, dict):
            raise _BadRequest(400, BAD_REQUEST, "'extensions' must be an object")
        return {"query": query, "variables": variables, "operationName": operation_name,
                "extensions": extensions}

    def respond(self, result: ExecutionResult, media: str, request_id: str) -> Response:
        errors = result.errors or []
        # A request error (parse, validation, variables) has no path and the
        # operation never ran: the response then has no "data" at all.
        request_error = _request_error(result)
        body: dict[str, Any] = {}
        if errors:
            body["errors"] = [e.formatted for e in errors]
        if not request_error:
            body["data"] = result.data
        if result.extensions:
            body["extensions"] = result.extensions
        status = 200
        if request_error and media == GRAPHQL_RESPONSE:
            # Refused as a whole by policy (a key's scope, introspection, an untrusted
            # document) is 403; a document that does not parse or validate is 400.
            status = 403 if _code_of(result) in REFUSED else 400
        limited = next((e.extensions for e in errors
                        if (e.extensions or {}).get("code") == "RATE_LIMITED"), None)
        if limited is not None:
            # Over its cost budget (server/cost.py): nothing ran; the body says why.
            retry_after = str(max(1, int(limited.get("retryAfter") or 1)))
            return _json_response(body, 429, media, request_id, {"Retry-After": retry_after})
        unavailable = (faults.http_status(result.data, result.errors)
                       if media == GRAPHQL_RESPONSE else None)
        if unavailable is not None:
            # The database is away and nothing was answered: 503 with Retry-After.
            return _json_response(body, unavailable[0], media, request_id, unavailable[1])
        return _json_response(body, status, media, request_id)

    def error(self, status: int, code: str, message: str, media: str, request_id: str,
              headers: dict[str, str] | None = None, *, graphql: bool = False,
              counted: bool = False, extensions: dict[str, Any] | None = None) -> Response:
        """A request refused before (or instead of) execution. Those refused by the
        schema's own exceptions were counted by its telemetry (``counted``); the rest
        are counted here, so /metrics has every error by code."""
        if not counted and self.metrics is not None:
            self.metrics.errors.inc(code=code)
        body = {"errors": [GraphQLError(
            message, extensions={"code": code, **(extensions or {})}).formatted]}
        if graphql and media == JSON:
            status = 200  # a GraphQL request error under the legacy media type
        return _json_response(body, status, media, request_id, headers)


BAD_REQUEST = "BAD_REQUEST"
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
REFUSED = {"FORBIDDEN", "PERSISTED_QUERY_NOT_IN_LIST"}
SIMPLE_CONTENT_TYPES = {"", "text/plain", "application/x-www-form-urlencoded",
                        "multipart/form-data"}
CSRF_MESSAGE = ("this GET request has no preflight header and may come from another "
                "site: send 'Apollo-Require-Preflight: true' (or 'X-Apollo-Operation-Name', "
                "or a Content-Type such as application/json)")


class _BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, *, graphql: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.graphql = graphql  # a GraphQL error: 200 under application/json


async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects. Started once the body is read, so what
    receive() has left to say is http.disconnect (a GET's unread body aside)."""
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass
    except Exception:  # e.g. BodyLimit refusing a GET's body: that is no hang-up
        await asyncio.Event().wait()  # never told of a hang-up, the work runs on


async def _stop(task: asyncio.Task[Response], scope: RequestWork) -> None:
    task.cancel()
    await scope.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _may_be_forged(request: Request) -> bool:
    """Apollo's CSRF prevention: a browser sends a GET cross-site without a preflight
    only when it has no custom header and a "simple" content type (or none). A
    client shows it is not such a request with one of these headers."""
    headers = request.headers
    if headers.get("apollo-require-preflight") or headers.get("x-apollo-operation-name"):
        return False
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type in SIMPLE_CONTENT_TYPES


def _code_of(result: ExecutionResult) -> str | None:
    """The code of a request that was refused as a whole (nothing executed)."""
    if result.data is None and result.errors and len(result.errors) == 1 and \
            result.errors[0].path is None:
        return (result.errors[0].extensions or {}).get("code")
    return None


def _request_error(result: ExecutionResult) -> bool:
    return result.data is None and bool(result.errors) and all(
        e.path is None for e in result.errors or ())


def _json(raw: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _BadRequest(400, BAD_REQUEST, f"the {what} is not valid JSON") from None


def _json_response(body: Any, status: int, media: str, request_id: str,
                   headers: dict[str, str] | None = None) -> Response:
    all_headers = {"X-Request-Id": request_id, **(headers or {})}
    return Response(orjson.dumps(body), status_code=status,
                    media_type=f"{media}; charset=utf-8", headers=all_headers)
