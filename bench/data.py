"""The benchmark data set at a chosen scale, loaded with bulk inserts.

Per account: 10 opportunities, 3 contacts, 24 months x 5 offering areas of budgets
(forecasts for half of them), 24 monthly invoices and a year of activities (one a
month). Around them: 4 teams of 10 reps, an admin, a sales pipeline of five phases.
At the default 2,000 accounts that is 20,000 opportunities, 240,000 budgets and
24,000 activities. The figures are drawn from a seeded random generator, so every
database seeded at one scale holds the same data.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, text

from models.accounts import Account, AccountType, Contact
from models.activities import Activity, ActivityStatus, ActivityType
from models.base import Base
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
from resolvers.weeks import week_of

AREAS, TEAMS, REPS_PER_TEAM = 5, 4, 10
OPPORTUNITIES_PER_ACCOUNT, CONTACTS_PER_ACCOUNT = 10, 3
MONTHS = [date(2025 + m // 12, m % 12 + 1, 1) for m in range(24)]
NOW = datetime(2026, 11, 1, tzinfo=UTC)  # fixed, so the data set does not drift by day
ADMIN_EMAIL = "admin@bench.test"
ADMIN_ID = 1
PIPELINE_ID = 1
CHUNK = 5000
# (name, probability, outcome, forecast category); ids 1.. in this order.
PHASES = [("Prospect", 10, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
          ("Qualified", 40, PhaseOutcome.OPEN, ForecastCategory.BEST_CASE),
          ("Proposal", 75, PhaseOutcome.OPEN, ForecastCategory.COMMIT),
          ("Won", 100, PhaseOutcome.WON, ForecastCategory.CLOSED),
          ("Lost", 0, PhaseOutcome.LOST, ForecastCategory.OMITTED)]
WON_PHASE = 4


async def _insert(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    async with db.transaction() as session:
        for start in range(0, len(rows), CHUNK):
            await session.execute(insert(model).execution_options(render_nulls=True),
                                  rows[start:start + CHUNK])


async def seeded_scale(db: Database) -> tuple[int, int]:
    """(accounts, opportunities) already in the database."""
    async with db.read() as connection:
        accounts = (await connection.execute(select(func.count()).select_from(Account))).scalar()
        deals = (await connection.execute(select(func.count()).select_from(Opportunity))).scalar()
    return int(accounts or 0), int(deals or 0)


async def seed(db: Database, accounts: int, *, timezone: str = "Europe/Helsinki") -> None:
    """Load the data set into a migrated, empty database."""
    rng = random.Random(7)
    stamps = {"created_at": NOW, "updated_at": NOW}
    await _insert(db, Team, [{"id": t, "name": f"Team {t}", "version": 1, **stamps}
                             for t in range(1, TEAMS + 1)])
    users = [{"id": ADMIN_ID, "email": ADMIN_EMAIL, "name": "Admin", "role": Role.ADMIN,
              "team_id": None, "active": True, "version": 1, **stamps}]
    reps: list[int] = []
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
    owner = {a: reps[a % len(reps)] for a in range(1, accounts + 1)}
    await _insert(db, Account, [{"id": a, "name": f"Account {a}", "type": AccountType.CUSTOMER,
                                 "industry": rng.choice(["Energy", "Retail", "Software"]),
                                 "country": "Finland", "owner_id": owner[a],
                                 "archived": False, "version": 1, **stamps}
                                for a in range(1, accounts + 1)])
    await _insert(db, Contact, [
        {"id": (a - 1) * CONTACTS_PER_ACCOUNT + n, "account_id": a, "first_name": "Person",
         "last_name": f"{a}-{n}", "email": f"p{a}-{n}@customer{a}.test", "phone": None,
         "title": "CEO" if n == 1 else "Buyer", "owner_id": owner[a], "email_consent": True,
         "phone_consent": n % 2 == 0, "version": 1, **stamps}
        for a in range(1, accounts + 1) for n in range(1, CONTACTS_PER_ACCOUNT + 1)])
    await _plans(db, rng, accounts, stamps)
    await _pipeline(db, rng, accounts, owner, stamps)
    await _activities(db, rng, accounts, owner, timezone, stamps)
    if db.dialect == "postgresql":
        async with db.engine.connect() as connection:
            # Rows came with their ids: the sequences must continue after them, or the
            # mutation mix's first insert collides.
            for table in Base.metadata.sorted_tables:
                if "id" in table.c and table.c.id.autoincrement is not False:
                    await connection.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"))
            await connection.commit()
            # Fresh bulk loads have no statistics yet; without them the planner guesses
            # nested loops over hundreds of thousands of rows.
            await connection.execute(text("ANALYZE"))
            await connection.commit()


async def _plans(db: Database, rng: random.Random, accounts: int,
                 stamps: dict[str, Any]) -> None:
    budgets, forecasts = [], []
    for account in range(1, accounts + 1):
        for area in range(1, AREAS + 1):
            for month in MONTHS:
                amount = Decimal(rng.randrange(1000, 20000))
                budgets.append({"account_id": account, "offering_area_id": area,
                                "period": month, "amount": amount, "currency": "EUR",
                                "version": 1, **stamps})
                if account % 2 == 0:
                    forecasts.append(_forecast(account, area, month, amount,
                                               ForecastKind.FIXED, NOW, stamps))
                if account % 4 == 1:
                    for version in range(2):
                        forecasts.append(_forecast(
                            account, area, month, amount * Decimal("0.9") + version * 100,
                            ForecastKind.ROLLING, NOW - timedelta(days=30 - version), stamps))
    await _insert(db, Budget, budgets)
    await _insert(db, Forecast, forecasts)
    invoices, lines = [], []
    for account in range(1, accounts + 1):
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


def _forecast(account: int, area: int, month: date, amount: Decimal, kind: ForecastKind,
              submitted: datetime, stamps: dict[str, Any]) -> dict[str, Any]:
    return {"account_id": account, "offering_area_id": area, "period": month,
            "amount": amount.quantize(Decimal("0.01")), "currency": "EUR", "kind": kind,
            "submitted_by_id": ADMIN_ID, "submitted_at": submitted, "version": 1, **stamps}


async def _pipeline(db: Database, rng: random.Random, accounts: int, owner: dict[int, int],
                    stamps: dict[str, Any]) -> None:
    await _insert(db, Pipeline, [{"id": PIPELINE_ID, "name": "Sales",
                                  "kind": PipelineKind.SALES, "active": True, "version": 1,
                                  **stamps}])
    await _insert(db, Phase, [
        {"id": n, "pipeline_id": PIPELINE_ID, "name": name, "position": n,
         "probability": probability, "outcome": outcome, "forecast_category": category,
         "version": 1, **stamps}
        for n, (name, probability, outcome, category) in enumerate(PHASES, start=1)])
    opportunities = []
    for account in range(1, accounts + 1):
        for n in range(OPPORTUNITIES_PER_ACCOUNT):
            phase = rng.randrange(1, len(PHASES) + 1)
            _name, probability, outcome, _category = PHASES[phase - 1]
            month = MONTHS[rng.randrange(len(MONTHS))]
            closed = outcome is not PhaseOutcome.OPEN
            opportunities.append({
                "id": (account - 1) * OPPORTUNITIES_PER_ACCOUNT + n + 1,
                "account_id": account, "name": f"Deal {account}-{n}",
                "amount": Decimal(rng.randrange(1000, 50000)), "currency": "EUR",
                "pipeline_id": PIPELINE_ID, "phase_id": phase, "probability": probability,
                "expected_close_date": month + timedelta(days=14), "owner_id": owner[account],
                "offering_area_id": n % AREAS + 1, "source_campaign_id": None,
                "lost_reason": "Price" if outcome is PhaseOutcome.LOST else None,
                "phase_entered_at": NOW - timedelta(days=rng.randrange(1, 90)),
                "closed_at": datetime.combine(month + timedelta(days=20), datetime.min.time(),
                                              tzinfo=UTC) if closed else None,
                "version": 1, **stamps})
    await _insert(db, Opportunity, opportunities)


async def _activities(db: Database, rng: random.Random, accounts: int, owner: dict[int, int],
                      timezone: str, stamps: dict[str, Any]) -> None:
    """One activity a month per account over the year before NOW; past ones done."""
    async with db.read() as connection:
        types = {row.code: (row.id, row.points) for row in await connection.execute(
            select(ActivityType.id, ActivityType.code, ActivityType.points))}
    codes = sorted(types)
    activities = []
    for account in range(1, accounts + 1):
        for month in range(12):
            code = codes[rng.randrange(len(codes))]
            due = NOW - timedelta(days=365 - month * 30 - rng.randrange(28),
                                  hours=rng.randrange(8))
            done = month < 11
            activities.append({
                "type_id": types[code][0], "subject": f"{code.title()} {account}-{month}",
                "notes": None, "owner_id": owner[account], "account_id": account,
                "contact_id": (account - 1) * CONTACTS_PER_ACCOUNT + 1,
                "opportunity_id": (account - 1) * OPPORTUNITIES_PER_ACCOUNT + 1,
                "campaign_id": None, "due_at": due,
                "status": ActivityStatus.DONE if done else ActivityStatus.PLANNED,
                "completed_at": due if done else None,
                "completed_week": week_of(due, timezone) if done else None,
                "points_earned": types[code][1] if done else None,
                "version": 1, "created_at": due - timedelta(days=7), "updated_at": due})
    await _insert(db, Activity, activities)
