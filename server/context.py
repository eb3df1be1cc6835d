"""The request context: who asks, the database, and a fresh set of loaders."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from loaders.container import Loaders
from models.db import Database
from models.users import Viewer
from server.settings import Settings

# What an HTTP request leaves until its response is sent (server/app.py): letting go of
# an operation's loaders (server/graphql.py OperationContext), which the client need not
# wait for. None outside HTTP requests: then it is done at once.
AFTER_RESPONSE: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "after_response", default=None)


@dataclass
class Context:
    db: Database
    settings: Settings
    viewer: Viewer | None
    request_id: str
    events: Any = None  # subscriptions.hub.EventHub
    websocket: Any = None  # the starlette WebSocket, for operations over one
    connection_params: dict[str, Any] = field(default_factory=dict)
    # Whose budget a request spends (see server/cost.py): "key:<id>", "user:<id>",
    # or "anonymous"; known from the credential before the database is asked.
    client_id: str = "anonymous"
    # Sent but not yet read from the database: server/access.py reads it once the
    # request's cost is paid (server/auth.py Authenticator.viewer_for).
    credential: Any = None
    authenticator: Any = None
    documents: Any = None  # resolvers.documents.DocumentStore: trusted documents
    # The viewer's read still running beside a query that runs as the viewer read
    # before (server/access.py Confirmation), until the query's root fields settle it.
    confirmation: Any = None
    # The columns a compiled plan knows a field's nodes read, by the field's node
    # (server/compiled.py Run.plan_columns, schema/relay.py planned_columns).
    planned_columns: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # What a resolver worked out of its field's selection, kept for the operation (the
    # document, and so its nodes' ids, lives as long): schema/planning.py plan_columns.
    selections: dict[Any, Any] = field(default_factory=dict)
    _loaders: Loaders | None = None

    @property
    def org_timezone(self) -> str:
        return self.settings.org_timezone

    def renew_loaders(self) -> None:
        self._loaders = None

    async def close_socket(self, code: int, reason: str) -> None:
        if self.websocket is not None:
            await self.websocket.close(code=code, reason=reason)

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            if self.viewer is None:  # pragma: no cover - root fields check the viewer first
                raise RuntimeError("loaders need a viewer")
            self._loaders = Loaders(
                self.db, self.viewer, default_page_size=self.settings.default_page_size,
                max_page_size=self.settings.max_page_size,
            )
        return self._loaders

    def for_operation(self) -> Context:
        """A copy with its own loaders: one WebSocket runs many operations, and no
        operation may read another's cached rows."""
        return replace(self, _loaders=None, planned_columns={}, selections={})
