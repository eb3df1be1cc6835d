"""One event hub per process: reads the outbox in id order and fans events out to
this process's subscribers, each through a bounded queue.

The broker (broadcaster, on BROADCAST_URL) only says "there is news": a mutation
publishes its event id after commit, and every process that hears it reads the
outbox from where it stopped. So a subscriber never depends on the broker for what
it receives, only for how soon: while the broker is away the hub polls, and after a
reconnect it catches up at once. Nothing is lost and nothing is repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta

from broadcaster import Broadcast

from models.db import Database
from subscriptions.backends import RECONNECTED, backend_for
from subscriptions.outbox import EventRecord, events_after, last_event_id, prune_events

logger = logging.getLogger("crmgraph.events")

CHANNEL = "crmgraph_events"
BATCH = 500
MAX_PENDING_PUBLISHES = 1000


class Overflowed(Exception):
    """The subscriber fell too far behind; it must reconnect and resume with ``after``."""


_OVERFLOW = object()


class Subscription:
    def __init__(self, topics: frozenset[str], capacity: int) -> None:
        self.topics = topics
        self._queue: asyncio.Queue[object] = asyncio.Queue(capacity + 1)
        self._capacity = capacity
        self.overflowed = False

    def offer(self, event: EventRecord) -> None:
        """Never blocks the hub: a full queue marks the subscriber as fallen behind."""
        if self.overflowed:
            return
        if self._queue.qsize() >= self._capacity:
            self.overflowed = True
            while not self._queue.empty():  # what it had is replayed from the outbox
                self._queue.get_nowait()
            self._queue.put_nowait(_OVERFLOW)
            return
        self._queue.put_nowait(event)

    async def next(self) -> EventRecord:
        item = await self._queue.get()
        if item is _OVERFLOW:
            raise Overflowed
        return item  # type: ignore[return-value]


class EventHub:
    def __init__(self, db: Database, broadcast_url: str, *, queue_size: int = 1000,
                 poll_seconds: float = 2.0, retention: timedelta = timedelta(days=30)) -> None:
        self.db = db
        self.queue_size = queue_size
        self.poll_seconds = poll_seconds
        self.retention = retention
        self.broadcast = Broadcast(backend=backend_for(broadcast_url))
        self.position = 0  # the last event id handed to subscribers
        # Totals for /metrics (server/metrics.py reads them at scrape time).
        self.published = 0
        self.delivered = 0
        self._subscriptions: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._publishing: set[asyncio.Task[None]] = set()
        # Ids this process published, until the broker echoes them back: the announce
        # woke the reader already, and an echo would make it read the outbox once more
        # (a statement per mutation, for nothing).
        self._echoes: set[str] = set()
        # The server's own reactions to events (not subscribers): called in order.
        self._listeners: list[tuple[str, Callable[[EventRecord], None]]] = []

    async def start(self) -> None:
        self.position = await last_event_id(self.db)
        await self.broadcast.connect()
        self._tasks = [
            asyncio.create_task(self._hear(CHANNEL), name="events-hear"),
            asyncio.create_task(self._hear(RECONNECTED), name="events-reconnected"),
            asyncio.create_task(self._dispatch(), name="events-dispatch"),
            asyncio.create_task(self._prune(), name="events-prune"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._publishing]:
            task.cancel()
        for task in [*self._tasks, *self._publishing]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.broadcast.disconnect()

    def listen(self, topic: str, listener: Callable[[EventRecord], None]) -> None:
        """``listener`` hears every event of ``topic`` from now on, as the hub reads it;
        it must not block (start a task for any I/O)."""
        self._listeners.append((topic, listener))

    @contextlib.contextmanager
    def subscribe(self, topics: frozenset[str]) -> Iterator[Subscription]:
        subscription = Subscription(topics, self.queue_size)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    async def announce(self, event: EventRecord) -> None:
        """After commit: wake this process at once, and tell the others. The mutation
        does not wait for the broker: a broker that is away costs it nothing."""
        self.published += 1
        self._wake.set()
        if len(self._publishing) < MAX_PENDING_PUBLISHES:
            task = asyncio.create_task(self._publish(event.id))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        # Past the bound the broker is not keeping up; the others will poll.

    async def _publish(self, event_id: int) -> None:
        message = str(event_id)
        if len(self._echoes) >= MAX_PENDING_PUBLISHES:  # echoes that never came: forgotten
            self._echoes.clear()
        self._echoes.add(message)  # before: the memory broker echoes within publish()
        try:
            await self.broadcast.publish(CHANNEL, message)
        except Exception as exc:  # the outbox has it; other processes poll meanwhile
            self._echoes.discard(message)
            logger.warning("could not publish event %s to the broker: %s", event_id, exc)

    async def stream(self, topics: frozenset[str], *, after: int | None,
                     matches: Callable[[EventRecord], bool] = lambda _e: True,
                     ) -> AsyncIterator[EventRecord]:
        """Every event of ``topics`` after ``after`` (or from now), in order, once.

        Registering before replaying means no event falls between the replay and
        the live feed; ids tell the duplicates apart.
        """
        with self.subscribe(topics) as subscription:
            # "From now" is what the database holds now: the hub may not have handed
            # out the latest commits yet, and those happened before this subscription.
            last = await last_event_id(self.db) if after is None else after
            if after is not None:
                while True:
                    batch = await events_after(self.db, last, topics=topics, limit=BATCH)
                    for event in batch:
                        last = event.id
                        if matches(event):
                            self.delivered += 1
                            yield event
                    if len(batch) < BATCH:
                        break
            while True:
                event = await subscription.next()
                if event.id <= last:
                    continue
                last = event.id
                if matches(event):
                    self.delivered += 1
                    yield event

    async def _hear(self, channel: str) -> None:
        async with self.broadcast.subscribe(channel) as subscriber:
            async for event in subscriber:
                if channel == CHANNEL and event.message in self._echoes:
                    self._echoes.discard(event.message)
                    continue
                self._wake.set()

    async def _dispatch(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for may swallow the
            # cancel of stop() when the wake-up lands at the same moment, and the hub
            # would then hold the shutdown for a whole poll interval.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while True:
                    batch = await events_after(self.db, self.position, limit=BATCH)
                    for event in batch:
                        self.position = event.id
                        for subscription in list(self._subscriptions):
                            if event.topic in subscription.topics:
                                subscription.offer(event)
                        for topic, listener in self._listeners:
                            if event.topic == topic:
                                listener(event)
                    if len(batch) < BATCH:
                        break
            except Exception:  # the database is away: keep the position, try again
                logger.exception("reading the event outbox failed; retrying")
                await asyncio.sleep(1)

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(3600)  # not at start-up: it is no hurry, and start-up is busy
            try:
                removed = await prune_events(self.db, older_than=self.retention)
                if removed:
                    logger.info("pruned %d events older than %s", removed, self.retention)
            except Exception:
                logger.exception("pruning the event outbox failed")


async def announce_elsewhere(broadcast_url: str, event: EventRecord) -> None:
    """From a process without a hub (the CLI): tell the servers through the broker.
    Best effort: a server that does not hear it finds the event at its next poll."""
    if broadcast_url.startswith("memory://"):
        return  # no other process shares an in-memory broker
    broadcast = Broadcast(backend=backend_for(broadcast_url))
    try:
        await asyncio.wait_for(broadcast.connect(), timeout=5)
        await asyncio.wait_for(broadcast.publish(CHANNEL, str(event.id)), timeout=5)
    except Exception as exc:  # the outbox has it
        logger.warning("could not publish event %s to the broker: %s", event.id, exc)
    finally:
        with contextlib.suppress(Exception):
            await broadcast.disconnect()
