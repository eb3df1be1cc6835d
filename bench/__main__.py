"""In-process request benchmark: the demo data set, five query shapes, through the
ASGI app (no network), reporting requests per second, latency and SQL statements.

    python -m bench [--database-url URL] [--requests 200] [--concurrency 1]

Without --database-url it uses a temporary SQLite file. A PostgreSQL database given
here must be empty or hold the demo data; it is migrated first.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from loaders.ids import encode_id
from models.users import Role
from resolvers.users import find_user_id_by_email
from server.app import create_app
from server.demo import DEMO_EMAILS, seed_demo
from server.migrate import upgrade_head
from server.settings import Settings

SCENARIOS = {
    "small": "{ accounts(first: 1) { nodes { id name owner { name } } } }",
    "dashboard": """{ accounts(first: 100) { edges { node { id name owner { name }
        parent { name } contacts(first: 5) { nodes { name email } } } } } }""",
    "large": """{ accounts(first: 200) { nodes { id name type industry version owner { name }
        contacts(first: 10) { nodes { id name email phone title } } } } }""",
    # A sales-floor board: a team's week and its leaderboard.
    "board": """query($team: ID!, $week: String!) {
        teamAttainment(teamId: $team, week: $week) {
            user { name } metric activityType { code } target realized ratio }
        activityLeaderboard(teamId: $team, week: $week) {
            entries { rank user { name } realized target ratio } } }""",
    # A rep's year, week by week.
    "history": """query($user: ID!, $week: String!) {
        attainmentHistory(userId: $user, fromWeek: "2025-W45", toWeek: $week) {
            week metric activityType { code } target realized ratio } }""",
}

BOARD_WEEK = "2026-W44"  # the demo's last full week of activities


async def run(url: str, requests: int, concurrency: int) -> None:
    # No background outbox polling, so the statement counts are the request's own; a
    # budget no run exhausts, so the cost is computed and paid as in production but
    # never refuses a request.
    app = create_app(Settings(database_url=url, jwt_secret="bench-secret-" + "x" * 40,
                              event_poll_seconds=3600, cost_budget_per_minute=10**12,
                              log_format="text"))
    async with app.router.lifespan_context(app):
        db = app.state.db
        await seed_demo(db)
        token = app.state.authenticator.mint(
            await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN]))
        headers = {"Authorization": f"Bearer {token}"}
        rep = await find_user_id_by_email(db, DEMO_EMAILS[Role.REP])
        variables = {"team": encode_id("Team", 1), "user": encode_id("User", rep),
                     "week": BOARD_WEEK}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                     base_url="http://bench") as client:
            print(f"{'scenario':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'statements':>10}")
            for name, query in SCENARIOS.items():
                body = {"query": query, "variables": variables}
                for _ in range(5):  # warm the parse and validation caches
                    (await client.post("/graphql", json=body, headers=headers)).raise_for_status()
                before = db.statements
                await client.post("/graphql", json=body, headers=headers)
                statements = db.statements - before
                started = time.perf_counter()
                latencies = await _drive(client, body, headers, requests, concurrency)
                elapsed = time.perf_counter() - started
                latencies.sort()
                p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                print(f"{name:<10} {requests / elapsed:>8.1f} "
                      f"{statistics.median(latencies) * 1000:>8.2f} {p99 * 1000:>8.2f} "
                      f"{statements:>10}")


async def _drive(client: httpx.AsyncClient, body: dict, headers: dict, requests: int,
                 concurrency: int) -> list[float]:
    latencies: list[float] = []
    remaining = [requests]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            response = await client.post("/graphql", json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            assert "errors" not in response.json()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        upgrade_head(url)
        asyncio.run(run(url, args.requests, args.concurrency))


if __name__ == "__main__":
    main()
