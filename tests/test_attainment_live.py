"""The live attainment feed and the live leaderboard over graphql-transport-ws: delivery
after activity and target changes, the rows each change carries, filters, visibility,
replay with `after`, and coalesced leaderboard refreshes."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from httpx_ws import AsyncWebSocketSession

from models.activities import ActivityType, TargetMetric
from models.users import User
from resolvers import activities as resolve
from resolvers.weeks import format_week, week_of
from tests.factories import ORG_TIMEZONE, Org, gid, make_activity_type, make_org, make_target
from tests.graphql_client import GraphQLClient
from tests.live import next_data, nothing_more, subscribed

FEED = """subscription($userId: ID, $teamId: ID, $week: String, $after: String) {
  targetAttainmentChanged(userId: $userId, teamId: $teamId, week: $week, after: $after) {
    eventId reason week weekStart metric activityType { code } target realized ratio
    user { name }
  }
}"""

BOARD = """subscription($teamId: ID!, $week: String!, $metric: TargetMetric) {
  leaderboardChanged(teamId: $teamId, week: $week, metric: $metric) {
    week metric team { name } entries { rank realized target ratio user { name } }
  }
}"""

ACTIVITY = "activity { id version status } userErrors { field code message }"
LOG = f"""mutation($i: LogActivityInput!) {{ logActivity(input: $i) {{ {ACTIVITY} }} }}"""
COMPLETE = f"""mutation($i: CompleteActivityInput!) {{
  completeActivity(input: $i) {{ {ACTIVITY} }} }}"""
REOPEN = f"""mutation($i: ActivityVersionInput!) {{ reopenActivity(input: $i) {{ {ACTIVITY} }} }}"""
CANCEL = f"""mutation($i: ActivityVersionInput!) {{ cancelActivity(input: $i) {{ {ACTIVITY} }} }}"""
UPDATE = f"""mutation($i: UpdateActivityInput!) {{ updateActivity(input: $i) {{ {ACTIVITY} }} }}"""
DELETE = """mutation($i: ActivityVersionInput!) { deleteActivity(input: $i) {
  deletedActivityId userErrors { field code message } } }"""
COPY_TARGETS = """mutation($i: CopyActivityTargetsInput!) { copyActivityTargets(input: $i) {
  targets { metric target } userErrors { field code message } } }"""
SET_TARGETS = """mutation($i: SetActivityTargetsInput!) { setActivityTargets(input: $i) {
  targets { metric target } userErrors { field code message } } }"""
LEADERBOARD = """query($teamId: ID!, $week: String!) {
  activityLeaderboard(teamId: $teamId, week: $week) { entries { rank realized user { name } } } }"""
ATTAINMENT = """query($u: ID!, $w: String!) { attainment(userId: $u, week: $w) {
  metric activityType { code } target realized ratio } }"""


def this_week() -> date:
    return week_of(datetime.now(UTC), ORG_TIMEZONE)


def last_week() -> date:
    return this_week() - timedelta(weeks=1)


class Activities:
    """Activity mutations over HTTP as one user, keeping each activity's version."""

    def __init__(self, client: GraphQLClient, user: User) -> None:
        self.client = client
        self.user = user
        self.versions: dict[str, int] = {}

    async def _send(self, query: str, field: str, values: dict[str, Any]) -> dict[str, Any]:
        payload = (await self.client.query(query, {"i": values}, as_user=self.user))[field]
        assert payload["userErrors"] == [], payload
        return payload

    async def _change(self, query: str, field: str, activity: str, **values: Any) -> None:
        payload = await self._send(query, field, {
            "id": activity, "expectedVersion": self.versions[activity], **values})
        self.versions[activity] = payload["activity"]["version"]

    async def log(self, kind: ActivityType, *, done: bool = False,
                  completed_at: datetime | None = None) -> str:
        values: dict[str, Any] = {"typeId": gid(kind), "subject": f"{kind.code} live"}
        if done:
            values["status"] = "DONE"
        if completed_at is not None:
            values["completedAt"] = completed_at.isoformat()
        activity = (await self._send(LOG, "logActivity", values))["activity"]
        self.versions[activity["id"]] = activity["version"]
        return activity["id"]

    async def complete(self, activity: str) -> None:
        await self._change(COMPLETE, "completeActivity", activity)

    async def reopen(self, activity: str) -> None:
        await self._change(REOPEN, "reopenActivity", activity)

    async def cancel(self, activity: str) -> None:
        await self._change(CANCEL, "cancelActivity", activity)

    async def update(self, activity: str, **values: Any) -> None:
        await self._change(UPDATE, "updateActivity", activity, **values)

    async def delete(self, activity: str) -> None:
        payload = await self._send(DELETE, "deleteActivity", {
            "id": activity, "expectedVersion": self.versions.pop(activity)})
        assert payload["deletedActivityId"] == activity


async def set_targets(client: GraphQLClient, manager: User, week: date,
                      *targets: dict[str, Any]) -> None:
    payload = (await client.query(SET_TARGETS, {"i": {
        "week": format_week(week), "targets": list(targets)}}, as_user=manager)
               )["setActivityTargets"]
    assert payload["userErrors"] == [], payload


async def attainment(client: GraphQLClient, viewer: User, user: User, week: date
                     ) -> list[dict[str, Any]]:
    return (await client.query(ATTAINMENT, {"u": gid(user), "w": format_week(week)},
                               as_user=viewer))["attainment"]


async def change(ws: AsyncWebSocketSession, within: float = 5) -> dict[str, Any]:
    return (await next_data(ws, within))["targetAttainmentChanged"]


def row(event: dict[str, Any]) -> tuple[Any, ...]:
    """What a board shows of one attainment message."""
    kind = event["activityType"]["code"] if event["activityType"] else None
    return (event["user"]["name"], event["week"], event["metric"], kind, event["target"],
            event["realized"], event["ratio"])


async def refused(ws: AsyncWebSocketSession) -> list[str]:
    """The error codes of a subscription the server refuses before its first event:
    Strawberry sends a `next` without data, then `complete`."""
    message = await asyncio.wait_for(ws.receive_json(), 5)
    assert message["type"] == "next", message
    assert message["payload"]["data"] is None, message
    assert await asyncio.wait_for(ws.receive_json(), 5) == {"id": "feed", "type": "complete"}
    return [error["extensions"]["code"] for error in message["payload"]["errors"]]


@pytest.fixture
async def org(db: Any) -> Org:
    return await make_org(db)


@pytest.fixture
async def call(db: Any) -> ActivityType:
    return await make_activity_type(db, "CALL", 1)


@pytest.fixture
async def meeting(db: Any) -> ActivityType:
    return await make_activity_type(db, "MEETING", 3)


# --- delivery and the rows a change carries -------------------------------------------------


async def test_a_teammates_completion_reaches_a_rep_within_a_second(
        app, client, db, org, meeting):
    week = this_week()
    await make_target(db, org.rep_a1, week, TargetMetric.POINTS, 10)
    rep_a1 = Activities(client, org.rep_a1)
    planned = await rep_a1.log(meeting)  # planned: counts for nothing yet
    async with subscribed(app, client, org.rep_a2, FEED) as ws:
        await rep_a1.complete(planned)
        event = await change(ws, within=1)
        await nothing_more(ws)
    assert event["reason"] == "COMPLETED"
    assert event["weekStart"] == week.isoformat()
    assert row(event) == ("Rep A1", format_week(week), "POINTS", None, 10, 3, 0.3)
    [_count, points] = await attainment(client, org.admin, org.rep_a1, week)
    assert (points["realized"], points["ratio"]) == (event["realized"], event["ratio"])


async def test_a_rep_hears_of_its_own_completions(app, client, db, org, call):
    week = this_week()
    await make_target(db, org.rep_a1, week, TargetMetric.COUNT, 4)
    rep_a1 = Activities(client, org.rep_a1)
    async with subscribed(app, client, org.rep_a1, FEED) as ws:
        await rep_a1.log(call, done=True)  # logged as DONE: completed at once
        event = await change(ws, within=1)
    assert event["reason"] == "COMPLETED"
    assert row(event) == ("Rep A1", format_week(week), "COUNT", None, 4, 1, 0.25)


async def test_without_targets_a_change_carries_the_overall_rows(app, client, org, meeting):
    rep_a1 = Activities(client, org.rep_a1)
    async with subscribed(app, client, org.manager_a, FEED) as ws:
        await rep_a1.log(meeting, done=True)
        count, points = await change(ws), await change(ws)
        await nothing_more(ws)
    assert count["eventId"] == points["eventId"]
    week = format_week(this_week())
    assert row(count) == ("Rep A1", week, "COUNT", None, None, 1, None)
    assert row(points) == ("Rep A1", week, "POINTS", None, None, 3, None)


async def test_every_row_a_completion_counts_toward_comes_with_one_event_id(
        app, client, db, org, call, meeting):
    week = this_week()
    await make_target(db, org.rep_a1, week, TargetMetric.POINTS, 12)
    await make_target(db, org.rep_a1, week, TargetMetric.COUNT, 2, meeting)
    await make_target(db, org.rep_a1, week, TargetMetric.COUNT, 5, call)
    rep_a1 = Activities(client, org.rep_a1)
    async with subscribed(app, client, org.manager_a, FEED) as ws:
        await rep_a1.log(meeting, done=True)
        first, second = await change(ws), await change(ws)
        await nothing_more(ws)
    assert first["eventId"] == second["eventId"]
    # The CALL target is not touched by a MEETING.
    assert {row(first), row(second)} == {
        ("Rep A1", format_week(week), "POINTS", None, 12, 3, 0.25),
        ("Rep A1", format_week(week), "COUNT", "MEETING", 2, 1, 0.5),
    }


async def test_a_typed_target_gets_its_row_and_other_types_leave_it_alone(
        app, client, db, org, call, meeting):
    week = this_week()
    await make_target(db, org.rep_a1, week, TargetMetric.COUNT, 2, meeting)
    rep_a1 = Activities(client, org.rep_a1)
    async with subscribed(app, client, org.rep_a1, FEED) as ws:
        await rep_a1.log(meeting, done=True)
        meeting_row = await change(ws)
        await nothing_more(ws)
        await rep_a1.log(call, done=True)
        # The MEETING row has the only target and a CALL does not count toward it: the
        # CALL brings the overall rows, and no MEETING row.
        call_rows = [await change(ws), await change(ws)]
        await nothing_more(ws)
    assert meeting_row["reason"] == "COMPLETED"
    assert row(meeting_row) == ("Rep A1", format_week(week), "COUNT", "MEETING", 2, 1, 0.5)
    assert [row(r) for r in call_rows] == [
        ("Rep A1", format_week(week), "COUNT", None, None, 2, None),
        ("Rep A1", format_week(week), "POINTS", None, None, 4, None),
    ]
    assert call_rows[0]["eventId"] == call_rows[1]["eventId"] != meeting_row["eventId"]
    rows = await attainment(client, org.rep_a1, org.rep_a1, week)
    assert [(r["metric"], r["activityType"], r["realized"]) for r in rows] == [
        ("COUNT", None, 2), ("POINTS", None, 4), ("COUNT", {"code": "MEETING"}, 1)]


# --- reasons ------------------------------------------------------------------------------


async def test_status_changes_and_deletion_move_the_figures_each_way(
        app, client, db, org, call):
    week = this_week()
    await make_target(db, org.rep_a1, week, TargetMetric.COUNT, 4)
    rep_a1 = Activities(client, org.rep_a1)
    await rep_a1.log(call, done=True)
    moving = await rep_a1.log(call)
    seen = []
    async with subscribed(app, client, org.manager_a, FEED) as ws:
        steps = [rep_a1.complete, rep_a1.reopen, rep_a1.complete, rep_a1.cancel,
                 rep_a1.complete, rep_a1.delete]
        for step in steps:
            await step(moving)
            event = await change(ws, within=1)
            seen.append((event["reason"], event["realized"], event["ratio"]))
        await nothing_more(ws)
    assert seen == [("COMPLETED", 2, 0.5), ("REOPENED", 1, 0.25), ("COMPLETED", 2, 0.5),
                    ("CANCELLED", 1, 0.25), ("COMPLETED", 2, 0.5), ("DELETED", 1, 0.25)]
    [count, _points] = await attainment(client, org.admin, org.rep_a1, week)
    assert count["realized"] == 1


async def test_cancelling_a_planned_activity_changes_nothing_and_says_nothing(
        app, client, db, org, call):
    await make_target(db, org.rep_a1, this_week(), TargetMetric.COUNT, 4)
    rep_a1 = Activities(client, org.rep_a1)
    planned = await rep_a1.log(call)
    async with subscribed(app, client, org.manager_a, FEED) as ws:
        await rep_a1.cancel(planned)
        await nothing_more(ws)
        await rep_a1.complete(planned)  # from CANCELLED straight to DONE
        assert (await change(ws))["reason"] == "COMPLETED"


async def test_moving_a_completion_to_another_week_updates_both_weeks(
        app, client, db, org, call):
    now, before = this_week(), last_week()
    await make_target(db, org.rep_a1, now, TargetMetric.COUNT, 2)
    await make_target(db, org.rep_a1, before, TargetMetric.COUNT, 4)
    rep_a1 = Activities(client, org.rep_a1)
    await rep_a1.log(call, done=True)
    moved = await rep_a1.log(call, done=True)
    async with subscribed(app, client, org.manager_a, FEED) as ws:
        await rep_a1.update(moved, completedAt=(datetime.now(UTC) - timedelta(weeks=1)
                                                ).isoformat())
        old, new = await change(ws, within=1), await change(ws, within=1)
        await nothing_more(ws)
    assert (old["reason"], new["reason"]) == ("MOVED", "MOVED")
    assert int(old["eventId"]) < int(new["eventId"])
    assert row(old) == ("Rep A1", format_week(now), "COUNT", None, 2, 1, 0.5)
    assert row(new) == ("Rep A1", format_week(before), "COUNT", None, 4, 1, 0.25)
    [count_now, _] = await attainment(client, org.admin, org.rep_a1, now)
    [count_before, _] = await attainment(client, org.admin, org.rep_a1, before)
    assert (count_now["realized"], count_before["realized"]) == (1, 1)


async def test_a_new_time_in_the_same_week_moves_nothing(app, client, db, org, call):
    await make_target(db, org.rep_a1, this_week(), TargetMetric.COUNT, 2)
    rep_a1 = Activities(client, org.rep_a1)
    done = await rep_a1.log(call, done=True)
    async with subscribed(app, client, org.manager_a, FEED) as ws:
        await rep_a1.update(done, completedAt=(datetime.now(UTC) - timedelta(seconds=5)
                                               ).isoformat())
        await rep_a1.update(done, subject="Renamed")
        await nothing_more(ws)


async def test_handing_a_completed_activity_to_a_teammate_moves_it(
        app, client, db, org, call):
    week = this_week()
    await make_target(db, org.rep_a1, week, TargetMetric.COUNT, 2)
    await make_target(db, org.rep_a2, week, TargetMetric.COUNT, 5)
    rep_a1 = Activities(client, org.rep_a1)
    done = await rep_a1.log(call, done=True)
    manager = Activities(client, org.manager_a)
    manager.versions = rep_a1.versions
    async with subscribed(app, client, org.rep_a1, FEED) as ws:
        await manager.update(done, ownerId=gid(org.rep_a2))
        gave, got = await change(ws), await change(ws)
        await nothing_more(ws)
    assert (gave["reason"], got["reason"]) == ("MOVED", "MOVED")
    assert row(gave) == ("Rep A1", format_week(week), "COUNT", None, 2, 0, 0)
    assert row(got) == ("Rep A2", format_week(week), "COUNT", None, 5, 1, 0.2)


async def test_a_managers_new_target_is_announced(app, client, db, org, call, meeting):
    week = this_week()
    rep_a1 = Activities(client, org.rep_a1)
    await rep_a1.log(call, done=True)
    await rep_a1.log(meeting, done=True)
    async with subscribed(app, client, org.rep_a1, FEED) as ws:
        await set_targets(client, org.manager_a, week,
                          {"userId": gid(org.rep_a1), "metric": "COUNT", "target": 8},
                          {"userId": gid(org.rep_a1), "metric": "POINTS", "target": 5,
                           "activityTypeId": gid(meeting)})
        first, second = await change(ws, within=1), await change(ws, within=1)
        await nothing_more(ws)
        # The same targets again change nothing, and say nothing.
        await set_targets(client, org.manager_a, week,
                          {"userId": gid(org.rep_a1), "metric": "COUNT", "target": 8})
        await nothing_more(ws)
        await set_targets(client, org.manager_a, week,
                          {"userId": gid(org.rep_a1), "metric": "COUNT", "target": 4})
        lowered = await change(ws, within=1)
        await nothing_more(ws)
    assert first["eventId"] == second["eventId"]
    assert {first["reason"], second["reason"], lowered["reason"]} == {"TARGET_CHANGED"}
    assert [row(first), row(second)] == [
        ("Rep A1", format_week(week), "COUNT", None, 8, 2, 0.25),
        ("Rep A1", format_week(week), "POINTS", "MEETING", 5, 3, 0.6),
    ]
    assert row(lowered) == ("Rep A1", format_week(week), "COUNT", None, 4, 2, 0.5)


async def test_copied_targets_are_announced_for_the_week_they_land_in(
        app, client, db, org, call):
    now, before = this_week(), last_week()
    await make_target(db, org.rep_a1, before, TargetMetric.COUNT, 4)
    await make_target(db, org.rep_b1, before, TargetMetric.COUNT, 4)
    await Activities(client, org.rep_a1).log(call, done=True)
    async with subscribed(app, client, org.manager_a, FEED) as ws:
        payload = (await client.query(COPY_TARGETS, {"i": {
            "fromWeek": format_week(before), "toWeek": format_week(now),
            "teamId": gid(org.team_a)}}, as_user=org.manager_a))["copyActivityTargets"]
        assert payload == {"targets": [{"metric": "COUNT", "target": 4}], "userErrors": []}
        event = await change(ws, within=1)
        await nothing_more(ws)
    assert event["reason"] == "TARGET_CHANGED"
    assert row(event) == ("Rep A1", format_week(now), "COUNT", None, 4, 1, 0.25)


# --- filters --------------------------------------------------------------------------------


async def test_user_id_filters_the_feed(app, client, org, call):
    async with subscribed(app, client, org.manager_a, FEED, {"userId": gid(org.rep_a2)}) as ws:
        await Activities(client, org.rep_a1).log(call, done=True)
        await Activities(client, org.rep_a2).log(call, done=True)
        heard = [await change(ws), await change(ws)]
        await nothing_more(ws)
    assert {event["user"]["name"] for event in heard} == {"Rep A2"}


async def test_team_id_filters_the_feed(app, client, org, call):
    async with subscribed(app, client, org.admin, FEED, {"teamId": gid(org.team_b)}) as ws:
        await Activities(client, org.rep_a1).log(call, done=True)
        await Activities(client, org.rep_b1).log(call, done=True)
        heard = [await change(ws), await change(ws)]
        await nothing_more(ws)
    assert {event["user"]["name"] for event in heard} == {"Rep B1"}


async def test_week_filters_the_feed(app, client, db, org, call):
    before = last_week()
    await make_target(db, org.rep_a1, before, TargetMetric.COUNT, 3)
    await make_target(db, org.rep_a1, this_week(), TargetMetric.COUNT, 3)
    rep_a1 = Activities(client, org.rep_a1)
    async with subscribed(app, client, org.admin, FEED, {"week": format_week(before)}) as ws:
        await rep_a1.log(call, done=True)
        await nothing_more(ws)
        await rep_a1.log(call, done=True,
                         completed_at=datetime.now(UTC) - timedelta(weeks=1))
        event = await change(ws)
        await nothing_more(ws)
    assert row(event) == ("Rep A1", format_week(before), "COUNT", None, 3, 1, 0.3333)


async def test_the_week_argument_takes_a_date_in_the_week(app, client, db, org, call):
    week = this_week()
    await make_target(db, org.rep_a1, week, TargetMetric.COUNT, 3)
    sunday = (week + timedelta(days=6)).isoformat()
    async with subscribed(app, client, org.admin, FEED, {"week": sunday}) as ws:
        await Activities(client, org.rep_a1).log(call, done=True)
        assert (await change(ws))["week"] == format_week(week)


# --- visibility -----------------------------------------------------------------------------


async def test_a_rep_without_arguments_hears_only_itself_and_its_team(
        app, client, db, org, call):
    for user in (org.rep_a1, org.rep_b1):
        await make_target(db, user, this_week(), TargetMetric.COUNT, 2)
    async with subscribed(app, client, org.rep_b1, FEED) as ws:
        await Activities(client, org.rep_a1).log(call, done=True)
        await Activities(client, org.rep_a2).log(call, done=True)
        await nothing_more(ws)
        await Activities(client, org.rep_b1).log(call, done=True)
        assert (await change(ws))["user"]["name"] == "Rep B1"
        await nothing_more(ws)


@pytest.mark.parametrize("argument", ["teamId", "userId"])
async def test_a_rep_asking_for_another_team_is_refused(app, client, org, argument):
    other = gid(org.team_b) if argument == "teamId" else gid(org.rep_b1)
    async with subscribed(app, client, org.rep_a1, FEED, {argument: other}) as ws:
        assert await refused(ws) == ["FORBIDDEN"]


async def test_a_rep_may_follow_a_teammate(app, client, org, call):
    async with subscribed(app, client, org.rep_a1, FEED, {"userId": gid(org.rep_a2)}) as ws:
        await Activities(client, org.rep_a2).log(call, done=True)
        assert (await change(ws))["user"]["name"] == "Rep A2"


@pytest.mark.parametrize("own_team", [False, True])
async def test_partners_are_refused(app, client, org, own_team):
    variables = {"teamId": gid(org.team_a)} if own_team else {}
    async with subscribed(app, client, org.partner, FEED, variables) as ws:
        assert await refused(ws) == ["FORBIDDEN"]


async def test_a_partner_is_refused_the_leaderboard(app, client, org):
    async with subscribed(app, client, org.partner, BOARD, {
            "teamId": gid(org.team_a), "week": format_week(this_week())}) as ws:
        assert await refused(ws) == ["FORBIDDEN"]


async def test_a_rep_is_refused_another_teams_leaderboard(app, client, org):
    async with subscribed(app, client, org.rep_a1, BOARD, {
            "teamId": gid(org.team_b), "week": format_week(this_week())}) as ws:
        assert await refused(ws) == ["FORBIDDEN"]


# --- replay -------------------------------------------------------------------------------


async def test_after_replays_what_was_missed_in_order_then_goes_live(
        app, client, db, org, call):
    week = this_week()
    await make_target(db, org.rep_a1, week, TargetMetric.COUNT, 10)
    await make_target(db, org.rep_b1, week, TargetMetric.COUNT, 10)
    rep_a1 = Activities(client, org.rep_a1)
    first = await rep_a1.log(call)
    variables = {"userId": gid(org.rep_a1)}
    async with subscribed(app, client, org.manager_a, FEED, variables) as ws:
        await rep_a1.complete(first)
        last_seen = (await change(ws))["eventId"]

    # While the board is away: three changes of rep A1, one of someone else.
    second = await rep_a1.log(call, done=True)
    await Activities(client, org.rep_b1).log(call, done=True)
    await rep_a1.reopen(first)
    await rep_a1.cancel(second)

    async with subscribed(app, client, org.manager_a, FEED,
                          {**variables, "after": last_seen}) as ws:
        missed = [await change(ws) for _ in range(3)]
        await nothing_more(ws)
        await rep_a1.complete(first)
        live = await change(ws, within=1)
        await nothing_more(ws)
    assert [e["reason"] for e in missed] == ["COMPLETED", "REOPENED", "CANCELLED"]
    ids = [int(e["eventId"]) for e in [*missed, live]]
    assert ids == sorted(set(ids))
    assert ids[0] > int(last_seen)
    assert {e["user"]["name"] for e in [*missed, live]} == {"Rep A1"}
    # Every message shows the user-week as it is when sent: a board never goes stale.
    assert missed[-1]["realized"] == 0
    assert (live["reason"], live["realized"], live["ratio"]) == ("COMPLETED", 1, 0.1)


async def test_after_the_latest_event_replays_nothing(app, client, org, call):
    rep_a1 = Activities(client, org.rep_a1)
    async with subscribed(app, client, org.manager_a, FEED) as ws:
        await rep_a1.log(call, done=True)
        latest = (await change(ws))["eventId"]
    async with subscribed(app, client, org.manager_a, FEED, {"after": latest}) as ws:
        await nothing_more(ws)
        await rep_a1.log(call, done=True)
        assert int((await change(ws))["eventId"]) > int(latest)


async def test_a_malformed_after_is_bad_user_input(app, client, org):
    async with subscribed(app, client, org.manager_a, FEED, {"after": "yesterday"}) as ws:
        assert await refused(ws) == ["BAD_USER_INPUT"]


# --- the leaderboard ----------------------------------------------------------------------


def standings(board: dict[str, Any]) -> list[tuple[int, str, int]]:
    return [(e["rank"], e["user"]["name"], e["realized"]) for e in board["entries"]]


async def next_board(ws: AsyncWebSocketSession, within: float = 5) -> dict[str, Any]:
    return (await next_data(ws, within))["leaderboardChanged"]


async def boards_until(ws: AsyncWebSocketSession, wanted: list[tuple[int, str, int]]
                       ) -> list[dict[str, Any]]:
    """The refreshed boards up to the one showing ``wanted``."""
    boards = []
    while True:
        boards.append(await next_board(ws))
        if standings(boards[-1]) == wanted:
            return boards


async def test_the_leaderboard_comes_at_once_then_once_per_burst(
        app, client, db, org, call, meeting):
    week = this_week()
    await make_target(db, org.rep_a2, week, TargetMetric.POINTS, 20)
    rep_a1, rep_a2 = Activities(client, org.rep_a1), Activities(client, org.rep_a2)
    await rep_a1.log(call, done=True)
    variables = {"teamId": gid(org.team_a), "week": format_week(week)}
    async with subscribed(app, client, org.rep_a2, BOARD, variables) as ws:
        first = await next_board(ws, within=1)
        assert (first["week"], first["metric"], first["team"]) == (
            format_week(week), "POINTS", {"name": "Team A"})
        # Reps only, by realized points; Rep A2 has a target.
        assert [(e["rank"], e["user"]["name"], e["realized"], e["target"], e["ratio"])
                for e in first["entries"]] == [(1, "Rep A1", 1, None, None),
                                               (2, "Rep A2", 0, 20, 0.0)]
        expected = {"Rep A1": 1, "Rep A2": 0}
        for burst in range(3):
            # Three completions at once (about one per rep and burst), then quiet.
            await asyncio.gather(rep_a2.log(meeting, done=True), rep_a2.log(call, done=True),
                                 rep_a1.log(meeting, done=True))
            expected["Rep A2"] += 4
            expected["Rep A1"] += 3
            ranked = sorted(expected.items(), key=lambda item: -item[1])
            wanted = [(1, ranked[0][0], ranked[0][1]),
                      (1 if ranked[1][1] == ranked[0][1] else 2, ranked[1][0], ranked[1][1])]
            boards = await boards_until(ws, wanted)
            assert len(boards) <= 2, (burst, boards)
            await nothing_more(ws, within=0.6)
        final = boards[-1]
    assert standings(final) == [(1, "Rep A2", 12), (2, "Rep A1", 10)]
    assert [(e["target"], e["ratio"]) for e in final["entries"]] == [(20, 0.6), (None, None)]


async def test_the_leaderboard_ignores_other_teams_and_weeks(app, client, org, call):
    variables = {"teamId": gid(org.team_a), "week": format_week(this_week()),
                 "metric": "COUNT"}
    async with subscribed(app, client, org.manager_a, BOARD, variables) as ws:
        assert standings(await next_board(ws)) == [(1, "Rep A1", 0), (1, "Rep A2", 0)]
        await Activities(client, org.rep_b1).log(call, done=True)
        await Activities(client, org.rep_a1).log(
            call, done=True, completed_at=datetime.now(UTC) - timedelta(weeks=1))
        await nothing_more(ws, within=0.6)
        await Activities(client, org.rep_a2).log(call, done=True)
        assert standings(await next_board(ws)) == [(1, "Rep A2", 1), (2, "Rep A1", 0)]


async def test_the_leaderboard_follows_target_changes(app, client, org):
    week = this_week()
    variables = {"teamId": gid(org.team_a), "week": format_week(week)}
    async with subscribed(app, client, org.rep_a1, BOARD, variables) as ws:
        await next_board(ws)
        await set_targets(client, org.manager_a, week,
                          {"userId": gid(org.rep_a1), "metric": "POINTS", "target": 7})
        board = await next_board(ws, within=1)
    assert [(e["user"]["name"], e["target"]) for e in board["entries"]] == [
        ("Rep A1", 7), ("Rep A2", None)]


async def test_a_change_while_the_first_board_is_sent_is_not_lost(
        app, client, org, call, monkeypatch):
    """The first board is read, then the change feed starts: a completion committed
    between the two must still reach the board."""
    week = this_week()
    original = resolve.leaderboard
    calls = 0

    async def leaderboard_then_a_completion(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        entries = await original(**kwargs)
        if calls == 1:  # right after the first board was read
            await Activities(client, org.rep_a1).log(call, done=True)
        return entries

    monkeypatch.setattr(resolve, "leaderboard", leaderboard_then_a_completion)
    variables = {"teamId": gid(org.team_a), "week": format_week(week)}
    async with subscribed(app, client, org.manager_a, BOARD, variables) as ws:
        assert standings(await next_board(ws)) == [(1, "Rep A1", 0), (1, "Rep A2", 0)]
        try:
            refreshed = await next_board(ws, within=2)
        except TimeoutError:
            refreshed = None
    now = (await client.query(LEADERBOARD, variables, as_user=org.manager_a)
           )["activityLeaderboard"]
    assert standings(now) == [(1, "Rep A1", 1), (2, "Rep A2", 0)]
    # Without a refresh the board shows 0 for Rep A1 until some later change.
    assert refreshed is not None, "the completion never reached the board"
    assert standings(refreshed) == standings(now)
