"""The benchmark suite: our server as a real process on PostgreSQL, driven by wrk.

    python -m bench --database-url postgresql://postgres@127.0.0.1:5432/crm_bench \\
        [--accounts 2000] [--duration 10] [--scenarios small,dashboard,...] \\
        [--subscribers 10000] [--json bench/results.json] [--fresh]

Creates the database if missing (drops and recreates it with --fresh), migrates it,
seeds it once at the scale asked (bench/data.py), starts `crmgraph serve --workers 1`,
and for each scenario prints req/s at concurrency 1 and 16, p50 and p99 latency, CPU ms
per request of the server and of PostgreSQL, SQL statements per request and response
bytes. small, dashboard and large are also served by bench/floor.py (one hand-written
SQL statement per request) and our req/s is shown as a ratio of the floor's; the fan-out's
CPU per event beside the send floor (bench/sendfloor.py) for as many sockets.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench import reference, scenarios
from bench.data import ADMIN_ID, OPPORTUNITIES_PER_ACCOUNT, seed, seeded_scale
from loaders.ids import encode_id
from models.db import Database
from server.app import create_app
from server.migrate import upgrade_head
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ALL_SCENARIOS = ["small", "dashboard", "large", "pipeline", "plan", "mutations", "fanout"]
JWT_SECRET = "bench-secret-" + "x" * 40
TICKS = os.sysconf("SC_CLK_TCK")
# Settings of both our server process and the in-process app that counts statements:
# pages of 1,000, no cost limit or budget and no request timeout (0 turns them off: a
# slow scenario is measured to its end, not cut at 30 s), no outbox polling.
SERVER_ENV = {"JWT_SECRET": JWT_SECRET, "MAX_PAGE_SIZE": "1000", "MAX_QUERY_COST": "0",
              "COST_BUDGET_PER_MINUTE": "0", "EVENT_POLL_SECONDS": "3600",
              "REQUEST_TIMEOUT": "0", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "text",
              "BROADCAST_URL": "memory://"}


@dataclass
class Run:
    """One wrk run: a scenario on one server at one concurrency."""

    concurrency: int
    duration_s: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float  # per request
    postgres_cpu_ms: float  # per request
    failed_responses: int  # non-2xx, socket errors and timeouts
    mutation_errors: int | None = None  # responses with userErrors or errors
    rounds_rps: list[float] | None = None  # a floored scenario's rounds (_rounds)


@dataclass
class Result:
    scenario: str
    statements: float | None = None
    response_bytes: int | None = None
    runs: list[Run] = field(default_factory=list)
    floor: list[Run] = field(default_factory=list)
    floor_bytes: int | None = None
    # ours / floor req/s by c: the median of the rounds' ratios (_rounds)
    ratio: dict[str, float] = field(default_factory=dict)
    # The same for the reference server (bench/reference.py), driven in the same rounds.
    reference: list[Run] = field(default_factory=list)
    reference_bytes: int | None = None
    reference_ratio: dict[str, float] = field(default_factory=dict)
    reference_error: str | None = None  # why it was not measured beside ours
    error: str | None = None
    extra: dict[str, Any] | None = None


# --- the database ---------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(url: str, fresh: bool) -> None:
    parsed = make_url(url)
    name = parsed.database
    admin = await asyncpg.connect(_asyncpg_dsn(str(parsed.set(database="postgres"))))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and fresh:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def ensure_seeded(url: str, accounts: int) -> None:
    db = Database(url)
    try:
        found = await seeded_scale(db)
        if found == (accounts, accounts * OPPORTUNITIES_PER_ACCOUNT):
            print(f"database already seeded with {accounts} accounts", flush=True)
            return
        if found != (0, 0):
            raise SystemExit(f"bench: the database holds {found[0]} accounts, not {accounts}; "
                             "pass --fresh to recreate it")
        started = time.perf_counter()
        await seed(db, accounts)
        print(f"seeded {accounts} accounts in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await db.dispose()


# --- statements per request, counted in-process ---------------------------------------------


async def count_statements(url: str, names: list[str]) -> tuple[dict[str, float], str]:
    """Each scenario once through the ASGI app on the same database, counting the SQL
    statements it sends (Database.statements); the mutation mix as the mean of its three.
    Also mints the admin's token the drivers send."""
    settings = Settings.from_env({**SERVER_ENV, "DATABASE_URL": url}, env_file=None)
    app = create_app(settings)
    counts: dict[str, float] = {}
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        db = app.state.db
        headers = {"Authorization": f"Bearer {app.state.authenticator.mint(ADMIN_ID)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                     base_url="http://bench", timeout=600) as client:
            for name in names:
                bodies = mutation_bodies(await _deal(db)) if name == "mutations" else \
                    [scenarios.body(name)] if name in scenarios.READS else []
                if not bodies:
                    continue
                total = 0
                for body in bodies:
                    await client.post("/graphql", json=body, headers=headers)  # warm caches
                    before = db.statements
                    payload = (await client.post("/graphql", json=body, headers=headers)).json()
                    total += db.statements - before
                    if "errors" in payload:
                        raise SystemExit(f"bench: {name} answers errors: {payload['errors']}")
                counts[name] = total / len(bodies)
        token = app.state.authenticator.mint(ADMIN_ID, ttl_seconds=86_400)
    finally:
        # The event hub's dispatcher can lose the cancel of its shutdown on Python 3.11
        # (asyncio.wait_for returns when its event was set in the same moment) and then
        # waits out EVENT_POLL_SECONDS: bound the shutdown instead of hanging an hour.
        try:
            await asyncio.wait_for(lifespan.__aexit__(None, None, None), timeout=10)
        except TimeoutError:
            print("bench: the in-process app's shutdown hung (event hub); went on",
                  file=sys.stderr)
    return counts, token


async def _deal(db: Database) -> tuple[str, int, int]:
    from sqlalchemy import text

    async with db.read() as connection:
        row = (await connection.execute(text(
            "SELECT id, version, phase_id FROM opportunities WHERE phase_id <= 3 "
            "ORDER BY id DESC LIMIT 1"))).one()
    return encode_id("Opportunity", row.id), row.version, row.phase_id


def mutation_bodies(deal: tuple[str, int, int]) -> list[dict[str, Any]]:
    """One body of each mutation of the mix, for the in-process count: the Lua script
    sends the same documents."""
    deal_id, version, phase = deal
    return [
        {"query": scenarios.UPDATE_OPPORTUNITY, "variables": {"input": {
            "id": deal_id, "expectedVersion": version, "probability": 33}}},
        {"query": scenarios.MOVE_PHASE, "variables": {"input": {
            "id": deal_id, "expectedVersion": version + 1,
            "phaseId": encode_id("Phase", phase % 3 + 1)}}},
        {"query": scenarios.LOG_ACTIVITY, "variables": {"input": {
            "typeId": encode_id("ActivityType", 1), "subject": "Bench call", "status": "DONE",
            "accountId": encode_id("Account", 1)}}},
    ]


# --- processes and CPU ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name, so fields[0] is the state (field 3)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return []


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process and its waited-for children, in clock ticks."""
    fields = _stat(pid)
    return sum(int(v) for v in fields[11:15]) if fields else 0


def _children_ticks(pid: int) -> int:
    """cutime + cstime: the CPU of a process's children that have ended."""
    fields = _stat(pid)
    return sum(int(v) for v in fields[13:15]) if fields else 0


def _started(pid: int) -> int:
    """The process's start time: with the pid, it tells a reused pid from the same process."""
    fields = _stat(pid)
    return int(fields[19]) if fields else 0


def _tree(pid: int) -> list[int]:
    """pid and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


class CpuMeter:
    """CPU of a server process tree and of the PostgreSQL backends serving our database
    (not all of PostgreSQL: other databases on a shared machine are not ours to count)."""

    def __init__(self, pid: int, dsn: str) -> None:
        self.pid, self.dsn = pid, dsn

    async def sample(self) -> tuple[int, dict[tuple[int, int], int], int]:
        connection = await asyncpg.connect(self.dsn)
        try:
            pids = [r["pid"] for r in await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")]
            postmaster = int(_stat(await connection.fetchval(
                "SELECT pg_backend_pid()"))[1])
        finally:
            await connection.close()
        # One started during the run counts in full. Parallel workers live for one
        # statement: their CPU is counted as the postmaster's children's (cutime,
        # cstime) once they have ended, with that of any other backend that ended
        # meanwhile (this meter's own sampling connection, a pool's idle connection
        # closed): the whole of its life's CPU, of which ``spent`` takes off what it
        # had used by the first sample.
        return (sum(_cpu_ticks(p) for p in _tree(self.pid)),
                {(p, _started(p)): _cpu_ticks(p) for p in pids},
                _children_ticks(postmaster))

    @staticmethod
    def spent(before: tuple[int, dict[tuple[int, int], int], int],
              after: tuple[int, dict[tuple[int, int], int], int]) -> tuple[float, float]:
        """(server, postgres) CPU ms between two samples."""
        postgres = sum(ticks - before[1].get(key, 0) for key, ticks in after[1].items())
        postgres += after[2] - before[2]
        # A backend gone by the second sample reached the children's CPU whole: only
        # what it used after the first is the run's. (The reference server's pool
        # closes connections idle for 10 s: one closing during our run brought its
        # whole life's CPU, the reference's own statements, into ours.)
        postgres -= sum(ticks for key, ticks in before[1].items() if key not in after[1])
        return ((after[0] - before[0]) * 1000 / TICKS, postgres * 1000 / TICKS)


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: {url} exited at start-up:\n{log.read_text()[-3000:]}")
        try:
            httpx.post(url, json={}, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"bench: {url} did not start within 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- wrk ------------------------------------------------------------------------------------


def _lua_string(value: str) -> str:
    return f"[==[{value}]==]"


def read_script(body: dict[str, Any], token: str | None) -> str:
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"',
             f"wrk.body = {_lua_string(json.dumps(body))}"]
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    return "\n".join(lines) + "\n"


def mutation_script(token: str, deals: list[tuple[str, int, int]], call_type: str,
                    accounts: int) -> str:
    """Update a deal's probability, move a deal to the next open phase, log a done call:
    in turn. Each wrk thread works its own share of the open deals and keeps their
    versions as the responses give them. Counting them up sent stale versions the next
    time round the deals (at 20 accounts a run goes round in about a second): an update
    to the probability a deal already had leaves its version as it was, and wrk makes
    one request it never sends before it starts."""
    table = ",\n".join(f'{{"{gid}", {version}, {phase}}}' for gid, version, phase in deals)
    account_ids = ",".join(f'"{encode_id("Account", a)}"' for a in range(1, accounts + 1))
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local update_q = {_lua_string(json.dumps(scenarios.UPDATE_OPPORTUNITY))}
local move_q = {_lua_string(json.dumps(scenarios.MOVE_PHASE))}
local log_q = {_lua_string(json.dumps(scenarios.LOG_ACTIVITY))}
local deals = {{
{table}
}}
local accounts = {{{account_ids}}}
local by_id = {{}}
for _, deal in ipairs(deals) do by_id[deal[1]] = deal end
local threads = {{}}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  nthreads = tonumber(args[1] or "1")
  n, k, errors, responses = 0, 0, 0, 0
end
local function next_deal()
  -- Deals tid + 1, tid + 1 + nthreads, ...: this thread's alone, whatever their number.
  local share = math.floor(#deals / nthreads)
  local index = (k % share) * nthreads + tid + 1
  k = k + 1
  return deals[index]
end
function request()
  n = n + 1
  local kind = n % 3
  local body
  if kind == 0 then
    local deal = next_deal()
    body = string.format('{{"query":%s,"variables":{{"input":{{"id":"%s",' ..
                         '"expectedVersion":%d,"probability":%d}}}}}}',
                         update_q, deal[1], deal[2], 10 + n % 80)
  elseif kind == 1 then
    local deal = next_deal()
    local phase = deal[3] % 3 + 1
    body = string.format('{{"query":%s,"variables":{{"input":{{"id":"%s",' ..
                         '"expectedVersion":%d,"phaseId":"%s"}}}}}}',
                         move_q, deal[1], deal[2], phase_ids[phase])
    deal[3] = phase
  else
    body = string.format('{{"query":%s,"variables":{{"input":{{"typeId":"{call_type}",' ..
                         '"subject":"Bench call","status":"DONE","accountId":"%s"}}}}}}',
                         log_q, accounts[n % #accounts + 1])
  end
  return wrk.format(nil, nil, nil, body)
end
phase_ids = {{"{encode_id('Phase', 1)}", "{encode_id('Phase', 2)}", "{encode_id('Phase', 3)}"}}
function response(status, headers, body)
  responses = responses + 1
  local id, version = string.match(body, '"opportunity":{{"id":"([^"]+)","version":(%d+)')
  if id and by_id[id] then
    by_id[id][2] = tonumber(version)
  end
  if status ~= 200 or not string.find(body, '"userErrors":[]', 1, true) then
    errors = errors + 1
  end
end
function done(summary, latency, requests)
  local e, r = 0, 0
  for _, thread in ipairs(threads) do
    e = e + thread:get("errors")
    r = r + thread:get("responses")
  end
  io.write(string.format("mutation_errors %d of %d\\n", e, r))
end
"""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", output)
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    mutation = re.search(r"mutation_errors (\d+) of (\d+)", output)
    return {"requests": requests, "rps": rps, "p50_ms": _ms(p50.group(1)) if p50 else 0.0,
            "p99_ms": _ms(p99.group(1)) if p99 else 0.0, "failed_responses": failed,
            "mutation_errors": int(mutation.group(1)) if mutation else None}


async def drive(url: str, script: Path, concurrency: int, duration: int,
                meter: CpuMeter) -> Run:
    threads = min(2, concurrency)
    before = await meter.sample()
    completed = await asyncio.to_thread(subprocess.run, [
        shutil.which("wrk") or "/usr/bin/wrk", f"-t{threads}", f"-c{concurrency}",
        f"-d{duration}s", "--timeout", "300s", "--latency", "-s", str(script), url,
        "--", str(threads)], capture_output=True, text=True, check=False)
    after = await meter.sample()
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed: {completed.stderr or completed.stdout}")
    parsed = parse_wrk(completed.stdout)
    server_ms, postgres_ms = CpuMeter.spent(before, after)
    count = max(parsed["requests"], 1)
    return Run(concurrency=concurrency, duration_s=duration, requests=parsed["requests"],
               rps=parsed["rps"],
               p50_ms=parsed["p50_ms"], p99_ms=parsed["p99_ms"],
               server_cpu_ms=round(server_ms / count, 3),
               postgres_cpu_ms=round(postgres_ms / count, 3),
               failed_responses=parsed["failed_responses"],
               mutation_errors=parsed["mutation_errors"])


# --- the run --------------------------------------------------------------------------------


async def _open_deals(dsn: str) -> list[tuple[str, int, int]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT id, version, phase_id FROM opportunities "
                                      "WHERE phase_id <= 3 ORDER BY id")
        call = await connection.fetchval("SELECT id FROM activity_types WHERE code = 'CALL'")
    finally:
        await connection.close()
    return [(encode_id("Opportunity", r["id"]), r["version"], r["phase_id"])
            for r in rows] + [("", 0, int(call))]


def _check(url: str, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(url, json=body, headers=headers, timeout=600)
    return len(response.content), response.json()


async def run(args: argparse.Namespace) -> list[Result]:
    url: str = args.database_url
    dsn = _asyncpg_dsn(url)
    await ensure_database(url, args.fresh)
    await asyncio.to_thread(upgrade_head, url)  # alembic runs its own event loop
    await ensure_seeded(url, args.accounts)
    names = args.scenarios
    print("counting statements per request in-process ...", flush=True)
    statements, token = await count_statements(url, names)
    work = Path(tempfile.mkdtemp(prefix="crmgraph-bench-"))
    results = [Result(name, statements=statements.get(name)) for name in names]
    port = _free_port()
    ours = f"http://127.0.0.1:{port}/graphql"
    env = {**SERVER_ENV, "DATABASE_URL": url}
    # The fan-out gets a server of its own: one that has served 800 KB answers keeps
    # that heap, and idle subscriptions would fill it without raising its RSS.
    for log, group in (("server.log", [r for r in results if r.scenario != "fanout"]),
                       ("server-fanout.log", [r for r in results if r.scenario == "fanout"])):
        if not group:
            continue
        floor = None
        compiling: subprocess.Popen[bytes] | None = None
        compiling_error = None
        floored = [r for r in group if r.scenario in scenarios.FLOORED]
        if floored:
            # Up beside ours, driven in turn with it (_rounds).
            floor_port = _free_port()
            floor = start([sys.executable, "-m", "uvicorn", "bench.floor:create_app",
                           "--factory", "--port", str(floor_port), "--workers", "1",
                           "--log-level", "warning", "--no-access-log"], {"DATABASE_URL": url},
                          work / "floor.log")
            if args.reference:
                reference_port = _free_port()
                try:
                    command, reference_env = reference.command(url, reference_port)
                    compiling = start(command, reference_env, work / "reference.log")
                except reference.Unavailable as exc:
                    compiling_error = str(exc)
            else:
                compiling_error = "not asked for (--no-reference)"
        try:
            server = start([sys.executable, "-m", "server.cli", "serve", "--port", str(port),
                            "--workers", "1"], env, work / log)
            try:
                wait_ready(server, ours, work / log)
                meter = CpuMeter(server.pid, dsn)
                beside = None
                if floor is not None:
                    floor_url = f"http://127.0.0.1:{floor_port}/graphql"
                    wait_ready(floor, floor_url, work / "floor.log")
                    beside = Beside(floor_url, CpuMeter(floor.pid, dsn))
                reference_beside = None
                if compiling is not None:
                    reference_url = f"http://127.0.0.1:{reference_port}/graphql"
                    try:
                        wait_ready(compiling, reference_url, work / "reference.log")
                        reference_beside = Beside(reference_url, CpuMeter(compiling.pid, dsn))
                    except SystemExit as exc:  # ours is measured all the same
                        compiling_error = str(exc)
                for result in floored:
                    result.reference_error = compiling_error
                for result in group:
                    try:
                        floored_here = result.scenario in scenarios.FLOORED
                        await _scenario(result, ours, token, meter, work, args, dsn,
                                        beside if floored_here else None,
                                        reference_beside if floored_here else None)
                    except Exception as exc:  # one scenario failing must not lose the others
                        result.error = f"{type(exc).__name__}: {exc}"
                    _print_progress(result)
                    if result.floor:
                        _print_progress(result, floor=True)
                    if result.reference:
                        _print_progress(result, reference=True)
                    elif result.reference_error and result.scenario in scenarios.FLOORED:
                        print(f"  {result.scenario} (reference): not measured: "
                              f"{result.reference_error}", flush=True)
            finally:
                stop(server)
        finally:
            if floor is not None:
                stop(floor)
            if compiling is not None:
                stop(compiling)
    return results


@dataclass
class Beside:
    """A server up beside ours (the floor, the reference): its URL and CPU meter."""

    url: str
    meter: CpuMeter


async def _scenario(result: Result, url: str, token: str, meter: CpuMeter, work: Path,
                    args: argparse.Namespace, dsn: str, floor: Beside | None = None,
                    compiling: Beside | None = None) -> None:
    name = result.scenario
    if name == "fanout":
        result.extra = await asyncio.to_thread(_fanout, url, token, meter.pid, args, work)
        return
    script = work / f"{name}.lua"
    single = 0.0  # seconds one request took, to stretch the runs of slow scenarios
    if name in scenarios.READS:
        body = scenarios.body(name)
        began = time.perf_counter()
        result.response_bytes, payload = _check(url, body, token)
        single = time.perf_counter() - began
        if "errors" in payload:  # verify before timing: a fast error is no result
            raise RuntimeError(f"the response has errors: {payload['errors']}")
        script.write_text(read_script(body, token))
    floor_script = work / f"floor-{name}.lua"
    if floor is not None:
        result.floor_bytes, _payload = _check(floor.url, scenarios.body(name), None)
        floor_script.write_text(read_script(scenarios.body(name), None))
    reference_script = work / f"reference-{name}.lua"
    if compiling is not None:
        result.reference_bytes, answer = _check(compiling.url, scenarios.REFERENCE[name], None)
        # The same rows as ours, or its speed says nothing of ours.
        differs = f"it answers errors: {answer['errors']}" if "errors" in answer else \
            reference.differences(name, payload["data"], answer["data"])
        if differs:
            result.reference_error = f"not the same answer as ours: {differs}"
            compiling = None
        else:
            reference_script.write_text(read_script(scenarios.REFERENCE[name], None))
    for concurrency in args.concurrency:
        if result.runs and result.runs[0].p50_ms:
            single = result.runs[0].p50_ms / 1000  # better than one cold request
        # A slow scenario completes few requests in --duration, none at 16 connections:
        # run it long enough for each connection to finish about two (capped).
        needed = math.ceil(single * concurrency * 2)
        duration = min(max(args.duration, needed), max(args.duration, args.max_duration))
        if name == "mutations":
            # The deals' versions as they are now: the previous run moved them on.
            deals = await _open_deals(dsn)
            call_type = encode_id("ActivityType", deals.pop()[2])
            script.write_text(mutation_script(token, deals, call_type, args.accounts))
        if floor is None:
            result.runs.append(await drive(url, script, concurrency, duration, meter))
            continue
        servers = [(url, script, meter), (floor.url, floor_script, floor.meter)]
        if compiling is not None:
            servers.append((compiling.url, reference_script, compiling.meter))
        ours, theirs, *others = await _rounds(args.rounds, duration, servers, concurrency)
        result.runs.append(_merged(ours))
        result.floor.append(_merged(theirs))
        result.ratio[str(concurrency)] = ratio(ours, theirs)
        for compiled in others:
            result.reference.append(_merged(compiled))
            result.reference_ratio[str(concurrency)] = ratio(ours, compiled)


def ratio(ours: list[Run], floor: list[Run]) -> float:
    """Our req/s to the floor's: the median of the rounds' ratios, each round's two runs
    minutes closer than any two runs of one server."""
    return round(statistics.median(
        mine.rps / other.rps for mine, other in zip(ours, floor, strict=True)), 3)


def round_order(index: int, servers: int) -> list[int]:
    """Who goes when in round ``index``: each round starts one server later, so each
    goes first in turn (two servers: ours, the floor; then the floor, ours)."""
    start = index % servers
    return [*range(start, servers), *range(start)]


async def _rounds(rounds: int, duration: int, servers: list[tuple[str, Path, CpuMeter]],
                  concurrency: int) -> list[list[Run]]:
    """Ours and the servers beside it (the floor, the reference) driven in turn,
    ``rounds`` times, for ``duration`` seconds in all each: this machine's speed drifts
    from minute to minute (by up to 2x), so a ratio of runs minutes apart says more of
    the drift than of the servers. The runs of each, in the order given."""
    each = max(1, math.ceil(duration / rounds))
    runs: list[list[Run]] = [[] for _ in servers]
    for index in range(rounds):
        for which in round_order(index, len(servers)):
            url, script, meter = servers[which]
            runs[which].append(await drive(url, script, concurrency, each, meter))
    return runs


def _merged(runs: list[Run]) -> Run:
    """Rounds of one server as one run: the medians of their req/s and latencies, CPU
    per request over all their requests, everything counted summed."""
    requests = sum(run.requests for run in runs)
    weight = max(requests, 1)
    mutation_errors = [run.mutation_errors for run in runs if run.mutation_errors is not None]
    return Run(
        concurrency=runs[0].concurrency, duration_s=sum(run.duration_s for run in runs),
        requests=requests, rps=round(statistics.median(run.rps for run in runs), 2),
        p50_ms=statistics.median(run.p50_ms for run in runs),
        p99_ms=statistics.median(run.p99_ms for run in runs),
        server_cpu_ms=round(sum(run.server_cpu_ms * run.requests for run in runs) / weight, 3),
        postgres_cpu_ms=round(
            sum(run.postgres_cpu_ms * run.requests for run in runs) / weight, 3),
        failed_responses=sum(run.failed_responses for run in runs),
        mutation_errors=sum(mutation_errors) if mutation_errors else None,
        rounds_rps=[run.rps for run in runs])


def _fanout(url: str, token: str, pid: int, args: argparse.Namespace,
            work: Path) -> dict[str, Any]:
    if not (ROOT / "bench" / "fanout.py").is_file():
        raise RuntimeError("bench/fanout.py is missing")
    out = work / "fanout.json"
    base = url.removesuffix("/graphql")
    completed = subprocess.run(
        [sys.executable, "-m", "bench.fanout", "--url", base, "--token", token,
         "--server-pid", str(pid), "--subscribers", str(args.subscribers), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800)
    if completed.returncode != 0 or not out.is_file():
        raise RuntimeError(f"bench.fanout exited {completed.returncode}: "
                           f"{(completed.stderr or completed.stdout)[-2000:]}")
    return dict(json.loads(out.read_text()))


# --- output ---------------------------------------------------------------------------------


def _print_progress(result: Result, floor: bool = False, reference: bool = False) -> None:
    runs = result.floor if floor else result.reference if reference else result.runs
    label = f"{result.scenario} (floor)" if floor else \
        f"{result.scenario} (reference)" if reference else result.scenario
    if result.error:
        print(f"  {label}: FAILED {result.error}", flush=True)
    for run in runs:
        print(f"  {label} c={run.concurrency}: {run.rps:.1f} req/s", flush=True)


def table(results: list[Result]) -> str:
    header = (f"{'scenario':<11}{'c':>3}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'srv cpu ms':>11}{'pg cpu ms':>10}{'stmts':>7}{'bytes':>9}"
              f"{'floor req/s':>12}{'ours/floor':>11}{'ref req/s':>10}{'ours/ref':>9}"
              f"{'failed':>7}")
    lines = [header, "-" * len(header)]
    for result in results:
        if result.error:
            lines.append(f"{result.scenario:<11} FAILED: {result.error[:200]}")
            continue
        if result.extra is not None:
            lines.append(f"{result.scenario:<11} " + ", ".join(
                f"{k}={v}" for k, v in result.extra.items() if not isinstance(v, (dict, list))))
            continue
        floors = {run.concurrency: run for run in result.floor}
        references = {run.concurrency: run for run in result.reference}
        for run in result.runs:
            floor = floors.get(run.concurrency)
            ratio = result.ratio.get(str(run.concurrency))
            compiled = references.get(run.concurrency)
            to_reference = result.reference_ratio.get(str(run.concurrency))
            failed = run.failed_responses + (run.mutation_errors or 0)
            statements = f"{result.statements:.3g}" if result.statements is not None else "-"
            lines.append(
                f"{result.scenario:<11}{run.concurrency:>3}"
                f"{('*' if run.requests < run.concurrency else '') + f'{run.rps:.1f}':>10}"
                f"{run.p50_ms:>9.2f}"
                f"{run.p99_ms:>9.2f}{run.server_cpu_ms:>11.2f}{run.postgres_cpu_ms:>10.2f}"
                f"{statements:>7}{result.response_bytes or '-':>9}"
                f"{(f'{floor.rps:.1f}' if floor else '-'):>12}"
                f"{(f'{ratio:.2f}x' if floor and ratio else '-'):>11}"
                f"{(f'{compiled.rps:.1f}' if compiled else '-'):>10}"
                f"{(f'{to_reference:.2f}x' if compiled and to_reference else '-'):>9}"
                f"{failed:>7}")
    if any(run.requests < run.concurrency for r in results for run in r.runs):
        lines.append("* fewer requests completed than connections were open: a lower bound")
    unmeasured = sorted({r.reference_error for r in results if r.reference_error})
    for reason in unmeasured:
        lines.append(f"reference server not measured: {reason}")
    return "\n".join(lines)


def _scenario_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL_SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenarios {unknown}; choose from "
                                         f"{','.join(ALL_SCENARIOS)}")
    return names


def _concurrency_list(text: str) -> list[int]:
    try:
        values = [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("give concurrency levels as e.g. 1,16") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency levels are 1 or more")
    return values


def _rounds_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("give the rounds as a whole number, 1 or more")
    return int(text)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/crm_bench"),
        help="a PostgreSQL database of its own (created if missing)")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--max-duration", type=int, default=60,
                        help="seconds a slow scenario's run may be stretched to")
    parser.add_argument("--concurrency", type=_concurrency_list, default=[1, 16])
    parser.add_argument("--rounds", type=_rounds_count, default=3,
                        help="small, dashboard and large: ours and the floor in turn, this "
                        "many rounds (their --duration split among them)")
    parser.add_argument("--scenarios", type=_scenario_list, default=ALL_SCENARIOS)
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="leave out the reference server (bench/reference.py: "
                        "PostGraphile, installed with npm on first use)")
    parser.add_argument("--subscribers", type=int, default=10_000,
                        help="subscriptions the fanout scenario opens")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--fresh", action="store_true",
                        help="drop and recreate the database first")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not make_url(args.database_url).drivername.startswith("postgresql"):
        raise SystemExit("bench: the benchmark runs on PostgreSQL only")
    if shutil.which("wrk") is None and not Path("/usr/bin/wrk").exists():
        raise SystemExit("bench: wrk is not installed (apt-get install wrk)")
    started = time.time()
    results = asyncio.run(run(args))
    print()
    print(table(results))
    document = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "accounts": args.accounts, "duration_s": args.duration,
                "cpus": os.cpu_count(), "results": [asdict(r) for r in results]}
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults in {args.json}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
