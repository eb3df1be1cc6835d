"""Soak: subscriptions held open while mutations run and the broker is restarted.

    python -m bench.soak --database-url postgresql://postgres@127.0.0.1:5432/crm_soak \\
        [--duration 600] [--subscriptions 1000] [--connections 100] [--rate 5] \\
        [--restarts 2] [--json soak.json]

Two server processes share the database and a private redis-server as broker: the
subscribers are on one (A), the mutations go to the other (B), so every event reaches
the subscribers through the broker, or through the outbox poll while the broker is
away. The broker is stopped for ``--outage`` seconds ``--restarts`` times, evenly
spread. A subscriber whose socket closes reconnects and resumes with ``after`` (the last
eventId it saw), as boards do. At the end every subscription must hold every
phase-change event of the run exactly once, in order: the report counts events
expected (the outbox's), delivered, duplicated, lost and out of order, and server A's
memory over time. Exit status 1 when anything was lost, duplicated or out of order.

The database must be empty or hold the demo data (it is migrated and seeded once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import websockets
from sqlalchemy import func, select

from models.db import Database
from models.events import Event
from models.users import Role
from resolvers.users import find_user_id_by_email
from server.auth import Authenticator
from server.demo import DEMO_EMAILS, seed_demo
from server.migrate import upgrade_head
from server.settings import Settings
from subscriptions.outbox import OPPORTUNITY_TOPIC
from tests.processes import CRMGRAPH, RedisServer, free_port, server_env

SECRET = "soak-secret-" + "x" * 40
SUBSCRIPTION = """subscription($after: String) {
  opportunityPhaseChanged(after: $after) { eventId } }"""
OPEN_OPPORTUNITIES = """{ opportunities(first: 200, filter: {outcome: {eq: OPEN}}) {
  nodes { id version phase { id } pipeline { phases { id outcome } } } } }"""
MOVE = """mutation($input: MoveOpportunityPhaseInput!) { moveOpportunityPhase(input: $input) {
  opportunity { id version phase { id } } userErrors { code message } } }"""


class Feed:
    """One subscription's received event ids. It starts from the outbox's position
    before the run, so a client that drops before its first event misses nothing."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.ids: list[int] = []

    @property
    def after(self) -> str:
        return str(self.ids[-1] if self.ids else self.start)


async def hold(url: str, token: str, feeds: dict[str, Feed], stop: asyncio.Event,
               counters: dict[str, int], churn: float, rng: random.Random) -> None:
    """One WebSocket with several subscriptions; reconnects and resumes until ``stop``.
    With ``churn``, the client also drops its socket about every ``churn`` seconds, as
    a board on a flaky network does, and resumes from the last eventId it saw."""
    while not stop.is_set():
        lifetime = rng.uniform(0.5, 1.5) * churn if churn else None
        try:
            async with asyncio.timeout(lifetime):
                await _subscribed(url, token, feeds, counters)
        except TimeoutError:
            counters["dropped"] += 1
        except (OSError, websockets.WebSocketException, RuntimeError):
            pass
        if not stop.is_set():
            counters["reconnects"] += 1
            await asyncio.sleep(0.5)


async def _subscribed(url: str, token: str, feeds: dict[str, Feed], counters: dict[str, int]
                      ) -> None:
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"],
                                  max_size=None, open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"Authorization": f"Bearer {token}"}}))
        ack = json.loads(await ws.recv())
        if ack["type"] != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        for name, feed in feeds.items():
            await ws.send(json.dumps({"id": name, "type": "subscribe", "payload": {
                "query": SUBSCRIPTION, "variables": {"after": feed.after}}}))
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif message["type"] == "next":
                payload = message["payload"]
                if payload.get("errors"):
                    counters["errors"] += 1
                    continue
                event = payload["data"]["opportunityPhaseChanged"]
                feeds[message["id"]].ids.append(int(event["eventId"]))
            elif message["type"] in ("error", "complete"):
                counters["errors"] += 1
                break


async def mutate(url: str, token: str, rate: float, stop: asyncio.Event,
                 counters: dict[str, int]) -> None:
    """Phase moves at a steady rate, each to another open phase of its pipeline."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        body = (await http.post("/graphql", json={"query": OPEN_OPPORTUNITIES})).json()
        deals = body["data"]["opportunities"]["nodes"]
        if not deals:
            raise RuntimeError("the database holds no open opportunities")
        turn = 0
        started = time.monotonic()
        while not stop.is_set():
            deal = deals[turn % len(deals)]
            phases = [p["id"] for p in deal["pipeline"]["phases"]
                      if p["outcome"] == "OPEN" and p["id"] != deal["phase"]["id"]]
            turn += 1
            try:
                answer = (await http.post("/graphql", json={"query": MOVE, "variables": {
                    "input": {"id": deal["id"], "phaseId": phases[turn % len(phases)],
                              "expectedVersion": deal["version"]}}})).json()
                payload = (answer.get("data") or {}).get("moveOpportunityPhase")
                if payload and payload["opportunity"] and not payload["userErrors"]:
                    deal.update(payload["opportunity"])
                    counters["moves"] += 1
                else:
                    counters["move_errors"] += 1
            except httpx.HTTPError:
                counters["move_errors"] += 1
            # Steady: the n-th move starts at n / rate seconds, however long each took.
            delay = started + turn / rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def server(env: dict[str, str], directory: Path, name: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    log = (directory / f"{name}.log").open("w")
    process = subprocess.Popen([CRMGRAPH, "serve", "--port", str(port), "--workers", "1"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {name} did not start; see {log.name}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def outbox_ids(db: Database, after: int) -> list[int]:
    async with db.read() as connection:
        rows = await connection.execute(select(Event.id).where(
            Event.topic == OPPORTUNITY_TOPIC, Event.id > after).order_by(Event.id))
        return [row.id for row in rows]


async def prepare(url: str) -> tuple[str, int]:
    """Seed when empty; the admin's token and the outbox position before the run."""
    db = Database(url)
    try:
        await seed_demo(db)
        settings = Settings(database_url=url, jwt_secret=SECRET)
        token = Authenticator(settings, db).mint(
            await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN]))
        async with db.read() as connection:
            start = (await connection.execute(select(func.coalesce(func.max(Event.id), 0)))
                     ).scalar_one()
        return token, int(start)
    finally:
        await db.dispose()


async def soak(args: argparse.Namespace, urls: dict[str, str], pid: int, token: str,
               redis: RedisServer, start: int) -> dict[str, Any]:
    stop = asyncio.Event()
    counters = {"moves": 0, "move_errors": 0, "reconnects": 0, "dropped": 0, "errors": 0}
    rng = random.Random(7)
    per_connection = max(1, args.subscriptions // args.connections)
    feeds = [{f"s{i}-{j}": Feed(start) for j in range(per_connection)}
             for i in range(args.connections)]
    ws_url = urls["A"].replace("http://", "ws://") + "/graphql"
    idle_rss = rss_kb(pid)
    holders = [asyncio.create_task(hold(ws_url, token, group, stop, counters, args.churn, rng))
               for group in feeds]
    await asyncio.sleep(min(30, 2 + args.connections / 50))  # let every socket subscribe
    memory = [(0.0, rss_kb(pid))]
    # The subscribers hold on (and resume) until every event has reached them; the
    # mutations stop at the end of the duration.
    done_moving = asyncio.Event()
    mutator = asyncio.create_task(mutate(urls["B"], token, args.rate, done_moving, counters))
    started = time.monotonic()
    outages = [args.duration * (n + 1) / (args.restarts + 1) for n in range(args.restarts)]
    while (elapsed := time.monotonic() - started) < args.duration:
        if outages and elapsed >= outages[0]:
            outages.pop(0)
            redis.stop()
            await asyncio.sleep(args.outage)
            redis.start()
        await asyncio.sleep(min(1.0, args.duration - elapsed))
        if time.monotonic() - started - memory[-1][0] >= args.sample_seconds:
            memory.append((round(time.monotonic() - started, 1), rss_kb(pid)))
    done_moving.set()
    await mutator
    return {"feeds": feeds, "counters": counters, "memory": memory, "idle_rss": idle_rss,
            "holders": holders, "stop": stop}


async def settle(db_url: str, start: int, feeds: list[dict[str, Feed]], seconds: float
                 ) -> list[int]:
    db = Database(db_url)
    try:
        expected = await outbox_ids(db, start)
    finally:
        await db.dispose()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(  # noqa: ASYNC110 - polls the feeds' lists
            len(feed.ids) < len(expected) for group in feeds for feed in group.values()):
        await asyncio.sleep(0.5)
    return expected


def report(expected: list[int], feeds: list[dict[str, Feed]]) -> dict[str, Any]:
    wanted = set(expected)
    delivered = duplicated = lost = disordered = 0
    for group in feeds:
        for feed in group.values():
            delivered += len(feed.ids)
            duplicated += len(feed.ids) - len(set(feed.ids))
            lost += len(wanted - set(feed.ids))
            disordered += sum(1 for a, b in zip(feed.ids, feed.ids[1:], strict=False) if b <= a)
    subscriptions = sum(len(group) for group in feeds)
    return {"subscriptions": subscriptions, "events": len(expected),
            "expected": len(expected) * subscriptions, "delivered": delivered,
            "duplicated": duplicated, "lost": lost, "out_of_order": disordered}


async def run(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    token, start = await prepare(args.database_url)
    redis = RedisServer(free_port(), directory)
    redis.start()
    env = server_env(
        DATABASE_URL=args.database_url, BROADCAST_URL=redis.url, JWT_SECRET=SECRET,
        EVENT_POLL_SECONDS=str(args.poll_seconds), LOG_LEVEL="WARNING", LOG_FORMAT="text",
        COST_BUDGET_PER_MINUTE="0", WS_MAX_SUBSCRIPTIONS=str(args.subscriptions),
        RATE_LIMIT_URL="memory://")
    try:
        with server(env, directory, "A") as (url_a, pid), server(env, directory, "B") as (
                url_b, _):
            state = await soak(args, {"A": url_a, "B": url_b}, pid, token, redis, start)
            expected = await settle(args.database_url, start, state["feeds"], 60)
            state["stop"].set()
            for task in state["holders"]:
                task.cancel()
            await asyncio.gather(*state["holders"], return_exceptions=True)
            result = report(expected, state["feeds"])
            memory = state["memory"]
            return {**result, **state["counters"], "duration_s": args.duration,
                    "broker_restarts": args.restarts, "outage_s": args.outage,
                    "churn_s": args.churn,
                    "server_rss_kb_before_subscribing": state["idle_rss"],
                    "server_rss_kb": memory,
                    "rss_growth_kb": memory[-1][1] - memory[0][1]}
    finally:
        redis.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        required="DATABASE_URL" not in os.environ)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5, help="mutations per second")
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--outage", type=float, default=5, help="seconds the broker is away")
    parser.add_argument("--churn", type=float, default=120,
                        help="each client drops and resumes about this often (0: never)")
    parser.add_argument("--poll-seconds", type=float, default=2)
    parser.add_argument("--sample-seconds", type=float, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    upgrade_head(args.database_url)
    with tempfile.TemporaryDirectory() as directory:
        result = asyncio.run(run(args, Path(directory)))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if result["lost"] or result["duplicated"] or result["out_of_order"] else 0


if __name__ == "__main__":
    sys.exit(main())
