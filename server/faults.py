"""Database faults a client can do something about: retry later, or send again.

A database that goes away (restarted, failed over, out of connections) is no bug in
the request: the client hears SERVICE_UNAVAILABLE with ``extensions.retryable``, not
a masked INTERNAL_SERVER_ERROR. A deadlock or serialization failure PostgreSQL broke
by rolling one transaction back is a CONFLICT the client may simply send again.

``retryable`` is true only when nothing the request did can have been kept: a
transaction that failed while committing (models/db.py tags the error) may have
committed, and its client must read the record back before sending it again. A
mutation's optimistic version makes such a resend safe anyway (a CONFLICT at worst).

server/graphql.py's ErrorCodes calls ``coded()`` before masking an error; the HTTP
endpoint answers a result whose every error is SERVICE_UNAVAILABLE with 503 and
Retry-After under application/graphql-response+json (``http_status()``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from loaders.errors import ApiError
from models.db import COMMIT_ATTEMPTED

logger = logging.getLogger("crmgraph.faults")

SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
CONFLICT = "CONFLICT"
RETRY_AFTER_SECONDS = 1

# SQLSTATEs of a server that is not there for us: connection exceptions (class 08),
# shutting down or starting up (57P01-57P03), out of connections (53300), read-only
# standby after a failover (25006).
_UNAVAILABLE_STATES = {"57P01", "57P02", "57P03", "53300", "25006"}
_UNAVAILABLE_CLASSES = {"08"}
# PostgreSQL rolled the transaction back to break a deadlock or keep serializability.
_COLLISION_STATES = {"40P01", "40001"}


@dataclass(frozen=True)
class Fault:
    code: str
    message: str
    retryable: bool


def classify(error: BaseException | None) -> Fault | None:
    """The fault behind ``error`` (looking through its causes), or None for a bug."""
    committing = False
    for exc in _chain(error):
        committing = committing or bool(getattr(exc, COMMIT_ATTEMPTED, False))
    for exc in _chain(error):
        state = _sqlstate(exc)
        if state in _COLLISION_STATES:
            return _fault(CONFLICT, "the change collided with a concurrent one and was "
                          "rolled back", committing)
        if (state in _UNAVAILABLE_STATES or (state or "")[:2] in _UNAVAILABLE_CLASSES
                or _lost_connection(exc)):
            return _fault(SERVICE_UNAVAILABLE, "the database is unavailable", committing)
    return None


class DatabaseFault(ApiError):
    """A fault met outside a field (reading the viewer, say), raised as an ApiError
    whose ``extensions`` go with its code."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.message)
        self.code = fault.code
        self.extensions = _extensions(fault)


def coded(error: GraphQLError, request_id: str | None = None) -> GraphQLError | None:
    """``error`` with its fault's code, message and ``retryable``, or None for a bug
    (which the caller masks as INTERNAL_SERVER_ERROR)."""
    fault = classify(error.original_error)
    if fault is None:
        return None
    # An outage is the operator's to see, once per request, without a stack trace.
    logger.warning("request %s failed at %s: %s (%s)", request_id,
                   ".".join(str(p) for p in error.path or ()) or "its start", fault.code,
                   error.message)
    return GraphQLError(fault.message, nodes=error.nodes, path=error.path,
                        extensions={**(error.extensions or {}), **_extensions(fault)})


def http_status(data: Any, errors: list[GraphQLError] | None
                ) -> tuple[int, dict[str, str]] | None:
    """503 with Retry-After for a result without data that failed only because the
    database is unavailable, else None. Only for application/graphql-response+json:
    the legacy media type stays 200, and a result with data must be 2xx (GraphQL over
    HTTP)."""
    codes = [(e.extensions or {}).get("code") for e in errors or ()]
    if data is not None or not codes or any(code != SERVICE_UNAVAILABLE for code in codes):
        return None
    return 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _extensions(fault: Fault) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": fault.code, "retryable": fault.retryable}
    if fault.retryable:
        extensions["retryAfter"] = RETRY_AFTER_SECONDS
    return extensions


def _fault(code: str, message: str, committing: bool) -> Fault:
    if committing:
        return Fault(code, f"{message} while a change was being committed: it may have "
                     "been kept, so read the record back before sending it again", False)
    return Fault(code, f"{message}; nothing was changed, so the request may be sent again",
                 True)


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen and len(seen) < 16:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _sqlstate(exc: BaseException) -> str | None:
    for holder in (exc, getattr(exc, "orig", None)):
        for name in ("sqlstate", "pgcode"):
            value = getattr(holder, name, None)
            if isinstance(value, str):
                return value
    return None


def _lost_connection(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DisconnectionError | PoolTimeout):
        return True
    # Refused or reset at the socket; asyncpg's own "connection was closed".
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    # InternalClientError: a connection still consuming the error PostgreSQL sent as
    # it shut down ("cannot switch to state ...; another operation is in progress").
    name = type(exc).__name__
    return name in {"ConnectionDoesNotExistError", "InterfaceError", "InternalClientError",
                    "CannotConnectNowError", "ConnectionFailureError"} and \
        type(exc).__module__.startswith("asyncpg")
