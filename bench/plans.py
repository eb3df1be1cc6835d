"""Plan summary benchmark: 2,000 accounts x 24 months x 5 offering areas of budgets,
forecasts, invoices and opportunities (the data set of bench/data.py), and planSummary
rolled up by team, owner and account through the ASGI app, reporting latency and SQL
statements. `python -m bench` times one roll-up against a server process.

    python -m bench.plans [--database-url URL] [--requests 5]

Without --database-url it uses a temporary SQLite file. A PostgreSQL database given here
must be empty; it is migrated first.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench import data
from models.db import Database
from server.app import create_app
from server.migrate import upgrade_head
from server.settings import Settings

ACCOUNTS = 2000

QUERY = """query($groupBy: PlanGroupBy!, $granularity: PlanGranularity!) {
  planSummary(groupBy: $groupBy, from: "2025-01-01", to: "2026-12-31",
              granularity: $granularity) {
    rows { period budget forecast billed won openPipeline weightedPipeline budgetVariance }
    totals { budget forecast billed won openPipeline weightedPipeline }
  }
}"""

SCENARIOS = [("TEAM", "QUARTER"), ("OWNER", "YEAR"), ("OFFERING_AREA", "MONTH"),
             ("ACCOUNT", "YEAR")]


async def seed(db: Database) -> int:
    """The data set (bench/data.py at 2,000 accounts); returns the admin's user id."""
    await data.seed(db, ACCOUNTS)
    return data.ADMIN_ID


async def run(url: str, requests: int) -> None:
    app = create_app(Settings(database_url=url, jwt_secret="bench-secret-" + "x" * 40,
                              event_poll_seconds=3600))
    async with app.router.lifespan_context(app):
        db = app.state.db
        started = time.perf_counter()
        admin = await seed(db)
        print(f"seeded {ACCOUNTS} accounts x {len(data.MONTHS)} months x {data.AREAS} areas in "
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
