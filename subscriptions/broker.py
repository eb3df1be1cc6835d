"""The broadcaster: ``memory://`` in one process, ``redis://`` or ``postgres://``
when several server processes share one stream of events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broadcaster import Broadcast


@asynccontextmanager
async def connected_broker(url: str) -> AsyncIterator[Broadcast]:
    broker = Broadcast(url)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.disconnect()
