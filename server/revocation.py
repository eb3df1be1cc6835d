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
from subscriptions.outbox import last_event_id

logger = logging.getLogger("crmgraph.auth")

FORBIDDEN = 4403


class KeySockets:
    def __init__(self) -> None:
        self._sockets: defaultdict[int, set[Any]] = defaultdict(set)

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

    async def watch(self, events: EventHub) -> None:
        """Runs for the life of the app: every revocation closes its key's sockets."""
        position: int | None = None
        while True:
            try:
                if position is None:
                    position = await last_event_id(events.db)
                # From a known position: after a failure nothing is missed.
                async for event in events.stream(frozenset({KEY_REVOKED_TOPIC}),
                                                 after=position):
                    position = event.id
                    await self.close_key(int(event.payload["keyId"]))
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: listen again shortly
                logger.exception("watching key revocations failed; retrying")
                await asyncio.sleep(1)
