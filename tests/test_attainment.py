"""Attainment, team boards, the leaderboard, history and weekly targets through the
HTTP endpoint.

Weeks are ISO weeks in Europe/Helsinki (the test app's org time zone), so the
boundaries are checked around both daylight saving changes of 2026. Target
mutations are checked twice: in the payload, and in the database, which must hold
exactly what it held before whenever a call is refused.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from loaders.ids import encode_id
from models.activities import Activity, ActivityStatus, ActivityTarget, ActivityType, TargetMetric
from models.db import Database
from models.users import Role, User
from resolvers.weeks import (
    MAX_WEEKS,
    WeekError,
    format_week,
    parse_week,
    week_bounds,
    week_of,
    weeks_between,
)
from tests.factories import (
    Org,
    gid,
    make_activity,
    make_activity_type,
    make_org,
    make_target,
    make_team,
    make_user,
)
from tests.graphql_client import GraphQLClient

HELSINKI = "Europe/Helsinki"
COUNT, POINTS = TargetMetric.COUNT, TargetMetric.POINTS
TARGETS_TABLE = ActivityTarget.__table__

ROW = "week weekStart metric target realized ratio user { name } activityType { code }"
LOG = """mutation($i: LogActivityInput!) { logActivity(input: $i) {
  activity { id version status completedAt completedWeek pointsEarned }
  userErrors { field code message } } }"""
UPDATE = """mutation($i: UpdateActivityInput!) { updateActivity(input: $i) {
  activity { id version completedWeek } userErrors { field code message } } }"""
ATTAINMENT = f"""query($u: ID!, $w: String!) {{
  attainment(userId: $u, week: $w) {{ {ROW} }} }}"""
TEAM = f"""query($t: ID!, $w: String!) {{ teamAttainment(teamId: $t, week: $w) {{ {ROW} }} }}"""
HISTORY = f"""query($u: ID!, $f: String!, $to: String!) {{
  attainmentHistory(userId: $u, fromWeek: $f, toWeek: $to) {{ {ROW} }} }}"""
BOARD = """query($t: ID!, $w: String!, $m: TargetMetric!) {
  activityLeaderboard(teamId: $t, week: $w, metric: $m) {
    week weekStart metric team { name }
    entries { rank realized target ratio user { name } } } }"""
DEFAULT_BOARD = """query($t: ID!, $w: String!) { activityLeaderboard(teamId: $t, week: $w) {
  metric entries { rank realized user { name } } } }"""
TARGET_FIELDS = "week weekStart metric target user { name } activityType { code }"
TARGETS = f"""query($w: String!, $u: ID, $t: ID) {{
  activityTargets(week: $w, userId: $u, teamId: $t) {{ {TARGET_FIELDS} }} }}"""
SET = f"""mutation($i: SetActivityTargetsInput!) {{ setActivityTargets(input: $i) {{
  targets {{ {TARGET_FIELDS} }} userErrors {{ field code message }} }} }}"""
COPY = f"""mutation($i: CopyActivityTargetsInput!) {{ copyActivityTargets(input: $i) {{
  targets {{ {TARGET_FIELDS} }} userErrors {{ field code message }} }} }}"""
VIEWER_ATTAINMENT = """query($w: String) { viewer { name attainment(week: $w) {
  week metric target realized ratio activityType { code } } } }"""
CURRENT_WEEK = "query { currentWeek }"

# 2026-W45: Monday 2 November to Sunday 8 November, EET (UTC+2) all week.
W44, W45, W46 = date(2026, 10, 26), date(2026, 11, 2), date(2026, 11, 9)


def at(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.tzinfo is not None, text
    return moment


def code_of(row: dict[str, Any]) -> str | None:
    return row["activityType"]["code"] if row["activityType"] else None


def keyed(rows: list[dict[str, Any]]) -> dict[tuple[str, str | None], tuple[Any, Any, Any]]:
    """(metric, type code) -> (target, realized, ratio); fails on a repeated key."""
    found = {(row["metric"], code_of(row)): (row["target"], row["realized"], row["ratio"])
             for row in rows}
    assert len(found) == len(rows), rows
    return found


def by_user(rows: list[dict[str, Any]]) -> dict[str, dict[tuple[str, str | None], Any]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["user"]["name"], []).append(row)
    return {name: keyed(user_rows) for name, user_rows in grouped.items()}


def names_in_order(rows: list[dict[str, Any]]) -> list[str]:
    """The users of the rows in the order they first appear; each user's rows together."""
    names: list[str] = []
    for row in rows:
        if not names or names[-1] != row["user"]["name"]:
            names.append(row["user"]["name"])
    assert len(names) == len(set(names)), f"a user's rows are split: {names}"
    return names


def error_codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


def target_keys(targets: list[dict[str, Any]]) -> set[tuple[str, str, str | None, int]]:
    return {(t["user"]["name"], t["metric"], code_of(t), t["target"]) for t in targets}


async def stored_targets(db: Database) -> set[tuple[int, date, TargetMetric, int | None, int]]:
    async with db.read() as connection:
        result = await connection.execute(select(
            TARGETS_TABLE.c.user_id, TARGETS_TABLE.c.week, TARGETS_TABLE.c.metric,
            TARGETS_TABLE.c.activity_type_id, TARGETS_TABLE.c.target))
        return {tuple(row) for row in result}  # type: ignore[misc]


async def top_level_code(client: GraphQLClient, query: str, variables: dict[str, Any],
                         user: Any) -> str:
    errors = await client.errors(query, variables, as_user=user)
    return errors[0]["extensions"]["code"]


# --- weeks: pure functions ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "monday"), [
    ("2026-W48", date(2026, 11, 23)),
    ("2026-W01", date(2025, 12, 29)),  # week 1 holds the year's first Thursday
    ("2026-W53", date(2026, 12, 28)),  # 2026 starts on a Thursday: it has 53 weeks
    ("2020-W53", date(2020, 12, 28)),  # a leap year starting on a Wednesday: 53 too
    ("2026-11-23", date(2026, 11, 23)),  # a Monday is its own week
    ("2026-11-25", date(2026, 11, 23)),
    ("2026-11-29", date(2026, 11, 23)),  # Sunday still belongs to the week before it
    ("2026-11-30", date(2026, 11, 30)),
    ("2027-01-03", date(2026, 12, 28)),  # 2027's first days are in 2026-W53
    ("2021-01-01", date(2020, 12, 28)),
    ("2024-12-30", date(2024, 12, 30)),  # ... and 2024's last days in 2025-W01
    ("2024-02-29", date(2024, 2, 26)),
    (" 2026-W48 ", date(2026, 11, 23)),
])
def test_parse_week_gives_the_monday(text: str, monday: date) -> None:
    assert parse_week(text) == monday
    assert parse_week(text).weekday() == 0


@pytest.mark.parametrize("text", [
    "2025-W53", "2027-W53",  # 52-week years
    "2026-W54", "2026-W00", "2026-W99", "2026-W1", "2026W48", "26-W48",
    "2026-02-29", "2026-13-01", "2026-11-31", "2026/11/25", "25.11.2026", "", "W48",
    "2026-W48-1",
])
def test_parse_week_refuses_what_is_not_a_week(text: str) -> None:
    with pytest.raises(WeekError):
        parse_week(text)


@pytest.mark.parametrize(("day", "week"), [
    (date(2026, 11, 23), "2026-W48"),
    (date(2026, 12, 28), "2026-W53"),
    (date(2026, 12, 31), "2026-W53"),  # isocalendar: (2026, 53, 4)
    (date(2027, 1, 1), "2026-W53"),
    (date(2027, 1, 4), "2027-W01"),
    (date(2025, 12, 29), "2026-W01"),  # Monday of 2026-W01, still in 2025
    (date(2024, 12, 30), "2025-W01"),
    (date(2020, 12, 28), "2020-W53"),
    (date(2021, 1, 3), "2020-W53"),
    (date(2026, 3, 2), "2026-W10"),  # zero-padded
])
def test_format_week(day: date, week: str) -> None:
    assert format_week(day) == week
    assert format_week(day) == "{}-W{:02d}".format(*day.isocalendar()[:2])


def test_format_and_parse_round_trip_every_monday_of_a_decade() -> None:
    monday = date(2019, 12, 30)
    while monday < date(2030, 1, 1):
        assert parse_week(format_week(monday)) == monday
        monday += timedelta(weeks=1)


@pytest.mark.parametrize(("monday", "hours", "start"), [
    (date(2026, 3, 23), 167, "2026-03-22T22:00:00+00:00"),  # spring forward on its Sunday
    (date(2026, 10, 19), 169, "2026-10-18T21:00:00+00:00"),  # fall back on its Sunday
    (date(2026, 3, 30), 168, "2026-03-29T21:00:00+00:00"),  # summer time all week
    (date(2026, 11, 23), 168, "2026-11-22T22:00:00+00:00"),  # winter time all week
])
def test_week_bounds_are_local_midnights_in_utc(monday: date, hours: int, start: str) -> None:
    first, end = week_bounds(monday, HELSINKI)
    assert first == at(start)
    assert first.utcoffset() == timedelta(0)
    assert end.utcoffset() == timedelta(0)
    assert end - first == timedelta(hours=hours)
    assert week_of(first, HELSINKI) == monday
    assert week_of(end - timedelta(microseconds=1), HELSINKI) == monday
    assert week_of(end, HELSINKI) == monday + timedelta(weeks=1)


def test_week_of_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        week_of(datetime(2026, 11, 25, 12), HELSINKI)


def test_weeks_between_counts_both_ends() -> None:
    assert weeks_between(W45, W45) == [W45]
    assert weeks_between(W44, W46) == [W44, W45, W46]
    assert len(weeks_between(date(2024, 12, 30), date(2024, 12, 30) + timedelta(weeks=105))
               ) == MAX_WEEKS == 106


# --- week boundaries through the API ------------------------------------------------------

SPRING = [  # summer time starts Sunday 2026-03-29 at 03:00 local (01:00 UTC)
    ("2026-03-22T21:59:59Z", "2026-W12"),  # Sunday 23:59:59 EET
    ("2026-03-22T22:00:00Z", "2026-W13"),  # Monday 00:00 EET: the week's first moment
    ("2026-03-29T00:30:00Z", "2026-W13"),  # Sunday 02:30 EET, before the change
    ("2026-03-29T20:30:00Z", "2026-W13"),  # Sunday 23:30 EEST
    ("2026-03-29T23:30:00+03:00", "2026-W13"),  # the same moment with its offset
    ("2026-03-29T20:59:59Z", "2026-W13"),  # Sunday 23:59:59 EEST
    ("2026-03-29T21:00:00Z", "2026-W14"),  # Monday 00:00 EEST
    ("2026-03-29T21:30:00Z", "2026-W14"),  # Monday 00:30 EEST
    ("2026-03-29T23:30:00+02:00", "2026-W14"),  # reads Sunday, is Monday 00:30 in Helsinki
]
AUTUMN = [  # summer time ends Sunday 2026-10-25 at 04:00 local (01:00 UTC)
    ("2026-10-18T20:59:59Z", "2026-W42"),  # Sunday 23:59:59 EEST
    ("2026-10-18T21:00:00Z", "2026-W43"),  # Monday 00:00 EEST
    ("2026-10-25T00:30:00Z", "2026-W43"),  # 03:30 EEST, the repeated hour's first pass
    ("2026-10-25T01:30:00Z", "2026-W43"),  # 03:30 EET, its second pass
    ("2026-10-25T21:30:00Z", "2026-W43"),  # Sunday 23:30 EET
    ("2026-10-26T00:30:00+03:00", "2026-W43"),  # reads Monday, is Sunday 23:30 in Helsinki
    ("2026-10-25T21:59:59Z", "2026-W43"),  # Sunday 23:59:59 EET
    ("2026-10-25T22:00:00Z", "2026-W44"),  # Monday 00:00 EET
    ("2026-10-25T22:30:00Z", "2026-W44"),  # Monday 00:30 EET
    ("2026-10-26T00:30:00+02:00", "2026-W44"),  # the same moment with its offset
]


@pytest.mark.parametrize("moments", [SPRING, AUTUMN], ids=["spring", "autumn"])
async def test_completion_counts_in_its_helsinki_week(
        client: GraphQLClient, db: Database, moments: list[tuple[str, str]]) -> None:
    org = await make_org(db)
    meeting = await make_activity_type(db, "MEETING", 3)
    expected: dict[str, int] = {}
    for moment, week in moments:
        data = await client.query(LOG, {"i": {
            "typeId": gid(meeting), "subject": f"At {moment}", "status": "DONE",
            "completedAt": moment}}, as_user=org.rep_a1)
        payload = data["logActivity"]
        assert payload["userErrors"] == [], moment
        activity = payload["activity"]
        assert (activity["status"], activity["pointsEarned"]) == ("DONE", 3)
        assert at(activity["completedAt"]) == at(moment)
        assert activity["completedWeek"] == week, moment
        expected[week] = expected.get(week, 0) + 1

    first = parse_week(min(expected))
    for week in [format_week(first - timedelta(weeks=1)), *expected]:
        rows = keyed((await client.query(ATTAINMENT, {"u": gid(org.rep_a1), "w": week},
                                         as_user=org.rep_a1))["attainment"])
        done = expected.get(week, 0)
        assert rows[("COUNT", None)] == (None, done, None), week
        assert rows[("POINTS", None)] == (None, 3 * done, None), week


async def test_moving_a_completion_across_sunday_midnight_moves_it_between_weeks(
        client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    call = await make_activity_type(db, "CALL", 2)
    data = await client.query(LOG, {"i": {
        "typeId": gid(call), "subject": "Late call", "status": "DONE",
        "completedAt": "2026-03-29T20:30:00Z"}}, as_user=org.rep_a1)
    activity = data["logActivity"]["activity"]
    assert activity["completedWeek"] == "2026-W13"

    data = await client.query(UPDATE, {"i": {
        "id": activity["id"], "expectedVersion": activity["version"],
        "completedAt": "2026-03-30T00:30:00+03:00"}}, as_user=org.rep_a1)
    assert data["updateActivity"]["userErrors"] == []
    assert data["updateActivity"]["activity"]["completedWeek"] == "2026-W14"

    for week, points in (("2026-W13", 0), ("2026-W14", 2)):
        rows = keyed((await client.query(ATTAINMENT, {"u": gid(org.rep_a1), "w": week},
                                         as_user=org.rep_a1))["attainment"])
        assert rows[("POINTS", None)] == (None, points, None), week


# --- one user's attainment ----------------------------------------------------------------


async def _week_of_work(db: Database, org: Org) -> dict[str, ActivityType]:
    """Rep A1's 2026-W45: 3 calls and 2 meetings DONE inside the week (5 done, 9 points),
    and activities that must not count; targets on every kind of row."""
    call = await make_activity_type(db, "CALL", 1)
    meeting = await make_activity_type(db, "MEETING", 3)
    task = await make_activity_type(db, "TASK", 1)
    rep = org.rep_a1
    for moment in ("2026-11-01T22:00:00Z",  # Monday 00:00 EET, the week's first moment
                   "2026-11-04T10:00:00Z",
                   "2026-11-08T21:59:59Z"):  # Sunday 23:59:59 EET, its last second
        await make_activity(db, rep, call, completed_at=at(moment))
    for moment in ("2026-11-03T09:00:00Z", "2026-11-05T09:00:00Z"):
        await make_activity(db, rep, meeting, completed_at=at(moment))
    # None of these count for Rep A1's 2026-W45:
    await make_activity(db, rep, meeting, status=ActivityStatus.CANCELLED)
    await make_activity(db, rep, meeting, status=ActivityStatus.PLANNED,
                        due_at=at("2026-11-04T10:00:00Z"))
    await make_activity(db, rep, meeting, completed_at=at("2026-11-01T21:30:00Z"))  # W44
    await make_activity(db, rep, call, completed_at=at("2026-11-08T22:00:00Z"))  # W46
    await make_activity(db, org.rep_a2, meeting, completed_at=at("2026-11-04T10:00:00Z"))

    await make_target(db, rep, W45, COUNT, 6)
    await make_target(db, rep, W45, POINTS, 7)
    await make_target(db, rep, W45, COUNT, 3, meeting)
    await make_target(db, rep, W45, POINTS, 4, meeting)
    await make_target(db, rep, W45, COUNT, 0, task)  # no ratio without a target above 0
    await make_target(db, rep, W44, COUNT, 99)
    await make_target(db, rep, W46, COUNT, 98, call)
    await make_target(db, org.rep_a2, W45, POINTS, 50)
    return {"CALL": call, "MEETING": meeting, "TASK": task}


W45_ROWS = {
    ("COUNT", None): (6, 5, 0.8333),
    ("POINTS", None): (7, 9, 1.2857),
    ("COUNT", "MEETING"): (3, 2, 0.6667),
    ("POINTS", "MEETING"): (4, 6, 1.5),
    ("COUNT", "TASK"): (0, 0, None),
}


@pytest.mark.parametrize("week", ["2026-W45", "2026-11-02", "2026-11-05", "2026-11-08"])
async def test_attainment_rows_count_done_activities_of_the_week(
        client: GraphQLClient, db: Database, week: str) -> None:
    org = await make_org(db)
    await _week_of_work(db, org)
    rows = (await client.query(ATTAINMENT, {"u": gid(org.rep_a1), "w": week},
                               as_user=org.rep_a1))["attainment"]
    assert keyed(rows) == W45_ROWS
    assert {(r["week"], r["weekStart"], r["user"]["name"]) for r in rows} == {
        ("2026-W45", "2026-11-02", "Rep A1")}


async def test_attainment_without_targets_has_the_two_overall_rows(
        client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    await _week_of_work(db, org)
    rows = (await client.query(ATTAINMENT, {"u": gid(org.rep_b1), "w": "2026-W45"},
                               as_user=org.admin))["attainment"]
    assert [(r["metric"], code_of(r), r["target"], r["realized"], r["ratio"]) for r in rows] == [
        ("COUNT", None, None, 0, None), ("POINTS", None, None, 0, None)]
    rows = (await client.query(ATTAINMENT, {"u": gid(org.rep_a2), "w": "2026-W45"},
                               as_user=org.admin))["attainment"]
    assert [(r["metric"], code_of(r), r["target"], r["realized"], r["ratio"]) for r in rows] == [
        ("COUNT", None, None, 1, None), ("POINTS", None, 50, 3, 0.06)]


async def test_attainment_rows_come_overall_first_then_type_targets(
        client: GraphQLClient, db: Database) -> None:
    """The contract (schema description of Query.attainment): overall COUNT and POINTS
    rows, then one row per activity-type target, COUNT before POINTS."""
    org = await make_org(db)
    await _week_of_work(db, org)
    rows = (await client.query(ATTAINMENT, {"u": gid(org.rep_a1), "w": "2026-W45"},
                               as_user=org.rep_a1))["attainment"]
    order = [(r["metric"], code_of(r)) for r in rows]
    assert order[:2] == [("COUNT", None), ("POINTS", None)], order
    typed = [metric for metric, code in order[2:] if code is not None]
    assert typed == ["COUNT", "COUNT", "POINTS"], order


@pytest.mark.parametrize("week", [
    "2026-W54", "2025-W53", "2026-W00", "2026-13-01", "2026-02-29", "week 48", "",
])
async def test_attainment_refuses_a_bad_week(client: GraphQLClient, db: Database,
                                             week: str) -> None:
    org = await make_org(db)
    variables = {"u": gid(org.rep_a1), "w": week}
    assert await top_level_code(client, ATTAINMENT, variables, org.rep_a1) == "BAD_USER_INPUT"
    team = {"t": gid(org.team_a), "w": week}
    assert await top_level_code(client, TEAM, team, org.rep_a1) == "BAD_USER_INPUT"
    assert await top_level_code(client, BOARD, {**team, "m": "COUNT"}, org.rep_a1
                                ) == "BAD_USER_INPUT"


async def test_attainment_of_a_53rd_week_and_of_an_unknown_user(
        client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    rows = (await client.query(ATTAINMENT, {"u": gid(org.rep_a1), "w": "2026-W53"},
                               as_user=org.admin))["attainment"]
    assert {(r["week"], r["weekStart"]) for r in rows} == {("2026-W53", "2026-12-28")}
    missing = {"u": encode_id("User", org.partner.id + 1000), "w": "2026-W45"}
    assert await top_level_code(client, ATTAINMENT, missing, org.admin) == "BAD_USER_INPUT"


# --- team board, leaderboard, User.attainment ---------------------------------------------


async def _team_week(db: Database, org: Org) -> None:
    """Team A's 2026-W45. On the board: Rep A0 (3 calls), Rep A1 (2 meetings), Rep A2
    (1 meeting), Rep A4 (1 call). Off it: the manager, an inactive rep, team B."""
    call = await make_activity_type(db, "CALL", 1)
    meeting = await make_activity_type(db, "MEETING", 3)
    # Created after A1 and A2 but first by name: the board goes by name, not by id.
    rep_a0 = await make_user(db, Role.REP, team=org.team_a, name="Rep A0")
    rep_a4 = await make_user(db, Role.REP, team=org.team_a, name="Rep A4")
    gone = await make_user(db, Role.REP, team=org.team_a, name="Rep A3", active=False)
    wednesday = at("2026-11-04T10:00:00Z")
    for user, kind, times in ((rep_a0, call, 3), (org.rep_a1, meeting, 2),
                              (org.rep_a2, meeting, 1), (rep_a4, call, 1),
                              (org.manager_a, meeting, 5), (gone, meeting, 4),
                              (org.rep_b1, meeting, 9)):
        for _ in range(times):
            await make_activity(db, user, kind, completed_at=wednesday)
    for _ in range(3):  # the week before
        await make_activity(db, rep_a4, meeting, completed_at=at("2026-10-28T10:00:00Z"))
    await make_activity(db, rep_a4, meeting, status=ActivityStatus.CANCELLED)
    await make_target(db, org.rep_a1, W45, POINTS, 12)
    await make_target(db, org.rep_a1, W45, COUNT, 4, meeting)  # a type target: not the board's
    await make_target(db, rep_a0, W45, POINTS, 9)
    await make_target(db, org.rep_a2, W45, COUNT, 3)
    await make_target(db, rep_a4, W44, POINTS, 1)


async def test_team_attainment_has_the_active_reps_by_name(
        client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    await _team_week(db, org)
    rows = (await client.query(TEAM, {"t": gid(org.team_a), "w": "2026-W45"},
                               as_user=org.rep_a2))["teamAttainment"]
    assert names_in_order(rows) == ["Rep A0", "Rep A1", "Rep A2", "Rep A4"]
    assert by_user(rows) == {
        "Rep A0": {("COUNT", None): (None, 3, None), ("POINTS", None): (9, 3, 0.3333)},
        "Rep A1": {("COUNT", None): (None, 2, None), ("POINTS", None): (12, 6, 0.5),
                   ("COUNT", "MEETING"): (4, 2, 0.5)},
        "Rep A2": {("COUNT", None): (3, 1, 0.3333), ("POINTS", None): (None, 3, None)},
        "Rep A4": {("COUNT", None): (None, 1, None), ("POINTS", None): (None, 1, None)},
    }
    assert {r["week"] for r in rows} == {"2026-W45"}


async def test_team_attainment_of_a_team_without_reps_is_empty(
        client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    await _team_week(db, org)
    empty = await make_team(db, "Team C")
    await make_user(db, Role.MANAGER, team=empty, name="Manager C")
    rows = (await client.query(TEAM, {"t": gid(empty), "w": "2026-W45"},
                               as_user=org.admin))["teamAttainment"]
    assert rows == []


@pytest.mark.parametrize(("metric", "entries"), [
    ("POINTS", [(1, "Rep A1", 6, 12, 0.5), (2, "Rep A0", 3, 9, 0.3333),
                (2, "Rep A2", 3, None, None), (4, "Rep A4", 1, None, None)]),
    ("COUNT", [(1, "Rep A0", 3, None, None), (2, "Rep A1", 2, None, None),
               (3, "Rep A2", 1, 3, 0.3333), (3, "Rep A4", 1, None, None)]),
])
async def test_leaderboard_ranks_with_shared_places(
        client: GraphQLClient, db: Database, metric: str, entries: list[tuple[Any, ...]]
) -> None:
    org = await make_org(db)
    await _team_week(db, org)
    board = (await client.query(BOARD, {"t": gid(org.team_a), "w": "2026-11-06", "m": metric},
                                as_user=org.rep_a1))["activityLeaderboard"]
    assert (board["week"], board["weekStart"], board["metric"], board["team"]["name"]) == (
        "2026-W45", "2026-11-02", metric, "Team A")
    assert [(e["rank"], e["user"]["name"], e["realized"], e["target"], e["ratio"])
            for e in board["entries"]] == entries


async def test_leaderboard_ranks_by_points_by_default(client: GraphQLClient,
                                                      db: Database) -> None:
    org = await make_org(db)
    await _team_week(db, org)
    board = (await client.query(DEFAULT_BOARD, {"t": gid(org.team_a), "w": "2026-W45"},
                                as_user=org.manager_a))["activityLeaderboard"]
    assert board["metric"] == "POINTS"
    assert [(e["rank"], e["user"]["name"], e["realized"]) for e in board["entries"]] == [
        (1, "Rep A1", 6), (2, "Rep A0", 3), (2, "Rep A2", 3), (4, "Rep A4", 1)]


async def test_leaderboard_of_a_quiet_week_ties_everyone_first(
        client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    await _team_week(db, org)
    board = (await client.query(BOARD, {"t": gid(org.team_a), "w": "2026-W40", "m": "POINTS"},
                                as_user=org.manager_a))["activityLeaderboard"]
    assert [(e["rank"], e["user"]["name"], e["realized"]) for e in board["entries"]] == [
        (1, "Rep A0", 0), (1, "Rep A1", 0), (1, "Rep A2", 0), (1, "Rep A4", 0)]


async def test_user_attainment_field(client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    await _week_of_work(db, org)
    for week in ("2026-W45", "2026-11-04"):
        viewer = (await client.query(VIEWER_ATTAINMENT, {"w": week},
                                     as_user=org.rep_a1))["viewer"]
        assert viewer["name"] == "Rep A1"
        assert keyed(viewer["attainment"]) == W45_ROWS
        assert {r["week"] for r in viewer["attainment"]} == {"2026-W45"}

    # Without a week: this week (read around the request, which may cross midnight).
    before = (await client.query(CURRENT_WEEK, as_user=org.rep_a1))["currentWeek"]
    viewer = (await client.query(VIEWER_ATTAINMENT, {}, as_user=org.rep_a1))["viewer"]
    after = (await client.query(CURRENT_WEEK, as_user=org.rep_a1))["currentWeek"]
    assert len(viewer["attainment"]) == 2
    assert len({r["week"] for r in viewer["attainment"]}) == 1
    assert viewer["attainment"][0]["week"] in {before, after}


# --- history ------------------------------------------------------------------------------


async def test_attainment_history_week_by_week(client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    call = await make_activity_type(db, "CALL", 1)
    meeting = await make_activity_type(db, "MEETING", 3)
    rep = org.rep_a1
    w = {n: date(2026, 3, 2) + timedelta(weeks=n - 10) for n in range(9, 16)}  # 2026-Wnn
    for n, kind, times in ((9, meeting, 4), (10, call, 2), (12, meeting, 1), (14, call, 1),
                           (14, meeting, 1), (15, call, 7)):
        for _ in range(times):
            await make_activity(db, rep, kind, completed_at=datetime.combine(
                w[n] + timedelta(days=2), time(10), tzinfo=UTC))
    await make_activity(db, org.rep_a2, call, completed_at=datetime.combine(
        w[11] + timedelta(days=1), time(10), tzinfo=UTC))
    await make_target(db, rep, w[11], COUNT, 2)
    await make_target(db, rep, w[12], POINTS, 3)
    await make_target(db, rep, w[12], COUNT, 1, meeting)
    await make_target(db, rep, w[14], COUNT, 4)
    await make_target(db, rep, w[15], COUNT, 40)

    rows = (await client.query(HISTORY, {"u": gid(rep), "f": "2026-03-04", "to": "2026-W14"},
                               as_user=org.rep_a2))["attainmentHistory"]
    weeks = [r["week"] for r in rows]
    assert weeks == sorted(weeks)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["week"], []).append(row)
    assert {week: keyed(week_rows) for week, week_rows in grouped.items()} == {
        "2026-W10": {("COUNT", None): (None, 2, None), ("POINTS", None): (None, 2, None)},
        "2026-W11": {("COUNT", None): (2, 0, 0.0), ("POINTS", None): (None, 0, None)},
        "2026-W12": {("COUNT", None): (None, 1, None), ("POINTS", None): (3, 3, 1.0),
                     ("COUNT", "MEETING"): (1, 1, 1.0)},
        "2026-W13": {("COUNT", None): (None, 0, None), ("POINTS", None): (None, 0, None)},
        "2026-W14": {("COUNT", None): (4, 2, 0.5), ("POINTS", None): (None, 4, None)},
    }
    assert {r["weekStart"] for r in grouped["2026-W13"]} == {"2026-03-23"}
    assert {r["user"]["name"] for r in rows} == {"Rep A1"}

    one = (await client.query(HISTORY, {"u": gid(rep), "f": "2026-W12", "to": "2026-03-22"},
                              as_user=rep))["attainmentHistory"]
    assert keyed(one) == {("COUNT", None): (None, 1, None), ("POINTS", None): (3, 3, 1.0),
                          ("COUNT", "MEETING"): (1, 1, 1.0)}


async def test_attainment_history_limits(client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    first = date(2024, 12, 30)  # 2025-W01
    last = first + timedelta(weeks=MAX_WEEKS - 1)
    variables = {"u": gid(org.rep_a1), "f": format_week(first), "to": format_week(last)}
    rows = (await client.query(HISTORY, variables, as_user=org.rep_a1))["attainmentHistory"]
    assert len(rows) == 2 * MAX_WEEKS
    assert (rows[0]["week"], rows[-1]["week"]) == ("2025-W01", format_week(last))

    too_long = {**variables, "to": format_week(last + timedelta(weeks=1))}
    backwards = {**variables, "f": "2026-W10", "to": "2026-W09"}
    bad_from = {**variables, "f": "2025-W53"}
    bad_to = {**variables, "to": "soon"}
    for wrong in (too_long, backwards, bad_from, bad_to):
        assert await top_level_code(client, HISTORY, wrong, org.rep_a1) == "BAD_USER_INPUT", wrong


# --- SQL statements per request -----------------------------------------------------------

YEAR = [date(2025, 12, 29) + timedelta(weeks=n) for n in range(52)]  # 2026-W01 ... W52


async def _year_of_work(db: Database, reps: list[User], call: ActivityType,
                        meeting: ActivityType) -> None:
    """Every rep's 52 weeks: 1 to 3 calls and a meeting DONE each Wednesday, with
    overall COUNT and POINTS targets and a MEETING count target; one transaction."""
    records: list[Any] = []
    for n, rep in enumerate(reps):
        for index, monday in enumerate(YEAR):
            moment = datetime.combine(monday + timedelta(days=2), time(10), tzinfo=UTC)
            for kind, times in ((call, 1 + (n + index) % 3), (meeting, 1)):
                records.extend(Activity(
                    type_id=kind.id, subject=f"{kind.code} {index}", owner_id=rep.id,
                    status=ActivityStatus.DONE, completed_at=moment, completed_week=monday,
                    points_earned=kind.points) for _ in range(times))
            records.extend([
                ActivityTarget(user_id=rep.id, week=monday, metric=COUNT, target=4),
                ActivityTarget(user_id=rep.id, week=monday, metric=POINTS, target=8),
                ActivityTarget(user_id=rep.id, week=monday, metric=COUNT, target=1,
                               activity_type_id=meeting.id)])
    async with db.transaction() as session:
        session.add_all(records)


BIG_BOARD = """query($t: ID!, $w: String!) {
  activityLeaderboard(teamId: $t, week: $w) {
    week team { name } entries { rank realized target ratio user { name email } } } }"""
MEMBERS = """query($t: ID!, $w: String!) {
  users(first: 50, filter: {teamId: {eq: $t}}) { edges { node { name
    attainment(week: $w) { metric realized target user { name } activityType { code } }
  } } } }"""


async def test_statement_counts_do_not_grow_with_team_size_or_weeks(
        client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    call = await make_activity_type(db, "CALL", 1)
    meeting = await make_activity_type(db, "MEETING", 3)
    big, small = await make_team(db, "Big"), await make_team(db, "Small")
    big_reps = [await make_user(db, Role.REP, team=big, name=f"Big {n:02d}") for n in range(10)]
    small_reps = [await make_user(db, Role.REP, team=small, name=f"Small {n}")
                  for n in range(2)]
    await _year_of_work(db, big_reps + small_reps, call, meeting)
    week = "2026-W20"  # YEAR[19]

    async def counted(query: str, variables: dict[str, Any]) -> tuple[dict[str, Any], int]:
        # The fewest of three: a broker message from another test run (Redis pub/sub
        # ignores the database number) wakes the event hub, whose outbox read is counted
        # too. Such reads only ever add; a request's own statements are the same each time.
        runs = [await client.counted(query, variables, as_user=org.admin) for _ in range(3)]
        return runs[0][0], min(count for _, count in runs)

    small_rows, small_team = await counted(TEAM, {"t": gid(small), "w": week})
    big_rows, big_team = await counted(TEAM, {"t": gid(big), "w": week})
    assert len(small_rows["teamAttainment"]) == 2 * 3
    assert len(big_rows["teamAttainment"]) == 10 * 3
    calls = {f"Big {n:02d}": 1 + (n + 19) % 3 for n in range(10)}
    assert by_user(big_rows["teamAttainment"]) == {name: {
        ("COUNT", None): (4, done + 1, round((done + 1) / 4, 4)),
        ("POINTS", None): (8, done + 3, round((done + 3) / 8, 4)),
        ("COUNT", "MEETING"): (1, 1, 1.0)} for name, done in calls.items()}

    small_board, small_board_count = await counted(BIG_BOARD, {"t": gid(small), "w": week})
    big_board, big_board_count = await counted(BIG_BOARD, {"t": gid(big), "w": week})
    assert len(small_board["activityLeaderboard"]["entries"]) == 2
    entries = big_board["activityLeaderboard"]["entries"]
    assert [e["realized"] for e in entries] == sorted(
        (done + 3 for done in calls.values()), reverse=True)

    history = {"u": gid(big_reps[0])}
    short, short_count = await counted(HISTORY, {**history, "f": "2026-W01", "to": "2026-W04"})
    long, long_count = await counted(HISTORY, {**history, "f": "2026-W01", "to": "2026-W52"})
    assert len(short["attainmentHistory"]) == 4 * 3
    assert len(long["attainmentHistory"]) == 52 * 3

    _, small_members_count = await counted(MEMBERS, {"t": gid(small), "w": week})
    big_members, big_members_count = await counted(MEMBERS, {"t": gid(big), "w": week})
    assert len(big_members["users"]["edges"]) == 10
    assert all(len(edge["node"]["attainment"]) == 3 for edge in big_members["users"]["edges"])

    counts = {"teamAttainment": (small_team, big_team),
              "activityLeaderboard": (small_board_count, big_board_count),
              "attainmentHistory": (short_count, long_count),
              "User.attainment": (small_members_count, big_members_count)}
    for name, (few, many) in counts.items():
        assert few == many, f"{name}: {few} statements for the small case, {many} for the big"
    # The viewer, the team (or user), its reps, targets, realized figures, activity types.
    assert counts == {"teamAttainment": (6, 6), "activityLeaderboard": (5, 5),
                      "attainmentHistory": (5, 5), "User.attainment": (6, 6)}


# --- visibility ---------------------------------------------------------------------------


async def test_a_rep_sees_itself_its_team_mates_and_its_team_board(
        client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    await _team_week(db, org)
    rep = org.rep_a1
    mate = (await client.query(ATTAINMENT, {"u": gid(org.rep_a2), "w": "2026-W45"},
                               as_user=rep))["attainment"]
    assert keyed(mate)[("COUNT", None)] == (3, 1, 0.3333)
    own = (await client.query(ATTAINMENT, {"u": gid(rep), "w": "2026-W45"},
                              as_user=rep))["attainment"]
    assert keyed(own)[("POINTS", None)] == (12, 6, 0.5)
    manager = (await client.query(ATTAINMENT, {"u": gid(org.manager_a), "w": "2026-W45"},
                                  as_user=rep))["attainment"]
    assert keyed(manager)[("POINTS", None)] == (None, 15, None)
    team = (await client.query(TEAM, {"t": gid(org.team_a), "w": "2026-W45"},
                               as_user=rep))["teamAttainment"]
    assert len(names_in_order(team)) == 4
    board = (await client.query(BOARD, {"t": gid(org.team_a), "w": "2026-W45", "m": "POINTS"},
                                as_user=rep))["activityLeaderboard"]
    assert len(board["entries"]) == 4
    history = (await client.query(HISTORY, {"u": gid(org.rep_a2), "f": "2026-W45",
                                            "to": "2026-W45"}, as_user=rep))
    assert keyed(history["attainmentHistory"])[("COUNT", None)] == (3, 1, 0.3333)


async def test_a_rep_is_refused_another_team(client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    await _team_week(db, org)
    rep = org.rep_a1
    week = {"w": "2026-W45"}
    for query, variables in (
            (ATTAINMENT, {**week, "u": gid(org.rep_b1)}),
            (ATTAINMENT, {**week, "u": gid(org.manager_b)}),
            (ATTAINMENT, {**week, "u": gid(org.admin)}),  # on no team
            (HISTORY, {"u": gid(org.rep_b1), "f": "2026-W44", "to": "2026-W45"}),
            (TEAM, {**week, "t": gid(org.team_b)}),
            (BOARD, {**week, "t": gid(org.team_b), "m": "COUNT"}),
            (TARGETS, {**week, "u": gid(org.rep_b1)}),
            (TARGETS, {**week, "t": gid(org.team_b)})):
        response = await client.post(query, variables, as_user=rep)
        body = response.json()
        assert body.get("data") is None, (variables, body)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], variables

    # User.attainment: the team mate's rows come, the other team's user's are refused.
    response = await client.post("""query($ids: [ID!], $w: String) {
      users(filter: {id: {in: $ids}}, orderBy: [{field: NAME}]) { edges { node {
        name attainment(week: $w) { metric realized } } } } }""",
                                 {"ids": [gid(org.rep_a2), gid(org.rep_b1)], **week},
                                 as_user=rep)
    body = response.json()
    nodes = {edge["node"]["name"]: edge["node"]["attainment"]
             for edge in body["data"]["users"]["edges"]}
    assert nodes["Rep B1"] is None
    assert nodes["Rep A2"] == [{"metric": "COUNT", "realized": 1},
                               {"metric": "POINTS", "realized": 3}]
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_a_partner_is_refused_all_attainment(client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    await _team_week(db, org)
    partner = org.partner
    week = {"w": "2026-W45"}
    for query, variables in (
            (ATTAINMENT, {**week, "u": gid(org.rep_a1)}),
            (ATTAINMENT, {**week, "u": gid(partner)}),  # even its own
            (TEAM, {**week, "t": gid(org.team_a)}),
            (BOARD, {**week, "t": gid(org.team_a), "m": "POINTS"}),
            (DEFAULT_BOARD, {**week, "t": gid(org.team_a)}),
            (TARGETS, week),
            (TARGETS, {**week, "u": gid(org.rep_a1)}),
            (TARGETS, {**week, "t": gid(org.team_a)}),
            (HISTORY, {"u": gid(org.rep_a1), "f": "2026-W44", "to": "2026-W45"}),
            (HISTORY, {"u": gid(partner), "f": "2026-W45", "to": "2026-W45"})):
        assert await top_level_code(client, query, variables, partner) == "FORBIDDEN", (
            query, variables)
    response = await client.post(VIEWER_ATTAINMENT, week, as_user=partner)
    body = response.json()
    assert body["data"]["viewer"]["attainment"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


@pytest.mark.parametrize("role", ["manager", "admin"])
async def test_managers_and_admins_see_every_team(client: GraphQLClient, db: Database,
                                                  role: str) -> None:
    org = await make_org(db)
    await _team_week(db, org)
    viewer = org.manager_a if role == "manager" else org.admin
    week = {"w": "2026-W45"}
    rows = (await client.query(ATTAINMENT, {**week, "u": gid(org.rep_b1)},
                               as_user=viewer))["attainment"]
    assert keyed(rows)[("POINTS", None)] == (None, 27, None)
    team = (await client.query(TEAM, {**week, "t": gid(org.team_b)},
                               as_user=viewer))["teamAttainment"]
    assert names_in_order(team) == ["Rep B1"]
    board = (await client.query(BOARD, {**week, "t": gid(org.team_b), "m": "COUNT"},
                                as_user=viewer))["activityLeaderboard"]
    assert [(e["rank"], e["user"]["name"], e["realized"]) for e in board["entries"]] == [
        (1, "Rep B1", 9)]
    history = (await client.query(HISTORY, {"u": gid(org.rep_b1), "f": "2026-W44",
                                            "to": "2026-W45"}, as_user=viewer))
    assert [r["realized"] for r in history["attainmentHistory"]] == [0, 0, 9, 27]


# --- activityTargets ----------------------------------------------------------------------


async def test_activity_targets_query(client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    meeting = await make_activity_type(db, "MEETING", 3)
    await make_target(db, org.rep_a1, W45, COUNT, 10)
    await make_target(db, org.rep_a1, W45, COUNT, 3, meeting)
    await make_target(db, org.rep_a2, W45, POINTS, 5)
    await make_target(db, org.rep_b1, W45, COUNT, 7)
    await make_target(db, org.manager_b, W45, COUNT, 2)
    await make_target(db, org.rep_a1, W46, COUNT, 99)

    async def listed(user: Any, **variables: Any) -> list[tuple[Any, ...]]:
        variables.setdefault("w", "2026-W45")
        rows = (await client.query(TARGETS, variables, as_user=user))["activityTargets"]
        monday = parse_week(variables["w"])
        assert {(r["week"], r["weekStart"]) for r in rows} <= {
            (format_week(monday), monday.isoformat())}
        return [(r["user"]["name"], r["metric"], code_of(r), r["target"]) for r in rows]

    team_a = [("Rep A1", "COUNT", None, 10), ("Rep A1", "COUNT", "MEETING", 3),
              ("Rep A2", "POINTS", None, 5)]
    team_b = [("Manager B", "COUNT", None, 2), ("Rep B1", "COUNT", None, 7)]
    assert await listed(org.rep_a1) == team_a
    assert await listed(org.rep_a1, w="2026-11-08") == team_a
    assert await listed(org.rep_a1, t=gid(org.team_a)) == team_a
    assert await listed(org.rep_a1, u=gid(org.rep_a2)) == [("Rep A2", "POINTS", None, 5)]
    assert await listed(org.manager_a) == [team_b[0], *team_a, team_b[1]]
    assert await listed(org.manager_a, t=gid(org.team_b)) == team_b
    assert await listed(org.admin, u=gid(org.rep_a1), w="2026-W46") == [
        ("Rep A1", "COUNT", None, 99)]
    assert await listed(org.admin, w="2026-W47") == []


# --- setActivityTargets -------------------------------------------------------------------


def line(user: Any, metric: str, target: int, kind: Any = None) -> dict[str, Any]:
    return {"userId": gid(user), "metric": metric, "target": target,
            "activityTypeId": gid(kind) if kind is not None else None}


async def test_set_targets_creates_updates_and_removes(client: GraphQLClient,
                                                       db: Database) -> None:
    org = await make_org(db)
    meeting = await make_activity_type(db, "MEETING", 3)
    a1, a2 = org.rep_a1.id, org.rep_a2.id
    await make_target(db, org.rep_b1, W45, COUNT, 7)  # another team's: untouched

    data = await client.query(SET, {"i": {"week": "2026-W45", "targets": [
        line(org.rep_a1, "COUNT", 10), line(org.rep_a1, "POINTS", 20),
        line(org.rep_a1, "COUNT", 3, meeting), line(org.rep_a2, "COUNT", 5),
    ]}}, as_user=org.manager_a)
    payload = data["setActivityTargets"]
    assert payload["userErrors"] == []
    assert target_keys(payload["targets"]) == {
        ("Rep A1", "COUNT", None, 10), ("Rep A1", "POINTS", None, 20),
        ("Rep A1", "COUNT", "MEETING", 3), ("Rep A2", "COUNT", None, 5)}
    assert {(t["week"], t["weekStart"]) for t in payload["targets"]} == {
        ("2026-W45", "2026-11-02")}
    assert await stored_targets(db) == {
        (a1, W45, COUNT, None, 10), (a1, W45, POINTS, None, 20),
        (a1, W45, COUNT, meeting.id, 3), (a2, W45, COUNT, None, 5),
        (org.rep_b1.id, W45, COUNT, None, 7)}

    # A date names its week; 0 removes a target, or does nothing where none is set.
    data = await client.query(SET, {"i": {"week": "2026-11-05", "targets": [
        line(org.rep_a1, "COUNT", 12), line(org.rep_a1, "COUNT", 0, meeting),
        line(org.rep_a2, "POINTS", 0),
    ]}}, as_user=org.manager_a)
    payload = data["setActivityTargets"]
    assert payload["userErrors"] == []
    assert target_keys(payload["targets"]) == {("Rep A1", "COUNT", None, 12)}
    assert await stored_targets(db) == {
        (a1, W45, COUNT, None, 12), (a1, W45, POINTS, None, 20), (a2, W45, COUNT, None, 5),
        (org.rep_b1.id, W45, COUNT, None, 7)}

    rows = (await client.query(ATTAINMENT, {"u": gid(org.rep_a1), "w": "2026-W45"},
                               as_user=org.rep_a1))["attainment"]
    assert keyed(rows) == {("COUNT", None): (12, 0, 0.0), ("POINTS", None): (20, 0, 0.0)}


async def test_an_admin_sets_targets_for_anyone(client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    data = await client.query(SET, {"i": {"week": "2026-W53", "targets": [
        line(org.rep_b1, "POINTS", 30), line(org.manager_b, "COUNT", 2),
        line(org.rep_a1, "COUNT", 1)]}}, as_user=org.admin)
    assert data["setActivityTargets"]["userErrors"] == []
    monday = date(2026, 12, 28)
    assert await stored_targets(db) == {
        (org.rep_b1.id, monday, POINTS, None, 30), (org.manager_b.id, monday, COUNT, None, 2),
        (org.rep_a1.id, monday, COUNT, None, 1)}


async def test_refused_target_calls_write_nothing(client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    meeting = await make_activity_type(db, "MEETING", 3)
    await make_target(db, org.rep_a1, W45, COUNT, 7)
    await make_target(db, org.rep_b1, W45, COUNT, 7)
    before = await stored_targets(db)
    valid = line(org.rep_a1, "COUNT", 1)  # would change Rep A1's 7 if anything were written
    missing_type = {**line(org.rep_a2, "COUNT", 1),
                    "activityTypeId": encode_id("ActivityType", meeting.id + 1000)}
    cases: list[tuple[str, Any, str, list[dict[str, Any]], set[tuple[str | None, str]]]] = [
        ("another team's member", org.manager_a, "2026-W45",
         [valid, line(org.rep_b1, "COUNT", 1)], {("targets.1.userId", "FORBIDDEN")}),
        ("a rep", org.rep_a1, "2026-W45", [valid], {(None, "FORBIDDEN")}),
        ("a partner viewer", org.partner, "2026-W45", [valid], {(None, "FORBIDDEN")}),
        ("a partner user", org.admin, "2026-W45",
         [valid, line(org.partner, "COUNT", 1)], {("targets.1.userId", "VALIDATION")}),
        ("the same key twice", org.admin, "2026-W45",
         [valid, line(org.rep_a2, "COUNT", 4, meeting), line(org.rep_a1, "COUNT", 2)],
         {("targets.2", "VALIDATION")}),
        ("a bad week", org.admin, "2026-W54", [valid], {("week", "VALIDATION")}),
        ("another bad week", org.manager_a, "2026-11-31", [valid], {("week", "VALIDATION")}),
        ("a negative target", org.admin, "2026-W45",
         [valid, line(org.rep_a2, "COUNT", -1)], {("targets.1.target", "VALIDATION")}),
        ("an unknown activity type", org.admin, "2026-W45", [valid, missing_type],
         {("targets.1.activityTypeId", "NOT_FOUND")}),
    ]
    for name, viewer, week, targets, expected in cases:
        data = await client.query(SET, {"i": {"week": week, "targets": targets}},
                                  as_user=viewer)
        payload = data["setActivityTargets"]
        assert error_codes(payload) == expected, (name, payload)
        assert payload["targets"] == [], name
        assert await stored_targets(db) == before, name


# --- copyActivityTargets ------------------------------------------------------------------


async def _weeks_to_copy(db: Database, org: Org) -> ActivityType:
    meeting = await make_activity_type(db, "MEETING", 3)
    await make_target(db, org.rep_a1, W45, COUNT, 10)
    await make_target(db, org.rep_a1, W45, POINTS, 20)
    await make_target(db, org.rep_a1, W45, COUNT, 2, meeting)
    await make_target(db, org.rep_a2, W45, COUNT, 8)
    await make_target(db, org.manager_a, W45, COUNT, 1)
    await make_target(db, org.rep_b1, W45, COUNT, 7)  # team B's: never copied for team A
    await make_target(db, org.rep_a1, W46, COUNT, 3)  # already set in the week copied to
    return meeting


async def test_copy_targets_keeps_what_the_week_has(client: GraphQLClient,
                                                    db: Database) -> None:
    org = await make_org(db)
    meeting = await _weeks_to_copy(db, org)
    source = {row for row in await stored_targets(db) if row[1] == W45}
    data = await client.query(COPY, {"i": {"fromWeek": "2026-W45", "toWeek": "2026-11-12",
                                           "teamId": gid(org.team_a)}}, as_user=org.manager_a)
    payload = data["copyActivityTargets"]
    assert payload["userErrors"] == []
    assert target_keys(payload["targets"]) == {
        ("Rep A1", "POINTS", None, 20), ("Rep A1", "COUNT", "MEETING", 2),
        ("Rep A2", "COUNT", None, 8), ("Manager A", "COUNT", None, 1)}
    assert {t["week"] for t in payload["targets"]} == {"2026-W46"}
    stored = await stored_targets(db)
    assert {row for row in stored if row[1] == W45} == source
    a1, a2, manager = org.rep_a1.id, org.rep_a2.id, org.manager_a.id
    assert {row for row in stored if row[1] == W46} == {
        (a1, W46, COUNT, None, 3), (a1, W46, POINTS, None, 20),
        (a1, W46, COUNT, meeting.id, 2), (a2, W46, COUNT, None, 8),
        (manager, W46, COUNT, None, 1)}


async def test_copy_targets_with_overwrite_replaces_them(client: GraphQLClient,
                                                         db: Database) -> None:
    org = await make_org(db)
    meeting = await _weeks_to_copy(db, org)
    data = await client.query(COPY, {"i": {"fromWeek": "2026-W45", "toWeek": "2026-W46",
                                           "teamId": gid(org.team_a), "overwrite": True}},
                              as_user=org.admin)
    payload = data["copyActivityTargets"]
    assert payload["userErrors"] == []
    assert ("Rep A1", "COUNT", None, 10) in target_keys(payload["targets"])
    a1, a2, manager = org.rep_a1.id, org.rep_a2.id, org.manager_a.id
    assert {row for row in await stored_targets(db) if row[1] == W46} == {
        (a1, W46, COUNT, None, 10), (a1, W46, POINTS, None, 20),
        (a1, W46, COUNT, meeting.id, 2), (a2, W46, COUNT, None, 8),
        (manager, W46, COUNT, None, 1)}


async def test_refused_copies_write_nothing(client: GraphQLClient, db: Database) -> None:
    org = await make_org(db)
    await _weeks_to_copy(db, org)
    before = await stored_targets(db)
    team_a = gid(org.team_a)
    cases = [
        ("another team's manager", org.manager_b, "2026-W45", "2026-W46", team_a,
         {("teamId", "FORBIDDEN")}),
        ("a rep", org.rep_a1, "2026-W45", "2026-W46", team_a, {(None, "FORBIDDEN")}),
        ("a partner", org.partner, "2026-W45", "2026-W46", team_a, {(None, "FORBIDDEN")}),
        ("the same week", org.admin, "2026-W45", "2026-11-08", team_a,
         {("toWeek", "VALIDATION")}),
        ("a bad fromWeek", org.admin, "2026-W99", "2026-W46", team_a,
         {("fromWeek", "VALIDATION")}),
        ("a bad toWeek", org.admin, "2026-W45", "next week", team_a, {("toWeek", "VALIDATION")}),
        ("an unknown team", org.admin, "2026-W45", "2026-W46",
         encode_id("Team", org.team_b.id + 1000), {("teamId", "NOT_FOUND")}),
    ]
    for name, viewer, from_week, to_week, team, expected in cases:
        data = await client.query(COPY, {"i": {"fromWeek": from_week, "toWeek": to_week,
                                               "teamId": team, "overwrite": True}},
                                  as_user=viewer)
        payload = data["copyActivityTargets"]
        assert error_codes(payload) == expected, (name, payload)
        assert payload["targets"] == [], name
        assert await stored_targets(db) == before, name
