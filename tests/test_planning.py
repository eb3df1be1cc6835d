"""Account plans through the HTTP endpoint: budget, forecast (FIXED and ROLLING), billed,
won and pipeline side by side per month and offering area, rolled up into quarters and
years and by account, owner, team or offering area; the budget and forecast mutations
with their rules and permissions; who may read which plan; and a number of statements
that does not grow with the accounts or months.

Figures are pinned as exact Decimal strings, so a difference between SQLite and
PostgreSQL shows. Invoices are written through the billing API wherever one invoice at a
time is the point; bulk figures are written to the tables by the factories.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from loaders.ids import decode_id
from models.accounts import Account, AccountType
from models.billing import InvoiceStatus
from models.db import UNCOUNTED, Database
from models.opportunities import Phase
from models.planning import Budget, Forecast, ForecastKind
from models.pricing import OfferingArea, Product
from models.users import User
from resolvers import planning as planning_resolvers
from tests.factories import (
    Org,
    gid,
    make_account,
    make_budget,
    make_forecast,
    make_invoice,
    make_offering_area,
    make_opportunity,
    make_org,
    make_pipeline,
    make_product,
    share,
)
from tests.graphql_client import GraphQLClient

HELSINKI = ZoneInfo("Europe/Helsinki")
CENT = Decimal("0.01")
BUDGETS = Budget.__table__
FORECASTS = Forecast.__table__

ERRORS = "userErrors { field code message }"
FIGURES = """budget forecast fixedForecast rollingForecast billed won openPipeline
  weightedPipeline budgetVariance billedToBudget"""
ROW = f"period forecastKind {FIGURES}"
# The money columns a period's figures are summed over (budgetVariance and billedToBudget
# are derived from them, forecastKind is not a sum).
SUMMED = ("budget", "forecast", "fixedForecast", "rollingForecast", "billed", "won",
          "openPipeline", "weightedPipeline")

PLAN_ARGS = """from: $from, to: $to, granularity: $granularity, offeringAreaIds: $areas,
  currency: $currency, forecastKind: $kind, asOf: $asOf"""
PLAN_VARIABLES = """$from: Date!, $to: Date!, $granularity: PlanGranularity!, $areas: [ID!],
  $currency: String!, $kind: ForecastKind, $asOf: Date"""
PLAN_BODY = f"""currency rows {{ {ROW} offeringArea {{ code }} }} totals {{ {FIGURES} }}"""
ACCOUNT_PLAN = f"""
query Plan($id: ID!, {PLAN_VARIABLES}) {{
  accountPlan(accountId: $id, {PLAN_ARGS}) {{ {PLAN_BODY} }}
}}"""
ACCOUNT_DOT_PLAN = f"""
query Plan($id: ID!, {PLAN_VARIABLES}) {{
  account(id: $id) {{ name plan({PLAN_ARGS}) {{ {PLAN_BODY} }} }}
}}"""
SUMMARY = f"""
query Summary($groupBy: PlanGroupBy!, $filter: AccountFilter, $from: Date!, $to: Date!,
              $granularity: PlanGranularity!, $currency: String!, $kind: ForecastKind,
              $asOf: Date) {{
  planSummary(groupBy: $groupBy, filter: $filter, from: $from, to: $to,
              granularity: $granularity, currency: $currency, asOf: $asOf,
              forecastKind: $kind) {{
    groupBy currency
    rows {{ {ROW} offeringArea {{ code }} account {{ name }} owner {{ name }} team {{ name }} }}
    totals {{ {FIGURES} }}
  }}
}}"""
HISTORY = """
query History($account: ID!, $area: ID!, $period: Date!) {
  forecastHistory(accountId: $account, offeringAreaId: $area, period: $period) {
    current
    forecast { id version month amount currency kind submittedAt submittedBy { name }
               account { name } offeringArea { code } }
  }
}"""

SET_BUDGETS = f"""
mutation Set($input: SetBudgetsInput!) {{
  setBudgets(input: $input) {{
    budgets {{ id version month amount currency account {{ name }} offeringArea {{ code }} }}
    {ERRORS}
  }}
}}"""
DELETE_BUDGET = f"""
mutation Delete($input: DeleteBudgetInput!) {{
  deleteBudget(input: $input) {{ deletedBudgetId {ERRORS} }}
}}"""
SUBMIT_FORECAST = f"""
mutation Submit($input: SubmitForecastInput!) {{
  submitForecast(input: $input) {{
    forecasts {{ id version month amount currency kind submittedBy {{ name }} }}
    {ERRORS}
  }}
}}"""

INVOICE_PAYLOAD = f"invoice {{ id version status total }} {ERRORS}"
CREATE_INVOICE = f"""
mutation Create($input: CreateInvoiceInput!) {{
  createInvoice(input: $input) {{ {INVOICE_PAYLOAD} }}
}}"""
INVOICE_STEPS = {
    status: f"""
mutation Step($input: InvoiceVersionInput!) {{ {name}(input: $input) {{ {INVOICE_PAYLOAD} }} }}
""" for status, name in (("SENT", "sendInvoice"), ("PAID", "markInvoicePaid"),
                         ("CANCELLED", "cancelInvoice"))}
# How an invoice reaches each status through the API.
INVOICE_PATHS = {"DRAFT": [], "SENT": ["SENT"], "PAID": ["SENT", "PAID"],
                 "CANCELLED": ["SENT", "CANCELLED"]}


# --- helpers ------------------------------------------------------------------------------


def month(year: int, number: int) -> date:
    return date(year, number, 1)


def add_months(day: date, count: int) -> date:
    index = day.year * 12 + day.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def this_month() -> date:
    """The month that has begun in the organisation's time zone."""
    return datetime.now(HELSINKI).date().replace(day=1)


def money(value: Decimal | str | None) -> str | None:
    """A figure as the API sends it: a string with two decimals."""
    return None if value is None else str(Decimal(value).quantize(CENT))


def half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


def ok(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


async def run(client: GraphQLClient, document: str, user: Any, **input: Any) -> dict[str, Any]:
    """The payload of a one-field mutation."""
    data = await client.query(document, {"input": input}, as_user=user)
    return next(iter(data.values()))


def cell(account: Account, area: OfferingArea, first_day: date, amount: str
         ) -> dict[str, Any]:
    return {"accountId": gid(account), "offeringAreaId": gid(area),
            "month": first_day.isoformat(), "amount": amount}


async def set_budgets(client: GraphQLClient, user: Any, cells: list[dict[str, Any]], *,
                      currency: str = "EUR") -> dict[str, Any]:
    return await run(client, SET_BUDGETS, user, currency=currency, cells=cells)


async def submit_forecast(client: GraphQLClient, user: Any, account: Account,
                          area: OfferingArea, kind: str, from_month: date, amounts: list[str],
                          *, currency: str = "EUR") -> dict[str, Any]:
    return await run(client, SUBMIT_FORECAST, user, accountId=gid(account),
                     offeringAreaId=gid(area), kind=kind, fromMonth=from_month.isoformat(),
                     amounts=amounts, currency=currency)


async def invoice(client: GraphQLClient, user: Any, account: Account, on: date,
                  lines: list[tuple[Product, str]], *, status: str = "SENT",
                  currency: str = "EUR") -> str:
    """An invoice made and moved to ``status`` through the billing API, with MANUAL lines
    (product, amount); returns its global id."""
    payload = ok(await run(
        client, CREATE_INVOICE, user, accountId=gid(account), currency=currency,
        invoiceDate=on.isoformat(),
        lines=[{"productId": gid(product), "quantity": "1", "unitPrice": amount}
               for product, amount in lines]))
    record = payload["invoice"]
    for step in INVOICE_PATHS[status]:
        record = ok(await run(client, INVOICE_STEPS[step], user, id=record["id"],
                              expectedVersion=record["version"]))["invoice"]
    assert record["status"] == status
    return record["id"]


def plan_variables(first: date, last: date, *, granularity: str = "MONTH",
                   areas: list[OfferingArea] | None = None, currency: str = "EUR",
                   kind: str | None = None, as_of: date | None = None) -> dict[str, Any]:
    return {"from": first.isoformat(), "to": last.isoformat(), "granularity": granularity,
            "areas": [gid(area) for area in areas] if areas is not None else None,
            "currency": currency, "kind": kind,
            "asOf": as_of.isoformat() if as_of else None}


async def account_plan(client: GraphQLClient, user: Any, account: Account, first: date,
                       last: date, **options: Any) -> dict[str, Any]:
    variables = {"id": gid(account), **plan_variables(first, last, **options)}
    return (await client.query(ACCOUNT_PLAN, variables, as_user=user))["accountPlan"]


def summary_variables(group_by: str, first: date, last: date, *,
                      filter: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    variables = {"groupBy": group_by, "filter": filter,
                 **plan_variables(first, last, **options)}
    del variables["areas"]  # planSummary covers every offering area
    return variables


async def plan_summary(client: GraphQLClient, user: Any, group_by: str, first: date,
                       last: date, **options: Any) -> dict[str, Any]:
    variables = summary_variables(group_by, first, last, **options)
    return (await client.query(SUMMARY, variables, as_user=user))["planSummary"]


async def history(client: GraphQLClient, user: Any, account: Account, area: OfferingArea,
                  period: date) -> list[dict[str, Any]]:
    variables = {"account": gid(account), "area": gid(area), "period": period.isoformat()}
    return (await client.query(HISTORY, variables, as_user=user))["forecastHistory"]


def error_codes(errors: list[dict[str, Any]]) -> list[str]:
    return [error["extensions"]["code"] for error in errors]


def figures(row: dict[str, Any]) -> dict[str, Any]:
    """A row's figures without the period and the group it belongs to."""
    return {name: row[name] for name in (*SUMMED, "budgetVariance", "billedToBudget")}


def by_area(plan: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["period"], row["offeringArea"]["code"]): row for row in plan["rows"]}


def total_of(rows: Iterable[dict[str, Any]]) -> dict[str, str | None]:
    """Each money column summed over ``rows`` the way a roll-up must: null only where
    every row is null."""
    totals: dict[str, str | None] = {}
    for name in SUMMED:
        values = [Decimal(row[name]) for row in rows if row[name] is not None]
        totals[name] = str(sum(values, Decimal("0.00"))) if values else None
    return totals


def derived(figures_: dict[str, Any]) -> tuple[str | None, float | None]:
    """budgetVariance and billedToBudget from a row's or total's own columns."""
    budget, forecast = figures_["budget"], figures_["forecast"]
    variance = (str(Decimal(forecast) - Decimal(budget))
                if budget is not None and forecast is not None else None)
    ratio = (round(float(Decimal(figures_["billed"]) / Decimal(budget)), 4)
             if budget is not None and Decimal(budget) else None)
    return variance, ratio


async def stored_budgets(db: Database) -> dict[tuple[int, int, date], tuple[str, str, int]]:
    async with db.read() as connection:
        rows = (await connection.execute(select(BUDGETS))).all()
    return {(row.account_id, row.offering_area_id, row.period):
            (money(row.amount), row.currency, row.version) for row in rows}


async def stored_forecasts(db: Database) -> list[tuple[int, date, str, str, str]]:
    async with db.read() as connection:
        rows = (await connection.execute(select(FORECASTS).order_by(FORECASTS.c.id))).all()
    return [(row.account_id, row.period, row.kind.value, money(row.amount), row.currency)
            for row in rows]


async def set_submitted_at(db: Database, forecast_gid: str, moment: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(update(FORECASTS).where(
            FORECASTS.c.id == decode_id(forecast_gid, "Forecast")).values(submitted_at=moment))


EMPTY = {"budget": None, "forecast": None, "forecastKind": None, "fixedForecast": None,
         "rollingForecast": None, "billed": "0.00", "won": "0.00", "openPipeline": "0.00",
         "weightedPipeline": "0.00", "budgetVariance": None, "billedToBudget": None}


@dataclass
class World:
    org: Org
    area_a: OfferingArea
    area_b: OfferingArea
    product_a: Product
    product_b: Product
    phases: dict[str, Phase]
    acme: Account  # Rep A1's


@pytest.fixture
async def world(db: Database) -> World:
    org = await make_org(db)
    area_a = await make_offering_area(db, "A")
    area_b = await make_offering_area(db, "B")
    product_a = await make_product(db, area_a, code="PA")
    product_b = await make_product(db, area_b, code="PB")
    _, phases = await make_pipeline(db, name="New business")
    acme = await make_account(db, org.rep_a1, name="Acme Oy")
    return World(org, area_a, area_b, product_a, product_b, {p.name: p for p in phases},
                 acme)


async def won(db: Database, world: World, account: Account, amount: str, closed_at: datetime,
              *, area: OfferingArea | None = None, currency: str = "EUR") -> None:
    await make_opportunity(db, account, world.phases["Won"], amount=amount, currency=currency,
                           offering_area_id=(area or world.area_a).id, closed_at=closed_at,
                           expected_close_date=closed_at.date())


async def open_deal(db: Database, world: World, account: Account, amount: str,
                    probability: int, expected: date, *, area: OfferingArea | None = None,
                    currency: str = "EUR", phase: str = "Propose") -> None:
    await make_opportunity(db, account, world.phases[phase], amount=amount,
                           probability=probability, currency=currency,
                           offering_area_id=(area or world.area_a).id,
                           expected_close_date=expected)


# --- the hand-built account ---------------------------------------------------------------

MARCH = month(2026, 3)
MARCH_A = {"period": "2026-03-01", "budget": "10000.00", "forecast": "8500.00",
           "forecastKind": "ROLLING", "fixedForecast": "9000.00", "rollingForecast": "8500.00",
           "billed": "4000.00", "won": "2000.00", "openPipeline": "8000.00",
           "weightedPipeline": "2300.00", "budgetVariance": "-1500.00", "billedToBudget": 0.4}


async def build_march(client: GraphQLClient, db: Database, world: World) -> None:
    """The account of the issue, in March 2026 and offering area A, written through the
    API as its owner would (the opportunities straight to the table: their phases and
    closing moments are the point, not how they got there)."""
    rep, acme, area = world.org.rep_a1, world.acme, world.area_a
    ok(await set_budgets(client, rep, [cell(acme, area, MARCH, "10000")]))
    ok(await submit_forecast(client, rep, acme, area, "FIXED", MARCH, ["9000"]))
    ok(await submit_forecast(client, rep, acme, area, "ROLLING", MARCH, ["8000"]))
    ok(await submit_forecast(client, rep, acme, area, "ROLLING", MARCH, ["8500"]))
    await invoice(client, rep, acme, date(2026, 3, 10), [(world.product_a, "4000.00")])
    await invoice(client, rep, acme, date(2026, 3, 12), [(world.product_a, "1000.00")],
                  status="DRAFT")
    await won(db, world, acme, "2000.00", datetime(2026, 3, 16, 10, 0, tzinfo=UTC))
    await open_deal(db, world, acme, "5000.00", 40, date(2026, 3, 20))
    await open_deal(db, world, acme, "3000.00", 10, date(2026, 3, 31), phase="Qualify")


async def test_the_hand_built_account_shows_its_march_row(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await build_march(client, db, world)
    assert await stored_forecasts(db) == [
        (world.acme.id, MARCH, "FIXED", "9000.00", "EUR"),
        (world.acme.id, MARCH, "ROLLING", "8000.00", "EUR"),
        (world.acme.id, MARCH, "ROLLING", "8500.00", "EUR"),
    ]

    plan = await account_plan(client, world.org.rep_a1, world.acme, MARCH, date(2026, 3, 31))

    assert plan["currency"] == "EUR"
    # Every active offering area has its row, by code; B has nothing in it.
    assert plan["rows"] == [{**MARCH_A, "offeringArea": {"code": "A"}},
                            {**EMPTY, "period": "2026-03-01", "offeringArea": {"code": "B"}}]
    assert plan["totals"] == figures(MARCH_A)

    fixed = await account_plan(client, world.org.rep_a1, world.acme, MARCH, MARCH,
                               areas=[world.area_a], kind="FIXED")
    assert fixed["rows"] == [{**MARCH_A, "forecast": "9000.00", "forecastKind": "FIXED",
                              "budgetVariance": "-1000.00", "offeringArea": {"code": "A"}}]
    assert fixed["totals"] == {**figures(MARCH_A), "forecast": "9000.00",
                               "budgetVariance": "-1000.00"}
    rolling = await account_plan(client, world.org.rep_a1, world.acme, MARCH, MARCH,
                                 areas=[world.area_a], kind="ROLLING")
    assert rolling["rows"] == [{**MARCH_A, "offeringArea": {"code": "A"}}]


async def test_account_plan_field_is_the_account_plan(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await build_march(client, db, world)
    for kind, forecast, variance in ((None, "8500.00", "-1500.00"),
                                     ("FIXED", "9000.00", "-1000.00")):
        variables = {"id": gid(world.acme),
                     **plan_variables(MARCH, MARCH, areas=[world.area_a], kind=kind)}
        data = await client.query(ACCOUNT_DOT_PLAN, variables, as_user=world.org.manager_b)
        assert data["account"]["name"] == "Acme Oy"
        assert data["account"]["plan"]["rows"] == [{
            **MARCH_A, "forecast": forecast, "forecastKind": kind or "ROLLING",
            "budgetVariance": variance, "offeringArea": {"code": "A"}}]
        direct = await account_plan(client, world.org.manager_b, world.acme, MARCH, MARCH,
                                    areas=[world.area_a], kind=kind)
        assert data["account"]["plan"] == direct


@pytest.mark.parametrize(("group_by", "group"), [
    ("ACCOUNT", {"account": {"name": "Acme Oy"}}),
    ("OWNER", {"owner": {"name": "Rep A1"}}),
    ("TEAM", {"team": {"name": "Team A"}}),
    ("OFFERING_AREA", {"offeringArea": {"code": "A"}}),
])
async def test_plan_summary_rolls_the_hand_built_account_up_by(
    client: GraphQLClient, db: Database, world: World, group_by: str, group: dict[str, Any]
) -> None:
    await build_march(client, db, world)
    # Another team's account with nothing in March: no row of its own.
    await make_account(db, world.org.rep_b1, name="Globex")

    for user in (world.org.admin, world.org.manager_b, world.org.rep_a2):
        summary = await plan_summary(client, user, group_by, MARCH, date(2026, 3, 31))
        nobody = {"offeringArea": None, "account": None, "owner": None, "team": None}
        assert summary["groupBy"] == group_by
        assert summary["currency"] == "EUR"
        assert summary["rows"] == [{**MARCH_A, **nobody, **group}], user.name
        assert summary["totals"] == figures(MARCH_A)

    fixed = await plan_summary(client, world.org.admin, group_by, MARCH, MARCH, kind="FIXED")
    assert [(row["forecast"], row["forecastKind"], row["budgetVariance"])
            for row in fixed["rows"]] == [("9000.00", "FIXED", "-1000.00")]


# --- month boundaries, statuses and currencies --------------------------------------------


async def test_months_are_local_months_and_only_billed_invoices_in_the_currency_count(
    client: GraphQLClient, db: Database, world: World
) -> None:
    acme, rep, product = world.acme, world.org.rep_a1, world.product_a
    # Closed won: Helsinki is UTC+2 until 29 March 2026 and UTC+3 after.
    await won(db, world, acme, "1.00", datetime(2026, 2, 28, 21, 30, tzinfo=UTC))  # 28.2. 23:30
    await won(db, world, acme, "2.00", datetime(2026, 2, 28, 22, 30, tzinfo=UTC))  # 1.3. 00:30
    await won(db, world, acme, "4.00", datetime(2026, 3, 31, 20, 30, tzinfo=UTC))  # 31.3. 23:30
    await won(db, world, acme, "8.00", datetime(2026, 3, 31, 22, 30, tzinfo=UTC))  # 1.4. 01:30
    await won(db, world, acme, "16.00", datetime(2026, 4, 30, 21, 30, tzinfo=UTC))  # 1.5. 00:30
    await won(db, world, acme, "32.00", datetime(2026, 3, 15, 12, 0, tzinfo=UTC), currency="USD")
    # Lost deals count nowhere, whenever they closed.
    await make_opportunity(db, acme, world.phases["Lost"], amount="64.00",
                           offering_area_id=world.area_a.id, expected_close_date=MARCH,
                           closed_at=datetime(2026, 3, 2, tzinfo=UTC))
    # Open: by expected close date.
    await open_deal(db, world, acme, "100.00", 50, date(2026, 2, 28))
    await open_deal(db, world, acme, "200.00", 50, date(2026, 3, 1))
    await open_deal(db, world, acme, "400.00", 50, date(2026, 3, 31))
    await open_deal(db, world, acme, "800.00", 50, date(2026, 4, 1))
    await open_deal(db, world, acme, "1600.00", 50, date(2026, 5, 1))
    await open_deal(db, world, acme, "3200.00", 10, date(2026, 3, 10), currency="USD")
    # Billed: SENT and PAID by invoice date; CANCELLED and DRAFT never.
    await invoice(client, rep, acme, date(2026, 2, 28), [(product, "10.00")])
    await invoice(client, rep, acme, date(2026, 3, 1), [(product, "20.00")], status="PAID")
    await invoice(client, rep, acme, date(2026, 3, 31), [(product, "40.00")])
    await invoice(client, rep, acme, date(2026, 4, 1), [(product, "80.00")], status="PAID")
    await invoice(client, rep, acme, date(2026, 4, 30), [(product, "160.00")])
    await invoice(client, rep, acme, date(2026, 5, 1), [(product, "320.00")])
    await invoice(client, rep, acme, date(2026, 3, 15), [(product, "640.00")],
                  status="CANCELLED")
    await invoice(client, rep, acme, date(2026, 4, 15), [(product, "1280.00")], status="DRAFT")
    await invoice(client, rep, acme, date(2026, 3, 20), [(product, "2560.00")], currency="USD")
    # A budget in USD appears in the USD plan only.
    ok(await set_budgets(client, rep, [cell(acme, world.area_a, MARCH, "5120.00")],
                         currency="USD"))

    april = month(2026, 4)
    eur = await account_plan(client, rep, acme, MARCH, date(2026, 4, 30), areas=[world.area_a])
    assert [figures(row) for row in eur["rows"]] == [
        {**figures(EMPTY), "billed": "60.00", "won": "6.00", "openPipeline": "600.00",
         "weightedPipeline": "300.00"},
        {**figures(EMPTY), "billed": "240.00", "won": "8.00", "openPipeline": "800.00",
         "weightedPipeline": "400.00"},
    ]
    assert [row["period"] for row in eur["rows"]] == ["2026-03-01", "2026-04-01"]

    usd = await account_plan(client, rep, acme, MARCH, april, areas=[world.area_a],
                             currency="USD")
    assert usd["currency"] == "USD"
    assert [figures(row) for row in usd["rows"]] == [
        {**figures(EMPTY), "budget": "5120.00", "billed": "2560.00", "won": "32.00",
         "openPipeline": "3200.00", "weightedPipeline": "320.00", "billedToBudget": 0.5},
        figures(EMPTY),
    ]

    # The roll-ups use the same months.
    summary = await plan_summary(client, world.org.admin, "OFFERING_AREA", MARCH, april)
    assert [(row["period"], row["billed"], row["won"], row["openPipeline"])
            for row in summary["rows"]] == [("2026-03-01", "60.00", "6.00", "600.00"),
                                            ("2026-04-01", "240.00", "8.00", "800.00")]


BILLING = """
query Billing($id: ID!) {
  account(id: $id) {
    billing(from: "2026-03-01", to: "2026-03-31") { period amount offeringArea { code } }
  }
}"""


async def test_records_without_an_offering_area_count_in_the_roll_ups_alike(
    client: GraphQLClient, db: Database, world: World
) -> None:
    """A free-text invoice line has no product and so no offering area, as an opportunity
    may have none: both belong to the account's figures (Account.billing counts the
    line), shown under no offering area."""
    acme, rep = world.acme, world.org.rep_a1
    payload = ok(await run(client, CREATE_INVOICE, rep, accountId=gid(acme),
                           invoiceDate="2026-03-10", lines=[
                               {"productId": gid(world.product_a), "unitPrice": "100.00"},
                               {"description": "Travel", "unitPrice": "50.00"}]))
    ok(await run(client, INVOICE_STEPS["SENT"], rep, id=payload["invoice"]["id"],
                 expectedVersion=payload["invoice"]["version"]))
    await make_opportunity(db, acme, world.phases["Won"], amount="7.00",
                           closed_at=datetime(2026, 3, 11, 12, 0, tzinfo=UTC))
    await make_opportunity(db, acme, world.phases["Propose"], amount="9.00", probability=50,
                           expected_close_date=date(2026, 3, 12))
    billing = (await client.query(BILLING, {"id": gid(acme)}, as_user=rep))["account"]
    assert sorted((f["amount"], f["offeringArea"] and f["offeringArea"]["code"])
                  for f in billing["billing"]) == [("100.00", "A"), ("50.00", None)]

    for group_by in ("ACCOUNT", "OWNER", "TEAM"):
        summary = await plan_summary(client, rep, group_by, MARCH, MARCH)
        assert [(row["billed"], row["won"], row["openPipeline"])
                for row in summary["rows"]] == [("150.00", "7.00", "9.00")], group_by
    per_area = await plan_summary(client, rep, "OFFERING_AREA", MARCH, MARCH)
    assert [(row["offeringArea"] and row["offeringArea"]["code"], row["billed"], row["won"],
             row["openPipeline"]) for row in per_area["rows"]] == [
        ("A", "100.00", "0.00", "0.00"), (None, "50.00", "7.00", "9.00")]
    assert per_area["totals"]["billed"] == "150.00"


async def test_plan_arguments_are_checked(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    cases = [
        {"id": gid(world.acme), **plan_variables(MARCH, date(2026, 2, 28))},
        {"id": gid(world.acme), **plan_variables(MARCH, date(2036, 3, 1))},  # 121 months
        {"id": gid(world.acme), **plan_variables(MARCH, MARCH, areas=[world.area_a]),
         "areas": [gid(world.area_a), gid(world.acme)]},
        {"id": gid(world.product_a), **plan_variables(MARCH, MARCH)},
    ]
    for variables in cases:
        errors = await client.errors(ACCOUNT_PLAN, variables, as_user=admin)
        assert error_codes(errors) == ["BAD_USER_INPUT"], variables
    errors = await client.errors(SUMMARY, summary_variables("TEAM", MARCH, date(2026, 2, 1)),
                                 as_user=admin)
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    longest = await account_plan(client, admin, world.acme, MARCH, date(2036, 2, 1),
                                 areas=[world.area_a], granularity="YEAR")
    assert [row["period"][:4] for row in longest["rows"]] == [str(y) for y in range(2026, 2037)]


# --- quarters and years -------------------------------------------------------------------

YEAR = 2026


def budget_of(number: int, area: str) -> Decimal:
    if area == "A":
        return Decimal(f"{1000 + 37 * number}.{13 * number % 100:02d}")
    return Decimal(f"{500 + 11 * number}.{29 * number % 100:02d}")


def fixed_of(number: int) -> Decimal:  # area A, every month
    return Decimal(f"{900 + 41 * number}.{7 * number % 100:02d}")


def rolling_of(number: int, area: str) -> Decimal | None:
    """The current rolling version: area A in even months, B every third month."""
    if area == "A":
        return fixed_of(number) + Decimal("12.34") if number % 2 == 0 else None
    return Decimal(f"{450 + number}.05") if number % 3 == 0 else None


def billed_of(number: int, area: str) -> Decimal:
    if area == "A":
        return Decimal(f"{100 * number}.{number:02d}")
    return Decimal(f"0.{number:02d}") + Decimal("7.77")


def won_of(number: int) -> Decimal:  # area A
    return Decimal(f"{10 * number}.25")


def pipeline_of(number: int, area: str) -> list[tuple[Decimal, int]]:
    """(amount, probability): the weighted sums end in half cents."""
    if area == "A":
        return [(Decimal(f"{number}.05"), 50)]  # n/2 + 0.025
    return [(Decimal("333.33"), 10), (Decimal("0.15"), 50 if number % 2 else 30)]


def expected_month(number: int, area: str) -> dict[str, Any]:
    budget = budget_of(number, area)
    fixed = fixed_of(number) if area == "A" else None
    rolling = rolling_of(number, area)
    forecast = rolling if rolling is not None else fixed
    billed = billed_of(number, area)
    deals = pipeline_of(number, area)
    row = {"period": month(YEAR, number).isoformat(), "budget": money(budget),
           "forecast": money(forecast),
           "forecastKind": None if forecast is None else (
               "ROLLING" if rolling is not None else "FIXED"),
           "fixedForecast": money(fixed), "rollingForecast": money(rolling),
           "billed": money(billed), "won": money(won_of(number) if area == "A" else 0),
           "openPipeline": money(sum((amount for amount, _ in deals), Decimal(0))),
           "weightedPipeline": money(half_up(sum(
               (amount * probability / 100 for amount, probability in deals), Decimal(0)))),
           "offeringArea": {"code": area}}
    row["budgetVariance"], row["billedToBudget"] = derived(row)
    return row


async def build_year(client: GraphQLClient, db: Database, world: World) -> None:
    """Twelve months of both areas for Acme; budgets through setBudgets in one call, the
    rest straight to the tables."""
    acme, rep, areas = world.acme, world.org.rep_a1, {"A": world.area_a, "B": world.area_b}
    ok(await set_budgets(client, rep, [
        cell(acme, area, month(YEAR, number), str(budget_of(number, code)))
        for number in range(1, 13) for code, area in areas.items()]))
    start = datetime(YEAR - 1, 12, 1, tzinfo=UTC)
    for number in range(1, 13):
        first_day = month(YEAR, number)
        await make_forecast(db, acme, world.area_a, first_day, fixed_of(number),
                            kind=ForecastKind.FIXED, by=rep, submitted_at=start)
        for code, area in areas.items():
            current = rolling_of(number, code)
            if current is not None:
                # An older version first: only the latest counts.
                await make_forecast(db, acme, area, first_day, current + 100,
                                    kind=ForecastKind.ROLLING, by=rep, submitted_at=start)
                await make_forecast(db, acme, area, first_day, current,
                                    kind=ForecastKind.ROLLING, by=rep,
                                    submitted_at=start + timedelta(days=number))
            for amount, probability in pipeline_of(number, code):
                await open_deal(db, world, acme, str(amount), probability,
                                first_day + timedelta(days=number), area=area)
        products = {"A": world.product_a, "B": world.product_b}
        await make_invoice(db, acme, invoice_date=first_day + timedelta(days=number),
                           status=InvoiceStatus.SENT if number % 2 else InvoiceStatus.PAID,
                           lines=[(products[code], "1", str(billed_of(number, code)))
                                  for code in areas])
        await make_invoice(db, acme, invoice_date=first_day, status=InvoiceStatus.DRAFT,
                           lines=[(world.product_a, "1", "99999.99")])
        await won(db, world, acme, str(won_of(number)),
                  datetime(YEAR, number, 10, 12, 0, tzinfo=UTC))


def assert_rolled_up(parts: list[dict[str, Any]], whole: dict[str, Any]) -> None:
    """``whole`` (a quarter, a year, a total) adds up ``parts`` in every money column, and
    its variance and ratio are its own columns'."""
    assert {name: whole[name] for name in SUMMED} == total_of(parts), (whole, parts)
    assert (whole["budgetVariance"], whole["billedToBudget"]) == derived(whole)


async def test_quarters_and_years_add_up_their_months_to_the_cent(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await build_year(client, db, world)
    first, last = month(YEAR, 1), date(YEAR, 12, 31)
    rep = world.org.rep_a1

    months = await account_plan(client, rep, world.acme, first, last)
    assert months["rows"] == [expected_month(number, area) for number in range(1, 13)
                              for area in ("A", "B")]
    # Half cents are rounded per month, up: 1.05 x 50% = 0.525 shows as 0.53.
    assert by_area(months)[("2026-01-01", "A")]["weightedPipeline"] == "0.53"
    assert by_area(months)[("2026-01-01", "B")]["weightedPipeline"] == "33.41"  # 33.408

    quarters = await account_plan(client, rep, world.acme, first, last, granularity="QUARTER")
    years = await account_plan(client, rep, world.acme, first, last, granularity="YEAR")
    assert [row["period"] for row in quarters["rows"]] == [
        period for period in ("2026-01-01", "2026-04-01", "2026-07-01", "2026-10-01")
        for _ in "AB"]
    for row in quarters["rows"]:
        start = date.fromisoformat(row["period"])
        parts = [by_area(months)[(add_months(start, n).isoformat(), row["offeringArea"]["code"])]
                 for n in range(3)]
        assert_rolled_up(parts, row)
        kinds = {part["forecastKind"] for part in parts if part["forecast"] is not None}
        assert row["forecastKind"] == (kinds.pop() if len(kinds) == 1 else None)
    # Q1 of A: 0.525 + 1.025 + 1.525 is 3.075, but each month shows rounded: 3.09.
    assert by_area(quarters)[("2026-01-01", "A")]["weightedPipeline"] == "3.09"
    assert by_area(quarters)[("2026-01-01", "A")]["forecastKind"] is None  # FIXED and ROLLING
    assert by_area(quarters)[("2026-01-01", "B")]["forecastKind"] == "ROLLING"

    assert [row["period"] for row in years["rows"]] == ["2026-01-01", "2026-01-01"]
    for row in years["rows"]:
        area = row["offeringArea"]["code"]
        assert_rolled_up([q for q in quarters["rows"] if q["offeringArea"]["code"] == area],
                         row)
    for plan in (months, quarters, years):
        assert_rolled_up(plan["rows"], plan["totals"])
        assert plan["totals"] == months["totals"]
    assert months["totals"]["weightedPipeline"] == "440.10"  # 39.36 + 400.74

    # The roll-ups of planSummary are the same sums: by account, and by offering area.
    by_account = await plan_summary(client, rep, "ACCOUNT", first, last, granularity="QUARTER")
    assert [row["period"] for row in by_account["rows"]] == [
        "2026-01-01", "2026-04-01", "2026-07-01", "2026-10-01"]
    for row in by_account["rows"]:
        assert_rolled_up([q for q in quarters["rows"] if q["period"] == row["period"]], row)
    per_area = await plan_summary(client, rep, "OFFERING_AREA", first, last,
                                  granularity="QUARTER")
    assert {(row["period"], row["offeringArea"]["code"]): figures(row)
            for row in per_area["rows"]} == {
        key: figures(row) for key, row in by_area(quarters).items()}
    for summary in (by_account, per_area):
        assert summary["totals"] == months["totals"]


async def test_every_roll_up_of_the_same_accounts_has_the_same_totals(
    client: GraphQLClient, db: Database, world: World
) -> None:
    """A row of a roll-up is the sum of its accounts' plans, so the company's totals do
    not depend on what they are grouped by. Half cents make the difference show: each
    of these accounts weighs 0.025 in March."""
    org = world.org
    accounts = [world.acme, await make_account(db, org.rep_a1, name="Beta Oy"),
                await make_account(db, org.rep_b1, name="Gamma AB")]
    for account in accounts:
        await open_deal(db, world, account, "0.05", 50, date(2026, 3, 15))
    for account in accounts:
        plan = await account_plan(client, org.admin, account, MARCH, MARCH,
                                  areas=[world.area_a])
        assert plan["totals"]["weightedPipeline"] == "0.03"

    weighted = {}
    for group_by in ("ACCOUNT", "OWNER", "TEAM", "OFFERING_AREA"):
        summary = await plan_summary(client, org.admin, group_by, MARCH, MARCH)
        weighted[group_by] = (summary["totals"]["weightedPipeline"],
                              [row["weightedPipeline"] for row in summary["rows"]])
    assert weighted == {"ACCOUNT": ("0.09", ["0.03", "0.03", "0.03"]),
                        "OWNER": ("0.09", ["0.06", "0.03"]),
                        "TEAM": ("0.09", ["0.06", "0.03"]),
                        "OFFERING_AREA": ("0.09", ["0.09"])}


# --- forecasts ----------------------------------------------------------------------------


async def test_a_fixed_forecast_is_locked_once_its_month_has_begun(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep, acme, area = world.org.rep_a1, world.acme, world.area_a
    current = this_month()
    past, future = add_months(current, -1), add_months(current, 1)
    # A month that has begun may still get its first figure.
    payload = ok(await submit_forecast(client, rep, acme, area, "FIXED", past,
                                       ["100.00", "200.00", "300.00"]))
    assert [(f["month"], f["amount"], f["kind"], f["version"], f["submittedBy"]["name"])
            for f in payload["forecasts"]] == [
        (past.isoformat(), "100.00", "FIXED", 1, "Rep A1"),
        (current.isoformat(), "200.00", "FIXED", 1, "Rep A1"),
        (future.isoformat(), "300.00", "FIXED", 1, "Rep A1")]
    before = await stored_forecasts(db)

    for first_day in (past, current):
        refused = await submit_forecast(client, rep, acme, area, "FIXED", first_day, ["999"])
        assert codes(refused) == {("amounts.0", "VALIDATION")}
        assert refused["forecasts"] == []
    # One locked month refuses the whole submission: the future month is not changed.
    refused = await submit_forecast(client, rep, acme, area, "FIXED", current, ["1", "2"])
    assert codes(refused) == {("amounts.0", "VALIDATION")}
    assert await stored_forecasts(db) == before

    changed = ok(await submit_forecast(client, world.org.manager_a, acme, area, "FIXED",
                                       future, ["333.33"]))
    assert [(f["month"], f["amount"], f["version"], f["submittedBy"]["name"])
            for f in changed["forecasts"]] == [(future.isoformat(), "333.33", 2, "Manager A")]
    assert await stored_forecasts(db) == [*before[:2], (acme.id, future, "FIXED", "333.33",
                                                        "EUR")]

    plan = await account_plan(client, rep, acme, past, future, areas=[area])
    assert [(row["period"], row["fixedForecast"], row["forecast"], row["forecastKind"])
            for row in plan["rows"]] == [
        (past.isoformat(), "100.00", "100.00", "FIXED"),
        (current.isoformat(), "200.00", "200.00", "FIXED"),
        (future.isoformat(), "333.33", "333.33", "FIXED")]


async def test_forecast_input_is_checked(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep, acme, area = world.org.rep_a1, world.acme, world.area_a
    cases = [
        ({"fromMonth": "2026-03-02"}, {("fromMonth", "VALIDATION")}),
        ({"amounts": ["-1"]}, {("amounts.0", "VALIDATION")}),
        ({"amounts": ["1.005"]}, {("amounts.0", "VALIDATION")}),
        ({"amounts": []}, {("amounts", "VALIDATION")}),
        ({"currency": "eur"}, {("currency", "VALIDATION")}),
    ]
    for change, expected in cases:
        input = {"accountId": gid(acme), "offeringAreaId": gid(area), "kind": "ROLLING",
                 "fromMonth": "2026-03-01", "amounts": ["1.00"], **change}
        payload = await run(client, SUBMIT_FORECAST, rep, **input)
        assert codes(payload) == expected, change
    teammate = await submit_forecast(client, world.org.rep_a2, acme, area, "ROLLING", MARCH,
                                     ["1"])
    assert codes(teammate) == {("accountId", "FORBIDDEN")}
    other_manager = await submit_forecast(client, world.org.manager_b, acme, area, "FIXED",
                                          MARCH, ["1"])
    assert codes(other_manager) == {("accountId", "FORBIDDEN")}
    partner = await submit_forecast(client, world.org.partner, acme, area, "ROLLING", MARCH,
                                    ["1"])
    assert {code for _, code in codes(partner)} == {"FORBIDDEN"}
    assert await stored_forecasts(db) == []


async def test_rolling_forecasts_add_versions_listed_oldest_first(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep, acme, area = world.org.rep_a1, world.acme, world.area_a
    submitted = []
    for amounts in (["8000"], ["8500", "100"], ["8200.50"]):
        payload = ok(await submit_forecast(client, rep, acme, area, "ROLLING", MARCH, amounts))
        submitted.append(payload["forecasts"][0]["id"])
        assert [(f["month"], f["kind"], f["version"]) for f in payload["forecasts"]] == [
            (add_months(MARCH, n).isoformat(), "ROLLING", 1) for n in range(len(amounts))]
    # A past month takes new rolling versions: only FIXED figures lock.
    assert this_month() > MARCH
    assert len(await stored_forecasts(db)) == 4

    versions = await history(client, world.org.rep_a2, acme, area, MARCH)
    assert [(v["current"], v["forecast"]["id"], v["forecast"]["amount"],
             v["forecast"]["kind"], v["forecast"]["month"], v["forecast"]["account"]["name"],
             v["forecast"]["offeringArea"]["code"], v["forecast"]["submittedBy"]["name"])
            for v in versions] == [
        (False, submitted[0], "8000.00", "ROLLING", "2026-03-01", "Acme Oy", "A", "Rep A1"),
        (False, submitted[1], "8500.00", "ROLLING", "2026-03-01", "Acme Oy", "A", "Rep A1"),
        (True, submitted[2], "8200.50", "ROLLING", "2026-03-01", "Acme Oy", "A", "Rep A1")]
    assert [v["forecast"]["submittedAt"] for v in versions] == sorted(
        v["forecast"]["submittedAt"] for v in versions)
    april = await history(client, rep, acme, area, month(2026, 4))
    assert [(v["current"], v["forecast"]["amount"]) for v in april] == [(True, "100.00")]
    assert await history(client, rep, acme, world.area_b, MARCH) == []

    plan = await account_plan(client, rep, acme, MARCH, month(2026, 4), areas=[area])
    assert [(row["rollingForecast"], row["forecast"], row["forecastKind"])
            for row in plan["rows"]] == [("8200.50", "8200.50", "ROLLING"),
                                         ("100.00", "100.00", "ROLLING")]

    # Time decides which version is current, not the order of the rows: the plan and
    # the history agree on it.
    await set_submitted_at(db, submitted[2], datetime(2026, 3, 1, tzinfo=UTC))
    versions = await history(client, rep, acme, area, MARCH)
    assert [(v["forecast"]["id"], v["current"]) for v in versions] == [
        (submitted[2], False), (submitted[0], False), (submitted[1], True)]
    plan = await account_plan(client, rep, acme, MARCH, MARCH, areas=[area])
    assert plan["rows"][0]["rollingForecast"] == "8500.00"


async def test_as_of_shows_the_forecasts_as_they_stood_at_the_end_of_that_day(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep, acme, area = world.org.rep_a1, world.acme, world.area_a
    await make_budget(db, acme, area, MARCH, "10000.00")
    await make_forecast(db, acme, area, MARCH, "9000.00", kind=ForecastKind.FIXED, by=rep,
                        submitted_at=datetime(2026, 2, 20, 9, 0, tzinfo=UTC))
    versions = [("8000.00", datetime(2026, 3, 5, 10, 0, tzinfo=UTC)),
                # 23:30 on 10 March in Helsinki (UTC+2): still that day.
                ("8500.00", datetime(2026, 3, 10, 21, 30, tzinfo=UTC)),
                # 00:30 on 11 March in Helsinki.
                ("8700.00", datetime(2026, 3, 10, 22, 30, tzinfo=UTC))]
    for amount, moment in versions:
        await make_forecast(db, acme, area, MARCH, amount, kind=ForecastKind.ROLLING, by=rep,
                            submitted_at=moment)

    expected = {
        None: ("8700.00", "9000.00", "8700.00", "ROLLING", "-1300.00"),
        date(2026, 3, 11): ("8700.00", "9000.00", "8700.00", "ROLLING", "-1300.00"),
        date(2026, 3, 10): ("8500.00", "9000.00", "8500.00", "ROLLING", "-1500.00"),
        date(2026, 3, 9): ("8000.00", "9000.00", "8000.00", "ROLLING", "-2000.00"),
        date(2026, 3, 5): ("8000.00", "9000.00", "8000.00", "ROLLING", "-2000.00"),
        date(2026, 3, 4): (None, "9000.00", "9000.00", "FIXED", "-1000.00"),
        date(2026, 2, 19): (None, None, None, None, None),
    }
    for as_of, (rolling, fixed, forecast, kind, variance) in expected.items():
        plan = await account_plan(client, rep, acme, MARCH, MARCH, areas=[area], as_of=as_of)
        assert [(row["rollingForecast"], row["fixedForecast"], row["forecast"],
                 row["forecastKind"], row["budgetVariance"], row["budget"])
                for row in plan["rows"]] == [
            (rolling, fixed, forecast, kind, variance, "10000.00")], as_of
        for group_by in ("ACCOUNT", "TEAM"):
            summary = await plan_summary(client, world.org.manager_b, group_by, MARCH, MARCH,
                                         as_of=as_of)
            assert [(row["rollingForecast"], row["fixedForecast"], row["forecast"])
                    for row in summary["rows"]] == [(rolling, fixed, forecast)], as_of


async def test_the_current_rolling_version_is_the_latest_whatever_its_currency(
    client: GraphQLClient, db: Database, world: World
) -> None:
    """The latest submission is the current one (as forecastHistory says): an older
    version in another currency is superseded, not the plan's forecast in that one."""
    rep, acme, area = world.org.rep_a1, world.acme, world.area_a
    ok(await submit_forecast(client, rep, acme, area, "ROLLING", MARCH, ["8000"]))
    ok(await submit_forecast(client, rep, acme, area, "ROLLING", MARCH, ["8500"],
                             currency="USD"))
    versions = await history(client, rep, acme, area, MARCH)
    assert [(v["current"], v["forecast"]["amount"], v["forecast"]["currency"])
            for v in versions] == [(False, "8000.00", "EUR"), (True, "8500.00", "USD")]

    usd = await account_plan(client, rep, acme, MARCH, MARCH, areas=[area], currency="USD")
    assert usd["rows"][0]["rollingForecast"] == "8500.00"
    eur = await account_plan(client, rep, acme, MARCH, MARCH, areas=[area])
    assert (eur["rows"][0]["rollingForecast"], eur["rows"][0]["forecast"]) == (None, None)


# --- budgets ------------------------------------------------------------------------------


async def test_set_budgets_writes_a_grid_in_one_call_and_replaces_on_the_next(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    beta = await make_account(db, rep, name="Beta Oy")
    months = [month(2026, n) for n in (4, 5, 6)]
    grid = [(account, area, first_day)
            for account in (world.acme, beta) for area in (world.area_a, world.area_b)
            for first_day in months]
    amounts = {key: f"{1000 + 10 * n}.{n:02d}" for n, key in enumerate(grid)}

    # Given against the keys' order (the order cells are written in): answered as given.
    given = grid[::-1]
    payload = ok(await set_budgets(client, rep, [cell(*key, amounts[key]) for key in given]))
    assert [(b["account"]["name"], b["offeringArea"]["code"], b["month"], b["amount"],
             b["currency"], b["version"]) for b in payload["budgets"]] == [
        (account.name, area.code, first_day.isoformat(), amounts[(account, area, first_day)],
         "EUR", 1) for account, area, first_day in given]
    assert await stored_budgets(db) == {
        (account.id, area.id, first_day): (amounts[(account, area, first_day)], "EUR", 1)
        for account, area, first_day in grid}
    ids = {(b["account"]["name"], b["offeringArea"]["code"], b["month"]): b["id"]
           for b in payload["budgets"]}

    # The same keys again: replaced in place (same ids, next version), the rest kept.
    changed = {grid[0]: "1.00", grid[7]: "0.00"}
    payload = ok(await set_budgets(client, world.org.manager_a,
                                   [cell(*key, amount) for key, amount in changed.items()]))
    assert [(b["id"], b["amount"], b["version"]) for b in payload["budgets"]] == [
        (ids[(account.name, area.code, first_day.isoformat())], amount, 2)
        for (account, area, first_day), amount in changed.items()]
    assert await stored_budgets(db) == {
        (account.id, area.id, first_day): (changed.get((account, area, first_day),
                                                       amounts[(account, area, first_day)]),
                                           "EUR", 2 if (account, area, first_day) in changed
                                           else 1)
        for account, area, first_day in grid}

    plan = await account_plan(client, rep, beta, months[0], months[-1],
                              areas=[world.area_a])
    assert [row["budget"] for row in plan["rows"]] == [
        amounts[grid[6]], "0.00", amounts[grid[8]]]


async def test_set_budgets_checks_every_cell_and_writes_nothing_on_any_error(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep, acme, area_a, area_b = world.org.rep_a1, world.acme, world.area_a, world.area_b
    ok(await set_budgets(client, rep, [cell(acme, area_a, MARCH, "10.00")]))
    before = await stored_budgets(db)
    good = [cell(acme, area_a, MARCH, "20.00"), cell(acme, area_b, MARCH, "30.00")]
    cases = [
        ([*good, cell(acme, area_a, date(2026, 4, 2), "1.00")], {("cells.2.month", "VALIDATION")}),
        ([*good, cell(acme, area_a, MARCH, "1.00")], {("cells.2", "VALIDATION")}),
        ([*good, cell(acme, area_b, month(2026, 4), "-0.01")],
         {("cells.2.amount", "VALIDATION")}),
        ([*good, cell(acme, area_b, month(2026, 4), "0.001")],
         {("cells.2.amount", "VALIDATION")}),
        ([*good, {**cell(acme, area_b, month(2026, 4), "1"), "accountId": gid(area_a)}],
         {("cells.2.accountId", "VALIDATION")}),
    ]
    for cells, expected in cases:
        payload = await set_budgets(client, rep, cells)
        assert codes(payload) == expected, cells[-1]
        assert payload["budgets"] == []
        assert await stored_budgets(db) == before
    bad_currency = await set_budgets(client, rep, good, currency="euro")
    assert codes(bad_currency) == {("currency", "VALIDATION")}
    assert await stored_budgets(db) == before


@pytest.mark.parametrize(("who", "allowed"), [
    ("rep_a1", True),  # the owner
    ("rep_a2", False),  # a teammate reads the plan but does not write it
    ("manager_a", True),  # the owner's manager
    ("manager_b", False),
    ("admin", True),
    ("partner", False),
])
async def test_who_may_set_budgets(
    client: GraphQLClient, db: Database, world: World, who: str, allowed: bool
) -> None:
    user = getattr(world.org, who)
    await share(db, world.acme, world.org.partner_org)
    payload = await set_budgets(client, user, [cell(world.acme, world.area_a, MARCH, "7.00")])
    if allowed:
        ok(payload)
        assert await stored_budgets(db) == {
            (world.acme.id, world.area_a.id, MARCH): ("7.00", "EUR", 1)}
    else:
        assert {code for _, code in codes(payload)} == {"FORBIDDEN"}
        assert payload["budgets"] == []
        assert await stored_budgets(db) == {}


async def test_delete_budget_needs_the_current_version(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep = world.org.rep_a1
    ok(await set_budgets(client, rep, [cell(world.acme, world.area_a, MARCH, "1.00")]))
    budget = ok(await set_budgets(client, rep, [cell(world.acme, world.area_a, MARCH,
                                                     "2.00")]))["budgets"][0]
    assert budget["version"] == 2

    stale = await run(client, DELETE_BUDGET, rep, id=budget["id"], expectedVersion=1)
    assert codes(stale) == {("expectedVersion", "CONFLICT")}
    assert stale["deletedBudgetId"] is None
    other = await run(client, DELETE_BUDGET, world.org.manager_b, id=budget["id"],
                      expectedVersion=2)
    assert {code for _, code in codes(other)} == {"FORBIDDEN"}
    assert len(await stored_budgets(db)) == 1

    deleted = ok(await run(client, DELETE_BUDGET, rep, id=budget["id"], expectedVersion=2))
    assert deleted["deletedBudgetId"] == budget["id"]
    assert await stored_budgets(db) == {}
    again = await run(client, DELETE_BUDGET, rep, id=budget["id"], expectedVersion=2)
    assert codes(again) == {("id", "NOT_FOUND")}


# --- who reads which plan -----------------------------------------------------------------


@dataclass
class Three:
    mine: Account  # Rep A1's
    teammates: Account  # Rep A2's
    others: Account  # Rep B1's


@pytest.fixture
async def three(db: Database, world: World) -> Three:
    org = world.org
    accounts = Three(world.acme, await make_account(db, org.rep_a2, name="Beta Oy"),
                     await make_account(db, org.rep_b1, name="Gamma AB"))
    for n, account in enumerate((accounts.mine, accounts.teammates, accounts.others), 1):
        await make_budget(db, account, world.area_a, MARCH, f"{n}00.00")
        await make_forecast(db, account, world.area_a, MARCH, f"{n}0.00",
                            kind=ForecastKind.ROLLING, by=org.admin)
    await share(db, accounts.others, org.partner_org)
    return accounts


async def test_a_rep_reads_the_plans_of_own_and_team_accounts_only(
    client: GraphQLClient, world: World, three: Three
) -> None:
    rep = world.org.rep_a1
    for account, budget in ((three.mine, "100.00"), (three.teammates, "200.00")):
        plan = await account_plan(client, rep, account, MARCH, MARCH, areas=[world.area_a])
        assert plan["rows"][0]["budget"] == budget
    variables = {"id": gid(three.others), **plan_variables(MARCH, MARCH)}
    errors = await client.errors(ACCOUNT_PLAN, variables, as_user=rep)
    assert error_codes(errors) == ["FORBIDDEN"]
    # The account itself is readable; its plan is not, whichever way it is asked for.
    response = await client.post(ACCOUNT_DOT_PLAN, variables, as_user=rep)
    body = response.json()
    assert error_codes(body["errors"]) == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["account", "plan"]
    history_errors = await client.errors(HISTORY, {
        "account": gid(three.others), "area": gid(world.area_a), "period": "2026-03-01"},
        as_user=rep)
    assert error_codes(history_errors) == ["FORBIDDEN"]
    # Another team's rep, the other way round.
    plan = await account_plan(client, world.org.rep_b1, three.others, MARCH, MARCH,
                              areas=[world.area_a])
    assert plan["rows"][0]["budget"] == "300.00"
    errors = await client.errors(ACCOUNT_PLAN, {"id": gid(three.mine),
                                                **plan_variables(MARCH, MARCH)},
                                 as_user=world.org.rep_b1)
    assert error_codes(errors) == ["FORBIDDEN"]


async def test_plan_summary_of_a_rep_covers_own_and_team_accounts(
    client: GraphQLClient, world: World, three: Three
) -> None:
    org = world.org
    expected = {
        org.rep_a1: {"Acme Oy": "100.00", "Beta Oy": "200.00"},
        org.rep_a2: {"Acme Oy": "100.00", "Beta Oy": "200.00"},
        org.rep_b1: {"Gamma AB": "300.00"},
        org.manager_a: {"Acme Oy": "100.00", "Beta Oy": "200.00", "Gamma AB": "300.00"},
        org.admin: {"Acme Oy": "100.00", "Beta Oy": "200.00", "Gamma AB": "300.00"},
    }
    for user, budgets in expected.items():
        summary = await plan_summary(client, user, "ACCOUNT", MARCH, MARCH)
        assert {row["account"]["name"]: row["budget"] for row in summary["rows"]} == budgets
        total = sum((Decimal(b) for b in budgets.values()), Decimal(0))
        assert summary["totals"]["budget"] == money(total)
        teams = await plan_summary(client, user, "TEAM", MARCH, MARCH)
        assert teams["totals"]["budget"] == money(total)
    # A filter narrows what the rep sees; it never widens it.
    narrowed = await plan_summary(client, org.rep_a1, "OWNER", MARCH, MARCH,
                                  filter={"name": {"in": ["Gamma AB", "Beta Oy"]}})
    assert [(row["owner"]["name"], row["budget"]) for row in narrowed["rows"]] == [
        ("Rep A2", "200.00")]


async def test_partners_see_no_plans(client: GraphQLClient, world: World, three: Three) -> None:
    partner = world.org.partner
    shared = {"id": gid(three.others), **plan_variables(MARCH, MARCH)}
    assert error_codes(await client.errors(ACCOUNT_PLAN, shared, as_user=partner)) == [
        "FORBIDDEN"]
    response = await client.post(ACCOUNT_DOT_PLAN, shared, as_user=partner)
    body = response.json()
    assert body["data"] is None or body["data"]["account"] is None
    assert error_codes(body["errors"]) == ["FORBIDDEN"]
    for group_by in ("ACCOUNT", "OFFERING_AREA"):
        errors = await client.errors(SUMMARY, summary_variables(group_by, MARCH, MARCH),
                                     as_user=partner)
        assert error_codes(errors) == ["FORBIDDEN"]
    errors = await client.errors(HISTORY, {"account": gid(three.others),
                                           "area": gid(world.area_a),
                                           "period": "2026-03-01"}, as_user=partner)
    assert error_codes(errors) == ["FORBIDDEN"]


# --- statements ---------------------------------------------------------------------------


async def fewest_statements(client: GraphQLClient, query: str, variables: dict[str, Any],
                            user: User) -> tuple[dict[str, Any], int]:
    """The fewest of three runs: a broker message from another test run wakes the event
    hub, whose outbox read is counted too; a request's own statements are the same every
    time."""
    runs = [await client.counted(query, variables, as_user=user) for _ in range(3)]
    return runs[0][0], min(count for _, count in runs)


async def bulk_plans(db: Database, world: World, count: int) -> list[Account]:
    """``count`` more accounts, spread over the reps of both teams, each with a budget, a
    FIXED and a ROLLING forecast for every month of 2026 in three offering areas: written
    in one transaction."""
    area_c = await make_offering_area(db, "C")
    areas = [world.area_a, world.area_b, area_c]
    owners = [world.org.rep_a1, world.org.rep_a2, world.org.rep_b1]
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.transaction() as session:
        accounts = [Account(name=f"Bulk {n:02d}", owner_id=owners[n % 3].id, archived=False,
                            type=AccountType.CUSTOMER) for n in range(count)]
        session.add_all(accounts)
        await session.flush()
        for account in accounts:
            for number in range(1, 13):
                for area in areas:
                    keys = {"account_id": account.id, "offering_area_id": area.id,
                            "period": month(YEAR, number), "currency": "EUR"}
                    session.add_all([
                        Budget(amount=Decimal("100.00"), **keys),
                        Forecast(amount=Decimal("90.00"), kind=ForecastKind.FIXED,
                                 submitted_by_id=account.owner_id, submitted_at=moment,
                                 **keys),
                        Forecast(amount=Decimal("95.00"), kind=ForecastKind.ROLLING,
                                 submitted_by_id=account.owner_id, submitted_at=moment,
                                 **keys)])
    return accounts


async def test_statements_do_not_grow_with_accounts_months_or_areas(
    client: GraphQLClient, db: Database, world: World, three: Three
) -> None:
    org = world.org
    await build_march(client, db, world)
    first, last = month(YEAR, 1), date(YEAR, 12, 31)
    small: dict[tuple[str, str], int] = {}
    for group_by in ("ACCOUNT", "TEAM"):
        for user in (org.admin, org.rep_a1):
            data, small[(group_by, user.name)] = await fewest_statements(
                client, SUMMARY, summary_variables(group_by, first, last), user)
            assert data["planSummary"]["rows"]

    await bulk_plans(db, world, 30)

    for (group_by, name), statements in small.items():
        user = org.admin if name == "Admin" else org.rep_a1
        data, large = await fewest_statements(
            client, SUMMARY, summary_variables(group_by, first, last), user)
        rows = data["planSummary"]["rows"]
        if group_by == "ACCOUNT":
            assert len({row["account"]["name"] for row in rows}) == (
                33 if user is org.admin else 22)
        else:
            assert len({row["team"]["name"] for row in rows}) == (2 if user is org.admin else 1)
        assert large == statements, (group_by, name, statements, large)

    plan_counts = {}
    for user in (org.admin, org.rep_a1):
        for end in (date(2026, 3, 31), date(2027, 12, 31)):
            variables = {"id": gid(world.acme), **plan_variables(first, end)}
            data, plan_counts[(user.name, end)] = await fewest_statements(
                client, ACCOUNT_PLAN, variables, user)
            months = 3 if end.year == YEAR else 24
            assert len(data["accountPlan"]["rows"]) == months * 3  # areas A, B and C
            assert all(row["offeringArea"]["code"] for row in data["accountPlan"]["rows"])
        assert plan_counts[(user.name, date(2026, 3, 31))] == plan_counts[
            (user.name, date(2027, 12, 31))]


ACCOUNT_PLANS = """query($n: Int) { accounts(first: $n, orderBy: [{field: NAME}]) { nodes {
    name plan(from: "2026-01-01", to: "2026-12-31") { rows { period budget forecast }
    totals { budget } } } } }"""


async def test_account_plan_on_a_page_of_accounts_is_batched(
    client: GraphQLClient, db: Database, world: World
) -> None:
    """Account.plan on every account of a page (a dashboard's budgets): the statements
    are those of one plan, for 3 accounts as for 31."""
    org = world.org
    await bulk_plans(db, world, 30)
    counts = {}
    for size in (3, 31):
        data, counts[size] = await fewest_statements(client, ACCOUNT_PLANS, {"n": size},
                                                     org.admin)
        nodes = data["accounts"]["nodes"]
        assert len(nodes) == size
        bulk = [node for node in nodes if node["name"].startswith("Bulk")]
        assert bulk, "the page must hold planned accounts"
        for node in bulk:
            assert node["plan"]["totals"]["budget"] == "3600.00", node  # 12 x 3 x 100
    assert counts[3] == counts[31], counts


# --- exact figures on every database ------------------------------------------------------


async def test_figures_are_exact_decimals_on_every_database(
    client: GraphQLClient, db: Database, world: World
) -> None:
    """Four-decimal amounts, sub-cent weights and large sums: the strings are pinned, so
    a float or a rounding difference between SQLite and PostgreSQL would show."""
    acme, rep, area = world.acme, world.org.rep_a1, world.area_a
    ok(await set_budgets(client, rep, [cell(acme, area, MARCH, "999999999.99")]))
    ok(await submit_forecast(client, rep, acme, area, "ROLLING", MARCH, ["0.01"]))
    await make_invoice(db, acme, invoice_date=date(2026, 3, 3), status=InvoiceStatus.SENT,
                       lines=[(world.product_a, "3", "0.3333"), (world.product_a, "1", "0.10")])
    for amount in ("1234.5678", "0.0050", "0.0049"):
        await won(db, world, acme, amount, datetime(2026, 3, 4, 12, 0, tzinfo=UTC))
    for amount, probability in (("1234.5678", 33), ("0.05", 50), ("99999999.99", 99),
                                ("0.01", 1)):
        await open_deal(db, world, acme, amount, probability, date(2026, 3, 5))

    plan = await account_plan(client, rep, acme, MARCH, MARCH, areas=[area])
    # billed: 1.00 (3 x 0.3333 half-even) + 0.10; won: 1234.5777;
    # open: 100001234.6178; weighted: 407.407374 + 0.025 + 98999999.9901 + 0.0001.
    assert plan["rows"] == [{
        "period": "2026-03-01", "budget": "999999999.99", "forecast": "0.01",
        "forecastKind": "ROLLING", "fixedForecast": None, "rollingForecast": "0.01",
        "billed": "1.10", "won": "1234.58", "openPipeline": "100001234.62",
        "weightedPipeline": "99000407.42", "budgetVariance": "-999999999.98",
        "billedToBudget": 0.0, "offeringArea": {"code": "A"}}]
    summary = await plan_summary(client, world.org.admin, "OWNER", MARCH, MARCH)
    assert figures(summary["rows"][0]) == figures(plan["rows"][0])
    assert summary["totals"] == plan["totals"] == figures(plan["rows"][0])


# --- a plan computes the columns it is asked for ------------------------------------------

# Column sets a client may ask for (PlanTotals has no forecastKind).
SOME_COLUMNS = [(), ("budget",), ("won", "billedToBudget"), ("forecast", "forecastKind"),
                ("budgetVariance",), ("fixedForecast", "rollingForecast", "weightedPipeline"),
                ("openPipeline", "billed")]


def some_plan(document: str, columns: tuple[str, ...]) -> str:
    """``document`` (a plan query asking for every column) asking for ``columns`` only:
    the rows keep their period and groups."""
    totals = " ".join(c for c in columns if c != "forecastKind")
    narrowed = document.replace(f"rows {{ {ROW} ", f"rows {{ period {' '.join(columns)} ")
    narrowed = narrowed.replace(f"totals {{ {FIGURES} }}",
                                f"totals {{ {totals} }}" if totals else "")
    assert narrowed != document
    return narrowed


def only(plan: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """The whole plan's answer cut down to ``columns``."""
    kept = {"period", "offeringArea", "account", "owner", "team", *columns}
    narrowed = {k: v for k, v in plan.items() if k not in ("rows", "totals")}
    narrowed["rows"] = [{k: v for k, v in row.items() if k in kept} for row in plan["rows"]]
    if any(c != "forecastKind" for c in columns):
        narrowed["totals"] = {k: v for k, v in plan["totals"].items() if k in columns}
    return narrowed


async def test_a_plan_asked_for_some_columns_answers_as_the_whole_plan(
    client: GraphQLClient, db: Database, world: World
) -> None:
    """Only the figures a query asks for are read, yet the rows are the same: records in
    an inactive offering area or in none still get their rows when only budgets are
    asked for; and a plan asked for fewer figures reads fewer statements."""
    rep, acme = world.org.rep_a1, world.acme
    await build_march(client, db, world)
    old = await make_offering_area(db, "OLD")
    # Billed alone in an inactive area: the row comes from an invoice line's product.
    retired = await make_offering_area(db, "RETIRED")
    async with db.transaction() as session:
        await session.execute(update(OfferingArea).where(OfferingArea.id.in_(
            [old.id, retired.id])).values(active=False))
    await won(db, world, acme, "70.00", datetime(2026, 5, 4, 12, 0, tzinfo=UTC), area=old)
    await invoice(client, rep, acme, date(2026, 3, 3),
                  [(await make_product(db, retired, code="PR"), "60.00")])
    await make_opportunity(db, acme, world.phases["Propose"], amount="9.00", probability=50,
                           expected_close_date=date(2026, 6, 12))
    payload = ok(await run(client, CREATE_INVOICE, rep, accountId=gid(acme),
                           invoiceDate="2026-02-10",
                           lines=[{"description": "Travel", "unitPrice": "50.00"}]))
    ok(await run(client, INVOICE_STEPS["SENT"], rep, id=payload["invoice"]["id"],
                 expectedVersion=payload["invoice"]["version"]))
    ok(await set_budgets(client, rep, [cell(acme, world.area_b, month(2026, 4), "300")]))

    first, last = month(2026, 1), date(2026, 6, 30)
    plans = {"accountPlan": (ACCOUNT_PLAN, {"id": gid(acme)}),
             "account": (ACCOUNT_DOT_PLAN, {"id": gid(acme)}),
             "planSummary": (SUMMARY, {"groupBy": "OFFERING_AREA"})}
    for (name, (document, extra)), granularity, kind in (
            (plan, granularity, kind) for plan in plans.items()
            for granularity in ("MONTH", "QUARTER") for kind in (None, "FIXED", "ROLLING")):
        variables = {**extra, **plan_variables(first, last, granularity=granularity,
                                               kind=kind)}
        if name == "planSummary":
            del variables["areas"]
        whole, whole_count = await fewest_statements(client, document, variables, rep)
        answer = whole["account"]["plan"] if name == "account" else whole[name]
        if name != "planSummary":
            # Rows for the inactive areas and for none, after the active ones.
            assert [row["offeringArea"] and row["offeringArea"]["code"]
                    for row in answer["rows"]][:5] == ["A", "B", "OLD", "RETIRED", None]
        for columns in SOME_COLUMNS:
            data, count = await fewest_statements(client, some_plan(document, columns),
                                                  variables, rep)
            part = data["account"]["plan"] if name == "account" else data[name]
            assert part == only(answer, columns), (name, granularity, kind, columns)
            assert count <= whole_count, (name, columns, count, whole_count)
            if columns == ("budget",):
                assert count < whole_count, (name, count, whole_count)


ALIASED_PLANS = """query($n: Int) { accounts(first: $n, orderBy: [{field: NAME}]) { nodes {
    name budgets: plan(from: "2026-01-01", to: "2026-12-31") { rows { period budget } }
    deals: plan(from: "2026-01-01", to: "2026-12-31") { rows { period won }
    totals { openPipeline } } } } }"""


async def test_plans_asking_for_different_columns_on_a_page_share_one_batch(
    client: GraphQLClient, db: Database, world: World
) -> None:
    """Two plans of each account on a page, each asking for other figures: one batch
    reads what either asks for, in as many statements for 3 accounts as for 31, and no
    more than one plan asking for everything."""
    org = world.org
    await bulk_plans(db, world, 30)
    await won(db, world, world.acme, "70.00", datetime(2026, 5, 4, 12, 0, tzinfo=UTC))
    whole = ACCOUNT_PLANS.replace("rows { period budget forecast }", f"rows {{ {ROW} }}")
    counts = {}
    for size in (3, 31):
        data, counts[size] = await fewest_statements(client, ALIASED_PLANS, {"n": size},
                                                     org.admin)
        full, full_count = await fewest_statements(client, whole, {"n": size}, org.admin)
        assert counts[size] < full_count
        for node, reference in zip(data["accounts"]["nodes"], full["accounts"]["nodes"],
                                   strict=True):
            rows = reference["plan"]["rows"]
            assert node["budgets"]["rows"] == [
                {"period": r["period"], "budget": r["budget"]} for r in rows]
            assert node["deals"]["rows"] == [
                {"period": r["period"], "won": r["won"]} for r in rows]
            assert node["deals"]["totals"] == {"openPipeline": "0.00"}
        acme = next(n for n in data["accounts"]["nodes"] if n["name"] == "Acme Oy")
        assert [r["won"] for r in acme["deals"]["rows"] if r["won"] != "0.00"] == ["70.00"]
    assert counts[3] == counts[31], counts


async def test_a_plans_totals_sum_only_the_columns_the_totals_read(
    client: GraphQLClient, db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An account's plan sums the columns its totals select, whatever its rows select:
    none for a plan shown as rows alone (a page of accounts' budgets), yet totals that
    read a column the rows do not, or one derived from others, are those of the whole
    plan."""
    await build_march(client, db, world)
    summed: list[frozenset[str]] = []
    total = planning_resolvers._total

    def counting(rows: list[Any], columns: frozenset[str] = planning_resolvers.ALL_COLUMNS
                 ) -> Any:
        summed.append(columns)
        return total(rows, columns)

    monkeypatch.setattr(planning_resolvers, "_total", counting)
    variables = {"id": gid(world.acme), **plan_variables(month(2026, 2), MARCH)}
    whole = (await client.query(ACCOUNT_DOT_PLAN, variables,
                                as_user=world.org.manager_b))["account"]["plan"]
    assert whole["totals"]["budget"] == "10000.00"
    cases = {"rows { period budget }": (None, frozenset()),
             "rows { period } totals { budget }": ({"budget": "10000.00"}, {"budget"}),
             "rows { period won } totals { budgetVariance }": (
                 {"budgetVariance": whole["totals"]["budgetVariance"]},
                 {"budget_variance", "budget", "forecast"})}
    for body, (totals, columns) in cases.items():
        summed.clear()
        document = ACCOUNT_DOT_PLAN.replace(PLAN_BODY, body)
        plan = (await client.query(document, variables,
                                   as_user=world.org.manager_b))["account"]["plan"]
        assert plan.get("totals") == totals, body
        # Each run sums them (the suite also runs each query through graphql-core).
        assert summed, body
        for run_columns in summed:
            assert run_columns >= columns, (body, summed)
            assert "won" not in run_columns, (body, summed)
            if not columns:
                assert run_columns == frozenset(), (body, summed)


PAGE_OF_PLANS = """query Plans($from: Date!, $to: Date!) { accounts(first: 10) { nodes {
  name plan(from: $from, to: $to) { rows { period budget } } } } }"""


async def test_a_page_of_accounts_plans_reads_the_page_once(
    client: GraphQLClient, world: World, three: Three
) -> None:
    """Each plan checks that its account is visible: on a page of accounts, the page's
    rows answer that, not a second read of the same accounts by id."""
    sent: list[str] = []

    def counted(sql: str) -> None:  # not those of graphql-core's run beside (verify)
        if not UNCOUNTED.get():
            sent.append(sql)

    client.db.watchers.append(counted)
    try:
        data, statements = await client.counted(
            PAGE_OF_PLANS, {"from": "2026-03-01", "to": "2026-03-31"}, as_user=world.org.admin)
    finally:
        client.db.watchers.remove(counted)
    budgets = {node["name"]: [row["budget"] for row in node["plan"]["rows"]]
               for node in data["accounts"]["nodes"]}
    assert budgets["Beta Oy"][0] == "200.00"
    assert budgets["Gamma AB"][0] == "300.00"
    account_reads = [sql for sql in sent if "FROM accounts" in sql.split("WHERE")[0]
                     and sql.lstrip().startswith("SELECT accounts.")]
    assert len(account_reads) == 1, account_reads
    # The viewer, the page, the offering areas, the plans' sums and their keys.
    assert statements == 5, sent

    # A rep's page still checks each plan against the rep's own and team's accounts.
    response = await client.post(PAGE_OF_PLANS, {"from": "2026-03-01", "to": "2026-03-31"},
                                 as_user=world.org.rep_a1)
    body = response.json()
    names = [node["name"] for node in data["accounts"]["nodes"]]  # reps read every account
    assert {error["extensions"]["code"] for error in body["errors"]} == {"FORBIDDEN"}
    assert [error["path"] for error in body["errors"]] == [
        ["accounts", "nodes", names.index("Gamma AB"), "plan"]]
    assert body["data"] is None  # a plan is never null: the error reaches the root
    # graphql-core (run beside the plans in tests, to compare) answers once the error
    # reaches the root and leaves the other plans' reads to end on their own: here.
    await asyncio.sleep(0.2)


async def test_budgets_of_one_month_add_up_however_they_were_stored(
    client: GraphQLClient, db: Database, world: World
) -> None:
    """An account's plan reads its budgets as they are stored, one per month and area,
    without summing them in SQL; a month with two (one written outside the API, not on
    the month's first day) still shows their sum, in the account's plan and its page."""
    account = await make_account(db, world.org.rep_a1, name="Twice Budgeted Oy")
    await make_budget(db, account, world.area_a, MARCH, "100.10")
    await make_budget(db, account, world.area_a, MARCH + timedelta(days=14), "0.25")
    await make_budget(db, account, world.area_a, month(2026, 2), "1.00")
    await make_budget(db, account, world.area_a, month(2026, 4), "7.00")
    plan = await account_plan(client, world.org.admin, account, month(2026, 2),
                              month(2026, 4), areas=[world.area_a])
    assert [(row["period"], row["budget"]) for row in plan["rows"]] == [
        ("2026-02-01", "1.00"), ("2026-03-01", "100.35"), ("2026-04-01", "7.00")]
    quarters = await account_plan(client, world.org.admin, account, month(2026, 2),
                                  month(2026, 4), areas=[world.area_a], granularity="QUARTER")
    assert [row["budget"] for row in quarters["rows"]] == ["101.35", "7.00"]
    data = await client.query(PAGE_OF_PLANS, {"from": "2026-03-01", "to": "2026-03-31"},
                              as_user=world.org.admin)
    [node] = [node for node in data["accounts"]["nodes"] if node["name"] == account.name]
    assert [row["budget"] for row in node["plan"]["rows"]] == ["100.35", None]


async def test_a_refused_plan_reads_no_figures(
    client: GraphQLClient, world: World, three: Three
) -> None:
    """A plan's figures are read once its account's checks pass: a plan refused reads
    none, not even after its request has been answered."""
    sent: list[str] = []
    client.db.watchers.append(sent.append)
    try:
        variables = {"id": gid(three.others), **plan_variables(MARCH, MARCH)}
        errors = await client.errors(ACCOUNT_DOT_PLAN, variables, as_user=world.org.rep_a1)
        assert error_codes(errors) == ["FORBIDDEN"]
        await asyncio.sleep(0.2)  # what the request left running has run
    finally:
        client.db.watchers.remove(sent.append)
    assert sent, "the request read the viewer and the account"
    assert [sql for sql in sent if "grp" in sql] == []
