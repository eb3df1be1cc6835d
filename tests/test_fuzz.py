"""Bad input, generated: no request and no WebSocket message gets a 500, a stack trace or
SQL back, and every error carries a code.

Strategies are in tests/fuzzing.py, built from schema/schema.graphql. Every case goes
through the app's real HTTP or WebSocket endpoint as one of several roles. Budgets are
fixed and Hypothesis is derandomized, so CI tries the same cases every run; a failure
prints the (shrunk) input that found it.

INTERNAL_SERVER_ERROR is a failure too: it is how an unexpected exception leaves the
server (masked, server/graphql.py's ErrorCodes), so each one is a bug with an input to fix.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from wsproto.utilities import LocalProtocolError

from models.db import Database
from models.opportunities import PipelineKind
from server.app import create_app
from server.settings import Settings
from tests.factories import (
    Org,
    gid,
    make_account,
    make_activity,
    make_activity_type,
    make_campaign,
    make_contact,
    make_invoice,
    make_lead,
    make_offering_area,
    make_opportunity,
    make_org,
    make_pipeline,
    make_price_book,
    make_product,
    make_target_group,
    share,
)
from tests.fuzzing import (
    Case,
    Known,
    RawRequest,
    filter_cases,
    limit_documents,
    operations,
    raw_requests,
    text_argument_cases,
    ws_messages,
)
from tests.graphql_client import websocket

ROLES = ["ADMIN", "MANAGER", "REP", "PARTNER"]
# Who sends each case, in turn: the four roles, and now and then no token or a bad one
# (refused before anything runs, so given a smaller share).
ROTATION = [*ROLES, *ROLES, "ANONYMOUS", "BAD_TOKEN"]
# Words that only a leaked exception, a Python repr or a statement would put in an error
# message.
LEAKS = ("Traceback", 'File "', "<class '", " object at 0x", "SELECT ", "INSERT ", "UPDATE ",
         "DELETE FROM", "sqlalchemy", "asyncpg", "psycopg", "sqlite3", "IntegrityError",
         "DataError")
# graphql-transport-ws close codes (server/websocket.py); 4500 is a server bug.
PROTOCOL_CLOSE_CODES = {4400, 4401, 4403, 4406, 4408, 4409, 4429}
DEBUG = bool(os.environ.get("FUZZ_DEBUG"))  # print the commonest error messages too
TIMEOUT = 20  # seconds; messages come in milliseconds, this only bounds a hang

# FUZZ_SCALE=10 multiplies every budget, for a longer hunt than CI's (still derandomized).
SCALE = int(os.environ.get("FUZZ_SCALE") or 1)
FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass
class Tally:
    """What a test tried and what came back: printed with -s, and checked once the
    test's examples have all run (in the fuzz fixture)."""

    tried: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    with_data: int = 0  # answered with data and no error
    executed: int = 0  # answered with data (some errors beside it maybe): resolvers ran
    messages: Counter[str] = field(default_factory=Counter)

    def line(self, name: str) -> str:
        return (f"{name}: tried {dict(sorted(self.tried.items()))}; statuses "
                f"{dict(sorted(self.statuses.items()))}; executed {self.executed} (without "
                f"errors {self.with_data}); "
                f"error codes {dict(self.codes.most_common())}"
                + "".join(f"\n  {n} {m}" for m, n in self.messages.most_common(25)))


class Fuzz:
    """The app, a client, the seeded rows and the tally, for one test."""

    def __init__(self, http: httpx.AsyncClient, app: Starlette, tokens: dict[str, str | None],
                 known: Known, pipeline_id: str) -> None:
        self.http = http
        self.app = app
        self.tokens = tokens
        self.known = known
        self.pipeline_id = pipeline_id
        self.tally = Tally()

    def __repr__(self) -> str:  # Hypothesis prints the arguments of a failing case
        return "Fuzz(...)"

    async def send(self, case: Case, role: str | None = None) -> dict[str, Any]:
        # Roles in turn, rather than drawn: Hypothesis favours the first of a list, and
        # each role should get its share of the documents.
        case.role = role or ROTATION[sum(self.tally.tried.values()) % len(ROTATION)]
        headers = {"content-type": "application/json"}
        token = self.tokens[case.role]
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        response = await self.http.post("/graphql", content=case.body(), headers=headers)
        self.tally.tried[case.role] += 1
        return self.check(response, case)

    def check(self, response: httpx.Response, sent: object) -> dict[str, Any]:
        """The checks every response passes; returns its body."""
        self.tally.statuses[response.status_code] += 1
        assert response.status_code < 500, (response.status_code, response.text[:2_000], sent)
        if not response.content and response.request.method == "HEAD":
            return {}
        if response.headers.get("content-type", "").startswith("text/html"):
            assert response.request.method == "GET", sent  # GraphiQL, for a browser
            return {}
        body = response.json()
        assert isinstance(body, dict), (body, sent)
        for error in body.get("errors") or ():
            assert_clean(error, sent)
            self.tally.codes[error["extensions"]["code"]] += 1
            if DEBUG:
                self.tally.messages[error["message"][:90]] += 1
        if body.get("data"):
            self.tally.executed += 1
            self.tally.with_data += not body.get("errors")
        return body


def assert_clean(error: dict[str, Any], sent: object) -> None:
    """An error with a code, not a masked bug, with no trace or SQL in it."""
    code = (error.get("extensions") or {}).get("code")
    assert code, ("an error without extensions.code", error, sent)
    assert code != "INTERNAL_SERVER_ERROR", ("a masked server error", error, sent)
    text = json.dumps(error)
    leaked = [word for word in LEAKS if word in text]
    assert not leaked, (leaked, error, sent)


@pytest.fixture(scope="module")
def totals() -> Iterator[list[str]]:
    lines: list[str] = []
    yield lines
    print("\n" + "\n".join(lines))


@pytest.fixture
async def fuzz_app(settings: Settings, db: Database) -> AsyncIterator[Starlette]:
    # No cost budgets: hundreds of requests a minute from one user are the point here,
    # and RATE_LIMITED answers would stop them reaching the resolvers. The per-request
    # cost limit stays. Compiled plans are still verified against graphql-core.
    application = create_app(replace(settings, cost_budget_per_minute=0,
                                     partner_cost_budget_per_minute=0))
    async with application.router.lifespan_context(application):
        yield application
        compiler = application.state.compiler
        assert compiler is None or not compiler.mismatches, compiler.mismatches


async def _seed(db: Database) -> tuple[Org, Known]:
    """A little of everything, so generated ids and filters also meet real rows."""
    org = await make_org(db)
    accounts = [await make_account(db, owner) for owner in (org.admin, org.rep_a1, org.rep_b1)]
    await share(db, accounts[0], org.partner_org)
    contacts = [await make_contact(db, account) for account in accounts]
    pipeline, phases = await make_pipeline(db)
    opportunity = await make_opportunity(db, accounts[1], phases[0])
    _, marketing = await make_pipeline(db, PipelineKind.MARKETING)
    lead = await make_lead(db, marketing[0], org.rep_a1)
    area = await make_offering_area(db)
    product = await make_product(db, area)
    call = await make_activity_type(db, "CALL")
    activity = await make_activity(db, org.rep_a1, call)
    book = await make_price_book(db)
    invoice = await make_invoice(db, accounts[1], lines=[(product, "2", "10.00")])
    campaign = await make_campaign(db, org.rep_a1)
    group = await make_target_group(db, org.rep_a1)
    records = [pipeline, org.admin, org.manager_a, org.rep_a1, org.rep_b1, org.partner,
               org.team_a, org.partner_org, *accounts, *contacts, *phases, opportunity, lead,
               area, product, call, activity, book, invoice, campaign, group]
    return org, Known(ids=[gid(record) for record in records])


@pytest.fixture
async def fuzz(fuzz_app: Starlette, db: Database, totals: list[str],
               request: pytest.FixtureRequest) -> AsyncIterator[Fuzz]:
    org, known = await _seed(db)
    mint = fuzz_app.state.authenticator.mint
    tokens: dict[str, str | None] = {
        "ADMIN": mint(org.admin.id), "MANAGER": mint(org.manager_a.id),
        "REP": mint(org.rep_a1.id), "PARTNER": mint(org.partner.id), "ANONYMOUS": None,
        "BAD_TOKEN": "not.a.token"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fuzz_app),
                                 base_url="http://testserver") as http:
        result = Fuzz(http, fuzz_app, tokens, known, pipeline_id=known.ids[0])
        yield result
    tally = result.tally
    totals.append(tally.line(request.node.name))
    # Checked once all examples ran: generation that broke (every document refused by
    # validation, say) would make the checks above pass while testing nothing.
    test = request.node.originalname
    tried = sum(tally.tried.values())
    assert tried, test
    wanted = {"test_generated_queries": 0.1, "test_generated_mutations": 0.25,
              "test_every_filter_field_and_operator": 0.95}.get(test, 0.0)
    assert tally.executed >= wanted * tried, (test, "too few cases ran", tally.line(test))
    if test == "test_documents_past_the_limits":
        assert tally.codes["QUERY_TOO_COMPLEX"] >= 10, tally.line(test)
    if test == "test_websocket_message_sequences":
        assert tally.statuses[0], ("no connection survived to answer a ping", tally.line(test))
        assert tally.statuses[4400], ("none was closed for a bad message", tally.line(test))


# The known ids are drawn inside the examples: the strategies need the seeded rows,
# which exist only once the fixture has run.
def _known(fuzz: Fuzz) -> Known:
    return fuzz.known


@settings(FUZZ, max_examples=300 * SCALE)
@given(data=st.data())
async def test_generated_queries(fuzz: Fuzz, data: st.DataObject) -> None:
    case = data.draw(operations("query", _known(fuzz)), label="case")
    await fuzz.send(case)


@settings(FUZZ, max_examples=200 * SCALE)
@given(data=st.data())
async def test_generated_mutations(fuzz: Fuzz, data: st.DataObject) -> None:
    case = data.draw(operations("mutation", _known(fuzz)), label="case")
    await fuzz.send(case)


@settings(FUZZ, max_examples=40 * SCALE)
@given(data=st.data())
async def test_documents_past_the_limits(fuzz: Fuzz, data: st.DataObject) -> None:
    case = data.draw(limit_documents(), label="case")
    body = await fuzz.send(case)
    assert body.get("errors") or body.get("data"), body


@settings(FUZZ, max_examples=150 * SCALE)
@given(request=raw_requests())
async def test_requests_that_are_not_graphql_requests(fuzz: Fuzz, request: RawRequest) -> None:
    response = await fuzz.http.request(
        request.method, "/graphql", content=request.content or None,
        headers=request.headers | {"authorization": f"Bearer {fuzz.tokens['REP']}"},
        params=request.params)
    fuzz.tally.tried[request.method] += 1
    fuzz.check(response, request)


async def test_every_filter_field_and_operator(fuzz: Fuzz) -> None:
    """Not drawn but listed: each field of each filter with all of its operators set
    (valid values), as an admin and as a partner (whose visibility is another clause):
    every operator compiles to SQL that runs on this backend and answers."""
    cases = filter_cases(fuzz.known)
    assert len(cases) > 150, len(cases)
    for role in ("ADMIN", "PARTNER"):
        for where, document, variables in cases:
            case = Case(document, variables)
            body = await fuzz.send(case, role=role)
            # A partner may be refused a whole list (FORBIDDEN); nothing else may fail.
            refused = {e["extensions"]["code"] for e in body.get("errors", ())}
            assert refused <= ({"FORBIDDEN"} if role == "PARTNER" else set()), (
                where, role, body["errors"], variables)


async def test_a_nul_character_in_any_text_argument(fuzz: Fuzz) -> None:
    """Every String argument of a root field and of an Account's fields, given a NUL
    character (which PostgreSQL refuses in text), is refused with BAD_USER_INPUT. Found by
    the generated queries: a currency argument reached the plan's SQL."""
    cases = text_argument_cases(fuzz.known)
    assert len(cases) > 20, cases
    for where, document in cases:
        body = await fuzz.send(Case(document), role="ADMIN")
        codes = {error["extensions"]["code"] for error in body.get("errors", ())}
        assert codes == {"BAD_USER_INPUT"}, (where, body)


async def test_a_decimal_exponent_past_the_decimal_context(fuzz: Fuzz) -> None:
    """Found by the generated queries: 1e1000000 as a Decimal literal was refused with a
    message naming Python's decimal.Overflow class (the range check rounded it)."""
    literal = '{ products(filter: {listPrice: {gt: "1e1000000"}}) { totalCount } }'
    variable = "query($p: Decimal) { products(filter: {listPrice: {lt: $p}}) { totalCount } }"
    for case in (Case(literal), Case(variable, {"p": "-1e1000000"})):
        body = await fuzz.send(case, role="ADMIN")
        assert "is out of range" in body["errors"][0]["message"], body


SUMMARY = """subscription($p: ID!) { pipelineSummaryChanged(pipelineId: $p) {
  pipeline { id } totals { count } } }"""


@settings(FUZZ, max_examples=40 * SCALE)
@given(data=st.data())
async def test_websocket_message_sequences(fuzz: Fuzz, data: st.DataObject) -> None:
    """Each fuzzed connection ends with one of the protocol's close codes or still
    answers a ping; and a healthy connection opened after it still subscribes."""
    subprotocol = data.draw(st.sampled_from(["graphql-transport-ws"] * 9 + ["chat"]),
                            label="subprotocol")
    frames = data.draw(ws_messages(fuzz.tokens["REP"], _known(fuzz)), label="frames")
    async with websocket(fuzz.app, subprotocol) as ws:
        code = await _fuzzed(ws, frames, fuzz.tally)
    fuzz.tally.tried["sequences"] += 1
    fuzz.tally.statuses[code or 0] += 1  # 0: still open, and answered the ping
    assert code is None or code in PROTOCOL_CLOSE_CODES, (code, frames)
    if subprotocol == "chat":
        assert code == 4406, code
    async with websocket(fuzz.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"token": fuzz.tokens["ADMIN"]}})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe",
                            "payload": {"query": SUMMARY, "variables": {"p": fuzz.pipeline_id}}})
        first = await ws.receive_json(timeout=TIMEOUT)
        assert first["type"] == "next", first
        summary = first["payload"]["data"]["pipelineSummaryChanged"]
        assert summary["pipeline"]["id"] == fuzz.pipeline_id, first


async def _fuzzed(ws: AsyncWebSocketSession, frames: list[str | bytes], tally: Tally
                  ) -> int | None:
    """Sends the frames and then a ping: the close code, or None once the pong came."""
    try:
        try:
            for frame in frames:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_text(frame)
            await ws.send_json({"type": "ping"})
        except LocalProtocolError:
            pass  # the server closed the socket meanwhile: its close code comes next
        while True:
            message = await ws.receive_json(timeout=TIMEOUT)
            assert isinstance(message, dict), message
            if message.get("type") == "pong":
                return None
            payload = message.get("payload")
            errors = payload if message.get("type") == "error" else \
                (payload or {}).get("errors") if isinstance(payload, dict) else None
            tally.executed += message.get("type") == "next"
            for error in errors or ():
                assert_clean(error, frames)
                tally.codes[error["extensions"]["code"]] += 1
    except WebSocketDisconnect as closed:
        return closed.code
