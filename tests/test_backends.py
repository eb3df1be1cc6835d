"""Our broadcaster backends against real brokers: a message crosses from one process's
broadcaster to another's, a lost connection ends in RECONNECTED and delivery again, and
a broker that is down or silent never blocks start-up, a publisher or a subscriber.

Redis is a throwaway redis-server of each test's own, so stopping it disturbs no other
test. PostgreSQL is TEST_DATABASE_URL's server; without it those cases do not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from broadcaster import Broadcast, Event
from broadcaster._backends.memory import MemoryBackend
from broadcaster._base import Subscriber

from subscriptions.backends import (
    RECONNECTED,
    AnnouncingMemoryBackend,
    BrokerUnavailable,
    ResilientPostgresBackend,
    ResilientRedisBackend,
    backend_for,
)
from tests.databases import POSTGRES_URL
from tests.processes import RedisServer, free_port

BROKERS = ["redis", "postgres"] if POSTGRES_URL else ["redis"]
# Mixed case: LISTEN folds an unquoted identifier to lower case and would miss it.
CHANNEL = "crmgraph_Events_test"
OTHER_CHANNEL = "crmgraph_other_test"
TIMEOUT = 5
# While the broker is down the backoff grows towards 5 s between attempts.
RECONNECT_TIMEOUT = 10

ResilientBackend = ResilientRedisBackend | ResilientPostgresBackend
AnyBackend = ResilientBackend | AnnouncingMemoryBackend


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Broker:
    """A running broker, and how to cut a process off from it and let it back."""

    url: str
    backend_class: type[ResilientBackend]
    redis: RedisServer | None = None

    def new_backend(self, url: str | None = None, **options: float) -> ResilientBackend:
        return self.backend_class(url or self.url, **options)

    def via(self, proxy: SilentProxy) -> str:
        """This broker's URL, reached through the proxy."""
        parts = urlsplit(self.url)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{proxy.port}" if user else f"127.0.0.1:{proxy.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 5432

    async def interrupt(self, subscriber: Process, publisher: Process) -> None:
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop)
            return
        # PostgreSQL stays up: end the subscriber's LISTEN connection and the
        # publisher's NOTIFY connection from the server side.
        assert isinstance(subscriber.backend, ResilientPostgresBackend)
        assert isinstance(publisher.backend, ResilientPostgresBackend)
        assert subscriber.backend._listener is not None
        assert publisher.backend._publisher is not None
        pids = [subscriber.backend._listener.get_server_pid(),
                publisher.backend._publisher.get_server_pid()]
        assert POSTGRES_URL is not None
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            terminated = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE pid = any($1::int[]) AND pg_terminate_backend(pid)", pids)
        finally:
            await admin.close()
        assert terminated == len(pids)

    async def restore(self) -> None:
        if self.redis is not None:
            await asyncio.to_thread(self.redis.start)


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Broker:
    if request.param == "postgres":
        assert POSTGRES_URL is not None
        return Broker(POSTGRES_URL, ResilientPostgresBackend)
    server: RedisServer = request.getfixturevalue("redis_server")
    return Broker(server.url, ResilientRedisBackend, redis=server)


class SilentProxy:
    """A TCP proxy to a broker that can go silent: connections stay open and nothing
    passes, like a network that drops packets. No FIN reaches anyone: only a health
    check or a timeout can tell."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._passing = asyncio.Event()
        self._passing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> SilentProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def go_silent(self) -> None:
        self._passing.clear()

    def pass_again(self) -> None:
        self._passing.set()

    async def _handle(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            broker_reader, broker_writer = await asyncio.open_connection(
                "127.0.0.1", self._target_port)
            try:
                await asyncio.gather(self._pipe(client_reader, broker_writer),
                                     self._pipe(broker_reader, client_writer))
            finally:
                broker_writer.close()
        finally:
            client_writer.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await self._passing.wait()
            writer.write(data)
            await writer.drain()
        writer.close()


@dataclass
class Process:
    """One server process's broadcaster."""

    broadcast: Broadcast
    backend: AnyBackend
    reconnections: Subscriber
    messages: Subscriber


@asynccontextmanager
async def server_process(backend: AnyBackend) -> AsyncIterator[Process]:
    # Subscribed before connect, as the app does, so the first RECONNECTED is seen.
    broadcast = Broadcast(backend=backend)
    async with (broadcast.subscribe(RECONNECTED) as reconnections,
                broadcast.subscribe(CHANNEL) as messages):
        await asyncio.wait_for(broadcast.connect(), TIMEOUT)
        try:
            yield Process(broadcast, backend, reconnections, messages)
        finally:
            await asyncio.wait_for(broadcast.disconnect(), TIMEOUT)


async def next_event(subscriber: Subscriber, within: float = TIMEOUT) -> Event:
    return await asyncio.wait_for(subscriber.get(), within)


async def publish_until_received(publisher: Broadcast, subscriber: Subscriber, text: str,
                                 channel: str = CHANNEL) -> None:
    """A Redis SUBSCRIBE is not acknowledged to the task that sends it, so the first
    message may reach the broker before it: publish again until one arrives. Messages
    of earlier steps may turn up first: a publish that timed out may still have been
    delivered, which no client can rule out."""

    async def attempt() -> Event:
        for number in itertools.count():
            with contextlib.suppress(BrokerUnavailable):
                await publisher.publish(channel, f"{text} {number}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    while not (event := await subscriber.get()).message.startswith(f"{text} "):
                        pass
                    return event
        raise AssertionError("unreachable")

    event = await asyncio.wait_for(attempt(), TIMEOUT)
    assert event.channel == channel


async def test_a_message_crosses_from_one_process_to_another(broker: Broker):
    async with (server_process(broker.new_backend()) as publisher,
                server_process(broker.new_backend()) as subscriber):
        assert await next_event(subscriber.reconnections) == Event(RECONNECTED, "")
        assert subscriber.backend.healthy
        await publish_until_received(publisher.broadcast, subscriber.messages, "hello")


async def test_a_lost_connection_ends_in_reconnected_and_delivery_again(broker: Broker):
    async with (server_process(broker.new_backend()) as publisher,
                server_process(broker.new_backend()) as subscriber):
        await next_event(subscriber.reconnections)
        await publish_until_received(publisher.broadcast, subscriber.messages, "before")

        await broker.interrupt(subscriber, publisher)
        await broker.restore()

        assert await next_event(subscriber.reconnections, RECONNECT_TIMEOUT) == Event(
            RECONNECTED, "")
        assert subscriber.backend.healthy
        await publish_until_received(publisher.broadcast, subscriber.messages, "after")
        # Once per reconnection, not once per attempt or per message.
        with pytest.raises(TimeoutError):
            await next_event(subscriber.reconnections, 0.3)


async def test_a_silent_network_is_noticed_and_never_hangs_a_publisher(broker: Broker):
    async with SilentProxy(broker.port) as proxy:
        # A short health check interval keeps the test short; the default is 5 s.
        silent_side = broker.new_backend(broker.via(proxy), health_check_interval=0.5)
        async with (server_process(broker.new_backend()) as publisher,
                    server_process(silent_side) as subscriber):
            await next_event(subscriber.reconnections)
            # Through the proxy both ways first, so both connections exist when it falls silent.
            await publish_until_received(subscriber.broadcast, subscriber.messages, "hello")

            proxy.go_silent()
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable):
                await asyncio.wait_for(subscriber.broadcast.publish(CHANNEL, "lost"), 3)
            assert time.monotonic() - started < 3
            # Nothing was closed: only the PING or SELECT 1 going unanswered tells.
            for _ in range(TIMEOUT * 50):
                if not subscriber.backend.healthy:
                    break
                await asyncio.sleep(0.02)
            assert not subscriber.backend.healthy

            proxy.pass_again()
            assert await next_event(subscriber.reconnections, RECONNECT_TIMEOUT) == Event(
                RECONNECTED, "")
            await publish_until_received(publisher.broadcast, subscriber.messages, "after")
            await publish_until_received(subscriber.broadcast, subscriber.messages, "mine")


async def test_while_redis_is_down_publish_fails_fast_and_subscribe_is_remembered(
        redis_server: RedisServer):
    async with (server_process(ResilientRedisBackend(redis_server.url)) as publisher,
                server_process(ResilientRedisBackend(redis_server.url)) as subscriber):
        await next_event(subscriber.reconnections)
        await asyncio.to_thread(redis_server.stop)

        # The first publish meets the pooled connection the server closed, the second a
        # refused connect: both fail, and fast.
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable):
                await asyncio.wait_for(publisher.broadcast.publish(CHANNEL, "lost"), 3)
            assert time.monotonic() - started < 3
        for _ in range(TIMEOUT * 50):
            if not subscriber.backend.healthy:
                break
            await asyncio.sleep(0.02)
        assert not subscriber.backend.healthy

        async with contextlib.AsyncExitStack() as stack:
            # A request subscribing meanwhile neither waits nor fails: it is remembered.
            other = await asyncio.wait_for(
                stack.enter_async_context(subscriber.broadcast.subscribe(OTHER_CHANNEL)), 1)
            await asyncio.to_thread(redis_server.start)
            assert await next_event(subscriber.reconnections, RECONNECT_TIMEOUT) == Event(
                RECONNECTED, "")
            assert subscriber.backend.healthy
            await publish_until_received(publisher.broadcast, subscriber.messages, "again")
            await publish_until_received(publisher.broadcast, other, "other",
                                         channel=OTHER_CHANNEL)


async def test_connect_with_redis_down_returns_at_once_and_messages_flow_when_it_is_up(
        redis_server: RedisServer):
    await asyncio.to_thread(redis_server.stop)
    started = time.monotonic()
    async with server_process(ResilientRedisBackend(redis_server.url)) as subscriber:
        assert time.monotonic() - started < 1.5
        assert not subscriber.backend.healthy

        await asyncio.to_thread(redis_server.start)
        assert await next_event(subscriber.reconnections, RECONNECT_TIMEOUT) == Event(
            RECONNECTED, "")
        async with server_process(ResilientRedisBackend(redis_server.url)) as publisher:
            await publish_until_received(publisher.broadcast, subscriber.messages, "hello")


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never answers: a hung broker."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


@pytest.mark.parametrize("kind", BROKERS)
@pytest.mark.parametrize("failure", ["refused", "silent"])
async def test_an_unreachable_broker_blocks_nothing(kind: str, failure: str, silent_port: int):
    port = silent_port if failure == "silent" else free_port()
    backend = backend_for(f"redis://127.0.0.1:{port}/0" if kind == "redis"
                          else f"postgresql://postgres@127.0.0.1:{port}/test")
    assert isinstance(backend, ResilientRedisBackend | ResilientPostgresBackend)

    started = time.monotonic()
    await asyncio.wait_for(backend.connect(), 2)
    assert time.monotonic() - started < 1.5
    assert not backend.healthy

    await asyncio.wait_for(backend.subscribe(CHANNEL), 0.5)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        await asyncio.wait_for(backend.publish(CHANNEL, "lost"), 3)
    assert time.monotonic() - started < 3

    await asyncio.wait_for(backend.disconnect(), 2)
    await asyncio.wait_for(backend.disconnect(), 2)
    assert not [task for task in asyncio.all_tasks()
                if task.get_name().startswith("crmgraph-broadcast")]


async def test_memory_backend_announces_reconnected_once_then_delivers():
    backend = backend_for("memory://")
    assert isinstance(backend, AnnouncingMemoryBackend)
    async with server_process(backend) as process:
        assert await next_event(process.reconnections) == Event(RECONNECTED, "")
        await process.broadcast.publish(CHANNEL, "hello")
        assert await next_event(process.messages) == Event(CHANNEL, "hello")
        with pytest.raises(TimeoutError):
            await next_event(process.reconnections, 0.2)


@pytest.mark.parametrize(("url", "expected"), [
    ("memory://", AnnouncingMemoryBackend),
    ("redis://127.0.0.1:6379/0", ResilientRedisBackend),
    ("rediss://user:secret@redis.example.com:6380/0", ResilientRedisBackend),
    ("postgres://postgres@127.0.0.1/test", ResilientPostgresBackend),
    ("postgresql://postgres@127.0.0.1:5432/test", ResilientPostgresBackend),
    ("postgresql+asyncpg://postgres@127.0.0.1:5432/test", ResilientPostgresBackend),
])
def test_backend_for_picks_the_backend_by_scheme(url: str, expected: type):
    backend = backend_for(url)
    assert type(backend) is expected
    if expected is AnnouncingMemoryBackend:
        assert isinstance(backend, MemoryBackend)


@pytest.mark.parametrize("url", ["kafka://127.0.0.1:9092", "redis-stream://127.0.0.1",
                                 "mysql://user:secret@127.0.0.1/db", "127.0.0.1:6379"])
def test_backend_for_rejects_other_schemes(url: str):
    with pytest.raises(ValueError, match="Unsupported broadcast URL scheme") as raised:
        backend_for(url)
    assert "secret" not in str(raised.value)
