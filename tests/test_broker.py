"""The event broker the app connects to: a message published by one process's
broadcaster reaches a subscriber of another's (Redis when TEST_REDIS_URL is set)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broadcaster import Broadcast

from subscriptions.backends import backend_for
from tests.databases import BROADCAST_URL, REDIS_URL


@asynccontextmanager
async def _broadcast(url: str) -> AsyncIterator[Broadcast]:
    broadcast = Broadcast(backend=backend_for(url))
    await broadcast.connect()
    try:
        yield broadcast
    finally:
        await broadcast.disconnect()


async def test_app_connects_to_the_configured_broker(app):
    backend = app.state.events.broadcast._backend
    expected = "ResilientRedisBackend" if REDIS_URL else "AnnouncingMemoryBackend"
    assert type(backend).__name__ == expected


async def test_a_message_crosses_from_one_broadcaster_to_another():
    # Two broadcasters stand for two server processes; with memory:// they share
    # nothing, so there one broadcaster plays both parts.
    async with _broadcast(BROADCAST_URL) as publisher:
        if REDIS_URL:
            async with _broadcast(BROADCAST_URL) as subscriber_side:
                await _roundtrip(publisher, subscriber_side)
        else:
            await _roundtrip(publisher, publisher)


async def _roundtrip(publisher: Broadcast, subscriber_side: Broadcast) -> None:
    channel = "crmgraph_test_roundtrip"
    async with subscriber_side.subscribe(channel) as subscriber:
        await asyncio.sleep(0.2)  # let the SUBSCRIBE reach the broker
        await publisher.publish(channel, "hello")
        event = await asyncio.wait_for(subscriber.get(), timeout=5)
    assert event.message == "hello"
