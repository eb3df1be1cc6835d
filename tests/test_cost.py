"""Query cost: the price of a document, the per-request maximum, the per-client budget
(token buckets in memory or in Redis) and ``extensions.cost`` on every result."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema, parse
from redis.asyncio import Redis
from starlette.applications import Starlette

import server.cost as cost_module
from models.db import Database
from server.app import create_app
from server.cost import (
    INTROSPECTION_COST,
    LIST_FACTOR,
    MAX_COST,
    MUTATION_COST,
    Cost,
    CostLimits,
    Priced,
    price,
)
from server.graphql import executable_schema
from server.ratelimit import MemoryLimiter, RedisLimiter, create_limiter, limiter_url
from server.settings import Settings, SettingsError
from tests.databases import REDIS_URL
from tests.factories import Org, make_account, make_contact, make_org
from tests.graphql_client import GraphQLClient, websocket

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
BUDGET = 300  # a minute, for users: refills 5 a second
PARTNER_BUDGET = 15
MAX_QUERY_COST = 250
HUNDRED = "{ accounts(first: 100) { nodes { id } } }"  # costs 100
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Small limits, and buckets of this app's own whatever BROADCAST_URL says.
    return dataclasses.replace(
        settings, max_query_cost=MAX_QUERY_COST, cost_budget_per_minute=BUDGET,
        partner_cost_budget_per_minute=PARTNER_BUDGET, rate_limit_url="memory://")


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return executable_schema(Settings())._schema


def requested(schema: GraphQLSchema, document: str, variables: dict[str, Any] | None = None,
              operation_name: str | None = None) -> int:
    return price(schema, parse(document), operation_name, variables,
                 default_page_size=50, max_page_size=500).requested


def cost_of(response: httpx.Response) -> dict[str, Any]:
    return response.json()["extensions"]["cost"]


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


# --- the price of a document ---------------------------------------------------------------


def test_nested_connections_multiply_by_their_page_size(schema: GraphQLSchema) -> None:
    assert requested(
        schema, "{ accounts(first: 10) { nodes { contacts(first: 5) { nodes { id } } } } }"
    ) == 10 + 10 * 5
    # edges { node } is priced as nodes; cursors, counts and scalars are free, and
    # pageInfo is one object.
    assert requested(schema, """{ accounts(first: 10) { totalCount pageInfo { hasNextPage }
        edges { cursor node { name contacts(first: 5) { edges { node { id } } } } } } }"""
                     ) == 10 + 10 * 5 + 1
    assert requested(schema, "{ accounts(first: 10) { totalCount } }") == 0
    assert requested(schema, """{ accounts(last: 3) { nodes {
        owner { team { name } } opportunities(first: 2) { nodes { account { id } } } } } }"""
                     ) == 3 * (1 + 1 + 1 + 2 * (1 + 1))


def test_page_size_comes_from_first_last_variables_or_the_default(
    schema: GraphQLSchema,
) -> None:
    document = "query ($n: Int) { accounts(first: $n) { nodes { id } } }"
    assert requested(schema, document, {"n": 7}) == 7
    assert requested(schema, document) == 50  # the default page size
    assert requested(schema, "query ($n: Int = 8) { accounts(last: $n) { nodes { id } } }") == 8
    # Beyond the largest page the field is refused when it runs: priced at the largest.
    assert requested(schema, "{ accounts(first: 100000) { nodes { id } } }") == 500


def test_fragments_count_as_they_execute(schema: GraphQLSchema) -> None:
    document = """
        { accounts(first: 4) { nodes { ...A ... on Account { parent { id } } } } }
        fragment A on Account { contacts(first: 5) { nodes { ...C } } parent { name } }
        fragment C on Contact { account { id } }
    """
    # Per account: contacts 5 * (contact 1 + account 1), and one parent (merged).
    assert requested(schema, document) == 4 * (1 + 5 * 2 + 1)
    # The same fragment spread twice, and the same field asked twice, count once.
    assert requested(schema, """{ viewer { ...U ...U name } viewer { team { id } } }
                                fragment U on User { team { name } }""") == 2


def test_skip_and_include_leave_out_what_does_not_run(schema: GraphQLSchema) -> None:
    document = """query ($skip: Boolean!, $include: Boolean = true) {
        a: accounts(first: 10) @skip(if: $skip) { nodes { id } }
        b: accounts(first: 20) @include(if: $include) { nodes { id } } }"""
    assert requested(schema, document, {"skip": True}) == 20
    assert requested(schema, document, {"skip": False, "include": False}) == 10
    assert requested(schema, document, {"skip": False}) == 30


def test_lists_without_pages(schema: GraphQLSchema) -> None:
    # nodes(ids:) returns one node per id; each priced as its costliest type.
    assert requested(schema, """query ($ids: [ID!]!) { nodes(ids: $ids) { id
        ... on Account { contacts(first: 2) { nodes { id } } }
        ... on Opportunity { account { contacts(first: 3) { nodes { id } } } } } }""",
                     {"ids": ["a", "b", "c", "d"]}) == 4 * (1 + 1 + 3)
    # Other lists of objects count LIST_FACTOR times.
    assert requested(schema, "{ teams { name manager { name } } }") == LIST_FACTOR * 2
    assert requested(schema, "{ viewer { name } currentWeek }") == 1


def test_introspection_and_mutations(schema: GraphQLSchema) -> None:
    assert requested(schema, "{ __schema { types { name fields { name } } } }") == (
        INTROSPECTION_COST)
    assert requested(schema, '{ __type(name: "Account") { name } __typename }') == (
        INTROSPECTION_COST)
    assert requested(schema, """mutation { createAccount(input: {name: "A"}) {
        account { id owner { name } } userErrors { code } } }""") == (
        MUTATION_COST + 1 + 2 + LIST_FACTOR)


def test_hostile_documents_are_priced_at_the_ceiling_quickly(schema: GraphQLSchema) -> None:
    # Every fragment spreads the next one three times: 3**15 fields if walked naively.
    fragments = "\n".join(
        f"fragment F{i} on Account {{ parent {{ ...F{i + 1} }} "
        f"children(first: 500) {{ nodes {{ ...F{i + 1} }} }} "
        f"edge: children(first: 500) {{ edges {{ node {{ ...F{i + 1} }} }} }} }}"
        for i in range(15)) + "\nfragment F15 on Account { id }"
    assert requested(schema, "{ accounts { nodes { ...F0 } } }\n" + fragments) == MAX_COST


def test_actual_counts_what_came_back(schema: GraphQLSchema) -> None:
    cost = price(schema, parse("""{ accounts(first: 10) { pageInfo { hasNextPage }
        edges { node { name contacts(first: 5) { nodes { id } } owner { name } } } } }"""),
                 None, None, default_page_size=50, max_page_size=500)
    assert cost.requested == 1 + 10 * (1 + 5 + 1)
    data = {"accounts": {"pageInfo": {"hasNextPage": False}, "edges": [
        {"node": {"name": "A", "contacts": {"nodes": [{"id": "1"}, {"id": "2"}]},
                  "owner": {"name": "O"}}},
        {"node": {"name": "B", "contacts": {"nodes": []}, "owner": None}},
    ]}}
    assert cost.actual(data) == 1 + (1 + 2 + 1) + 1
    assert cost.actual(None) == 0


def test_actual_counts_the_items_of_lists_and_of_lists_of_lists() -> None:
    # No field of ours is a list of lists ([[T]]), but pricing is general: each inner
    # list is walked, and nulls cost nothing at any depth.
    flat = Cost(requested=0, shape={"rows": Priced(1, {"name": _free()})})
    assert flat.actual({"rows": [{"name": "a"}, None, {"name": "b"}]}) == 2
    grid = Cost(requested=0, shape={"grid": Priced(1, {"name": _free()}, nested=True)})
    assert grid.actual({"grid": [[{"name": "a"}, None], None, [{"name": "b"}, {}]]}) == 3
    costly = Cost(requested=0, shape={"rows": Priced(1, {"owner": Priced(1, {})})})
    assert costly.actual({"rows": [{"owner": {}}, {"owner": None}, None]}) == 3


def _free() -> Priced:
    return Priced(0, None)


# --- over HTTP --------------------------------------------------------------------------------


async def test_every_response_carries_its_cost(client: GraphQLClient, org: Org) -> None:
    first = await make_account(client.db, org.admin, name="First")
    await make_account(client.db, org.admin, name="Second")
    await make_contact(client.db, first)
    query = "{ accounts(first: 10) { nodes { name contacts(first: 5) { nodes { id } } } } }"
    started = datetime.now(UTC)
    response = await client.post(query, as_user=org.rep_a1)
    assert response.status_code == 200
    assert len(response.json()["data"]["accounts"]["nodes"]) == 2
    cost = cost_of(response)
    assert cost["requested"] == 60
    assert cost["actual"] == 2 + 1  # two accounts, one contact
    assert cost["remaining"] == BUDGET - 60
    # Full again once the 60 are refilled, at 5 a second.
    reset_at = datetime.fromisoformat(cost["resetAt"])
    assert started + timedelta(seconds=11) <= reset_at <= datetime.now(UTC) + timedelta(
        seconds=13)

    second = cost_of(await client.post(query, as_user=org.rep_a1))
    assert BUDGET - 120 <= second["remaining"] < BUDGET - 60

    mutation = await client.post(
        'mutation { createAccount(input: {name: "Third"}) { account { name } '
        "userErrors { code } } }", as_user=org.rep_a1)
    assert mutation.json()["data"]["createAccount"]["account"] == {"name": "Third"}
    assert cost_of(mutation)["requested"] == MUTATION_COST + 1 + 1 + LIST_FACTOR
    assert cost_of(mutation)["actual"] == MUTATION_COST + 1 + 1  # no userErrors came back

    # A document that does not validate runs nothing and costs nothing.
    invalid = await client.post("{ accounts { nope } }", as_user=org.rep_a1)
    assert codes(invalid.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert cost_of(invalid)["requested"] == 0
    assert cost_of(invalid)["actual"] == 0
    assert cost_of(invalid)["remaining"] < second["remaining"]


async def test_a_query_over_the_maximum_is_too_complex_and_runs_nothing(
    client: GraphQLClient, org: Org
) -> None:
    await make_account(client.db, org.admin)
    for accept in (JSON, GRAPHQL_RESPONSE):
        before = client.db.statements
        response = await client.post("{ accounts(first: 300) { nodes { id } } }",
                                     as_user=org.rep_a1, headers={"Accept": accept})
        assert client.db.statements == before
        assert response.status_code == (400 if accept == GRAPHQL_RESPONSE else 200)
        body = response.json()
        assert "data" not in body
        assert codes(body) == ["QUERY_TOO_COMPLEX"]
        assert str(MAX_QUERY_COST) in body["errors"][0]["message"]
        # Refused before the budget was touched.
        assert body["extensions"]["cost"] == {
            "requested": 300, "actual": 0, "remaining": BUDGET,
            "resetAt": body["extensions"]["cost"]["resetAt"]}
    allowed = await client.post("{ accounts(first: 250) { nodes { id } } }", as_user=org.rep_a1)
    assert allowed.status_code == 200
    assert "errors" not in allowed.json()


async def test_over_its_budget_a_client_is_rate_limited_and_nothing_runs(
    client: GraphQLClient, org: Org
) -> None:
    await make_account(client.db, org.admin)
    for _ in range(BUDGET // 100):
        response = await client.post(HUNDRED, as_user=org.rep_a1)
        assert response.status_code == 200
        assert "errors" not in response.json()
    for accept in (JSON, GRAPHQL_RESPONSE):
        before = client.db.statements
        response = await client.post(HUNDRED, as_user=org.rep_a1, headers={"Accept": accept})
        assert client.db.statements == before, "a refused request reached the database"
        assert response.status_code == 429
        body = response.json()
        assert "data" not in body
        assert codes(body) == ["RATE_LIMITED"]
        retry_after = body["errors"][0]["extensions"]["retryAfter"]
        # About 100 tokens short at 5 a second.
        assert 15 <= retry_after <= 20
        assert response.headers["retry-after"] == str(retry_after)
        assert body["extensions"]["cost"]["requested"] == 100
        assert body["extensions"]["cost"]["actual"] == 0
        assert body["extensions"]["cost"]["remaining"] < 100
    # Another client has its own budget.
    other = await client.post(HUNDRED, as_user=org.rep_a2)
    assert other.status_code == 200
    assert cost_of(other)["remaining"] == BUDGET - 100


async def test_partner_keys_spend_the_partner_budget(settings: Settings) -> None:
    limits = CostLimits(settings)
    assert limits.budget_of("key:0123456789abcdef") == PARTNER_BUDGET
    assert limits.budget_of("user:7") == BUDGET
    assert limits.budget_of("anonymous") == BUDGET
    schema = executable_schema(settings)
    query = "{ __schema { queryType { name } } }"  # costs INTROSPECTION_COST, no database

    async def run(client_id: str) -> Any:
        return await schema.execute(query, context_value=SimpleNamespace(
            client_id=client_id, viewer=None, request_id="r"))

    partner = await run("key:abc")
    assert partner.errors is None
    assert partner.extensions["cost"]["remaining"] == PARTNER_BUDGET - INTROSPECTION_COST
    refused = await run("key:abc")
    assert refused.data is None
    assert [e.extensions["code"] for e in refused.errors] == ["RATE_LIMITED"]
    assert (await run("key:other")).errors is None
    assert (await run("user:1")).extensions["cost"]["remaining"] == BUDGET - INTROSPECTION_COST


async def test_a_budget_of_zero_is_no_limit(settings: Settings, db: Database) -> None:
    unlimited = create_app(dataclasses.replace(
        settings, cost_budget_per_minute=0, max_query_cost=0))
    org = await make_org(db)
    async with unlimited.router.lifespan_context(unlimited), httpx.AsyncClient(
            transport=httpx.ASGITransport(unlimited), base_url="http://testserver") as http:
        client = GraphQLClient(unlimited, http)
        for _ in range(4):
            response = await client.post("{ accounts(first: 500) { nodes { id } } }",
                                         as_user=org.rep_a1)
            assert response.status_code == 200
            assert "errors" not in response.json()
            assert cost_of(response) == {"requested": 500, "actual": 0, "remaining": None,
                                         "resetAt": None}


# --- over WebSocket ---------------------------------------------------------------------------


async def test_over_budget_a_websocket_query_or_subscription_is_refused(
    app: Starlette, client: GraphQLClient, org: Org
) -> None:
    async with websocket(app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {
            "Authorization": f"Bearer {client.token(org.admin)}"}})
        assert (await ws.receive_json(timeout=20))["type"] == "connection_ack"
        for number in range(BUDGET // 100):
            await ws.send_json({"id": f"q{number}", "type": "subscribe",
                                "payload": {"query": HUNDRED}})
            result = await ws.receive_json(timeout=20)
            assert result["type"] == "next", result
            assert "errors" not in result["payload"], result
            assert result["payload"]["extensions"]["cost"]["requested"] == 100
            assert (await ws.receive_json(timeout=20))["type"] == "complete"

        await ws.send_json({"id": "over", "type": "subscribe", "payload": {"query": HUNDRED}})
        result = await ws.receive_json(timeout=20)
        assert result["type"] == "next", result
        assert result["payload"]["data"] is None
        assert codes(result["payload"]) == ["RATE_LIMITED"]
        assert result["payload"]["extensions"]["cost"]["actual"] == 0
        assert await ws.receive_json(timeout=20) == {"id": "over", "type": "complete"}

        # Costs 1 + 1 + 100: refused when it starts, and never subscribed.
        await ws.send_json({"id": "live", "type": "subscribe", "payload": {"query": """
            subscription { opportunityPhaseChanged { eventId
                opportunity { activities(first: 100) { nodes { id } } } } }"""}})
        result = await ws.receive_json(timeout=20)
        assert result["id"] == "live"
        errors = result["payload"]["errors"] if result["type"] == "next" else result["payload"]
        assert [e["extensions"]["code"] for e in errors] == ["RATE_LIMITED"], result
        assert errors[0]["extensions"]["retryAfter"] >= 1
        assert await ws.receive_json(timeout=20) == {"id": "live", "type": "complete"}
        assert not app.state.events._subscriptions


# --- buckets ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_buckets_refill_continuously(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr("server.ratelimit.time.monotonic", clock)
    limiter = MemoryLimiter()
    bucket = await limiter.take("user:1", 60, 60)  # 60 a minute: 1 a second
    assert (bucket.allowed, bucket.remaining, bucket.full_in) == (True, 0, 60)
    refused = await limiter.take("user:1", 10, 60)
    assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 0, 10)
    clock.now += 4
    assert (await limiter.take("user:1", 10, 60)).allowed is False
    clock.now += 6
    allowed = await limiter.take("user:1", 10, 60)
    assert (allowed.allowed, allowed.remaining) == (True, 0)
    assert (await limiter.take("user:2", 60, 60)).allowed  # a bucket of its own
    clock.now += 1000
    looked = await limiter.take("user:1", 0, 60)
    assert (looked.allowed, looked.remaining, looked.full_in) == (True, 60, 0)
    assert "user:1" not in limiter._buckets  # a full bucket is no bucket


async def test_memory_buckets_forget_full_ones_when_many(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr("server.ratelimit.time.monotonic", clock)
    monkeypatch.setattr(MemoryLimiter, "PRUNE_AT", 100)
    limiter = MemoryLimiter()
    for number in range(100):
        await limiter.take(f"user:{number}", 1, 60)
    clock.now += 2  # every bucket is full again
    await limiter.take("user:new", 1, 60)
    assert set(limiter._buckets) == {"user:new"}


def test_the_limiter_follows_the_settings() -> None:
    assert limiter_url(Settings()) is None
    assert limiter_url(Settings(broadcast_url="redis://broker:6379/0")) == (
        "redis://broker:6379/0")
    assert limiter_url(Settings(broadcast_url="redis://broker:6379/0",
                                rate_limit_url="redis://limits:6379/3")) == (
        "redis://limits:6379/3")
    assert limiter_url(Settings(broadcast_url="redis://broker:6379/0",
                                rate_limit_url="memory://")) is None
    assert limiter_url(Settings(broadcast_url="postgres://db/crm")) is None
    assert isinstance(create_limiter(Settings()), MemoryLimiter)


@pytest.mark.parametrize("env", [
    {"COST_BUDGET_PER_MINUTE": "-1"},
    {"MAX_QUERY_COST": "-5"},
    {"PARTNER_COST_BUDGET_PER_MINUTE": "lots"},
    {"RATE_LIMIT_URL": "http://limits"},
])
def test_bad_cost_settings_stop_start_up(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env, env_file=None)


def test_cost_settings_from_the_environment() -> None:
    settings = Settings.from_env({"MAX_QUERY_COST": "0", "COST_BUDGET_PER_MINUTE": "5000",
                                  "PARTNER_COST_BUDGET_PER_MINUTE": "1000",
                                  "RATE_LIMIT_URL": "redis://limits:6379/1"}, env_file=None)
    assert (settings.max_query_cost, settings.cost_budget_per_minute,
            settings.partner_cost_budget_per_minute, settings.rate_limit_url) == (
        0, 5000, 1000, "redis://limits:6379/1")


# --- Redis ------------------------------------------------------------------------------------


async def test_unreachable_redis_lets_requests_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RedisLimiter(UNREACHABLE_REDIS)
    try:
        with caplog.at_level(logging.WARNING, logger="crmgraph.ratelimit"):
            assert await limiter.take("user:1", 10, 60) is None
            # Not asked again for a while: one warning, no second timeout.
            assert await limiter.take("user:1", 10, 60) is None
    finally:
        await limiter.aclose()
    warnings = [r for r in caplog.records if r.name == "crmgraph.ratelimit"]
    assert len(warnings) == 1
    assert "Redis is unreachable" in warnings[0].getMessage()


async def test_an_app_whose_redis_is_down_serves_unmetered(
    settings: Settings, db: Database
) -> None:
    app = create_app(dataclasses.replace(settings, rate_limit_url=UNREACHABLE_REDIS))
    org = await make_org(db)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://testserver") as http:
        client = GraphQLClient(app, http)
        for _ in range(BUDGET // 100 + 2):
            response = await client.post(HUNDRED, as_user=org.rep_a1)
            assert response.status_code == 200
            assert "errors" not in response.json()
            assert cost_of(response)["remaining"] is None
        # The per-request maximum needs no Redis.
        response = await client.post("{ accounts(first: 300) { nodes { id } } }",
                                      as_user=org.rep_a1)
        assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]


@pytest.fixture
async def redis_prefix(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """Buckets of this test's own in TEST_REDIS_URL's Redis, removed afterwards. Without
    TEST_REDIS_URL the test is skipped; with it, Redis must answer."""
    if REDIS_URL is None:
        pytest.skip("TEST_REDIS_URL is not set")
    prefix = f"crmgraph:test:{uuid.uuid4().hex}:"
    monkeypatch.setattr(RedisLimiter, "KEY_PREFIX", prefix)
    redis = Redis.from_url(REDIS_URL)
    try:
        assert await redis.ping()
        yield prefix
        async for key in redis.scan_iter(match=prefix + "*"):
            await redis.delete(key)
    finally:
        await redis.aclose()


async def test_redis_buckets_are_shared_by_every_process(redis_prefix: str) -> None:
    assert REDIS_URL is not None
    one, other = RedisLimiter(REDIS_URL), RedisLimiter(REDIS_URL)
    try:
        first = await one.take("user:1", 70, 100)
        assert first is not None
        assert (first.allowed, first.remaining) == (True, 30)
        refused = await other.take("user:1", 70, 100)
        assert refused is not None
        assert (refused.allowed, refused.remaining) == (False, 30)
        assert 23 <= refused.retry_after <= 24.1  # 40 short at 100 a minute
        taken = await other.take("user:1", 30, 100)
        assert taken is not None
        assert taken.allowed
        assert taken.remaining == 0
        assert 59 <= taken.full_in <= 60
        assert (await one.take("user:2", 100, 100)).allowed  # type: ignore[union-attr]
        # Redis forgot the script (a restart, SCRIPT FLUSH): it is loaded again.
        await one.redis.script_flush()
        looked = await one.take("user:1", 0, 100)
        assert looked is not None
        assert looked.remaining <= 1
    finally:
        await one.aclose()
        await other.aclose()


async def test_two_apps_on_one_redis_share_a_budget(
    redis_prefix: str, settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes with BROADCAST_URL at one Redis: what one spends, the other sees."""
    assert REDIS_URL is not None
    limiters: list[Any] = []

    def recorded(given: Settings) -> Any:
        limiters.append(create_limiter(given))
        return limiters[-1]

    monkeypatch.setattr(cost_module, "create_limiter", recorded)
    shared = dataclasses.replace(settings, broadcast_url=REDIS_URL, rate_limit_url="")
    one, other = create_app(shared), create_app(shared)
    org = await make_org(db)
    try:
        async with (
            one.router.lifespan_context(one),
            other.router.lifespan_context(other),
            httpx.AsyncClient(transport=httpx.ASGITransport(one),
                              base_url="http://testserver") as http_one,
            httpx.AsyncClient(transport=httpx.ASGITransport(other),
                              base_url="http://testserver") as http_other,
        ):
            first, second = GraphQLClient(one, http_one), GraphQLClient(other, http_other)
            assert (await first.post(HUNDRED, as_user=org.rep_a1)).status_code == 200
            assert (await second.post(HUNDRED, as_user=org.rep_a1)).status_code == 200
            assert (await first.post(HUNDRED, as_user=org.rep_a1)).status_code == 200
            refused = await second.post(HUNDRED, as_user=org.rep_a1)
            assert refused.status_code == 429
            assert codes(refused.json()) == ["RATE_LIMITED"]
    finally:
        for limiter in limiters:
            await limiter.aclose()
    assert [type(limiter) for limiter in limiters] == [RedisLimiter, RedisLimiter]


async def test_a_partner_key_over_its_budget_is_refused_before_its_key_is_read(
    client: GraphQLClient, org: Org
) -> None:
    from resolvers import partner_keys

    _, key = await partner_keys.create_key(
        client.db, org_name=org.partner_org.name, scopes=frozenset({"read"}), name="budget")
    five = "{ accounts(first: 5) { nodes { id } } }"
    for _ in range(PARTNER_BUDGET // 5):
        response = await client.post(five, token=key)
        assert "errors" not in response.json(), response.json()
    before = client.db.statements
    response = await client.post(five, token=key)
    assert client.db.statements == before, "the key was looked up for a refused request"
    assert response.status_code == 429
    assert codes(response.json()) == ["RATE_LIMITED"]
    # The key's budget is its own: the org's user with a token still has the user budget.
    assert (await client.post(five, as_user=org.partner)).status_code == 200
