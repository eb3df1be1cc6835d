"""Activities and weekly activity targets: lists, attainment (targets against what was
realized, per user and week, aggregated in SQL), the leaderboard, the mutations, and
the live feed of attainment changes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.accounts import ACCOUNTS, CONTACTS
from loaders.activities import (
    ACTIVITY_FILTER,
    ACTIVITY_ORDER,
    ACTIVITY_TARGETS,
    ACTIVITY_TYPES,
    FiguresByUserWeekLoader,
    MembersByTeamLoader,
    UserWeekFigures,
    activities_statement,
    visible_activity_types,
    visible_targets,
)
from loaders.campaigns import CAMPAIGNS
from loaders.container import Loaders
from loaders.errors import BadUserInput, Forbidden
from loaders.opportunities import OPPORTUNITIES
from loaders.query import PageArgs
from loaders.users import TEAMS, USERS, TeamByIdLoader, UserByIdLoader
from models.activities import Activity, ActivityStatus, ActivityTarget, ActivityType, TargetMetric
from models.base import utcnow
from models.db import Database
from models.users import Role, Viewer
from resolvers.audit import fields_of, record_audit
from resolvers.campaigns import record_call
from resolvers.errors import UserErrorCode, UserInputError
from resolvers.mutations import (
    Checks,
    Outcome,
    forbidden,
    mutate,
    not_found,
    require_version,
)
from resolvers.pages import Listing, list_rows
from resolvers.policy import can_assign, can_write, load_owner
from resolvers.weeks import MAX_WEEKS, WeekError, format_week, parse_week, week_of, weeks_between
from subscriptions.hub import EventHub
from subscriptions.outbox import TARGET_TOPIC, EventRecord, record_event

MAX_TARGET = 100_000
MAX_TARGETS_PER_CALL = 500
# What an activity type's audit entries hold.
TYPE_FIELDS = ("code", "name", "points", "active")
# A completion may be stamped a little ahead of the server's clock (the client's is
# not ours), never further.
CLOCK_SKEW = timedelta(minutes=5)

# A concurrent writer got past our checks first and a unique key stopped us.
ON_DUPLICATE = "someone set these targets at the same time; reload them and retry"


class Reason:
    COMPLETED = "COMPLETED"
    REOPENED = "REOPENED"
    CANCELLED = "CANCELLED"
    DELETED = "DELETED"
    MOVED = "MOVED"
    TARGET_CHANGED = "TARGET_CHANGED"


def week_argument(text: str, field_name: str = "week") -> date:
    """A week argument of a query: its Monday, or BAD_USER_INPUT."""
    try:
        return parse_week(text)
    except WeekError as exc:
        raise BadUserInput(f"{field_name}: {exc}") from None


def _week_input(checks: Checks, field_name: str, text: str | None) -> date | None:
    if text is None:
        checks.fail(field_name, f"{field_name} is required")
        return None
    try:
        return parse_week(text)
    except WeekError as exc:
        checks.fail(field_name, str(exc))
        return None


# --- lists --------------------------------------------------------------------------------


async def list_activities(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
                          ) -> Listing:
    return await list_rows(
        loaders=loaders, statement=activities_statement(loaders.viewer), spec=ACTIVITY_FILTER,
        filter=filter, orderable=ACTIVITY_ORDER, default_order=("CREATED_AT",),
        order_by=order_by, args=args,
    )


async def list_activity_types(*, loaders: Loaders, include_inactive: bool) -> list[Any]:
    statement = (select(ACTIVITY_TYPES).where(visible_activity_types(loaders.viewer))
                 .order_by(ACTIVITY_TYPES.c.code))
    if not include_inactive:
        statement = statement.where(ACTIVITY_TYPES.c.active.is_(True))
    async with loaders.db.read() as connection:
        return list((await connection.execute(statement)).all())


# --- who may see whose attainment ---------------------------------------------------------


def _refuse_partner(viewer: Viewer) -> None:
    if viewer.role is Role.PARTNER:
        raise Forbidden("partners have no access to activity targets or attainment")


async def visible_user(loaders: Loaders, user_id: int) -> Any:
    """The user row whose targets and attainment the viewer asks for, or FORBIDDEN:
    a rep sees its own and its team's, admins and managers everyone's."""
    viewer = loaders.viewer
    _refuse_partner(viewer)
    user = await loaders.get(UserByIdLoader).load(user_id)
    if user is None:
        raise BadUserInput("userId: no such user")
    if viewer.role is Role.REP and user.id != viewer.user_id and (
            viewer.team_id is None or user.team_id != viewer.team_id):
        raise Forbidden("reps see their own and their team's attainment only")
    return user


async def visible_team(loaders: Loaders, team_id: int) -> Any:
    viewer = loaders.viewer
    _refuse_partner(viewer)
    team = await loaders.get(TeamByIdLoader).load(team_id)
    if team is None:
        raise BadUserInput("teamId: no such team")
    if viewer.role is Role.REP and team.id != viewer.team_id:
        raise Forbidden("reps see their own team's board only")
    return team


# --- attainment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AttainmentData:
    user_id: int
    week: date
    metric: TargetMetric
    activity_type_id: int | None
    target: int | None  # None: no target set
    realized: int

    @property
    def ratio(self) -> float | None:
        if not self.target:
            return None
        return round(self.realized / self.target, 4)


def attainment_rows(figures: UserWeekFigures) -> list[AttainmentData]:
    """The user-week's rows: overall COUNT and POINTS always (target None when not set),
    then one row per activity-type target (COUNT before POINTS, then by type)."""
    targets = {(row.metric, row.activity_type_id): row.target for row in figures.targets}
    keys = {(TargetMetric.COUNT, None), (TargetMetric.POINTS, None), *targets}
    rows = []
    for metric, type_id in sorted(keys, key=lambda k: (k[1] is not None, k[0].value, k[1] or 0)):
        done = figures.realized(type_id)
        rows.append(AttainmentData(
            figures.user_id, figures.week, metric, type_id, targets.get((metric, type_id)),
            done.count if metric is TargetMetric.COUNT else done.points))
    return rows


async def user_attainment(*, loaders: Loaders, user_id: int, week: date) -> list[AttainmentData]:
    await visible_user(loaders, user_id)
    figures = await loaders.get(FiguresByUserWeekLoader).load((user_id, week))
    return attainment_rows(figures)


async def attainment_history(*, loaders: Loaders, user_id: int, from_week: date, to_week: date
                             ) -> list[AttainmentData]:
    if to_week < from_week:
        raise BadUserInput("toWeek comes before fromWeek")
    weeks = weeks_between(from_week, to_week)
    if len(weeks) > MAX_WEEKS:
        raise BadUserInput(f"a history covers at most {MAX_WEEKS} weeks")
    await visible_user(loaders, user_id)
    figures = await loaders.get(FiguresByUserWeekLoader).load_many(
        [(user_id, week) for week in weeks])
    return [row for one in figures for row in attainment_rows(one)]


async def team_members(loaders: Loaders, team_id: int) -> list[Any]:
    await visible_team(loaders, team_id)
    members = await loaders.get(MembersByTeamLoader).load(team_id)
    users = loaders.get(UserByIdLoader)
    for member in members:  # `user { name }` on the rows costs nothing more
        users.prime(member.id, member)
    return members


async def team_attainment(*, loaders: Loaders, team_id: int, week: date
                          ) -> list[AttainmentData]:
    members = await team_members(loaders, team_id)
    figures = await loaders.get(FiguresByUserWeekLoader).load_many(
        [(member.id, week) for member in members])
    return [row for one in figures for row in attainment_rows(one)]


@dataclass(frozen=True)
class LeaderboardEntry:
    rank: int
    row: AttainmentData


async def leaderboard(*, loaders: Loaders, team_id: int, week: date, metric: TargetMetric
                      ) -> list[LeaderboardEntry]:
    """The team's members by what they realized of ``metric`` that week, most first;
    equal figures share a rank (1, 2, 2, 4), then go by name."""
    members = await team_members(loaders, team_id)
    figures = await loaders.get(FiguresByUserWeekLoader).load_many(
        [(member.id, week) for member in members])
    rows = []
    for one in figures:
        overall = next(r for r in attainment_rows(one)
                       if r.metric is metric and r.activity_type_id is None)
        rows.append(overall)
    rows.sort(key=lambda r: -r.realized)  # stable: members come by name
    entries: list[LeaderboardEntry] = []
    for position, row in enumerate(rows, start=1):
        tied = entries and entries[-1].row.realized == row.realized
        entries.append(LeaderboardEntry(entries[-1].rank if tied else position, row))
    return entries


async def list_targets(*, loaders: Loaders, week: date, user_id: int | None,
                       team_id: int | None) -> list[Any]:
    viewer = loaders.viewer
    _refuse_partner(viewer)
    statement = (select(ACTIVITY_TARGETS)
                 .join(USERS, USERS.c.id == ACTIVITY_TARGETS.c.user_id)
                 .where(ACTIVITY_TARGETS.c.week == week, visible_targets(viewer))
                 .order_by(USERS.c.name, ACTIVITY_TARGETS.c.user_id, ACTIVITY_TARGETS.c.metric,
                           ACTIVITY_TARGETS.c.id))
    if user_id is not None:
        await visible_user(loaders, user_id)
        statement = statement.where(ACTIVITY_TARGETS.c.user_id == user_id)
    if team_id is not None:
        await visible_team(loaders, team_id)
        statement = statement.where(USERS.c.team_id == team_id)
    async with loaders.db.read() as connection:
        return list((await connection.execute(statement)).all())


# --- activity mutations -------------------------------------------------------------------

_NOTES_LENGTH = 10_000


@dataclass(frozen=True)
class Counted:
    """How an activity counts toward attainment: whose week, what, how much."""

    owner_id: int
    week: date
    type_id: int


def _counted(activity: Activity) -> Counted | None:
    if activity.status is not ActivityStatus.DONE or activity.completed_week is None:
        return None
    return Counted(activity.owner_id, activity.completed_week, activity.type_id)


async def _announce_changes(session: AsyncSession, *, before: Counted | None,
                            after: Counted | None, points_before: int | None,
                            points_after: int | None, reason: str, activity_id: int,
                            ) -> list[EventRecord]:
    """One attainment event per user-week whose figures the change moved."""
    if before == after and points_before == points_after:
        return []
    if before is not None and after is not None and (
            before.owner_id, before.week) != (after.owner_id, after.week):
        reason = Reason.MOVED
    touched: dict[tuple[int, date], int] = {}
    for counted in (before, after):
        if counted is not None:
            touched.setdefault((counted.owner_id, counted.week), counted.type_id)
    teams = await _teams(session, (user_id for user_id, _week in touched))
    return [await _attainment_event(session, user_id=user_id, team_id=teams.get(user_id),
                                    week=week, reason=reason,
                                    activity_type_id=type_id, activity_id=activity_id)
            for (user_id, week), type_id in touched.items()]


async def _teams(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, int | None]:
    """Each user's team, in one statement: events say the team for board filters."""
    return {row.id: row.team_id for row in await session.execute(
        select(USERS.c.id, USERS.c.team_id).where(USERS.c.id.in_(set(user_ids))))}


async def _attainment_event(session: AsyncSession, *, user_id: int, team_id: int | None,
                            week: date, reason: str, activity_type_id: int | None = None,
                            activity_id: int | None = None,
                            targets: Iterable[tuple[str, int | None]] = ()) -> EventRecord:
    return await record_event(session, topic=TARGET_TOPIC, payload={
        "reason": reason,
        "userId": user_id,
        "teamId": team_id,
        "week": format_week(week),
        "weekStart": week.isoformat(),
        "activityTypeId": activity_type_id,
        "activityId": activity_id,
        "targets": [list(key) for key in targets],
    })


async def _target_events(session: AsyncSession, week: date,
                         wanted: dict[tuple[int, TargetMetric, int | None], int],
                         changed: set[int]) -> list[EventRecord]:
    """One TARGET_CHANGED event per user whose targets of the week changed."""
    teams = await _teams(session, changed)
    return [await _attainment_event(
        session, user_id=user, team_id=teams.get(user), week=week,
        reason=Reason.TARGET_CHANGED,
        targets=[(metric.value, type_id) for u, metric, type_id in wanted if u == user])
        for user in sorted(changed)]


async def _announce(events: EventHub, records: list[EventRecord]) -> None:
    for record in records:
        await events.announce(record)


async def _activity_type(session: AsyncSession, checks: Checks, gid: str | None, *,
                         field_name: str = "typeId") -> ActivityType | None:
    key = checks.global_id(field_name, gid, "ActivityType")
    if key is None:
        if gid is None:
            checks.fail(field_name, "typeId is required")
        return None
    found = await session.get(ActivityType, key)
    if found is None:
        checks.fail(field_name, "activity type not found", UserErrorCode.NOT_FOUND)
        return None
    if not found.active:
        checks.fail(field_name, f"activity type {found.code} is no longer in use")
        return None
    return found


def _completion(checks: Checks, value: datetime | None, field_name: str = "completedAt"
                ) -> datetime:
    now = utcnow()
    if value is None:
        return now
    if value > now + CLOCK_SKEW:
        checks.fail(field_name, "an activity cannot be completed in the future")
    return value


async def _relations(session: AsyncSession, checks: Checks, values: dict[str, Any],
                     current: Activity | None = None) -> dict[str, int | None]:
    """Account, contact, opportunity and campaign links, checked against each other:
    a contact or an opportunity names its account when the account is left out."""
    def pick(name: str) -> Any:
        if name in values:
            return values[name]
        return getattr(current, name) if current is not None else None

    keys: dict[str, int | None] = {}
    for name, field_name, type_name in (("account_id", "accountId", "Account"),
                                        ("contact_id", "contactId", "Contact"),
                                        ("opportunity_id", "opportunityId", "Opportunity"),
                                        ("campaign_id", "campaignId", "Campaign")):
        value = pick(name)
        if name in values:
            keys[name] = checks.global_id(field_name, value, type_name)
        else:
            keys[name] = value  # already a key on the stored activity
    if checks.errors:
        return keys
    if keys["campaign_id"] is not None and "campaign_id" in values and (await session.execute(
            select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.id == keys["campaign_id"]))).first() is None:
        checks.fail("campaignId", "campaign not found", UserErrorCode.NOT_FOUND)
    account_id = keys["account_id"]
    if account_id is not None and "account_id" in values and (await session.execute(
            select(ACCOUNTS.c.id).where(ACCOUNTS.c.id == account_id))).first() is None:
        checks.fail("accountId", "account not found", UserErrorCode.NOT_FOUND)
    # Every link is checked against the account it ends up with, sent or kept: a new
    # account must not keep a contact or an opportunity of the old one.
    for name, field_name, table, what in (
            ("contact_id", "contactId", CONTACTS, "contact"),
            ("opportunity_id", "opportunityId", OPPORTUNITIES, "opportunity")):
        key = keys[name]
        if key is None:
            continue
        owner_account = (await session.execute(
            select(table.c.account_id).where(table.c.id == key))).scalar_one_or_none()
        if owner_account is None:
            checks.fail(field_name, f"{what} not found", UserErrorCode.NOT_FOUND)
        elif account_id is None and "account_id" in values and name not in values:
            checks.fail(field_name, f"the {what} belongs to an account: clear {field_name} "
                        "too, or keep the account")
        elif account_id is None:
            account_id = keys["account_id"] = owner_account
        elif owner_account != account_id:
            checks.fail(field_name, f"the {what} belongs to another account")
    return keys


async def _owner(session: AsyncSession, viewer: Viewer, checks: Checks, gid: str | None
                 ) -> int | None:
    if gid is None:
        return viewer.user_id
    key = checks.global_id("ownerId", gid, "User")
    owner = await load_owner(session, key) if key is not None else None
    if key is not None and owner is None:
        checks.fail("ownerId", "user not found", UserErrorCode.NOT_FOUND)
    elif owner is not None and (reason := can_assign(viewer, owner)):
        checks.fail("ownerId", reason, UserErrorCode.FORBIDDEN)
    return owner.id if owner is not None else None


def _complete(activity: Activity, kind: ActivityType, when: datetime, timezone: str) -> None:
    activity.status = ActivityStatus.DONE
    activity.completed_at = when.astimezone(UTC)
    activity.completed_week = week_of(when, timezone)
    activity.points_earned = kind.points  # frozen: later changes to the type leave it


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def _uncomplete(activity: Activity, status: ActivityStatus) -> None:
    activity.status = status
    activity.completed_at = None
    activity.completed_week = None
    activity.points_earned = None


async def log_activity(
    *, viewer: Viewer, db: Database, events: EventHub, timezone: str, type_id: str,
    subject: str, notes: str | None = None, status: ActivityStatus | None = None,
    due_at: datetime | None = None, completed_at: datetime | None = None,
    account_id: str | None = None, contact_id: str | None = None,
    opportunity_id: str | None = None, campaign_id: str | None = None,
    owner_id: str | None = None,
) -> Outcome[Activity]:
    async def action() -> Activity:
        if viewer.is_partner:
            raise forbidden("partners cannot log activities")
        status_ = status or ActivityStatus.PLANNED
        async with db.transaction() as session:
            checks = Checks()
            kind = await _activity_type(session, checks, type_id)
            text = checks.text("subject", subject, max_length=200, required=True)
            note = checks.text("notes", notes, max_length=_NOTES_LENGTH)
            if completed_at is not None and status_ is not ActivityStatus.DONE:
                checks.fail("completedAt", "completedAt is only for DONE activities")
            when = _completion(checks, completed_at)
            links = await _relations(session, checks, {
                "account_id": account_id, "contact_id": contact_id,
                "opportunity_id": opportunity_id, "campaign_id": campaign_id})
            owner = await _owner(session, viewer, checks, owner_id)
            checks.raise_if_any()
            assert kind is not None
            assert owner is not None
            activity = Activity(type_id=kind.id, subject=text, notes=note, owner_id=owner,
                                due_at=_utc(due_at), status=ActivityStatus.PLANNED, **links)
            if status_ is ActivityStatus.DONE:
                _complete(activity, kind, when, timezone)
            else:
                activity.status = status_
            session.add(activity)
            await session.flush()
            if status_ is ActivityStatus.DONE:
                await record_call(session, campaign_id=activity.campaign_id,
                                  contact_id=activity.contact_id, type_code=kind.code,
                                  when=when)
            records = await _announce_changes(
                session, before=None, after=_counted(activity), points_before=None,
                points_after=activity.points_earned, reason=Reason.COMPLETED,
                activity_id=activity.id)
        await _announce(events, records)
        return activity

    return await mutate(action)


async def _writable(session: AsyncSession, viewer: Viewer, gid: str, expected_version: int
                    ) -> Activity:
    if viewer.is_partner:
        raise forbidden("partners cannot change activities")
    checks = Checks()
    key = checks.global_id("id", gid, "Activity")
    checks.raise_if_any()
    activity = await session.get(Activity, key)
    if activity is None:
        raise not_found("id", "activity")
    owner = await load_owner(session, activity.owner_id)
    if owner is None or not can_write(viewer, owner):
        raise forbidden("you cannot change this activity")
    require_version(activity.version, expected_version)
    return activity


async def update_activity(
    *, viewer: Viewer, db: Database, events: EventHub, timezone: str, activity_id: str,
    expected_version: int, changes: dict[str, Any],
) -> Outcome[Activity]:
    async def action() -> Activity:
        async with db.transaction() as session:
            activity = await _writable(session, viewer, activity_id, expected_version)
            before, points_before = _counted(activity), activity.points_earned
            checks = Checks()
            with session.no_autoflush:
                if "subject" in changes:
                    activity.subject = checks.text("subject", changes["subject"],
                                                   max_length=200, required=True) \
                        or activity.subject
                if "notes" in changes:
                    activity.notes = checks.text("notes", changes["notes"],
                                                 max_length=_NOTES_LENGTH)
                if "type_id" in changes:
                    kind = await _activity_type(session, checks, changes["type_id"])
                    if kind is not None and kind.id != activity.type_id:
                        if activity.status is ActivityStatus.DONE:
                            checks.fail("typeId", "a completed activity keeps its type and "
                                        "points; reopen it to change the type")
                        else:
                            activity.type_id = kind.id
                if "due_at" in changes:
                    activity.due_at = _utc(changes["due_at"])
                if "completed_at" in changes:
                    if activity.status is not ActivityStatus.DONE:
                        checks.fail("completedAt", "only a DONE activity has a completion "
                                    "time; complete it with completeActivity")
                    elif changes["completed_at"] is None:
                        checks.fail("completedAt", "reopen the activity to clear its "
                                    "completion")
                    else:
                        when = _completion(checks, changes["completed_at"])
                        activity.completed_at = when.astimezone(UTC)
                        activity.completed_week = week_of(when, timezone)
                links = {name: changes[name] for name in
                         ("account_id", "contact_id", "opportunity_id", "campaign_id")
                         if name in changes}
                if links:
                    for name, key in (await _relations(session, checks, links, activity)
                                      ).items():
                        setattr(activity, name, key)
                if "owner_id" in changes:
                    if changes["owner_id"] is None:
                        checks.fail("ownerId", "an activity always has an owner")
                    elif (owner := await _owner(session, viewer, checks, changes["owner_id"])
                          ) is not None:
                        activity.owner_id = owner
            checks.raise_if_any()
            await session.flush()
            records = await _announce_changes(
                session, before=before, after=_counted(activity), points_before=points_before,
                points_after=activity.points_earned, reason=Reason.MOVED,
                activity_id=activity.id)
        await _announce(events, records)
        return activity

    return await mutate(action)


async def change_status(
    *, viewer: Viewer, db: Database, events: EventHub, timezone: str, activity_id: str,
    expected_version: int, status: ActivityStatus, completed_at: datetime | None = None,
) -> Outcome[Activity]:
    """completeActivity (to DONE), reopenActivity (to PLANNED), cancelActivity."""
    allowed = {
        ActivityStatus.DONE: (ActivityStatus.PLANNED, ActivityStatus.CANCELLED),
        ActivityStatus.PLANNED: (ActivityStatus.DONE, ActivityStatus.CANCELLED),
        ActivityStatus.CANCELLED: (ActivityStatus.PLANNED, ActivityStatus.DONE),
    }[status]
    reason = {ActivityStatus.DONE: Reason.COMPLETED, ActivityStatus.PLANNED: Reason.REOPENED,
              ActivityStatus.CANCELLED: Reason.CANCELLED}[status]

    async def action() -> Activity:
        async with db.transaction() as session:
            activity = await _writable(session, viewer, activity_id, expected_version)
            if activity.status not in allowed:
                raise UserInputError.one(
                    "id", UserErrorCode.VALIDATION,
                    f"the activity is already {activity.status.value}")
            before, points_before = _counted(activity), activity.points_earned
            checks = Checks()
            if status is ActivityStatus.DONE:
                when = _completion(checks, completed_at)
                checks.raise_if_any()
                kind = await session.get(ActivityType, activity.type_id)
                assert kind is not None
                _complete(activity, kind, when, timezone)
                await record_call(session, campaign_id=activity.campaign_id,
                                  contact_id=activity.contact_id, type_code=kind.code,
                                  when=when)
            else:
                _uncomplete(activity, status)
            await session.flush()
            records = await _announce_changes(
                session, before=before, after=_counted(activity), points_before=points_before,
                points_after=activity.points_earned, reason=reason, activity_id=activity.id)
        await _announce(events, records)
        return activity

    return await mutate(action)


async def delete_activity(*, viewer: Viewer, db: Database, events: EventHub, activity_id: str,
                          expected_version: int) -> Outcome[int]:
    async def action() -> int:
        async with db.transaction() as session:
            activity = await _writable(session, viewer, activity_id, expected_version)
            key, before = activity.id, _counted(activity)
            await session.delete(activity)
            await session.flush()
            records = await _announce_changes(
                session, before=before, after=None, points_before=activity.points_earned,
                points_after=None, reason=Reason.DELETED, activity_id=key)
        await _announce(events, records)
        return key

    return await mutate(action)


# --- activity types -----------------------------------------------------------------------


def _points(checks: Checks, value: int | None) -> int | None:
    if value is None or not 0 <= value <= 1000:
        checks.fail("points", "points are a whole number from 0 to 1000")
        return None
    return value


async def create_activity_type(*, viewer: Viewer, db: Database, code: str, name: str,
                               points: int) -> Outcome[ActivityType]:
    async def action() -> ActivityType:
        if not viewer.is_admin:
            raise forbidden("only admins define activity types")
        async with db.transaction() as session:
            checks = Checks()
            code_ = checks.text("code", code, max_length=32, required=True)
            if code_ is not None and not code_.replace("_", "").isalnum():
                checks.fail("code", "code is letters, digits and underscores, e.g. DEMO")
            elif code_ is not None:
                code_ = code_.upper()
                if (await session.execute(select(ACTIVITY_TYPES.c.id).where(
                        ACTIVITY_TYPES.c.code == code_))).first() is not None:
                    checks.fail("code", f"activity type {code_} exists already",
                                UserErrorCode.CONFLICT)
            kind = ActivityType(code=code_, active=True,
                                name=checks.text("name", name, max_length=100, required=True),
                                points=_points(checks, points))
            checks.raise_if_any()
            session.add(kind)
            await session.flush()
            await record_audit(session, viewer, action="activity_type.created",
                               entity_type="ActivityType", entity_id=kind.id,
                               after=fields_of(kind, *TYPE_FIELDS))
        return kind

    return await mutate(action, on_duplicate="another activity type has this code")


async def update_activity_type(*, viewer: Viewer, db: Database, type_id: str,
                               expected_version: int, changes: dict[str, Any]
                               ) -> Outcome[ActivityType]:
    """Points changed here count for activities completed from now on only."""
    async def action() -> ActivityType:
        if not viewer.is_admin:
            raise forbidden("only admins change activity types")
        async with db.transaction() as session:
            checks = Checks()
            key = checks.global_id("id", type_id, "ActivityType")
            checks.raise_if_any()
            kind = await session.get(ActivityType, key)
            if kind is None:
                raise not_found("id", "activity type")
            require_version(kind.version, expected_version)
            before = fields_of(kind, *TYPE_FIELDS)
            if "name" in changes:
                kind.name = checks.text("name", changes["name"], max_length=100,
                                        required=True) or kind.name
            if "points" in changes and (points := _points(checks, changes["points"])
                                        ) is not None:
                kind.points = points
            if "active" in changes:
                if changes["active"] is None:
                    checks.fail("active", "active cannot be null")
                else:
                    kind.active = changes["active"]
            checks.raise_if_any()
            await session.flush()
            await record_audit(session, viewer, action="activity_type.updated",
                               entity_type="ActivityType", entity_id=kind.id, before=before,
                               after=fields_of(kind, *TYPE_FIELDS))
        return kind

    return await mutate(action)


# --- targets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetLine:
    user_id: str
    metric: TargetMetric
    activity_type_id: str | None
    target: int


async def _target_users(session: AsyncSession, viewer: Viewer, checks: Checks,
                        lines: list[TargetLine]) -> dict[int, int]:
    """The user key of each line whose user targets may be set for: a manager sets them
    for the team's members, an admin for anyone, nobody else at all."""
    keys = {}
    for index, line in enumerate(lines):
        key = checks.global_id(f"targets.{index}.userId", line.user_id, "User")
        if key is not None:
            keys[index] = key
    rows = {row.id: row for row in await session.execute(
        select(USERS.c.id, USERS.c.team_id, USERS.c.role)
        .where(USERS.c.id.in_(set(keys.values()))))}
    allowed = {}
    for index, key in keys.items():
        user = rows.get(key)
        field_name = f"targets.{index}.userId"
        if user is None:
            checks.fail(field_name, "user not found", UserErrorCode.NOT_FOUND)
        elif user.role is Role.PARTNER:
            checks.fail(field_name, "partner users have no activity targets")
        elif viewer.role is Role.MANAGER and (viewer.team_id is None
                                              or user.team_id != viewer.team_id):
            checks.fail(field_name, "managers set targets for their own team's members",
                        UserErrorCode.FORBIDDEN)
        else:
            allowed[index] = key
    return allowed


def _require_target_setter(viewer: Viewer) -> None:
    if viewer.role not in (Role.ADMIN, Role.MANAGER):
        raise forbidden("only managers (for their team) and admins set activity targets")


async def _type_keys(session: AsyncSession, checks: Checks, lines: list[TargetLine]
                     ) -> dict[int, int | None]:
    known = {row.id for row in await session.execute(select(ACTIVITY_TYPES.c.id))}
    found: dict[int, int | None] = {}
    for index, line in enumerate(lines):
        field_name = f"targets.{index}.activityTypeId"
        key = checks.global_id(field_name, line.activity_type_id, "ActivityType")
        if line.activity_type_id is not None and key is not None and key not in known:
            checks.fail(field_name, "activity type not found", UserErrorCode.NOT_FOUND)
        found[index] = key
    return found


async def _upsert_targets(session: AsyncSession, week: date,
                          wanted: dict[tuple[int, TargetMetric, int | None], int]
                          ) -> tuple[list[ActivityTarget], set[int]]:
    """Write the wanted targets of one week; a target of 0 removes the target. Returns
    the targets now set for those keys, and the users whose targets changed."""
    users = {user for user, _, _ in wanted}
    existing = {(t.user_id, t.metric, t.activity_type_id): t for t in (await session.execute(
        select(ActivityTarget).where(ActivityTarget.week == week,
                                     ActivityTarget.user_id.in_(users)))).scalars()}
    kept: dict[tuple[int, TargetMetric, int | None], ActivityTarget] = {}
    changed: set[int] = set()
    # New targets are inserted in the order they are added: one order for every writer
    # (see set_budgets), so concurrent writers never wait for each other crosswise.
    for key in sorted(wanted, key=lambda k: (k[0], k[1].value, k[2] or 0)):
        value, current = wanted[key], existing.get(key)
        if value == 0:
            if current is not None:
                await session.delete(current)
                changed.add(key[0])
            continue
        if current is None:
            current = ActivityTarget(user_id=key[0], week=week, metric=key[1],
                                     activity_type_id=key[2], target=value)
            session.add(current)
            changed.add(key[0])
        elif current.target != value:
            current.target = value
            changed.add(key[0])
        kept[key] = current
    await session.flush()
    return [kept[key] for key in wanted if key in kept], changed


async def set_targets(*, viewer: Viewer, db: Database, events: EventHub, week: str,
                      lines: list[TargetLine]) -> Outcome[list[ActivityTarget]]:
    async def action() -> list[ActivityTarget]:
        _require_target_setter(viewer)
        checks = Checks()
        monday = _week_input(checks, "week", week)
        if len(lines) > MAX_TARGETS_PER_CALL:
            checks.fail("targets", f"at most {MAX_TARGETS_PER_CALL} targets per call")
            checks.raise_if_any()
        async with db.transaction() as session:
            users = await _target_users(session, viewer, checks, lines)
            types = await _type_keys(session, checks, lines)
            wanted: dict[tuple[int, TargetMetric, int | None], int] = {}
            for index, line in enumerate(lines):
                if not 0 <= line.target <= MAX_TARGET:
                    checks.fail(f"targets.{index}.target",
                                f"a target is a whole number from 0 to {MAX_TARGET}")
                if index not in users:
                    continue
                key = (users[index], line.metric, types.get(index))
                if key in wanted:
                    checks.fail(f"targets.{index}", "the same user, metric and activity type "
                                "is given twice")
                wanted[key] = line.target
            checks.raise_if_any()
            assert monday is not None
            kept, changed = await _upsert_targets(session, monday, wanted)
            records = await _target_events(session, monday, wanted, changed)
        await _announce(events, records)
        return kept

    return await mutate(action, on_duplicate=ON_DUPLICATE)


async def copy_targets(*, viewer: Viewer, db: Database, events: EventHub, from_week: str,
                       to_week: str, team_id: str, overwrite: bool
                       ) -> Outcome[list[ActivityTarget]]:
    """Copy one week's targets of the team's members to another week. Targets already
    set in the other week stay unless ``overwrite``."""
    async def action() -> list[ActivityTarget]:
        _require_target_setter(viewer)
        checks = Checks()
        source = _week_input(checks, "fromWeek", from_week)
        destination = _week_input(checks, "toWeek", to_week)
        if source is not None and source == destination:
            checks.fail("toWeek", "toWeek is the same week as fromWeek")
        team = checks.global_id("teamId", team_id, "Team")
        checks.raise_if_any()
        async with db.transaction() as session:
            if (await session.execute(select(TEAMS.c.id).where(TEAMS.c.id == team))
                    ).first() is None:
                raise not_found("teamId", "team")
            if viewer.role is Role.MANAGER and team != viewer.team_id:
                raise forbidden("managers set targets for their own team only", "teamId")
            copied = (await session.execute(
                select(ACTIVITY_TARGETS.c.user_id, ACTIVITY_TARGETS.c.metric,
                       ACTIVITY_TARGETS.c.activity_type_id, ACTIVITY_TARGETS.c.target)
                .join(USERS, USERS.c.id == ACTIVITY_TARGETS.c.user_id)
                .where(ACTIVITY_TARGETS.c.week == source, USERS.c.team_id == team,
                       USERS.c.active.is_(True)))).all()
            assert destination is not None
            wanted = {(r.user_id, r.metric, r.activity_type_id): r.target for r in copied}
            if not overwrite:
                present = {(r.user_id, r.metric, r.activity_type_id) for r in (
                    await session.execute(select(ACTIVITY_TARGETS).where(
                        ACTIVITY_TARGETS.c.week == destination,
                        ACTIVITY_TARGETS.c.user_id.in_({k[0] for k in wanted})))).all()}
                wanted = {k: v for k, v in wanted.items() if k not in present}
            kept, changed = await _upsert_targets(session, destination, wanted)
            records = await _target_events(session, destination, wanted, changed)
        await _announce(events, records)
        return kept

    return await mutate(action, on_duplicate=ON_DUPLICATE)


# --- the live feed ------------------------------------------------------------------------


@dataclass(frozen=True)
class AttainmentFeed:
    user_id: int | None = None
    team_id: int | None = None
    week: str | None = None
    # A rep's feed without a user or team: itself and its team.
    own_user_id: int | None = None
    own_team_id: int | None = None

    def matches(self, payload: dict[str, Any]) -> bool:
        if self.own_user_id is not None and payload["userId"] != self.own_user_id and (
                self.own_team_id is None or payload["teamId"] != self.own_team_id):
            return False
        return all((
            self.user_id is None or payload["userId"] == self.user_id,
            self.team_id is None or payload["teamId"] == self.team_id,
            self.week is None or payload["week"] == self.week,
        ))


async def attainment_feed(*, loaders: Loaders, user_id: int | None, team_id: int | None,
                          week: date | None) -> AttainmentFeed:
    """The feed the viewer asked for, checked like the queries: FORBIDDEN up front."""
    viewer = loaders.viewer
    _refuse_partner(viewer)
    if user_id is not None:
        await visible_user(loaders, user_id)
    if team_id is not None:
        await visible_team(loaders, team_id)
    rep_scope = viewer.role is Role.REP and user_id is None and team_id is None
    return AttainmentFeed(
        user_id=user_id, team_id=team_id, week=format_week(week) if week else None,
        own_user_id=viewer.user_id if rep_scope else None,
        own_team_id=viewer.team_id if rep_scope else None)


async def attainment_changes(*, events: EventHub, feed: AttainmentFeed, after: int | None
                             ) -> AsyncIterator[EventRecord]:
    async for event in events.stream(frozenset({TARGET_TOPIC}), after=after,
                                     matches=lambda e: feed.matches(e.payload)):
        yield event


def event_rows(event: EventRecord, figures: UserWeekFigures) -> list[AttainmentData]:
    """The rows an event touched, as they are now: for an activity, the targets it
    counts toward (overall, or of its type); for changed targets, those targets (a
    removed one with a null target). Where none of those rows has a target, the overall
    COUNT and POINTS rows."""
    payload = event.payload
    rows = attainment_rows(figures)
    if payload["reason"] == Reason.TARGET_CHANGED:
        keys = {(TargetMetric(metric), type_id) for metric, type_id in payload["targets"]}
        touched = [r for r in rows if (r.metric, r.activity_type_id) in keys]
        # A removed type target is no longer a row: say so with a row without target.
        present = {(r.metric, r.activity_type_id) for r in rows}
        for metric, type_id in sorted(keys - present, key=lambda k: (k[0].value, k[1] or 0)):
            done = figures.realized(type_id)
            touched.append(AttainmentData(
                figures.user_id, figures.week, metric, type_id, None,
                done.count if metric is TargetMetric.COUNT else done.points))
    else:
        touched = [r for r in rows if r.target is not None and r.activity_type_id in (
            None, payload["activityTypeId"])]
    return touched or [r for r in rows if r.activity_type_id is None]
