"""Broadcaster backends that outlive their broker, chosen by URL scheme.

broadcaster's own Redis and PostgreSQL backends let ``Broadcast._listener`` die on the
first broker error, after which subscribers wait forever, and its PostgreSQL backend
shares one never-reconnected connection between LISTEN and NOTIFY (DESIGN.md, Known
traps). These keep a supervised listener connection that reconnects with backoff and
re-subscribes, and a separate publishing connection that fails fast and reconnects on
the next publish. After every (re)connection of the listener, ``next_published()``
returns ``Event(RECONNECTED, "")`` once: messages published meanwhile are lost, so
the application catches up from its outbox when it sees it.

Use with ``Broadcast(backend=backend_for(url))``. ``RECONNECTED`` reaches whoever is
subscribed to it at that moment; to see the one after start-up, subscribe to it
before ``Broadcast.connect()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from broadcaster import Event
from broadcaster._backends.base import BroadcastBackend
from broadcaster._backends.memory import MemoryBackend
from redis import asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

RECONNECTED = "crmgraph.reconnected"

# connect() waits this long for the first connection, so server start-up never does more.
FIRST_CONNECT_WAIT = 1.0
# Bounds every step that waits for the broker: a connection, publish, subscribe, a PING.
# Always with asyncio.timeout: on Python 3.11 asyncio.wait_for may swallow a cancellation,
# and then disconnect() could not stop the supervisor.
OPERATION_TIMEOUT = 2.0
# An idle listener proves its connection this often; a half-open TCP socket says nothing.
HEALTH_CHECK_INTERVAL = 5.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0


class BrokerUnavailable(Exception):
    """The broker could not be reached, or did not answer in time, for a publish. The
    message may be lost, or may still arrive (a timeout cannot tell): the outbox and its
    event ids make either harmless."""


def backend_for(url: str) -> BroadcastBackend:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return AnnouncingMemoryBackend(url)
    if scheme in ("redis", "rediss"):
        return ResilientRedisBackend(url)
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        return ResilientPostgresBackend(url)
    # The scheme only: the rest of the URL may hold a password.
    raise ValueError(f"Unsupported broadcast URL scheme {scheme!r}: use memory://, "
                     "redis://, rediss://, postgres:// or postgresql://")


class AnnouncingMemoryBackend(MemoryBackend):
    """broadcaster's in-process backend, announcing RECONNECTED once after connect like
    the resilient backends, so the application has one code path for all three."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._announce = False

    @property
    def healthy(self) -> bool:
        return True

    async def connect(self) -> None:
        await super().connect()
        self._announce = True

    async def next_published(self) -> Event:
        # MemoryBackend drops events of unsubscribed channels; Broadcast already does that.
        if self._announce:
            self._announce = False
            return Event(RECONNECTED, "")
        return await super().next_published()


class _ResilientBackend(BroadcastBackend):
    """A supervisor task owns the listener connection: it connects, re-subscribes the
    remembered channels, announces RECONNECTED, watches the connection until it fails,
    and starts again after a backoff. ``next_published()`` only reads its queue, so it
    never sees a broker error. Subclasses supply the broker-specific steps."""

    def __init__(self, url: str, *, health_check_interval: float = HEALTH_CHECK_INTERVAL
                 ) -> None:
        self._url = url
        self._health_check_interval = health_check_interval
        self._channels: set[str] = set()
        # Drained at once by Broadcast._listener, which never blocks: no bound needed here.
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._supervisor: asyncio.Task[None] | None = None
        self._healthy = False

    @property
    def healthy(self) -> bool:
        """True while the listener connection is up and subscribed."""
        return self._healthy

    async def connect(self) -> None:
        first_attempt = asyncio.Event()
        self._supervisor = asyncio.create_task(
            self._supervise(first_attempt), name=f"crmgraph-broadcast-{type(self).__name__}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_CONNECT_WAIT):
                await first_attempt.wait()
        if not first_attempt.is_set():
            log.warning("%s: broker not answering after %s s; starting without it",
                        type(self).__name__, FIRST_CONNECT_WAIT)

    async def disconnect(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            # The supervisor closes the listener connection on its way out. Cancel again
            # should a library swallow the cancellation, rather than hang here.
            while not supervisor.done():
                supervisor.cancel()
                await asyncio.wait({supervisor}, timeout=1.0)
            await asyncio.gather(supervisor, return_exceptions=True)
        await self._close_publisher()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        await self._sync_one(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        await self._sync_one(channel)

    async def next_published(self) -> Event:
        return await self._events.get()

    async def _sync_one(self, channel: str) -> None:
        # While the listener is down the supervisor subscribes the remembered set when it
        # is back; a failure here is its to notice, not the subscribing request's.
        if channel == RECONNECTED or not self._healthy:
            return
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT):
                if channel in self._channels:
                    await self._listen({channel})
                else:
                    await self._unlisten({channel})
        except Exception as error:
            log.warning("%s: (un)subscribing %r failed: %r", type(self).__name__, channel, error)

    async def _supervise(self, first_attempt: asyncio.Event) -> None:
        name = type(self).__name__
        failures = 0
        warned = False  # one warning per outage, not one per attempt
        while True:
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT):
                    await self._open_listener()
                    await self._listen_to_remembered()
                self._healthy = True
                failures, warned = 0, False
                first_attempt.set()
                log.info("%s: listener connected", name)
                self._events.put_nowait(Event(RECONNECTED, ""))
                await self._watch()
            except Exception as error:
                what = "listener connection lost" if self._healthy else "cannot connect"
                log.log(logging.DEBUG if warned else logging.WARNING,
                        "%s: %s (%s: %s); retrying with backoff",
                        name, what, type(error).__name__, error)
                warned = True
            finally:
                self._healthy = False
                await self._close_listener()
            first_attempt.set()
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**failures)
            failures += 1
            # Jitter, so that many server processes do not reconnect in lockstep.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _listen_to_remembered(self) -> None:
        # Requests may (un)subscribe while we await: loop until the broker has the set.
        # The last check and `healthy = True` in _supervise run with no await between.
        listening: set[str] = set()
        while listening != (wanted := self._channels - {RECONNECTED}):
            if wanted - listening:
                await self._listen(wanted - listening)
            if listening - wanted:
                await self._unlisten(listening - wanted)
            listening = wanted

    # Broker-specific steps.

    async def _open_listener(self) -> None:
        raise NotImplementedError

    async def _listen(self, channels: set[str]) -> None:
        raise NotImplementedError

    async def _unlisten(self, channels: set[str]) -> None:
        raise NotImplementedError

    async def _watch(self) -> None:
        """Run until the listener connection fails, then raise."""
        raise NotImplementedError

    async def _close_listener(self) -> None:
        """Close the listener connection, if any; never raises."""
        raise NotImplementedError

    async def _close_publisher(self) -> None:
        raise NotImplementedError


_REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


class ResilientRedisBackend(_ResilientBackend):
    def __init__(self, url: str, *, health_check_interval: float = HEALTH_CHECK_INTERVAL
                 ) -> None:
        super().__init__(url, health_check_interval=health_check_interval)
        self._publisher: aioredis.Redis | None = None
        self._listener_client: aioredis.Redis | None = None
        self._pubsub: PubSub | None = None

    def _client(self) -> aioredis.Redis:
        # No retries inside redis-py: a failure must reach us at once, we decide what next.
        # No socket_timeout: redis-py would wrap every send in asyncio.wait_for (see
        # OPERATION_TIMEOUT); our own timeouts bound every call instead.
        return aioredis.Redis.from_url(
            self._url, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0))

    async def publish(self, channel: str, message: Any) -> None:
        # The pool drops a connection that failed or was cancelled mid-command and opens
        # a new one for the next publish: that is the lazy reconnection.
        if self._publisher is None:
            self._publisher = self._client()
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT):
                await self._publisher.publish(channel, message)
        except _REDIS_UNAVAILABLE as error:
            raise BrokerUnavailable(f"Redis PUBLISH to {channel!r} failed: {error!r}") from error

    async def _close_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.aclose()

    async def _open_listener(self) -> None:
        # A new client per connection: redis-py's own silent re-subscription would
        # bypass RECONNECTED.
        self._listener_client = self._client()
        self._pubsub = self._listener_client.pubsub()
        await self._pubsub.connect()
        # An accepted TCP connection proves little (a hung server, a load balancer):
        # healthy means Redis answered.
        await self._pubsub.ping()
        if await self._pubsub.get_message(timeout=OPERATION_TIMEOUT) is None:
            raise RedisTimeoutError("no answer to PING on the listener connection")

    def _connected_pubsub(self) -> PubSub:
        # PubSub reconnects by itself when used on a closed connection; refusing here keeps
        # every reconnection in _supervise, which announces it.
        pubsub = self._pubsub
        if pubsub is None or pubsub.connection is None or not pubsub.connection.is_connected:
            raise RedisConnectionError("listener connection is closed")
        return pubsub

    async def _listen(self, channels: set[str]) -> None:
        await self._connected_pubsub().subscribe(*channels)

    async def _unlisten(self, channels: set[str]) -> None:
        await self._connected_pubsub().unsubscribe(*channels)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        heard_at, pinged = loop.time(), False
        while True:
            message = await self._connected_pubsub().get_message(
                timeout=min(1.0, self._health_check_interval))
            if message is not None:
                heard_at, pinged = loop.time(), False
                if message["type"] == "message":
                    self._events.put_nowait(Event(
                        message["channel"].decode(errors="replace"),
                        message["data"].decode(errors="replace")))
            elif loop.time() - heard_at >= self._health_check_interval:
                if pinged:
                    raise RedisTimeoutError("no answer to PING on the listener connection")
                async with asyncio.timeout(OPERATION_TIMEOUT):
                    await self._connected_pubsub().ping()
                heard_at, pinged = loop.time(), True

    async def _close_listener(self) -> None:
        pubsub, client = self._pubsub, self._listener_client
        self._pubsub = self._listener_client = None
        with contextlib.suppress(Exception):
            if pubsub is not None:
                await pubsub.aclose()
        with contextlib.suppress(Exception):
            if client is not None:
                await client.aclose()


_POSTGRES_UNAVAILABLE = (
    OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
    # 57P01 admin shutdown, 57P03 starting up; 53300 too many connections.
    asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError,
)


class ResilientPostgresBackend(_ResilientBackend):
    """LISTEN on one connection, NOTIFY on another: a NOTIFY must not queue behind the
    listener's health check, nor fail because the listener is reconnecting."""

    def __init__(self, url: str, *, health_check_interval: float = HEALTH_CHECK_INTERVAL
                 ) -> None:
        # asyncpg takes postgres:// and postgresql://, not SQLAlchemy's +asyncpg.
        super().__init__("postgresql" + url[url.index("://"):],
                         health_check_interval=health_check_interval)
        self._publisher: asyncpg.Connection | None = None
        # An asyncpg connection runs one operation at a time: concurrent publishes queue
        # here, and request-driven LISTENs wait for the health check.
        self._publish_lock = asyncio.Lock()
        self._listener_lock = asyncio.Lock()
        self._listener: asyncpg.Connection | None = None
        self._lost = asyncio.Event()

    async def publish(self, channel: str, message: Any) -> None:
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT), self._publish_lock:
                try:
                    if self._publisher is None or self._publisher.is_closed():
                        self._publisher = await asyncpg.connect(
                            self._url, timeout=OPERATION_TIMEOUT)
                    await self._publisher.execute("SELECT pg_notify($1, $2)", channel, message)
                except (*_POSTGRES_UNAVAILABLE, asyncio.CancelledError):
                    # Broken, or cancelled mid-command by our timeout: connect anew next time.
                    if self._publisher is not None:
                        self._publisher.terminate()
                        self._publisher = None
                    raise
        except _POSTGRES_UNAVAILABLE as error:
            raise BrokerUnavailable(f"PostgreSQL NOTIFY on {channel!r} failed: {error!r}"
                                    ) from error

    async def _close_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await _close(publisher)

    async def _open_listener(self) -> None:
        self._lost = asyncio.Event()
        self._listener = await asyncpg.connect(self._url, timeout=OPERATION_TIMEOUT)
        lost = self._lost
        # Called when the socket closes: no need to wait for the next health check.
        self._listener.add_termination_listener(lambda _connection: lost.set())

    def _on_notification(self, _connection: Any, _pid: int, channel: str, payload: str
                         ) -> None:
        self._events.put_nowait(Event(channel, payload))

    async def _listen(self, channels: set[str]) -> None:
        async with self._listener_lock:
            for channel in channels:
                # add_listener quotes the channel as an identifier for LISTEN.
                await self._listener_connection().add_listener(channel, self._on_notification)

    async def _unlisten(self, channels: set[str]) -> None:
        async with self._listener_lock:
            for channel in channels:
                await self._listener_connection().remove_listener(channel, self._on_notification)

    def _listener_connection(self) -> asyncpg.Connection:
        if self._listener is None or self._listener.is_closed():
            raise asyncpg.ConnectionDoesNotExistError("listener connection is closed")
        return self._listener

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._health_check_interval):
                    await self._lost.wait()
            if self._lost.is_set():
                raise asyncpg.ConnectionDoesNotExistError("listener connection terminated")
            async with self._listener_lock:
                await self._listener_connection().fetchval("SELECT 1", timeout=OPERATION_TIMEOUT)

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await _close(listener)


async def _close(connection: asyncpg.Connection) -> None:
    # Politely when the server is there, at once when it is not.
    try:
        await connection.close(timeout=1.0)
    except Exception:
        connection.terminate()
