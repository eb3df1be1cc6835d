"""Open WebSockets per partner API key, closed when the key is revoked.

A key is revoked in the database with an outbox event (resolvers/partner_keys.py);
every server process hears of it through its event hub, at once through the broker
or at its next poll of the outbox, and closes that key's sockets with 4403. HTTP
requests need none of this: each one reads its key afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

from resolvers.partner_keys import KEY_REVOKED_TOPIC
from subscriptions.hub import EventHub
from subscriptions.outbox import EventRecord

logger = logging.getLogger("crmgraph.auth")

FORBIDDEN = 4403


class KeySockets:
    def __init__(self) -> None:
        self._sockets: defaultdict[int, set[Any]] = defaultdict(set)
        self._closing: set[asyncio.Task[int]] = set()

    def add(self, key_id: int, websocket: Any) -> None:
        self._sockets[key_id].add(websocket)

    def discard(self, websocket: Any) -> None:
        for key_id in [k for k, sockets in self._sockets.items() if websocket in sockets]:
            self._sockets[key_id].discard(websocket)
            if not self._sockets[key_id]:
                del self._sockets[key_id]

    def count(self, key_id: int) -> int:
        return len(self._sockets.get(key_id, ()))

    async def close_key(self, key_id: int) -> int:
        sockets = self._sockets.pop(key_id, set())
        for websocket in sockets:
            with contextlib.suppress(Exception):  # already gone: nothing to close
                await websocket.close(code=FORBIDDEN, reason="Forbidden: the API key was revoked")
        if sockets:
            logger.info("closed %d WebSocket(s) of revoked API key %s", len(sockets), key_id)
        return len(sockets)

    def attach(self, events: EventHub) -> None:
        """Every revocation the hub reads closes its key's sockets."""
        events.listen(KEY_REVOKED_TOPIC, self._revoked)

    def _revoked(self, event: EventRecord) -> None:
        task = asyncio.create_task(self.close_key(int(event.payload["keyId"])))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
