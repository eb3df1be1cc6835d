"""Standard JavaScript clients, unchanged, against a real server process: the
graphql-ws client (graphql-transport-ws) for queries, live events and replay."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path

import httpx

from models.users import Role
from server.demo import DEMO_EMAILS
from tests.databases import scratch_database
from tests.graphql_client import without_cost
from tests.processes import run, server_env, serving

JS = Path(__file__).parent / "js"
ADMIN = "ada.lindqvist@demo.crmgraph.dev"


def _node(*args: str, timeout: float = 60) -> list[dict]:
    result = subprocess.run(["node", *args], cwd=JS, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _post(url: str, token: str, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


MOVE = """mutation($i: MoveOpportunityPhaseInput!) { moveOpportunityPhase(input: $i) {
  opportunity { version } userErrors { code message } } }"""


def test_graphql_ws_client_queries_subscribes_and_replays(node_clients: Path, tmp_path: Path):
    with scratch_database("sqlite", "js_clients", tmp_path) as database_url:
        env = server_env(DATABASE_URL=database_url)
        assert run("seed-demo", env=env, cwd=tmp_path).returncode == 0
        token = run("token", "--email", ADMIN, env=env, cwd=tmp_path).stdout.strip()
        with serving(env, tmp_path) as (url, _):
            ws_url = url.replace("http://", "ws://") + "/graphql"
            [viewer] = _node("query.mjs", ws_url, token, "{ viewer { email } }")
            assert without_cost(viewer) == {"data": {"viewer": {"email": ADMIN}}}

            pipelines = _post(url, token, "{ pipelines(kind: SALES) { id name } }")["pipelines"]
            sales = next(p["id"] for p in pipelines if p["name"] == "Sales")
            deal = _post(url, token, """query($p: ID!) { opportunities(first: 1, filter: {
                outcome: {eq: OPEN}, pipelineId: {eq: $p}}) { nodes { id version
                phase { id } pipeline { phases { id name outcome } } } } }""", {"p": sales}
                         )["opportunities"]["nodes"][0]
            # Four open phases other than the one it stands in: every move is a real one.
            open_phases = [p for p in deal["pipeline"]["phases"]
                           if p["outcome"] == "OPEN" and p["id"] != deal["phase"]["id"]]
            version = deal["version"]

            def move(phase: dict) -> None:
                nonlocal version
                data = _post(url, token, MOVE, {"i": {"id": deal["id"], "phaseId": phase["id"],
                                                      "expectedVersion": version}})
                assert data["moveOpportunityPhase"]["userErrors"] == []
                version = data["moveOpportunityPhase"]["opportunity"]["version"]

            # Live: the client is connected and subscribed before the move.
            live = subprocess.Popen(["node", "subscribe.mjs", ws_url, token, "", "1"], cwd=JS,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert json.loads(live.stdout.readline()) == {"connected": True}
            time.sleep(1)
            move(open_phases[3])
            output, errors = live.communicate(timeout=30)
            assert live.returncode == 0, errors
            [first] = [json.loads(line) for line in output.splitlines()]
            assert first["toPhase"]["name"] == open_phases[3]["name"]

            # Away: three more moves; then resume after the last event seen.
            for phase in open_phases[:3]:
                move(phase)
            lines = _node("subscribe.mjs", ws_url, token, first["eventId"], "3")
            missed = [line for line in lines if "eventId" in line]
    assert [e["toPhase"]["name"] for e in missed] == [p["name"] for p in open_phases[:3]]
    assert [int(e["eventId"]) for e in missed] == sorted(int(e["eventId"]) for e in missed)
    assert int(missed[0]["eventId"]) > int(first["eventId"])


LOG_ACTIVITY = """mutation($i: LogActivityInput!) { logActivity(input: $i) {
  activity { id version status } userErrors { code message } } }"""
COMPLETE_ACTIVITY = """mutation($i: CompleteActivityInput!) { completeActivity(input: $i) {
  activity { status pointsEarned } userErrors { code message } } }"""
SET_TARGETS = """mutation($i: SetActivityTargetsInput!) { setActivityTargets(input: $i) {
  targets { target } userErrors { code message } } }"""
ATTAINMENT = """query($u: ID!, $w: String!) { attainment(userId: $u, week: $w) {
  metric activityType { code } target realized ratio } }"""


def test_graphql_ws_client_hears_a_reps_completion_live(node_clients: Path, tmp_path: Path):
    rep_email, manager_email = DEMO_EMAILS[Role.REP], DEMO_EMAILS[Role.MANAGER]
    with scratch_database("sqlite", "js_attainment", tmp_path) as database_url:
        env = server_env(DATABASE_URL=database_url)
        assert run("seed-demo", env=env, cwd=tmp_path).returncode == 0
        rep, manager = (run("token", "--email", email, env=env, cwd=tmp_path).stdout.strip()
                        for email in (rep_email, manager_email))
        with serving(env, tmp_path) as (url, _):
            ws_url = url.replace("http://", "ws://") + "/graphql"
            # Whatever the demo data holds, the test makes its own activity and target.
            start = _post(url, rep, """{ viewer { id team { id } } currentWeek
                activityTypes { id code points } }""")
            me, week = start["viewer"]["id"], start["currentWeek"]
            call = next(t for t in start["activityTypes"] if t["code"] == "CALL")
            targets = _post(url, manager, SET_TARGETS, {"i": {"week": week, "targets": [
                {"userId": me, "metric": "POINTS", "target": 40}]}})["setActivityTargets"]
            assert targets == {"targets": [{"target": 40}], "userErrors": []}
            logged = _post(url, rep, LOG_ACTIVITY, {"i": {
                "typeId": call["id"], "subject": "Live board call"}})["logActivity"]
            assert logged["userErrors"] == []
            assert logged["activity"]["status"] == "PLANNED"

            live = subprocess.Popen(["node", "attainment.mjs", ws_url, rep, "500"], cwd=JS,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            lines: queue.Queue[str] = queue.Queue()
            reader = threading.Thread(target=lambda: [lines.put(line) for line in live.stdout],
                                      daemon=True)
            reader.start()
            try:
                assert json.loads(lines.get(timeout=30)) == {"connected": True}
                time.sleep(1)  # the subscribe message follows the ack
                done = _post(url, rep, COMPLETE_ACTIVITY, {"i": {
                    "id": logged["activity"]["id"],
                    "expectedVersion": logged["activity"]["version"]}})["completeActivity"]
                assert done["userErrors"] == []
                first = json.loads(lines.get(timeout=1))  # live: within a second
                rows = _post(url, rep, ATTAINMENT, {"u": me, "w": week})["attainment"]
                assert live.wait(timeout=30) == 0, live.stderr.read() if live.stderr else ""
            finally:
                if live.poll() is None:
                    live.kill()
            reader.join(timeout=5)
            events = [first]
            while not lines.empty():
                events.append(json.loads(lines.get_nowait()))
    assert {(e["eventId"], e["reason"], e["week"], e["user"]["id"]) for e in events} == {
        (first["eventId"], "COMPLETED", week, me)}
    now = {(r["metric"], (r["activityType"] or {}).get("code")): r for r in rows}
    for event in events:
        key = (event["metric"], (event["activityType"] or {}).get("code"))
        assert (event["target"], event["realized"], event["ratio"]) == (
            now[key]["target"], now[key]["realized"], now[key]["ratio"]), key
    points = next(e for e in events if (e["metric"], e["activityType"]) == ("POINTS", None))
    assert points["target"] == 40
    assert points["realized"] >= call["points"] > 0
    assert points["ratio"] == round(points["realized"] / 40, 4)
