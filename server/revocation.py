"""Open WebSockets per user, partner API key and partner org, closed when their
credential stops being good: a key revoked, a user or a partner org deactivated.

The change writes an outbox event in its transaction; every server process hears of
it through its event hub (at once through the broker, else at its next poll of the
outbox) and closes the sockets it concerns with 4403. HTTP requests need none of
this: each one reads its credential afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

from models.users import Viewer
from subscriptions.hub import EventHub
from subscriptions.outbox import (
    KEY_REVOKED_TOPIC,
    ORG_DEACTIVATED_TOPIC,
    USER_DEACTIVATED_TOPIC,
    EventRecord,
)

logger = logging.getLogger("crmgraph.auth")

FORBIDDEN = 4403
# Which payload field names whom, per topic.
CLOSES = {KEY_REVOKED_TOPIC: ("key", "keyId"), USER_DEACTIVATED_TOPIC: ("user", "userId"),
          ORG_DEACTIVATED_TOPIC: ("org", "partnerOrgId")}

Holder = tuple[str, int]


class ViewerSockets:
    def __init__(self) -> None:
        self._sockets: defaultdict[Holder, set[Any]] = defaultdict(set)
        self._closing: set[asyncio.Task[int]] = set()

    def add(self, viewer: Viewer, websocket: Any) -> None:
        for holder in _holders(viewer):
            self._sockets[holder].add(websocket)

    def discard(self, websocket: Any) -> None:
        for holder in [h for h, sockets in self._sockets.items() if websocket in sockets]:
            self._sockets[holder].discard(websocket)
            if not self._sockets[holder]:
                del self._sockets[holder]

    def count(self, kind: str, key: int) -> int:
        return len(self._sockets.get((kind, key), ()))

    async def close(self, holder: Holder, reason: str) -> int:
        sockets = self._sockets.pop(holder, set())
        for websocket in sockets:
            self.discard(websocket)
            with contextlib.suppress(Exception):  # already gone: nothing to close
                await websocket.close(code=FORBIDDEN, reason=f"Forbidden: {reason}")
        if sockets:
            logger.info("closed %d WebSocket(s): %s %s %s", len(sockets), holder[0],
                        holder[1], reason)
        return len(sockets)

    def attach(self, events: EventHub) -> None:
        """Every such event the hub reads closes the sockets it concerns."""
        for topic in CLOSES:
            events.listen(topic, self._heard)

    def _heard(self, event: EventRecord) -> None:
        kind, field = CLOSES[event.topic]
        reason = event.topic.replace("_", " ").replace(".", " ")
        task = asyncio.create_task(self.close((kind, int(event.payload[field])), reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def _holders(viewer: Viewer) -> list[Holder]:
    holders: list[Holder] = [("user", viewer.user_id)]
    if viewer.key_id is not None:
        holders.append(("key", viewer.key_id))
    if viewer.partner_org_id is not None:
        holders.append(("org", viewer.partner_org_id))
    return holders
