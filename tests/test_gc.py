"""The server tunes Python's cyclic garbage collector once it has started (server/app.py
tune_gc): start-up objects frozen out of its view, automatic collections only past a
million objects more alive, and the young collected on a clock (collect_garbage).
bench/ measures what it saves; here, that it is done."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import httpx
import orjson
import pytest

from loaders.base import Loader
from loaders.container import Loaders
from loaders.query import Page
from schema.rows import RowBacked
from server import app as server_app
from server.app import GC_BUSY_YOUNG, GC_EVERY_SECONDS, GC_THRESHOLDS, create_app
from tests.factories import make_account, make_opportunity, make_org, make_pipeline
from tests.graphql_client import GraphQLClient


async def test_a_started_server_has_frozen_its_start_up_objects(app: Any) -> None:
    assert gc.get_threshold() == GC_THRESHOLDS
    # The schema and the tables are among the frozen objects: a few hundred thousand.
    assert gc.get_freeze_count() > 50_000


class _Cycle:
    def __init__(self) -> None:
        self.itself = self


async def test_cyclic_garbage_is_collected_on_a_clock(app: Any) -> None:
    """Far below the automatic threshold, a cycle left behind is still collected within
    a second or two: it does not wait for a million more objects."""
    cycle = _Cycle()
    collected = weakref.ref(cycle)
    del cycle
    assert collected() is not None  # reference counting alone cannot free a cycle
    for _ in range(int(3 * GC_EVERY_SECONDS / 0.1)):
        if collected() is None:
            break
        await asyncio.sleep(0.1)
    assert collected() is None


async def _collected_within(seconds: float, collected: weakref.ref[Any]) -> bool:
    for _ in range(int(seconds / 0.1)):
        if collected() is None:
            return True
        await asyncio.sleep(0.1)
    return collected() is None


def _left_cycle() -> weakref.ref[Any]:
    cycle = _Cycle()
    return weakref.ref(cycle)


async def test_the_clock_waits_while_requests_keep_many_objects_young(
        app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """While HTTP requests are in flight and many objects are young (mostly theirs,
    alive), the clock's collection waits: walking them would free nothing. It waits at
    most GC_MAX_WAIT_SECONDS. Without requests in flight it does not wait: boards
    connecting by the thousand leave garbage of their own."""
    monkeypatch.setattr(server_app, "GC_MAX_WAIT_SECONDS", 3600.0)
    gc.collect()
    alive = [[] for _ in range(GC_BUSY_YOUNG + 10_000)]  # young containers, held
    monkeypatch.setattr(server_app, "requests_in_flight", 1)
    collected = _left_cycle()
    await asyncio.sleep(2.5 * GC_EVERY_SECONDS)  # two ticks at least
    assert gc.get_count()[0] >= GC_BUSY_YOUNG
    assert collected() is not None  # waited
    monkeypatch.setattr(server_app, "GC_MAX_WAIT_SECONDS", 0.0)
    assert await _collected_within(3 * GC_EVERY_SECONDS, collected)

    monkeypatch.setattr(server_app, "GC_MAX_WAIT_SECONDS", 3600.0)
    alive += [[] for _ in range(GC_BUSY_YOUNG + 10_000)]  # young again
    monkeypatch.setattr(server_app, "requests_in_flight", 0)
    collected = _left_cycle()
    assert await _collected_within(3 * GC_EVERY_SECONDS, collected)
    assert len(alive) > GC_BUSY_YOUNG


async def test_a_request_leaves_no_cyclic_garbage_holding_its_rows(client: Any) -> None:
    """Once answered, a request's loaders, pages, rows and objects are freed by reference
    counting: none of them waits for the cyclic collector (graphql-core's executor
    refers to itself and to the context; a loader task's context to the request's
    RequestWork)."""
    org = await make_org(client.db)
    _pipeline, phases = await make_pipeline(client.db)
    for _ in range(3):
        account = await make_account(client.db, org.rep_a1)
        await make_opportunity(client.db, account, phases[0])
    query = """{ accounts(first: 10) { nodes { name owner { name }
                 opportunities(first: 5) { nodes { name amount } } } } }"""
    await client.query(query, as_user=org.admin)  # plans and caches made
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        data = await client.query(query, as_user=org.admin)
        gc.collect()
        left = {type(thing) for thing in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert len(data["accounts"]["nodes"]) == 3
    held = {kind.__name__ for kind in left
            if issubclass(kind, (Loaders, Loader, Page, RowBacked, asyncio.Future))
            or kind.__name__ == "PageRow"}
    assert not held, held


async def test_a_requests_loaders_are_let_go_once_its_response_is_sent(
        client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP request's loaders (every row and object it read) are let go after its
    response has been sent, which the client need not wait for; by reference
    counting, before the request's ASGI call returns."""
    org = await make_org(client.db)
    await make_account(client.db, org.rep_a1)
    made: list[weakref.ref[Loaders]] = []
    make = Loaders.__init__

    def kept(self: Loaders, *args: Any, **kwargs: Any) -> None:
        make(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(Loaders, "__init__", kept)
    body = orjson.dumps({"query": "{ accounts(first: 5) { nodes { name } } }"})
    alive_when_sent: list[bool] = []
    sent: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])
            alive_when_sent.append(any(ref() is not None for ref in made))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/graphql", "raw_path": b"/graphql",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("testserver", 80), "headers": [
                 (b"host", b"testserver"), (b"content-type", b"application/json"),
                 (b"authorization", f"Bearer {client.token(org.admin)}".encode())]}
    gc.disable()  # freed by reference counting alone
    try:
        await client.app(scope, receive, send)
        alive_after = [ref() is not None for ref in made]
    finally:
        gc.enable()
    assert orjson.loads(b"".join(sent))["data"]["accounts"]["nodes"]
    assert made
    assert alive_when_sent == [True]
    assert alive_after == [False] * len(made)


async def test_requests_in_flight_are_counted_for_the_collector(client: Any) -> None:
    """The collector's wait depends on HTTP requests in flight: one is counted while it
    runs (seen from its own SQL statements) and no longer once answered."""
    org = await make_org(client.db)
    seen: list[int] = []
    client.db.watchers.append(lambda _sql: seen.append(server_app.requests_in_flight))
    try:
        await client.query("{ viewer { name } }", as_user=org.admin)
    finally:
        client.db.watchers.pop()
    assert seen, "the request sent no statement"
    assert min(seen) >= 1, seen
    assert server_app.requests_in_flight == 0


async def test_a_stopped_apps_schema_is_not_held_by_the_process(settings: Any, db: Any) -> None:
    """What the process shares between apps (the parse cache) holds nothing of a schema:
    once an app has stopped, its schema is freed. One validation cache for the process
    held the schema of each of its entries: the test suite, which builds an app per
    test, kept dozens alive, millions of objects that each older collection walked."""
    org = await make_org(db)
    application = create_app(settings)
    async with application.router.lifespan_context(application), httpx.AsyncClient(
            transport=httpx.ASGITransport(application), base_url="http://testserver") as http:
        data = await GraphQLClient(application, http).query(
            "{ viewer { name } }", as_user=org.admin)
    assert data["viewer"]["name"]
    schema = weakref.ref(application.state.schema)
    del application, http
    gc.collect()
    assert schema() is None
