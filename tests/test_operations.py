"""Operations: the Prometheus /metrics endpoint and the structured request log.

Figures are read the way Prometheus reads them, by scraping /metrics through the app
and parsing the text exposition format; log lines are read as a log shipper reads
them, as JSON objects one per line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from strawberry.extensions import SchemaExtension

from models.db import Database
from server.app import create_app
from server.logs import REQUEST_LOGGER, JsonFormatter, TextFormatter, configure_logging
from server.metrics import CONTENT_TYPE, Counter, Gauge, Histogram, Metrics, OperationTelemetry
from server.metrics import Registry as MetricsRegistry
from server.settings import Settings, SettingsError
from tests.factories import Org, make_account, make_org
from tests.graphql_client import GraphQLClient, websocket
from tests.live import create_deal, make_sales_pipeline, move_deal, next_data, subscribed

TIMEOUT = 20
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


# --- reading the exposition format --------------------------------------------------------


@dataclasses.dataclass
class Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    types: dict[str, str]
    helps: dict[str, str]

    def get(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_exposition(text: str) -> Scrape:
    """The text exposition format 0.0.4: HELP and TYPE comments, then samples."""
    assert text.endswith("\n")
    scrape = Scrape({}, {}, {})
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, documentation = line[len("# HELP "):].partition(" ")
            scrape.helps[name] = documentation
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE "):].partition(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            scrape.types[name] = kind
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, raw_labels, value = match.groups()
            labels = frozenset((k, _unescape(v)) for k, v in LABEL.findall(raw_labels or ""))
            assert (name, labels) not in scrape.samples, f"repeated sample: {line!r}"
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in scrape.types or family in scrape.types, f"untyped: {line!r}"
            scrape.samples[(name, labels)] = float(value)
    return scrape


async def scrape(http: httpx.AsyncClient, **headers: str) -> Scrape:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return parse_exposition(response.text)


async def eventually(check: Callable[[], Any], what: str) -> None:
    """Server-side clean-up runs after the client has moved on: wait for it."""
    for _ in range(TIMEOUT * 50):
        if await check():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"never happened: {what}")


def bearer(client: GraphQLClient, user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token(user)}"}


# --- the registry -------------------------------------------------------------------------


def test_the_registry_writes_the_exposition_format_exactly():
    registry = MetricsRegistry()
    requests = registry.register(Counter("demo_requests_total", "Requests.\nAll of them \\ each.",
                                         ("code",)))
    sockets = registry.register(Gauge("demo_sockets", "Open sockets."))
    latency = registry.register(Histogram("demo_seconds", "Latency.", ("kind",),
                                          buckets=(0.1, 1.0)))
    requests.inc(code='say "hi"\\\n')
    requests.inc(2, code="OK")
    sockets.inc()
    sockets.inc()
    sockets.dec()
    latency.observe(0.05, kind="q")
    latency.observe(0.5, kind="q")
    latency.observe(7, kind="q")
    assert registry.exposition() == (
        "# HELP demo_requests_total Requests.\\nAll of them \\\\ each.\n"
        "# TYPE demo_requests_total counter\n"
        'demo_requests_total{code="OK"} 2.0\n'
        'demo_requests_total{code="say \\"hi\\"\\\\\\n"} 1.0\n'
        "# HELP demo_sockets Open sockets.\n"
        "# TYPE demo_sockets gauge\n"
        "demo_sockets 1.0\n"
        "# HELP demo_seconds Latency.\n"
        "# TYPE demo_seconds histogram\n"
        'demo_seconds_bucket{kind="q",le="0.1"} 1.0\n'
        'demo_seconds_bucket{kind="q",le="1.0"} 2.0\n'
        'demo_seconds_bucket{kind="q",le="+Inf"} 3.0\n'
        'demo_seconds_sum{kind="q"} 7.55\n'
        'demo_seconds_count{kind="q"} 3.0\n'
    )
    parsed = parse_exposition(registry.exposition())
    assert parsed.get("demo_requests_total", code='say "hi"\\\n') == 1
    with pytest.raises(ValueError, match="labels"):
        requests.inc(status="OK")
    with pytest.raises(ValueError, match="only goes up"):
        requests.inc(-1, code="OK")


# --- /metrics through the app ---------------------------------------------------------------


async def test_metrics_lists_every_family_with_its_type(http: httpx.AsyncClient):
    scraped = await scrape(http)
    assert scraped.types == {
        "crmgraph_requests_total": "counter",
        "crmgraph_errors_total": "counter",
        "crmgraph_request_duration_seconds": "histogram",
        "crmgraph_websockets_open": "gauge",
        "crmgraph_subscriptions_active": "gauge",
        "crmgraph_events_published_total": "counter",
        "crmgraph_events_delivered_total": "counter",
    }
    assert all(scraped.helps[name] for name in scraped.types)
    # Known label sets start at zero, so a rate is defined from the first scrape.
    assert ("crmgraph_requests_total", frozenset(
        {("transport", "ws"), ("operation_type", "subscription")})) in scraped.samples
    assert scraped.get("crmgraph_websockets_open") == 0


async def test_http_requests_errors_and_latency_are_counted(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
):
    before = await scrape(http)
    assert (await client.query("query Who { viewer { name } }", as_user=org.rep_a1)) == {
        "viewer": {"name": "Rep A1"}}
    errors = await client.errors("query Broken { viewer { name } nope }", as_user=org.rep_a1)
    assert [e["extensions"]["code"] for e in errors] == ["GRAPHQL_VALIDATION_FAILED"]
    await client.query("{ viewer { name } }", as_user=org.rep_a2)
    after = await scrape(http)

    query = {"transport": "http", "operation_type": "query"}
    assert after.get("crmgraph_requests_total", **query) - before.get(
        "crmgraph_requests_total", **query) == 3
    assert after.get("crmgraph_errors_total", code="GRAPHQL_VALIDATION_FAILED") - before.get(
        "crmgraph_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    count = after.get("crmgraph_request_duration_seconds_count", **query)
    assert count - before.get("crmgraph_request_duration_seconds_count", **query) == 3
    assert after.get("crmgraph_request_duration_seconds_bucket", **query, le="+Inf") == count
    assert after.get("crmgraph_request_duration_seconds_sum", **query) > before.get(
        "crmgraph_request_duration_seconds_sum", **query)
    # Nothing was counted under another transport or type.
    for other in ({"transport": "ws", "operation_type": "query"},
                  {"transport": "http", "operation_type": "mutation"}):
        assert after.get("crmgraph_requests_total", **other) == 0


async def test_errors_are_counted_by_the_code_clients_get(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
):
    errors = await client.errors("query Who($b: Boolean!) { viewer @include(if: $b) { name } }",
                                 {"b": "yes"}, as_user=org.rep_a1)
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
    # A mutation sent with GET is refused before it runs, with 405.
    refused = await http.get("/graphql", params={"query": "mutation { __typename }"},
                             headers={"Apollo-Require-Preflight": "true"})
    assert refused.status_code == 405
    # Refused before any operation: a bad token, a body that is not JSON, no preflight.
    assert (await http.post("/graphql", json={"query": "{ __typename }"},
                            headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await http.post("/graphql", content=b"{", headers={
        "Content-Type": "application/json"})).status_code == 400
    assert (await http.get("/graphql", params={"query": "{ __typename }"})).status_code == 400
    after = await scrape(http)
    assert after.get("crmgraph_errors_total", code="BAD_USER_INPUT") == 1
    assert after.get("crmgraph_errors_total", code="METHOD_NOT_ALLOWED") == 1
    assert after.get("crmgraph_errors_total", code="UNAUTHENTICATED") == 1
    assert after.get("crmgraph_errors_total", code="BAD_REQUEST") == 2
    assert after.get("crmgraph_requests_total", transport="http", operation_type="mutation") == 1


async def test_a_metrics_token_guards_the_endpoint(settings: Settings, db: Database):
    app = create_app(dataclasses.replace(settings, metrics_token="scrape-me-0123456789"))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://testserver") as http:
        refused = await http.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "crmgraph_" not in refused.text
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401
        scraped = await scrape(http, Authorization="Bearer scrape-me-0123456789")
        assert "crmgraph_requests_total" in scraped.types


async def test_each_app_keeps_its_own_figures(app: Starlette, http: httpx.AsyncClient,
                                              settings: Settings):
    other = create_app(settings)
    async with other.router.lifespan_context(other), httpx.AsyncClient(
            transport=httpx.ASGITransport(other), base_url="http://testserver") as other_http:
        await other_http.post("/graphql", json={"query": "{ nope }"})
        assert (await scrape(other_http)).get(
            "crmgraph_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert (await scrape(http)).get("crmgraph_errors_total",
                                    code="GRAPHQL_VALIDATION_FAILED") == 0


# --- WebSockets, subscriptions, events ------------------------------------------------------


async def test_websocket_and_subscription_gauges_follow_the_sockets(
    app: Starlette, http: httpx.AsyncClient, client: GraphQLClient, org: Org
):
    async def gauge(name: str) -> float:
        return (await scrape(http)).get(name)

    assert await gauge("crmgraph_websockets_open") == 0
    async with websocket(app) as ws:
        assert await gauge("crmgraph_websockets_open") == 1
        await ws.send_json({"type": "connection_init", "payload": bearer(client, org.rep_a1)})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "connection_ack"
        await ws.send_json({"id": "q", "type": "subscribe",
                            "payload": {"query": "query Who { viewer { name } }"}})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "next"
        assert await ws.receive_json(timeout=TIMEOUT) == {"id": "q", "type": "complete"}
        scraped = await scrape(http)
        assert scraped.get("crmgraph_requests_total", transport="ws", operation_type="query") == 1
        assert scraped.get("crmgraph_request_duration_seconds_count", transport="ws",
                           operation_type="query") == 1
        assert scraped.get("crmgraph_subscriptions_active") == 0
    await eventually(lambda: _equals(gauge("crmgraph_websockets_open"), 0),
                     "the closed socket leaves the gauge")

    async with subscribed(app, client, org.manager_a) as ws:
        scraped = await scrape(http)
        assert scraped.get("crmgraph_websockets_open") == 1
        assert scraped.get("crmgraph_subscriptions_active") == 1
        subscription = {"transport": "ws", "operation_type": "subscription"}
        # Counted once, when it starts; timed until its stream is open.
        assert scraped.get("crmgraph_requests_total", **subscription) == 1
        assert scraped.get("crmgraph_request_duration_seconds_count", **subscription) == 1
        await ws.send_json({"id": "feed", "type": "complete"})
        await eventually(lambda: _equals(gauge("crmgraph_subscriptions_active"), 0),
                         "a completed subscription leaves the gauge")
        assert await gauge("crmgraph_websockets_open") == 1

    async with subscribed(app, client, org.manager_a):
        assert await gauge("crmgraph_subscriptions_active") == 1
    # A socket that closes under a running subscription takes it along.
    await eventually(lambda: _equals(gauge("crmgraph_subscriptions_active"), 0),
                     "a subscription ends with its socket")
    await eventually(lambda: _equals(gauge("crmgraph_websockets_open"), 0),
                     "the socket leaves the gauge")
    scraped = await scrape(http)
    assert scraped.get("crmgraph_requests_total", transport="ws",
                       operation_type="subscription") == 2


async def _equals(value: Any, expected: float) -> bool:
    return (await value) == expected


async def test_events_published_and_delivered(
    app: Starlette, http: httpx.AsyncClient, client: GraphQLClient, db: Database
):
    org = await make_org(db)
    _, phases = await make_sales_pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1, name="Acme")
    before = await scrape(http)
    deal = await create_deal(client, org.rep_a1, account, phases["Prospect"])
    created = await scrape(http)
    assert created.get("crmgraph_events_published_total") - before.get(
        "crmgraph_events_published_total") == 1
    assert created.get("crmgraph_events_delivered_total") == before.get(
        "crmgraph_events_delivered_total")

    async with subscribed(app, client, org.manager_a) as ws:
        await move_deal(client, org.rep_a1, deal, phases["Offer"])
        event = (await next_data(ws))["opportunityPhaseChanged"]
        assert event["toPhase"] == {"name": "Offer"}
        after = await scrape(http)
    assert after.get("crmgraph_events_published_total") - before.get(
        "crmgraph_events_published_total") == 2
    assert after.get("crmgraph_events_delivered_total") - before.get(
        "crmgraph_events_delivered_total") == 1
    mutation = {"transport": "http", "operation_type": "mutation"}
    assert after.get("crmgraph_requests_total", **mutation) - before.get(
        "crmgraph_requests_total", **mutation) == 2


# --- the request log ------------------------------------------------------------------------


@pytest.fixture
def request_log() -> Iterator[io.StringIO]:
    """The request logger's lines, through the JSON formatter the server installs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(REQUEST_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def logged(stream: io.StringIO, request_id: str) -> tuple[dict[str, Any], str]:
    """The line for one request, parsed, and as written."""
    for _ in range(TIMEOUT * 50):
        for line in stream.getvalue().splitlines():
            entry = json.loads(line)
            if entry.get("request_id") == request_id:
                return entry, line
        await asyncio.sleep(0.02)
    pytest.fail(f"no request line for {request_id}: {stream.getvalue()!r}")


async def test_one_json_line_per_request_with_its_id_name_timing_and_errors(
    client: GraphQLClient, org: Org, request_log: io.StringIO
):
    response = await client.post(
        "query Broken($secret: String) { viewer { name } nope }",
        {"secret": "s3cret-value"}, as_user=org.rep_a1, headers={"X-Request-Id": "ops-log-1"})
    assert response.headers["x-request-id"] == "ops-log-1"
    entry, line = await logged(request_log, "ops-log-1")
    assert entry["logger"] == REQUEST_LOGGER
    assert entry["level"] == "INFO"
    assert entry["msg"] == "request"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])
    assert entry["operation_name"] == "Broken"
    assert entry["operation_type"] == "query"
    assert entry["transport"] == "http"
    assert entry["status"] == "error"
    assert entry["error_codes"] == ["GRAPHQL_VALIDATION_FAILED"]
    assert isinstance(entry["duration_ms"], float)
    assert entry["duration_ms"] > 0
    assert "client" in entry
    # Neither the variables nor the document: they may hold personal data.
    assert "s3cret-value" not in line
    assert "nope" not in line

    response = await client.post("query Who { viewer { name } }", as_user=org.rep_a1,
                                 headers={"X-Request-Id": "ops-log-2"})
    entry, _ = await logged(request_log, "ops-log-2")
    assert (entry["operation_name"], entry["status"], entry["error_codes"]) == (
        "Who", "ok", [])
    # The requested cost, as the response reports it (when a cost extension does).
    cost = response.json().get("extensions", {}).get("cost", {}).get("requested")
    assert entry["cost"] == cost
    assert request_log.getvalue().count('"request_id":"ops-log-2"') == 1


async def test_a_subscription_is_logged_once_when_it_ends(
    app: Starlette, client: GraphQLClient, org: Org, request_log: io.StringIO
):
    async with subscribed(app, client, org.manager_a) as ws:
        await asyncio.sleep(0.05)
        await ws.send_json({"id": "feed", "type": "complete"})

        async def ended() -> bool:
            return '"operation_type":"subscription"' in request_log.getvalue()

        await eventually(ended, "the subscription's line")
    lines = [json.loads(line) for line in request_log.getvalue().splitlines()]
    [entry] = [e for e in lines if e["operation_type"] == "subscription"]
    assert (entry["transport"], entry["status"], entry["error_codes"]) == ("ws", "ok", [])
    assert entry["duration_ms"] >= 50  # its whole life, not the time to open it


async def test_the_requested_cost_in_the_result_extensions_is_logged(request_log: io.StringIO):
    """Strawberry adds the extensions' results after the operation hook: the line
    still carries what a cost extension reported."""

    @strawberry.type
    class Query:
        hello: str = "hi"

    class ReportsCost(SchemaExtension):
        def get_results(self) -> dict[str, Any]:
            return {"cost": {"requested": 42, "limit": 1000}}

    metrics = Metrics()
    schema = strawberry.Schema(Query, extensions=[lambda: OperationTelemetry(metrics),
                                                  ReportsCost])
    context = SimpleNamespace(request_id="ops-cost-1", websocket=None, client_id="user:7")
    result = await schema.execute("query Hello { hello }", context_value=context)
    assert result.extensions == {"cost": {"requested": 42, "limit": 1000}}
    entry, _ = await logged(request_log, "ops-cost-1")
    assert (entry["cost"], entry["client"], entry["operation_name"]) == (42, "user:7", "Hello")
    assert metrics.requests.value(transport="http", operation_type="query") == 1


# --- formatters and settings ----------------------------------------------------------------


def _record(logger: str, message: str, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(logger, logging.ERROR, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_extra_fields_and_the_exception():
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        record = logging.LogRecord("crmgraph.errors", logging.ERROR, __file__, 1,
                                   "failed %s", ("here",), __import__("sys").exc_info())
    record.__dict__["request_id"] = "r-9"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["msg"], entry["logger"], entry["level"], entry["request_id"]) == (
        "failed here", "crmgraph.errors", "ERROR", "r-9")
    assert "ZeroDivisionError" in entry["exc"]
    assert "Traceback" in entry["exc"]


def test_text_lines_put_extra_fields_after_the_message():
    line = TextFormatter().format(_record("crmgraph.requests", "request", request_id="r-1",
                                          error_codes=["FORBIDDEN"]))
    assert line.endswith('ERROR crmgraph.requests request request_id=r-1 '
                         'error_codes=["FORBIDDEN"]')


def test_log_format_is_json_or_text():
    assert Settings().log_format == "json"
    assert Settings.from_env({"LOG_FORMAT": "text"}, env_file=None).log_format == "text"
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"}, env_file=None)
    assert Settings.from_env({"METRICS_TOKEN": "t0k"}, env_file=None).metrics_token == "t0k"


@pytest.mark.parametrize(("log_format", "formatter"),
                         [("json", JsonFormatter), ("text", TextFormatter)])
def test_configure_logging_installs_the_formatter(log_format: str, formatter: type):
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        configure_logging(Settings(log_format=log_format, log_level="WARNING"))
        [handler] = root.handlers
        assert isinstance(handler.formatter, formatter)
        assert root.level == logging.WARNING
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
