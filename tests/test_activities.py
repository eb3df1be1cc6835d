"""Activities and activity types through the HTTP endpoint: logging, updating and the
status changes, points frozen at completion, the types admins keep, the activities
connection and the nested lists, what partners see, and statement counts.

Every mutation is checked in its payload and in the database; every refusal also
checks that nothing was written (the activities rows and the events outbox).
Attainment, targets and the live feeds have their own tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from loaders.ids import decode_id, encode_id
from models.accounts import Account, Contact
from models.activities import Activity, ActivityStatus, ActivityType, TargetMetric
from models.db import Database
from models.events import Event
from models.opportunities import Opportunity, PipelineKind
from resolvers.weeks import format_week, week_of
from tests.factories import (
    ORG_TIMEZONE,
    Org,
    gid,
    make_account,
    make_activity,
    make_activity_type,
    make_contact,
    make_opportunity,
    make_org,
    make_pipeline,
    make_target,
    share,
)
from tests.graphql_client import GraphQLClient

ACTIVITIES = Activity.__table__
ACTIVITY_TYPES = ActivityType.__table__
EVENTS = Event.__table__

ERRORS = "userErrors { field code message }"
ACTIVITY = """
  id version subject notes status dueAt completedAt completedWeek pointsEarned
  type { code } owner { id } account { id } contact { id } opportunity { id }
"""
LOG = f"""
mutation Log($input: LogActivityInput!) {{
  logActivity(input: $input) {{ activity {{ {ACTIVITY} }} {ERRORS} }}
}}"""
UPDATE = f"""
mutation Update($input: UpdateActivityInput!) {{
  updateActivity(input: $input) {{ activity {{ {ACTIVITY} }} {ERRORS} }}
}}"""
COMPLETE = f"""
mutation Complete($input: CompleteActivityInput!) {{
  completeActivity(input: $input) {{ activity {{ {ACTIVITY} }} {ERRORS} }}
}}"""
REOPEN = f"""
mutation Reopen($input: ActivityVersionInput!) {{
  reopenActivity(input: $input) {{ activity {{ {ACTIVITY} }} {ERRORS} }}
}}"""
CANCEL = f"""
mutation Cancel($input: ActivityVersionInput!) {{
  cancelActivity(input: $input) {{ activity {{ {ACTIVITY} }} {ERRORS} }}
}}"""
DELETE = f"""
mutation Delete($input: ActivityVersionInput!) {{
  deleteActivity(input: $input) {{ deletedActivityId {ERRORS} }}
}}"""
TYPE = "id code name points active version"
CREATE_TYPE = f"""
mutation CreateType($input: CreateActivityTypeInput!) {{
  createActivityType(input: $input) {{ activityType {{ {TYPE} }} {ERRORS} }}
}}"""
UPDATE_TYPE = f"""
mutation UpdateType($input: UpdateActivityTypeInput!) {{
  updateActivityType(input: $input) {{ activityType {{ {TYPE} }} {ERRORS} }}
}}"""
TYPES = """
query Types($all: Boolean!) { activityTypes(includeInactive: $all) { code points active } }"""
LIST = """
query List($filter: ActivityFilter, $orderBy: [ActivityOrder!], $first: Int,
           $after: String, $last: Int, $before: String) {
  activities(filter: $filter, orderBy: $orderBy, first: $first, after: $after,
             last: $last, before: $before) {
    totalCount
    edges { cursor node { subject } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Activity { subject status }
    ... on ActivityType { code points }
    ... on ActivityTarget { week metric target user { id } }
  }
}"""

PAST = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)  # Sunday in UTC, Monday in Helsinki


# --- helpers ------------------------------------------------------------------------------


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


async def run(client: GraphQLClient, document: str, user: Any, **input: Any) -> dict[str, Any]:
    data = await client.query(document, {"input": input}, as_user=user)
    return next(iter(data.values()))


def key_of(global_id: str) -> int:
    return decode_id(global_id, "Activity")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def stored(db: Database, key: int) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(ACTIVITIES).where(ACTIVITIES.c.id == key))
               ).mappings().one()
    return dict(row)


async def exists(db: Database, key: int) -> bool:
    async with db.read() as conn:
        return (await conn.execute(select(ACTIVITIES.c.id).where(ACTIVITIES.c.id == key))
                ).first() is not None


async def stored_type(db: Database, key: int) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(ACTIVITY_TYPES).where(ACTIVITY_TYPES.c.id == key))
               ).mappings().one()
    return dict(row)


async def snapshot(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Every activity and activity type row, and how many events there are."""
    async with db.read() as conn:
        activities = (await conn.execute(select(ACTIVITIES).order_by(ACTIVITIES.c.id))
                      ).mappings().all()
        kinds = (await conn.execute(select(ACTIVITY_TYPES).order_by(ACTIVITY_TYPES.c.id))
                 ).mappings().all()
        events = (await conn.execute(select(func.count()).select_from(EVENTS))).scalar_one()
    return [dict(r) for r in activities], [dict(r) for r in kinds], events


def completion_columns(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    return row["completed_at"], row["completed_week"], row["points_earned"]


@dataclass
class World:
    org: Org
    call: ActivityType
    meeting: ActivityType
    task: ActivityType
    retired: ActivityType
    acme: Account
    globex: Account
    alice: Contact  # at Acme
    bob: Contact  # at Globex
    deal: Opportunity  # at Acme


@pytest.fixture
async def world(db: Database) -> World:
    org = await make_org(db)
    call = await make_activity_type(db, "CALL", 1)
    meeting = await make_activity_type(db, "MEETING", 3)
    task = await make_activity_type(db, "TASK", 1)
    retired = await make_activity_type(db, "FAX", 2, active=False)
    acme = await make_account(db, org.rep_a1, name="Acme")
    globex = await make_account(db, org.rep_b1, name="Globex")
    alice = await make_contact(db, acme, last_name="Alice")
    bob = await make_contact(db, globex, last_name="Bob")
    _, phases = await make_pipeline(db, PipelineKind.SALES)
    deal = await make_opportunity(db, acme, phases[0], name="Acme deal")
    return World(org, call, meeting, task, retired, acme, globex, alice, bob, deal)


# --- logActivity --------------------------------------------------------------------------


async def test_log_is_planned_by_default_and_owned_by_the_viewer(
    client: GraphQLClient, db: Database, world: World
) -> None:
    payload = await run(client, LOG, world.org.rep_a1, typeId=gid(world.call),
                        subject="  Call Acme ", notes="About the renewal",
                        dueAt="2026-12-03T10:00:00+02:00", accountId=gid(world.acme))

    assert payload["userErrors"] == []
    activity = payload["activity"]
    assert activity["subject"] == "Call Acme"
    assert (activity["status"], activity["version"]) == ("PLANNED", 1)
    assert (activity["completedAt"], activity["completedWeek"], activity["pointsEarned"]) == (
        None, None, None)
    assert when(activity["dueAt"]) == datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert activity["type"] == {"code": "CALL"}
    assert activity["owner"] == {"id": gid(world.org.rep_a1)}
    assert activity["account"] == {"id": gid(world.acme)}
    assert (activity["contact"], activity["opportunity"]) == (None, None)

    row = await stored(db, key_of(activity["id"]))
    assert row["status"] is ActivityStatus.PLANNED
    assert (row["subject"], row["notes"]) == ("Call Acme", "About the renewal")
    assert (row["type_id"], row["owner_id"], row["account_id"]) == (
        world.call.id, world.org.rep_a1.id, world.acme.id)
    assert row["due_at"] == datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert completion_columns(row) == (None, None, None)


async def test_log_done_completes_now_with_the_types_points(
    client: GraphQLClient, db: Database, world: World
) -> None:
    started = datetime.now(UTC)
    payload = await run(client, LOG, world.org.rep_a1, typeId=gid(world.meeting),
                        subject="Demo", status="DONE")
    finished = datetime.now(UTC)

    assert payload["userErrors"] == []
    activity = payload["activity"]
    assert activity["status"] == "DONE"
    completed = when(activity["completedAt"])
    assert started <= completed <= finished
    assert activity["completedWeek"] == format_week(week_of(completed, ORG_TIMEZONE))
    assert activity["pointsEarned"] == 3

    row = await stored(db, key_of(activity["id"]))
    assert row["status"] is ActivityStatus.DONE
    assert completion_columns(row) == (completed, week_of(completed, ORG_TIMEZONE), 3)


async def test_log_done_at_a_moment_counts_in_the_org_time_zone_week(
    client: GraphQLClient, db: Database, world: World
) -> None:
    # 22:30 on Sunday in UTC is 00:30 on Monday in Helsinki: the next ISO week.
    payload = await run(client, LOG, world.org.rep_a1, typeId=gid(world.call),
                        subject="Late call", status="DONE", completedAt=PAST.isoformat())

    assert payload["userErrors"] == []
    activity = payload["activity"]
    assert when(activity["completedAt"]) == PAST
    assert activity["completedWeek"] == "2026-W10"
    assert activity["pointsEarned"] == 1
    row = await stored(db, key_of(activity["id"]))
    assert completion_columns(row) == (PAST, date(2026, 3, 2), 1)


LOG_REFUSALS = [
    pytest.param("rep_a1", {"completedAt": "2026-03-01T10:00:00Z"},
                 {("completedAt", "VALIDATION")}, id="completed-at-while-planned"),
    pytest.param("rep_a1", {"status": "CANCELLED", "completedAt": "2026-03-01T10:00:00Z"},
                 {("completedAt", "VALIDATION")}, id="completed-at-while-cancelled"),
    pytest.param("rep_a1", {"status": "DONE", "completedAt": "FUTURE"},
                 {("completedAt", "VALIDATION")}, id="completed-in-the-future"),
    pytest.param("rep_a1", {"typeId": encode_id("ActivityType", 9999)},
                 {("typeId", "NOT_FOUND")}, id="unknown-type"),
    pytest.param("rep_a1", {"typeId": "RETIRED"}, {("typeId", "VALIDATION")},
                 id="inactive-type"),
    pytest.param("rep_a1", {"typeId": "ACME"}, {("typeId", "VALIDATION")},
                 id="id-of-another-type"),
    pytest.param("rep_a1", {"subject": "   "}, {("subject", "VALIDATION")},
                 id="empty-subject"),
    pytest.param("rep_a1", {"subject": "x" * 201}, {("subject", "VALIDATION")},
                 id="subject-too-long"),
    pytest.param("rep_a1", {"accountId": encode_id("Account", 9999)},
                 {("accountId", "NOT_FOUND")}, id="unknown-account"),
    pytest.param("rep_a1", {"contactId": encode_id("Contact", 9999)},
                 {("contactId", "NOT_FOUND")}, id="unknown-contact"),
    pytest.param("rep_a1", {"accountId": "ACME", "contactId": "BOB"},
                 {("contactId", "VALIDATION")}, id="contact-of-another-account"),
    pytest.param("rep_a1", {"accountId": "GLOBEX", "opportunityId": "DEAL"},
                 {("opportunityId", "VALIDATION")}, id="opportunity-of-another-account"),
    pytest.param("rep_a1", {"contactId": "BOB", "opportunityId": "DEAL"},
                 {("opportunityId", "VALIDATION")}, id="contact-and-deal-disagree"),
    pytest.param("rep_a1", {"ownerId": "REP_A2"}, {("ownerId", "FORBIDDEN")},
                 id="rep-assigns-a-team-mate"),
    pytest.param("manager_a", {"ownerId": "REP_B1"}, {("ownerId", "FORBIDDEN")},
                 id="manager-assigns-another-team"),
    pytest.param("admin", {"ownerId": encode_id("User", 9999)}, {("ownerId", "NOT_FOUND")},
                 id="unknown-owner"),
    pytest.param("partner", {"accountId": "ACME"}, {(None, "FORBIDDEN")}, id="partner"),
]


@pytest.mark.parametrize(("user", "changes", "expected"), LOG_REFUSALS)
async def test_log_refusals_write_nothing(
    client: GraphQLClient, db: Database, world: World, user: str, changes: dict[str, Any],
    expected: set[tuple[str | None, str]]
) -> None:
    await share(db, world.acme, world.org.partner_org)
    await make_activity(db, world.org.rep_a1, world.call, completed_at=PAST)
    names = {"RETIRED": gid(world.retired), "ACME": gid(world.acme),
             "GLOBEX": gid(world.globex), "BOB": gid(world.bob), "DEAL": gid(world.deal),
             "REP_A2": gid(world.org.rep_a2), "REP_B1": gid(world.org.rep_b1),
             "FUTURE": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    input: dict[str, Any] = {"typeId": gid(world.call), "subject": "Call"}
    input.update({k: names.get(v, v) for k, v in changes.items()})
    before = await snapshot(db)

    payload = await run(client, LOG, getattr(world.org, user), **input)

    assert payload["activity"] is None
    assert codes(payload) == expected
    assert await snapshot(db) == before


async def test_log_fills_the_account_from_the_contact_or_the_opportunity(
    client: GraphQLClient, db: Database, world: World
) -> None:
    by_contact = await run(client, LOG, world.org.rep_a1, typeId=gid(world.call),
                           subject="Call Alice", contactId=gid(world.alice))
    by_deal = await run(client, LOG, world.org.rep_a1, typeId=gid(world.meeting),
                        subject="Deal review", opportunityId=gid(world.deal))
    both = await run(client, LOG, world.org.rep_a1, typeId=gid(world.meeting),
                     subject="Alice and the deal", contactId=gid(world.alice),
                     opportunityId=gid(world.deal))

    for payload in (by_contact, by_deal, both):
        assert payload["userErrors"] == []
        assert payload["activity"]["account"] == {"id": gid(world.acme)}
    assert by_contact["activity"]["contact"] == {"id": gid(world.alice)}
    assert by_deal["activity"]["opportunity"] == {"id": gid(world.deal)}
    rows = [await stored(db, key_of(p["activity"]["id"])) for p in (by_contact, by_deal, both)]
    assert [(r["account_id"], r["contact_id"], r["opportunity_id"]) for r in rows] == [
        (world.acme.id, world.alice.id, None),
        (world.acme.id, None, world.deal.id),
        (world.acme.id, world.alice.id, world.deal.id),
    ]


@pytest.mark.parametrize(("user", "owner"), [
    ("manager_a", "rep_a2"), ("manager_a", "manager_a"), ("admin", "rep_b1"),
])
async def test_managers_log_for_their_team_and_admins_for_anyone(
    client: GraphQLClient, db: Database, world: World, user: str, owner: str
) -> None:
    assignee = getattr(world.org, owner)

    payload = await run(client, LOG, getattr(world.org, user), typeId=gid(world.task),
                        subject="Follow up", ownerId=gid(assignee))

    assert payload["userErrors"] == []
    assert payload["activity"]["owner"] == {"id": gid(assignee)}
    row = await stored(db, key_of(payload["activity"]["id"]))
    assert row["owner_id"] == assignee.id


# --- updateActivity -----------------------------------------------------------------------


async def test_update_changes_what_is_sent_and_bumps_the_version(
    client: GraphQLClient, db: Database, world: World
) -> None:
    planned = await make_activity(db, world.org.rep_a1, world.call, subject="Call",
                                  notes="Old notes", account_id=world.acme.id,
                                  contact_id=world.alice.id)
    original = await stored(db, planned.id)

    payload = await run(client, UPDATE, world.org.rep_a1, id=gid(planned), expectedVersion=1,
                        subject=" Call again ", dueAt="2026-12-01T09:00:00Z")

    assert payload["userErrors"] == []
    assert payload["activity"]["version"] == 2
    assert payload["activity"]["subject"] == "Call again"
    assert when(payload["activity"]["dueAt"]) == datetime(2026, 12, 1, 9, tzinfo=UTC)
    row = await stored(db, planned.id)
    assert (row["subject"], row["due_at"], row["version"]) == (
        "Call again", datetime(2026, 12, 1, 9, tzinfo=UTC), 2)
    unchanged = ("notes", "type_id", "owner_id", "account_id", "contact_id", "status")
    assert {k: row[k] for k in unchanged} == {k: original[k] for k in unchanged}

    cleared = await run(client, UPDATE, world.org.rep_a1, id=gid(planned), expectedVersion=2,
                        notes=None, dueAt=None, contactId=None)

    assert cleared["userErrors"] == []
    row = await stored(db, planned.id)
    assert (row["notes"], row["due_at"], row["contact_id"], row["version"]) == (
        None, None, None, 3)
    assert (row["subject"], row["account_id"]) == ("Call again", world.acme.id)


async def test_update_with_a_stale_version_is_a_conflict_that_changes_nothing(
    client: GraphQLClient, db: Database, world: World
) -> None:
    planned = await make_activity(db, world.org.rep_a1, world.call, subject="Call")
    before = await snapshot(db)

    payload = await run(client, UPDATE, world.org.rep_a1, id=gid(planned), expectedVersion=2,
                        subject="Mine")

    assert payload["activity"] is None
    assert codes(payload) == {("expectedVersion", "CONFLICT")}
    assert await snapshot(db) == before


async def test_a_planned_activity_changes_type_and_a_done_one_does_not(
    client: GraphQLClient, db: Database, world: World
) -> None:
    planned = await make_activity(db, world.org.rep_a1, world.call)
    done = await make_activity(db, world.org.rep_a1, world.call, completed_at=PAST)

    changed = await run(client, UPDATE, world.org.rep_a1, id=gid(planned), expectedVersion=1,
                        typeId=gid(world.meeting))
    before = await snapshot(db)
    refused = await run(client, UPDATE, world.org.rep_a1, id=gid(done), expectedVersion=1,
                        typeId=gid(world.meeting))
    retired = await run(client, UPDATE, world.org.rep_a1, id=gid(planned), expectedVersion=2,
                        typeId=gid(world.retired))

    assert changed["userErrors"] == []
    assert changed["activity"]["type"] == {"code": "MEETING"}
    assert codes(refused) == {("typeId", "VALIDATION")}
    assert codes(retired) == {("typeId", "VALIDATION")}
    assert await snapshot(db) == before
    planned_row, done_row = await stored(db, planned.id), await stored(db, done.id)
    assert planned_row["type_id"] == world.meeting.id
    assert (done_row["type_id"], done_row["points_earned"]) == (world.call.id, 1)


async def test_completed_at_changes_only_on_a_done_activity(
    client: GraphQLClient, db: Database, world: World
) -> None:
    planned = await make_activity(db, world.org.rep_a1, world.call)
    done = await make_activity(db, world.org.rep_a1, world.meeting, completed_at=PAST)
    before = await snapshot(db)

    refused = await run(client, UPDATE, world.org.rep_a1, id=gid(planned), expectedVersion=1,
                        completedAt="2026-03-01T10:00:00Z")
    cleared = await run(client, UPDATE, world.org.rep_a1, id=gid(done), expectedVersion=1,
                        completedAt=None)
    future = await run(client, UPDATE, world.org.rep_a1, id=gid(done), expectedVersion=1,
                       completedAt=(datetime.now(UTC) + timedelta(days=2)).isoformat())

    assert codes(refused) == {("completedAt", "VALIDATION")}
    assert codes(cleared) == {("completedAt", "VALIDATION")}
    assert codes(future) == {("completedAt", "VALIDATION")}
    assert await snapshot(db) == before

    moved = await run(client, UPDATE, world.org.rep_a1, id=gid(done), expectedVersion=1,
                      completedAt="2026-02-20T12:00:00+02:00")

    assert moved["userErrors"] == []
    assert moved["activity"]["completedWeek"] == "2026-W08"
    row = await stored(db, done.id)
    assert completion_columns(row) == (datetime(2026, 2, 20, 10, tzinfo=UTC),
                                       date(2026, 2, 16), 3)


@pytest.mark.parametrize(("editor", "allowed"), [
    ("rep_a1", True), ("rep_a2", False), ("rep_b1", False), ("manager_a", True),
    ("manager_b", False), ("admin", True), ("partner", False),
])
async def test_who_may_update_a_reps_activity(
    client: GraphQLClient, db: Database, world: World, editor: str, allowed: bool
) -> None:
    activity = await make_activity(db, world.org.rep_a1, world.call, subject="Call",
                                   account_id=world.acme.id)
    await share(db, world.acme, world.org.partner_org)
    before = await snapshot(db)

    payload = await run(client, UPDATE, getattr(world.org, editor), id=gid(activity),
                        expectedVersion=1, subject="Edited")

    row = await stored(db, activity.id)
    if allowed:
        assert payload["userErrors"] == []
        assert (row["subject"], row["version"]) == ("Edited", 2)
    else:
        assert payload["activity"] is None
        assert codes(payload) == {(None, "FORBIDDEN")}
        assert await snapshot(db) == before


async def test_reassigning_an_activity_follows_the_team(
    client: GraphQLClient, db: Database, world: World
) -> None:
    activity = await make_activity(db, world.org.rep_a1, world.call)
    before = await snapshot(db)

    by_rep = await run(client, UPDATE, world.org.rep_a1, id=gid(activity), expectedVersion=1,
                       ownerId=gid(world.org.rep_a2))
    outside = await run(client, UPDATE, world.org.manager_a, id=gid(activity),
                        expectedVersion=1, ownerId=gid(world.org.rep_b1))
    nobody = await run(client, UPDATE, world.org.manager_a, id=gid(activity),
                       expectedVersion=1, ownerId=None)

    assert codes(by_rep) == {("ownerId", "FORBIDDEN")}
    assert codes(outside) == {("ownerId", "FORBIDDEN")}
    assert codes(nobody) == {("ownerId", "VALIDATION")}
    assert await snapshot(db) == before

    moved = await run(client, UPDATE, world.org.manager_a, id=gid(activity),
                      expectedVersion=1, ownerId=gid(world.org.rep_a2))

    assert moved["userErrors"] == []
    assert moved["activity"]["owner"] == {"id": gid(world.org.rep_a2)}
    row = await stored(db, activity.id)
    assert (row["owner_id"], row["version"]) == (world.org.rep_a2.id, 2)


async def test_update_refuses_a_contact_of_another_account(
    client: GraphQLClient, db: Database, world: World
) -> None:
    activity = await make_activity(db, world.org.rep_a1, world.call, account_id=world.acme.id)
    before = await snapshot(db)

    payload = await run(client, UPDATE, world.org.rep_a1, id=gid(activity), expectedVersion=1,
                        contactId=gid(world.bob))

    assert codes(payload) == {("contactId", "VALIDATION")}
    assert await snapshot(db) == before


async def test_moving_an_activity_to_another_account_cannot_keep_a_contact_of_the_first(
    client: GraphQLClient, db: Database, world: World
) -> None:
    # The same rule as logActivity's: a contact and an opportunity belong to the
    # activity's account. Moving the account alone must not leave Alice (of Acme) on
    # an activity about Globex.
    with_contact = await make_activity(db, world.org.rep_a1, world.call,
                                       account_id=world.acme.id, contact_id=world.alice.id)
    with_deal = await make_activity(db, world.org.rep_a1, world.call,
                                    account_id=world.acme.id, opportunity_id=world.deal.id)
    before = await snapshot(db)

    contact_left = await run(client, UPDATE, world.org.rep_a1, id=gid(with_contact),
                             expectedVersion=1, accountId=gid(world.globex))
    deal_left = await run(client, UPDATE, world.org.rep_a1, id=gid(with_deal),
                          expectedVersion=1, accountId=gid(world.globex))

    assert contact_left["activity"] is None
    assert {code for _, code in codes(contact_left)} == {"VALIDATION"}
    assert deal_left["activity"] is None
    assert {code for _, code in codes(deal_left)} == {"VALIDATION"}
    assert await snapshot(db) == before


# --- complete, reopen, cancel, delete -----------------------------------------------------


async def test_status_changes_keep_the_completion_columns_consistent(
    client: GraphQLClient, db: Database, world: World
) -> None:
    activity = await make_activity(db, world.org.rep_a1, world.meeting)
    user = world.org.rep_a1
    key = gid(activity)

    async def check(payload: dict[str, Any], status: str, version: int,
                    completion: tuple[Any, Any, Any]) -> None:
        assert payload["userErrors"] == []
        assert (payload["activity"]["status"], payload["activity"]["version"]) == (
            status, version)
        row = await stored(db, activity.id)
        assert (row["status"].value, row["version"]) == (status, version)
        assert completion_columns(row) == completion
        shown = payload["activity"]
        assert (shown["completedAt"] is not None, shown["completedWeek"],
                shown["pointsEarned"]) == (
            completion[0] is not None,
            format_week(completion[1]) if completion[1] else None, completion[2])

    done = (PAST, date(2026, 3, 2), 3)
    cleared = (None, None, None)
    await check(await run(client, COMPLETE, user, id=key, expectedVersion=1,
                          completedAt=PAST.isoformat()), "DONE", 2, done)
    await check(await run(client, REOPEN, user, id=key, expectedVersion=2),
                "PLANNED", 3, cleared)
    await check(await run(client, CANCEL, user, id=key, expectedVersion=3),
                "CANCELLED", 4, cleared)
    await check(await run(client, COMPLETE, user, id=key, expectedVersion=4,
                          completedAt=PAST.isoformat()), "DONE", 5, done)
    await check(await run(client, CANCEL, user, id=key, expectedVersion=5),
                "CANCELLED", 6, cleared)
    await check(await run(client, REOPEN, user, id=key, expectedVersion=6),
                "PLANNED", 7, cleared)


async def test_complete_without_a_moment_is_now(
    client: GraphQLClient, db: Database, world: World
) -> None:
    activity = await make_activity(db, world.org.rep_a1, world.call)
    started = datetime.now(UTC)

    payload = await run(client, COMPLETE, world.org.rep_a1, id=gid(activity),
                        expectedVersion=1)

    assert payload["userErrors"] == []
    row = await stored(db, activity.id)
    assert row["status"] is ActivityStatus.DONE
    assert started <= row["completed_at"] <= datetime.now(UTC)
    assert row["completed_week"] == week_of(row["completed_at"], ORG_TIMEZONE)
    assert row["points_earned"] == 1
    assert payload["activity"]["completedWeek"] == format_week(row["completed_week"])


@pytest.mark.parametrize(("status", "document", "extra", "expected"), [
    pytest.param(ActivityStatus.DONE, COMPLETE, {}, {("id", "VALIDATION")},
                 id="done-to-done"),
    pytest.param(ActivityStatus.PLANNED, REOPEN, {}, {("id", "VALIDATION")},
                 id="planned-to-planned"),
    pytest.param(ActivityStatus.CANCELLED, CANCEL, {}, {("id", "VALIDATION")},
                 id="cancelled-to-cancelled"),
    pytest.param(ActivityStatus.PLANNED, COMPLETE, {"completedAt": "FUTURE"},
                 {("completedAt", "VALIDATION")}, id="completed-in-the-future"),
])
async def test_refused_status_changes_change_nothing(
    client: GraphQLClient, db: Database, world: World, status: ActivityStatus,
    document: str, extra: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    activity = await make_activity(
        db, world.org.rep_a1, world.call, status=status,
        completed_at=PAST if status is ActivityStatus.DONE else None)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    input = {k: future if v == "FUTURE" else v for k, v in extra.items()}
    before = await snapshot(db)

    payload = await run(client, document, world.org.rep_a1, id=gid(activity),
                        expectedVersion=1, **input)

    assert payload["activity"] is None
    assert codes(payload) == expected
    assert await snapshot(db) == before


@pytest.mark.parametrize(("document", "status"), [
    pytest.param(COMPLETE, ActivityStatus.PLANNED, id="complete"),
    pytest.param(REOPEN, ActivityStatus.DONE, id="reopen"),
    pytest.param(CANCEL, ActivityStatus.PLANNED, id="cancel"),
    pytest.param(DELETE, ActivityStatus.DONE, id="delete"),
])
async def test_status_changes_with_a_stale_version_are_conflicts(
    client: GraphQLClient, db: Database, world: World, document: str, status: ActivityStatus
) -> None:
    activity = await make_activity(
        db, world.org.rep_a1, world.call, status=status,
        completed_at=PAST if status is ActivityStatus.DONE else None)
    before = await snapshot(db)

    payload = await run(client, document, world.org.rep_a1, id=gid(activity),
                        expectedVersion=7)

    assert codes(payload) == {("expectedVersion", "CONFLICT")}
    assert await snapshot(db) == before


async def test_delete_removes_the_row(
    client: GraphQLClient, db: Database, world: World
) -> None:
    doomed = await make_activity(db, world.org.rep_a1, world.call, completed_at=PAST)
    kept = await make_activity(db, world.org.rep_a1, world.call)

    payload = await run(client, DELETE, world.org.rep_a1, id=gid(doomed), expectedVersion=1)

    assert payload == {"deletedActivityId": gid(doomed), "userErrors": []}
    assert not await exists(db, doomed.id)
    assert await exists(db, kept.id)
    gone = await client.query("query($id: ID!) { activity(id: $id) { id } }",
                              {"id": gid(doomed)}, as_user=world.org.rep_a1)
    assert gone == {"activity": None}

    again = await run(client, DELETE, world.org.rep_a1, id=gid(doomed), expectedVersion=1)
    assert again["deletedActivityId"] is None
    assert codes(again) == {("id", "NOT_FOUND")}


@pytest.mark.parametrize("document", [COMPLETE, REOPEN, CANCEL, DELETE])
async def test_another_teams_manager_cannot_change_the_status(
    client: GraphQLClient, db: Database, world: World, document: str
) -> None:
    status = ActivityStatus.DONE if document is REOPEN else ActivityStatus.PLANNED
    activity = await make_activity(
        db, world.org.rep_a1, world.call, status=status,
        completed_at=PAST if status is ActivityStatus.DONE else None)
    before = await snapshot(db)

    refused = await run(client, document, world.org.manager_b, id=gid(activity),
                        expectedVersion=1)
    by_mate = await run(client, document, world.org.rep_a2, id=gid(activity),
                        expectedVersion=1)

    assert codes(refused) == {(None, "FORBIDDEN")}
    assert codes(by_mate) == {(None, "FORBIDDEN")}
    assert await snapshot(db) == before

    allowed = await run(client, document, world.org.manager_a, id=gid(activity),
                        expectedVersion=1)
    assert allowed["userErrors"] == []
    assert await snapshot(db) != before


# --- points are frozen at completion ------------------------------------------------------


async def test_points_are_those_of_the_type_when_the_activity_was_completed(
    client: GraphQLClient, db: Database, world: World
) -> None:
    demo = await make_activity_type(db, "DEMO", 3)
    rep = world.org.rep_a1
    early = await run(client, LOG, rep, typeId=gid(demo), subject="Early", status="DONE")
    planned = await make_activity(db, rep, demo, subject="Planned before the change")

    changed = await run(client, UPDATE_TYPE, world.org.admin, id=gid(demo), expectedVersion=1,
                        points=5)
    late = await run(client, LOG, rep, typeId=gid(demo), subject="Late", status="DONE")
    completed = await run(client, COMPLETE, rep, id=gid(planned), expectedVersion=1)

    assert changed["userErrors"] == []
    assert changed["activityType"]["points"] == 5
    assert early["activity"]["pointsEarned"] == 3
    assert late["activity"]["pointsEarned"] == 5
    assert completed["activity"]["pointsEarned"] == 5
    data = await client.query("query($id: ID!) { activity(id: $id) { pointsEarned } }",
                              {"id": early["activity"]["id"]}, as_user=rep)
    assert data["activity"] == {"pointsEarned": 3}
    rows = [await stored(db, key_of(p["activity"]["id"])) for p in (early, late, completed)]
    assert [r["points_earned"] for r in rows] == [3, 5, 5]


# --- activity types -----------------------------------------------------------------------


async def test_activity_types_list_active_ones_by_code_and_inactive_ones_when_asked(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await make_activity_type(db, "BRIEFING", 2)

    active = await client.query(TYPES, {"all": False}, as_user=world.org.rep_b1)
    every = await client.query(TYPES, {"all": True}, as_user=world.org.rep_b1)

    assert active["activityTypes"] == [
        {"code": "BRIEFING", "points": 2, "active": True},
        {"code": "CALL", "points": 1, "active": True},
        {"code": "MEETING", "points": 3, "active": True},
        {"code": "TASK", "points": 1, "active": True},
    ]
    assert [t["code"] for t in every["activityTypes"]] == [
        "BRIEFING", "CALL", "FAX", "MEETING", "TASK"]
    assert {"code": "FAX", "points": 2, "active": False} in every["activityTypes"]


async def test_an_admin_creates_and_changes_an_activity_type(
    client: GraphQLClient, db: Database, world: World
) -> None:
    created = await run(client, CREATE_TYPE, world.org.admin, code="DEMO", name=" Demo ",
                        points=4)

    assert created["userErrors"] == []
    kind = created["activityType"]
    assert {k: kind[k] for k in ("code", "name", "points", "active", "version")} == {
        "code": "DEMO", "name": "Demo", "points": 4, "active": True, "version": 1}
    key = decode_id(kind["id"], "ActivityType")
    row = await stored_type(db, key)
    assert (row["code"], row["name"], row["points"], row["active"]) == ("DEMO", "Demo", 4, True)

    updated = await run(client, UPDATE_TYPE, world.org.admin, id=kind["id"], expectedVersion=1,
                        name="Product demo", points=0)

    assert updated["userErrors"] == []
    assert (updated["activityType"]["name"], updated["activityType"]["points"],
            updated["activityType"]["version"]) == ("Product demo", 0, 2)
    row = await stored_type(db, key)
    assert (row["name"], row["points"], row["active"], row["version"]) == (
        "Product demo", 0, True, 2)
    listed = await client.query(TYPES, {"all": False}, as_user=world.org.rep_a1)
    assert {"code": "DEMO", "points": 0, "active": True} in listed["activityTypes"]


@pytest.mark.parametrize("user", ["manager_a", "rep_a1", "partner"])
async def test_only_admins_keep_activity_types(
    client: GraphQLClient, db: Database, world: World, user: str
) -> None:
    before = await snapshot(db)

    created = await run(client, CREATE_TYPE, getattr(world.org, user), code="DEMO",
                        name="Demo", points=1)
    updated = await run(client, UPDATE_TYPE, getattr(world.org, user), id=gid(world.call),
                        expectedVersion=1, points=10)

    assert created["activityType"] is None
    assert codes(created) == {(None, "FORBIDDEN")}
    assert updated["activityType"] is None
    assert codes(updated) == {(None, "FORBIDDEN")}
    assert await snapshot(db) == before


@pytest.mark.parametrize(("document", "input", "expected"), [
    pytest.param(CREATE_TYPE, {"code": "CALL", "name": "Calls", "points": 1},
                 {("code", "CONFLICT")}, id="duplicate-code"),
    pytest.param(CREATE_TYPE, {"code": "DEMO", "name": "Demo", "points": -1},
                 {("points", "VALIDATION")}, id="negative-points"),
    pytest.param(CREATE_TYPE, {"code": "DEMO", "name": "Demo", "points": 1001},
                 {("points", "VALIDATION")}, id="too-many-points"),
    pytest.param(CREATE_TYPE, {"code": "DE MO", "name": "Demo", "points": 1},
                 {("code", "VALIDATION")}, id="code-with-a-space"),
    pytest.param(CREATE_TYPE, {"code": "DEMO", "name": " ", "points": 1},
                 {("name", "VALIDATION")}, id="empty-name"),
    pytest.param(UPDATE_TYPE, {"expectedVersion": 1, "points": -5},
                 {("points", "VALIDATION")}, id="update-negative-points"),
    pytest.param(UPDATE_TYPE, {"expectedVersion": 1, "points": 1001},
                 {("points", "VALIDATION")}, id="update-too-many-points"),
    pytest.param(UPDATE_TYPE, {"expectedVersion": 1, "points": None},
                 {("points", "VALIDATION")}, id="update-null-points"),
    pytest.param(UPDATE_TYPE, {"expectedVersion": 1, "active": None},
                 {("active", "VALIDATION")}, id="update-null-active"),
    pytest.param(UPDATE_TYPE, {"expectedVersion": 2, "points": 2},
                 {("expectedVersion", "CONFLICT")}, id="update-stale-version"),
])
async def test_activity_type_refusals_change_nothing(
    client: GraphQLClient, db: Database, world: World, document: str, input: dict[str, Any],
    expected: set[tuple[str, str]]
) -> None:
    if document is UPDATE_TYPE:
        input = {"id": gid(world.call), **input}
    before = await snapshot(db)

    payload = await run(client, document, world.org.admin, **input)

    assert payload["activityType"] is None
    assert codes(payload) == expected
    assert await snapshot(db) == before


async def test_a_deactivated_type_takes_no_new_activities(
    client: GraphQLClient, db: Database, world: World
) -> None:
    logged = await run(client, LOG, world.org.rep_a1, typeId=gid(world.task), subject="Task")
    assert logged["userErrors"] == []

    retired = await run(client, UPDATE_TYPE, world.org.admin, id=gid(world.task),
                        expectedVersion=1, active=False)
    before = await snapshot(db)
    refused = await run(client, LOG, world.org.rep_a1, typeId=gid(world.task),
                        subject="Another task")

    assert retired["userErrors"] == []
    assert retired["activityType"]["active"] is False
    assert (await stored_type(db, world.task.id))["active"] is False
    assert codes(refused) == {("typeId", "VALIDATION")}
    assert await snapshot(db) == before
    listed = await client.query(TYPES, {"all": False}, as_user=world.org.rep_a1)
    assert "TASK" not in {t["code"] for t in listed["activityTypes"]}
    # The activity logged before keeps its type.
    data = await client.query("query($id: ID!) { activity(id: $id) { type { code active } } }",
                              {"id": logged["activity"]["id"]}, as_user=world.org.rep_a1)
    assert data["activity"] == {"type": {"code": "TASK", "active": False}}


# --- queries ------------------------------------------------------------------------------


@dataclass
class Board:
    world: World
    activities: dict[str, Activity]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
async def board(db: Database, world: World) -> Board:
    """Seven activities of four people in two teams, created in this order."""
    org = world.org
    specs: list[tuple[str, Any, ActivityType, dict[str, Any]]] = [
        ("A1 call Acme", org.rep_a1, world.call,
         {"completed_at": _at("2026-03-02T09:00"), "account_id": world.acme.id,
          "due_at": _at("2026-03-02T08:00")}),
        ("A1 meeting Acme", org.rep_a1, world.meeting,
         {"account_id": world.acme.id, "contact_id": world.alice.id,
          "due_at": _at("2026-03-05T10:00")}),
        ("A2 task", org.rep_a2, world.task, {}),
        ("A2 meeting Globex", org.rep_a2, world.meeting,
         {"completed_at": _at("2026-03-10T12:00"), "account_id": world.globex.id,
          "due_at": _at("2026-03-10T12:00")}),
        ("B1 call Globex", org.rep_b1, world.call,
         {"status": ActivityStatus.CANCELLED, "account_id": world.globex.id,
          "due_at": _at("2026-03-03T00:00")}),
        ("B1 deal call", org.rep_b1, world.call,
         {"account_id": world.acme.id, "opportunity_id": world.deal.id}),
        ("Manager A task", org.manager_a, world.task,
         {"completed_at": _at("2026-02-20T08:00"), "due_at": _at("2026-02-19T08:00")}),
    ]
    made = {}
    for subject, owner, kind, values in specs:
        made[subject] = await make_activity(db, owner, kind, subject=subject, **values)
    return Board(world, made)


async def subjects(client: GraphQLClient, user: Any, **variables: Any) -> list[str]:
    data = await client.query(LIST, variables, as_user=user)
    return [edge["node"]["subject"] for edge in data["activities"]["edges"]]


ACTIVITY_FILTERS = [
    pytest.param(lambda w: {"ownerId": {"eq": gid(w.org.rep_a2)}},
                 {"A2 task", "A2 meeting Globex"}, id="owner"),
    pytest.param(lambda w: {"ownerId": {"in": [gid(w.org.rep_b1), gid(w.org.manager_a)]}},
                 {"B1 call Globex", "B1 deal call", "Manager A task"}, id="owner-in"),
    pytest.param(lambda w: {"teamId": {"eq": gid(w.org.team_a)}},
                 {"A1 call Acme", "A1 meeting Acme", "A2 task", "A2 meeting Globex",
                  "Manager A task"}, id="team-a"),
    pytest.param(lambda w: {"teamId": {"eq": gid(w.org.team_b)}},
                 {"B1 call Globex", "B1 deal call"}, id="team-b"),
    pytest.param(lambda w: {"typeId": {"eq": gid(w.meeting)}},
                 {"A1 meeting Acme", "A2 meeting Globex"}, id="type-id"),
    pytest.param(lambda w: {"status": {"eq": "DONE"}},
                 {"A1 call Acme", "A2 meeting Globex", "Manager A task"}, id="status-done"),
    pytest.param(lambda w: {"status": {"in": ["PLANNED", "CANCELLED"]}},
                 {"A1 meeting Acme", "A2 task", "B1 call Globex", "B1 deal call"},
                 id="status-in"),
    pytest.param(lambda w: {"status": {"eq": "CANCELLED"}}, {"B1 call Globex"},
                 id="status-cancelled"),
    pytest.param(lambda w: {"accountId": {"eq": gid(w.acme)}},
                 {"A1 call Acme", "A1 meeting Acme", "B1 deal call"}, id="account"),
    pytest.param(lambda w: {"accountId": {"isNull": True}}, {"A2 task", "Manager A task"},
                 id="no-account"),
    pytest.param(lambda w: {"contactId": {"eq": gid(w.alice)}}, {"A1 meeting Acme"},
                 id="contact"),
    pytest.param(lambda w: {"opportunityId": {"eq": gid(w.deal)}}, {"B1 deal call"},
                 id="opportunity"),
    pytest.param(lambda w: {"dueAt": {"gte": "2026-03-02T08:00:00Z",
                                      "lt": "2026-03-05T10:00:00Z"}},
                 {"A1 call Acme", "B1 call Globex"}, id="due-range"),
    # The same instant written in Helsinki time.
    pytest.param(lambda w: {"dueAt": {"gte": "2026-03-05T12:00:00+02:00"}},
                 {"A1 meeting Acme", "A2 meeting Globex"}, id="due-from-with-offset"),
    pytest.param(lambda w: {"dueAt": {"isNull": True}}, {"A2 task", "B1 deal call"},
                 id="due-null"),
    pytest.param(lambda w: {"completedAt": {"gte": "2026-03-01T00:00:00Z",
                                            "lte": "2026-03-10T12:00:00Z"}},
                 {"A1 call Acme", "A2 meeting Globex"}, id="completed-range"),
    pytest.param(lambda w: {"completedAt": {"lt": "2026-03-01T00:00:00Z"}},
                 {"Manager A task"}, id="completed-before"),
    pytest.param(lambda w: {"pointsEarned": {"gte": 3}}, {"A2 meeting Globex"},
                 id="points"),
    pytest.param(lambda w: {"subject": {"contains": "CALL"}},
                 {"A1 call Acme", "B1 call Globex", "B1 deal call"}, id="subject"),
    pytest.param(lambda w: {"type": {"code": {"eq": "TASK"}}},
                 {"A2 task", "Manager A task"}, id="type-code"),
    pytest.param(lambda w: {"type": {"code": {"in": ["MEETING", "TASK"]}}},
                 {"A1 meeting Acme", "A2 task", "A2 meeting Globex", "Manager A task"},
                 id="type-code-in"),
    pytest.param(lambda w: {"owner": {"name": {"startsWith": "rep b"}}},
                 {"B1 call Globex", "B1 deal call"}, id="owner-name"),
    pytest.param(lambda w: {"account": {"name": {"eq": "Globex"}}},
                 {"A2 meeting Globex", "B1 call Globex"}, id="account-name"),
    pytest.param(lambda w: {"and": [{"status": {"eq": "DONE"}},
                                    {"teamId": {"eq": gid(w.org.team_a)}},
                                    {"type": {"code": {"ne": "TASK"}}}]},
                 {"A1 call Acme", "A2 meeting Globex"}, id="and"),
    pytest.param(lambda w: {"or": [{"typeId": {"eq": gid(w.meeting)}},
                                   {"accountId": {"eq": gid(w.globex)}}]},
                 {"A1 meeting Acme", "A2 meeting Globex", "B1 call Globex"}, id="or"),
    pytest.param(lambda w: {"not": {"status": {"eq": "PLANNED"}}},
                 {"A1 call Acme", "A2 meeting Globex", "B1 call Globex", "Manager A task"},
                 id="not"),
    pytest.param(lambda w: {"not": {"or": [{"accountId": {"isNull": True}},
                                           {"type": {"code": {"eq": "CALL"}}}]}},
                 {"A1 meeting Acme", "A2 meeting Globex"}, id="not-or-related"),
]


@pytest.mark.parametrize(("make_filter", "expected"), ACTIVITY_FILTERS)
async def test_activities_filter(
    client: GraphQLClient, board: Board, make_filter: Any, expected: set[str]
) -> None:
    data = await client.query(LIST, {"filter": make_filter(board.world)},
                              as_user=board.world.org.rep_b1)

    found = [edge["node"]["subject"] for edge in data["activities"]["edges"]]
    assert sorted(found) == sorted(expected)
    assert data["activities"]["totalCount"] == len(expected)


async def test_activities_without_a_filter_are_every_one_in_creation_order(
    client: GraphQLClient, board: Board
) -> None:
    assert await subjects(client, board.world.org.rep_a1) == list(board.activities)


ACTIVITY_ORDERS = [
    pytest.param("CREATED_AT", "ASC",
                 ["A1 call Acme", "A1 meeting Acme", "A2 task", "A2 meeting Globex",
                  "B1 call Globex", "B1 deal call", "Manager A task"], id="created-asc"),
    # Nulls are the greatest value: last ascending, first descending; ties by id.
    pytest.param("DUE_AT", "ASC",
                 ["Manager A task", "A1 call Acme", "B1 call Globex", "A1 meeting Acme",
                  "A2 meeting Globex", "A2 task", "B1 deal call"], id="due-asc"),
    pytest.param("DUE_AT", "DESC",
                 ["A2 task", "B1 deal call", "A2 meeting Globex", "A1 meeting Acme",
                  "B1 call Globex", "A1 call Acme", "Manager A task"], id="due-desc"),
    pytest.param("COMPLETED_AT", "ASC",
                 ["Manager A task", "A1 call Acme", "A2 meeting Globex", "A1 meeting Acme",
                  "A2 task", "B1 call Globex", "B1 deal call"], id="completed-asc"),
    pytest.param("COMPLETED_AT", "DESC",
                 ["A1 meeting Acme", "A2 task", "B1 call Globex", "B1 deal call",
                  "A2 meeting Globex", "A1 call Acme", "Manager A task"], id="completed-desc"),
    pytest.param("SUBJECT", "DESC",
                 ["Manager A task", "B1 deal call", "B1 call Globex", "A2 task",
                  "A2 meeting Globex", "A1 meeting Acme", "A1 call Acme"], id="subject-desc"),
]


@pytest.mark.parametrize(("field", "direction", "expected"), ACTIVITY_ORDERS)
async def test_activities_order_and_page_through_every_row(
    client: GraphQLClient, board: Board, field: str, direction: str, expected: list[str]
) -> None:
    order = [{"field": field, "direction": direction}]
    user = board.world.org.manager_b

    assert await subjects(client, user, orderBy=order) == expected

    forward: list[str] = []
    after = None
    for page in range(4):
        data = (await client.query(LIST, {"orderBy": order, "first": 2, "after": after},
                                   as_user=user))["activities"]
        forward += [edge["node"]["subject"] for edge in data["edges"]]
        assert data["totalCount"] == 7
        assert data["pageInfo"]["hasNextPage"] is (page < 3)
        assert data["pageInfo"]["hasPreviousPage"] is (page > 0)
        assert data["pageInfo"]["endCursor"] == data["edges"][-1]["cursor"]
        after = data["pageInfo"]["endCursor"]
    assert forward == expected

    backward: list[str] = []
    before = None
    for _ in range(3):
        data = (await client.query(LIST, {"orderBy": order, "last": 3, "before": before},
                                   as_user=user))["activities"]
        backward = [edge["node"]["subject"] for edge in data["edges"]] + backward
        before = data["pageInfo"]["startCursor"]
    assert backward == expected


async def test_a_filtered_page_continues_where_it_stopped(
    client: GraphQLClient, board: Board
) -> None:
    team_a = {"teamId": {"eq": gid(board.world.org.team_a)}}
    order = [{"field": "DUE_AT", "direction": "DESC"}]
    user = board.world.org.rep_a1

    first = (await client.query(LIST, {"filter": team_a, "orderBy": order, "first": 2},
                                as_user=user))["activities"]
    rest = (await client.query(LIST, {"filter": team_a, "orderBy": order, "first": 10,
                                      "after": first["pageInfo"]["endCursor"]},
                               as_user=user))["activities"]

    assert [e["node"]["subject"] for e in first["edges"]] == ["A2 task", "A2 meeting Globex"]
    assert [e["node"]["subject"] for e in rest["edges"]] == [
        "A1 meeting Acme", "A1 call Acme", "Manager A task"]
    assert (first["totalCount"], rest["totalCount"]) == (5, 5)
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_accounts_contacts_and_opportunities_list_their_own_activities(
    client: GraphQLClient, board: Board
) -> None:
    w = board.world
    nested = """
      totalCount edges { node { subject type { code } } }
      pageInfo { hasNextPage }"""
    data = await client.query(f"""
      query($acme: ID!, $globex: ID!, $alice: ID!, $bob: ID!, $deal: ID!) {{
        acme: account(id: $acme) {{ activities {{ {nested} }} }}
        acmeFirst: account(id: $acme) {{ activities(first: 1) {{ {nested} }} }}
        acmePlanned: account(id: $acme) {{
          activities(filter: {{status: {{eq: PLANNED}}}},
                     orderBy: [{{field: DUE_AT, direction: DESC}}]) {{ {nested} }} }}
        globex: account(id: $globex) {{ activities {{ {nested} }} }}
        alice: contact(id: $alice) {{ activities {{ {nested} }} }}
        bob: contact(id: $bob) {{ activities {{ {nested} }} }}
        deal: opportunity(id: $deal) {{ activities {{ {nested} }} }}
      }}""", {"acme": gid(w.acme), "globex": gid(w.globex), "alice": gid(w.alice),
              "bob": gid(w.bob), "deal": gid(w.deal)}, as_user=w.org.rep_b1)

    def listed(name: str) -> tuple[int, list[str], bool]:
        connection = data[name]["activities"]
        return (connection["totalCount"], [e["node"]["subject"] for e in connection["edges"]],
                connection["pageInfo"]["hasNextPage"])

    assert listed("acme") == (3, ["A1 call Acme", "A1 meeting Acme", "B1 deal call"], False)
    assert listed("acmeFirst") == (3, ["A1 call Acme"], True)
    assert listed("acmePlanned") == (2, ["B1 deal call", "A1 meeting Acme"], False)
    assert listed("globex") == (2, ["A2 meeting Globex", "B1 call Globex"], False)
    assert listed("alice") == (1, ["A1 meeting Acme"], False)
    assert listed("bob") == (0, [], False)
    assert listed("deal") == (1, ["B1 deal call"], False)
    assert data["deal"]["activities"]["edges"][0]["node"]["type"] == {"code": "CALL"}


async def test_node_finds_activities_their_types_and_targets(
    client: GraphQLClient, db: Database, board: Board
) -> None:
    w = board.world
    target = await make_target(db, w.org.rep_a1, date(2026, 3, 2), TargetMetric.POINTS, 12)
    activity = board.activities["A2 meeting Globex"]
    cases = [
        (gid(activity), {"__typename": "Activity", "subject": "A2 meeting Globex",
                         "status": "DONE"}),
        (gid(w.meeting), {"__typename": "ActivityType", "code": "MEETING", "points": 3}),
        (gid(target), {"__typename": "ActivityTarget", "week": "2026-W10",
                       "metric": "POINTS", "target": 12, "user": {"id": gid(w.org.rep_a1)}}),
    ]
    for global_id, fields in cases:
        data = await client.query(NODE, {"id": global_id}, as_user=w.org.manager_b)
        assert data["node"] == {"id": global_id, **fields}

    for missing in (encode_id("Activity", 9999), encode_id("ActivityType", 9999),
                    encode_id("ActivityTarget", 9999)):
        data = await client.query(NODE, {"id": missing}, as_user=w.org.admin)
        assert data["node"] is None


# --- partners -----------------------------------------------------------------------------


async def test_partners_see_no_activities_even_on_shared_accounts(
    client: GraphQLClient, db: Database, board: Board
) -> None:
    w = board.world
    await share(db, w.acme, w.org.partner_org)
    activity = board.activities["A1 meeting Acme"]
    query = """
      query($acme: ID!, $id: ID!) {
        activities { totalCount edges { node { id } } }
        shared: activities(filter: {accountId: {eq: $acme}}) { totalCount }
        account(id: $acme) { name activities { totalCount edges { node { id } } } }
        activity(id: $id) { id }
        node(id: $id) { id }
      }"""
    variables = {"acme": gid(w.acme), "id": gid(activity)}

    partner = await client.query(query, variables, as_user=w.org.partner)
    staff = await client.query(query, variables, as_user=w.org.rep_b1)

    assert partner == {
        "activities": {"totalCount": 0, "edges": []},
        "shared": {"totalCount": 0},
        "account": {"name": "Acme", "activities": {"totalCount": 0, "edges": []}},
        "activity": None,
        "node": None,
    }
    # The same request finds them for staff: the partner's empty answers are the policy.
    assert staff["activities"]["totalCount"] == 7
    assert staff["shared"]["totalCount"] == 3
    assert staff["account"]["activities"]["totalCount"] == 3
    assert staff["activity"] == {"id": gid(activity)}
    assert staff["node"] == {"id": gid(activity)}


# --- statement counts ---------------------------------------------------------------------


async def insert_activities(db: Database, rows: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await session.execute(ACTIVITIES.insert(), [
            {"status": ActivityStatus.PLANNED, "notes": None, "contact_id": None,
             "opportunity_id": None, "campaign_id": None, "due_at": None,
             "completed_at": None, "completed_week": None, "points_earned": None,
             "created_at": now, "updated_at": now, "version": 1, **row}
            for row in rows])


async def test_statements_for_nested_activities_do_not_grow_with_the_accounts(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    owners = [org.rep_a1, org.rep_a2, org.rep_b1, org.manager_a, org.manager_b]
    kinds = [world.call, world.meeting, world.task]
    accounts = [world.acme, world.globex] + [
        await make_account(db, owners[n % 5], name=f"Bulk {n:02}") for n in range(18)]
    await insert_activities(db, [
        {"type_id": kinds[n % 3].id, "subject": f"Activity {n:03}",
         "owner_id": owners[n % 5].id, "account_id": accounts[n % 20].id}
        for n in range(20 * 8)])
    query = """
    query($first: Int) {
      accounts(first: $first) { edges { node {
        name
        activities(first: 5) { edges { node { subject type { code } owner { name } } } }
      } } }
    }"""

    small, small_count = await client.counted(query, {"first": 2}, as_user=org.rep_a1)
    large, large_count = await client.counted(query, {"first": 20}, as_user=org.rep_a1)

    assert len(small["accounts"]["edges"]) == 2
    assert len(large["accounts"]["edges"]) == 20
    pages = [e["node"]["activities"]["edges"] for e in large["accounts"]["edges"]]
    assert all(len(page) == 5 for page in pages)
    assert len({edge["node"]["owner"]["name"] for page in pages for edge in page}) == 5
    assert small_count == large_count
    # The viewer, the accounts page, the activity pages, their types and owners.
    assert large_count <= 5


async def test_statements_for_an_activities_page_do_not_grow_with_the_page(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    owners = [org.rep_a1, org.rep_a2, org.rep_b1, org.manager_a]
    kinds = [world.call, world.meeting, world.task]
    accounts = [world.acme, world.globex, None]
    await insert_activities(db, [
        {"type_id": kinds[n % 3].id, "subject": f"Activity {n:03}",
         "owner_id": owners[n % 4].id,
         "account_id": accounts[n % 3].id if accounts[n % 3] else None}
        for n in range(60)])
    query = """
    query($first: Int) {
      activities(first: $first) { edges { node {
        subject type { code } owner { name } account { name }
      } } }
    }"""

    small, small_count = await client.counted(query, {"first": 5}, as_user=org.rep_b1)
    large, large_count = await client.counted(query, {"first": 50}, as_user=org.rep_b1)

    assert len(small["activities"]["edges"]) == 5
    assert len(large["activities"]["edges"]) == 50
    nodes = [e["node"] for e in large["activities"]["edges"]]
    assert {n["account"]["name"] for n in nodes if n["account"]} == {"Acme", "Globex"}
    assert sum(n["account"] is None for n in nodes) == 16
    assert small_count == large_count
    # The viewer, the page, then one batch each for types, owners and accounts.
    assert large_count <= 5
