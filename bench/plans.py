"""Plan summary benchmark: 2,000 accounts x 24 months x 5 offering areas of budgets,
forecasts, invoices and opportunities, and planSummary rolled up by team, owner and
account through the ASGI app, reporting latency and SQL statements.

    python -m bench.plans [--database-url URL] [--requests 5]

Without --database-url it uses a temporary SQLite file. A PostgreSQL database given here
must be empty; it is migrated first.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

from models.accounts import Account, AccountType
from models.billing import Invoice, InvoiceLine, InvoiceStatus
from models.db import Database
from models.opportunities import (
    ForecastCategory,
    Opportunity,
    Phase,
    PhaseOutcome,
    Pipeline,
    PipelineKind,
)
from models.planning import Budget, Forecast, ForecastKind
from models.pricing import OfferingArea, PriceSource, Product
from models.users import Role, Team, User
from server.app import create_app
from server.migrate import upgrade_head
from server.settings import Settings

ACCOUNTS, AREAS, TEAMS, REPS_PER_TEAM = 2000, 5, 4, 10
FIRST_MONTH = date(2025, 1, 1)
MONTHS = [date(2025 + m // 12, m % 12 + 1, 1) for m in range(24)]
CHUNK = 5000

QUERY = """query($groupBy: PlanGroupBy!, $granularity: PlanGranularity!) {
  planSummary(groupBy: $groupBy, from: "2025-01-01", to: "2026-12-31",
              granularity: $granularity) {
    rows { period budget forecast billed won openPipeline weightedPipeline budgetVariance }
    totals { budget forecast billed won openPipeline weightedPipeline }
  }
}"""

SCENARIOS = [("TEAM", "QUARTER"), ("OWNER", "YEAR"), ("OFFERING_AREA", "MONTH"),
             ("ACCOUNT", "YEAR")]


async def _insert(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    async with db.transaction() as session:
        for start in range(0, len(rows), CHUNK):
            await session.execute(insert(model).execution_options(render_nulls=True),
                                  rows[start:start + CHUNK])


async def seed(db: Database) -> int:
    """The data set; returns the admin's user id."""
    rng = random.Random(7)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    stamps = {"created_at": now, "updated_at": now}
    await _insert(db, Team, [{"id": t, "name": f"Team {t}", "version": 1, **stamps}
                             for t in range(1, TEAMS + 1)])
    users = [{"id": 1, "email": "admin@bench.test", "name": "Admin", "role": Role.ADMIN,
              "team_id": None, "active": True, "version": 1, **stamps}]
    reps = []
    for team in range(1, TEAMS + 1):
        for _ in range(REPS_PER_TEAM):
            key = len(users) + 1
            reps.append(key)
            users.append({"id": key, "email": f"rep{key}@bench.test", "name": f"Rep {key}",
                          "role": Role.REP, "team_id": team, "active": True, "version": 1,
                          **stamps})
    await _insert(db, User, users)
    await _insert(db, OfferingArea, [{"id": a, "code": f"A{a}", "name": f"Area {a}",
                                      "active": True, "version": 1, **stamps}
                                     for a in range(1, AREAS + 1)])
    await _insert(db, Product, [{"id": a, "code": f"P{a}", "name": f"Product {a}",
                                 "offering_area_id": a, "unit": "piece",
                                 "list_price": Decimal("100.00"), "currency": "EUR",
                                 "active": True, "version": 1, **stamps}
                                for a in range(1, AREAS + 1)])
    await _insert(db, Account, [{"id": a, "name": f"Account {a}", "type": AccountType.CUSTOMER,
                                 "owner_id": reps[a % len(reps)], "archived": False,
                                 "version": 1, **stamps} for a in range(1, ACCOUNTS + 1)])
    budgets, forecasts = [], []
    for account in range(1, ACCOUNTS + 1):
        for area in range(1, AREAS + 1):
            for month in MONTHS:
                amount = Decimal(rng.randrange(1000, 20000))
                budgets.append({"account_id": account, "offering_area_id": area,
                                "period": month, "amount": amount, "currency": "EUR",
                                "version": 1, **stamps})
                if account % 2 == 0:
                    forecasts.append(_forecast(account, area, month, amount,
                                               ForecastKind.FIXED, now, stamps))
                if account % 4 == 1:
                    for version in range(2):
                        forecasts.append(_forecast(
                            account, area, month, amount * Decimal("0.9") + version * 100,
                            ForecastKind.ROLLING, now - timedelta(days=30 - version), stamps))
    await _insert(db, Budget, budgets)
    await _insert(db, Forecast, forecasts)
    invoices, lines = [], []
    for account in range(1, ACCOUNTS + 1):
        for number, month in enumerate(MONTHS):
            key = len(invoices) + 1
            quantity = rng.randrange(1, 50)
            total = Decimal(quantity * 100)
            invoices.append({"id": key, "account_id": account, "number": f"B{key}",
                             "invoice_date": month + timedelta(days=9), "due_date": None,
                             "status": InvoiceStatus.PAID if number < 20 else InvoiceStatus.SENT,
                             "currency": "EUR", "external_id": None, "notes": None,
                             "total": total, "version": 1, **stamps})
            lines.append({"invoice_id": key, "position": 1,
                          "product_id": (account + number) % AREAS + 1, "description": None,
                          "quantity": Decimal(quantity), "unit_price": Decimal("100.00"),
                          "discount_percent": Decimal(0), "price_source": PriceSource.LIST_PRICE,
                          "price_book_id": None, "line_total": total, **stamps})
    await _insert(db, Invoice, invoices)
    await _insert(db, InvoiceLine, lines)
    await _insert(db, Pipeline, [{"id": 1, "name": "Sales", "kind": PipelineKind.SALES,
                                  "active": True, "version": 1, **stamps}])
    await _insert(db, Phase, [
        {"id": 1, "pipeline_id": 1, "name": "Open", "position": 1, "probability": 40,
         "outcome": PhaseOutcome.OPEN, "forecast_category": ForecastCategory.PIPELINE,
         "version": 1, **stamps},
        {"id": 2, "pipeline_id": 1, "name": "Won", "position": 2, "probability": 100,
         "outcome": PhaseOutcome.WON, "forecast_category": ForecastCategory.CLOSED,
         "version": 1, **stamps}])
    opportunities = []
    for account in range(1, ACCOUNTS + 1):
        for n in range(5):
            month = MONTHS[rng.randrange(len(MONTHS))]
            won = n % 2 == 0
            opportunities.append({
                "account_id": account, "name": f"Deal {account}-{n}",
                "amount": Decimal(rng.randrange(1000, 50000)), "currency": "EUR",
                "pipeline_id": 1, "phase_id": 2 if won else 1,
                "probability": 100 if won else rng.choice([10, 25, 40, 75]),
                "expected_close_date": month + timedelta(days=14),
                "owner_id": reps[account % len(reps)], "offering_area_id": n % AREAS + 1,
                "source_campaign_id": None, "lost_reason": None, "phase_entered_at": now,
                "closed_at": datetime.combine(month + timedelta(days=20), datetime.min.time(),
                                              tzinfo=UTC) if won else None,
                "version": 1, **stamps})
    await _insert(db, Opportunity, opportunities)
    if db.dialect == "postgresql":
        # Fresh bulk loads have no statistics yet; without them the planner guesses
        # nested loops over hundreds of thousands of rows.
        async with db.engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
    return 1


def _forecast(account: int, area: int, month: date, amount: Decimal, kind: ForecastKind,
              submitted: datetime, stamps: dict[str, Any]) -> dict[str, Any]:
    return {"account_id": account, "offering_area_id": area, "period": month,
            "amount": amount.quantize(Decimal("0.01")), "currency": "EUR", "kind": kind,
            "submitted_by_id": 1, "submitted_at": submitted, "version": 1, **stamps}


async def run(url: str, requests: int) -> None:
    app = create_app(Settings(database_url=url, jwt_secret="bench-secret-" + "x" * 40,
                              event_poll_seconds=3600))
    async with app.router.lifespan_context(app):
        db = app.state.db
        started = time.perf_counter()
        admin = await seed(db)
        print(f"seeded {ACCOUNTS} accounts x {len(MONTHS)} months x {AREAS} areas in "
              f"{time.perf_counter() - started:.1f} s")
        headers = {"Authorization": f"Bearer {app.state.authenticator.mint(admin)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                     base_url="http://bench", timeout=600) as client:
            print(f"{'groupBy':<14} {'granularity':<11} {'rows':>6} {'p50 ms':>9} "
                  f"{'max ms':>9} {'statements':>10}")
            for group_by, granularity in SCENARIOS:
                body = {"query": QUERY, "variables": {"groupBy": group_by,
                                                      "granularity": granularity}}
                latencies, statements, rows = [], 0, 0
                for _ in range(requests):
                    before = db.statements
                    began = time.perf_counter()
                    response = await client.post("/graphql", json=body, headers=headers)
                    latencies.append(time.perf_counter() - began)
                    statements = db.statements - before
                    payload = response.json()
                    assert "errors" not in payload, payload["errors"]
                    rows = len(payload["data"]["planSummary"]["rows"])
                print(f"{group_by:<14} {granularity:<11} {rows:>6} "
                      f"{statistics.median(latencies) * 1000:>9.1f} "
                      f"{max(latencies) * 1000:>9.1f} {statements:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plans", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'plans.db'}"
        upgrade_head(url)
        asyncio.run(run(url, args.requests))


if __name__ == "__main__":
    main()
