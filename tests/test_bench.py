"""The benchmark suite at a tiny scale, on PostgreSQL only (the bench is PostgreSQL-only):
`python -m bench` runs every request scenario end to end against a real server process
and wrk, and the floor (bench/floor.py) answers exactly the data our server answers,
which is what makes our ratio to it honest."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import __main__ as bench_main
from bench import floor, reference, scenarios
from bench.__main__ import SERVER_ENV, ensure_seeded
from bench.data import ADMIN_ID
from server.app import create_app
from server.settings import Settings
from tests.databases import POSTGRES_URL, scratch_database

pytestmark = pytest.mark.skipif(POSTGRES_URL is None,
                                reason="the benchmark runs on PostgreSQL (TEST_DATABASE_URL)")

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = 20


@pytest.fixture(scope="module")
def bench_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scratch_database("postgresql", "crmgraph_bench_test",
                          tmp_path_factory.mktemp("bench")) as url:
        asyncio.run(ensure_seeded(url, ACCOUNTS))
        yield url


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_the_bench_runs_every_scenario_against_a_server_process(
        bench_url: str, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    names = ["small", "dashboard", "large", "pipeline", "plan", "mutations"]
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--database-url", bench_url, "--accounts",
         str(ACCOUNTS), "--duration", "1", "--concurrency", "1", "--rounds", "2", "--scenarios",
         ",".join(names), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "database already seeded with 20 accounts" in completed.stdout
    results = {r["scenario"]: r for r in json.loads(out.read_text())["results"]}
    assert list(results) == names
    for name, result in results.items():
        assert result["error"] is None, (name, result["error"])
        [run] = result["runs"]
        assert run["concurrency"] == 1, name
        assert run["requests"] > 0, name
        assert run["rps"] > 0, name
        assert run["failed_responses"] == 0, name
        assert run["server_cpu_ms"] > 0, name
        assert result["statements"] >= 1, name
    assert results["mutations"]["runs"][0]["mutation_errors"] == 0
    # A request's statements depend on its shape, not its rows: after the viewer, small
    # reads the account with its owner, large one page of accounts and one batch of
    # their deals.
    assert (results["small"]["statements"], results["large"]["statements"]) == (2, 3)
    for name in scenarios.FLOORED:
        [ours], [floor] = results[name]["runs"], results[name]["floor"]
        assert floor["requests"] > 0, name
        assert results[name]["response_bytes"] > 0, name
        # Driven in turn with ours, in two rounds: the ratio is the median of theirs.
        assert len(ours["rounds_rps"]) == len(floor["rounds_rps"]) == 2, name
        ratios = [a / b for a, b in zip(ours["rounds_rps"], floor["rounds_rps"], strict=True)]
        assert results[name]["ratio"]["1"] == pytest.approx(sum(ratios) / 2, abs=1e-3), name
        # The reference server (PostGraphile, installed with npm) answered the same rows
        # (the bench checks that before timing it) and was driven in the same rounds.
        assert results[name]["reference_error"] is None, name
        [compiled] = results[name]["reference"]
        assert compiled["requests"] > 0, name
        assert compiled["failed_responses"] == 0, name
        assert results[name]["reference_bytes"] > 0, name
        ratios = [a / b for a, b in zip(ours["rounds_rps"], compiled["rounds_rps"],
                                        strict=True)]
        assert results[name]["reference_ratio"]["1"] == pytest.approx(
            sum(ratios) / 2, abs=1e-3), name
    assert "ours/ref" in completed.stdout
    for name in set(names) - set(scenarios.FLOORED):
        assert results[name]["runs"][0]["rounds_rps"] is None, name
        assert results[name]["reference"] == [], name


def test_each_server_goes_first_in_turn_in_the_rounds() -> None:
    assert [bench_main.round_order(i, 2) for i in range(3)] == [[0, 1], [1, 0], [0, 1]]
    assert [bench_main.round_order(i, 3) for i in range(3)] == [[0, 1, 2], [1, 2, 0],
                                                                [2, 0, 1]]


def test_the_reference_servers_answer_is_compared_row_by_row() -> None:
    """Ids and number formats aside, the reference must answer our rows, or its req/s
    says nothing of ours: a deal's amount or a budget cell that differs is caught."""
    ours = {"accounts": {"nodes": [{
        "id": "QWNjb3VudDox", "name": "Account 1", "owner": {"name": "Rep 3"},
        "opportunities": {"nodes": [{"name": "Deal 1-0", "amount": "19282.00",
                                     "phase": {"name": "Proposal"}}]},
        "plan": {"rows": [{"period": "2026-01-01", "budget": "10.50"},
                          {"period": "2026-01-01", "budget": "7.00"}]}}]}}
    theirs = {"accounts": {"nodes": [{
        "nodeId": "WyJhY2NvdW50cyIsMV0=", "name": "Account 1", "owner": {"name": "Rep 3"},
        "opportunities": {"nodes": [{"name": "Deal 1-0", "amount": "19282.0000",
                                     "phase": {"name": "Proposal"}}]},
        "budgets": {"nodes": [{"period": "2026-01-01", "amount": "7.0000"},
                              {"period": "2026-01-01", "amount": "10.5000"}]}}]}}
    assert reference.differences("dashboard", ours, theirs) is None
    cell = theirs["accounts"]["nodes"][0]["budgets"]["nodes"][0]
    cell["amount"] = "7.0100"
    assert "account 0" in (reference.differences("dashboard", ours, theirs) or "")
    cell["amount"] = "7.0000"
    deal = theirs["accounts"]["nodes"][0]["opportunities"]["nodes"][0]
    deal["amount"] = "19282.5000"
    assert reference.differences("dashboard", ours, theirs) is not None
    assert reference.differences(
        "small", {"account": {"id": "x", "name": "A", "owner": {"name": "R"}}},
        {"account": {"nodeId": "y", "name": "A", "owner": {"name": "S"}}}) is not None


def test_the_ratio_to_the_floor_is_the_median_of_the_rounds() -> None:
    """Each round's ratio pairs two runs close in time; a round in a slow spell of the
    machine moves the mean, not the median."""
    def runs(*rps: float) -> list[bench_main.Run]:
        return [bench_main.Run(concurrency=1, duration_s=3, requests=int(r * 3), rps=r,
                               p50_ms=1.0, p99_ms=2.0, server_cpu_ms=1.0,
                               postgres_cpu_ms=0.1, failed_responses=0) for r in rps]

    assert bench_main.ratio(runs(20, 36, 10), runs(40, 40, 40)) == 0.5  # mean 0.55
    merged = bench_main._merged(runs(20, 36, 10))
    assert (merged.rps, merged.requests, merged.rounds_rps) == (20, 198, [20, 36, 10])


def test_an_unknown_scenario_is_refused_with_the_choices() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--scenarios", "small,huge"], cwd=ROOT,
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert completed.returncode == 2
    assert "unknown scenarios ['huge']" in completed.stderr


async def test_the_floor_answers_the_same_data_as_our_server(
        bench_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env({**SERVER_ENV, "DATABASE_URL": bench_url}, env_file=None)
    ours = create_app(settings)
    monkeypatch.setenv("DATABASE_URL", bench_url)
    theirs = floor.create_app()
    async with ours.router.lifespan_context(ours), theirs.router.lifespan_context(theirs):
        headers = {"Authorization": f"Bearer {ours.state.authenticator.mint(ADMIN_ID)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(ours),
                                     base_url="http://ours") as client, \
                httpx.AsyncClient(transport=httpx.ASGITransport(theirs),
                                  base_url="http://floor") as floor_client:
            for name in scenarios.FLOORED:
                body = scenarios.body(name)
                mine = (await client.post("/graphql", json=body, headers=headers)).json()
                assert "errors" not in mine, (name, mine)
                answer = await floor_client.post("/graphql", json=body)
                assert answer.status_code == 200, name
                assert answer.json() == {"data": mine["data"]}, name
            refused = await floor_client.post("/graphql", json={"query": "{ accounts }"})
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    nodes = mine["data"]["accounts"]["nodes"]
    assert len(nodes) == ACCOUNTS
    assert all(len(n["opportunities"]["nodes"]) == 10 for n in nodes)


def test_the_cpu_meter_counts_backends_and_ended_children_of_postgres() -> None:
    """PostgreSQL's CPU is its backends' (by pid and start, one started meanwhile in
    full) plus what children of the postmaster that ended meanwhile used: parallel
    workers live for one statement and are gone by the second sample. A backend that
    ended meanwhile brought its whole life's CPU into the children's: what it had used
    by the first sample is not the run's."""
    before = (100, {(1, 5): 10, (3, 7): 2}, 7)
    after = (150, {(1, 5): 30, (2, 9): 4}, 12)
    server, postgres = bench_main.CpuMeter.spent(before, after)
    ticks = bench_main.TICKS
    assert server == 50 * 1000 / ticks
    # (3, 7) ended: 2 of the children's 5 new ticks were its before the run.
    assert postgres == (20 + 4 + 5 - 2) * 1000 / ticks
    # An idle backend of another server with a long life closes during the run.
    idle = (0, {(1, 5): 10, (4, 2): 900}, 7)
    assert bench_main.CpuMeter.spent(idle, (0, {(1, 5): 12}, 907)) == (0, 2 * 1000 / ticks)
