"""What a resolver may ask of the request context (server/context.py provides it)."""

from __future__ import annotations

from typing import Any, Protocol

import strawberry

from loaders.container import Loaders
from loaders.errors import Unauthenticated
from models.db import Database
from models.users import Viewer


class RequestContext(Protocol):
    db: Database
    viewer: Viewer | None
    loaders: Loaders
    request_id: str
    events: Any  # subscriptions.hub.EventHub
    org_timezone: str

    def renew_loaders(self) -> None:
        """Forget what the loaders read: a subscription reads each event fresh."""

    async def close_socket(self, code: int, reason: str) -> None:
        """Close the WebSocket this operation runs on."""


Info = strawberry.Info[RequestContext, None]


def viewer_of(info: Info) -> Viewer:
    """The signed-in viewer, or UNAUTHENTICATED: every root field asks this first."""
    viewer = info.context.viewer
    if viewer is None:
        raise Unauthenticated(
            "authentication required: send 'Authorization: Bearer <token>' "
            "(mint one with `crmgraph token --email <email>`)"
        )
    return viewer
