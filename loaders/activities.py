"""Activities, activity types and targets: read policy, filters, ordering, loaders, and
the per user-week figures attainment is computed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select, true, tuple_

from loaders.base import ChildCountLoader, ChildPageLoader, Loader, RowByIdLoader
from loaders.query import FilterSpec, Related, Scalar, Sortable
from loaders.users import ACCOUNTS, USER_FILTER, USERS, team_mates
from models.activities import Activity, ActivityStatus, ActivityTarget, ActivityType
from models.users import Role, Viewer

ACTIVITIES = Activity.__table__
ACTIVITY_TYPES = ActivityType.__table__
ACTIVITY_TARGETS = ActivityTarget.__table__


def visible_activities(viewer: Viewer) -> ColumnElement[bool]:
    """Activities are the organisation's own work: staff read them all, partners none."""
    return false() if viewer.role is Role.PARTNER else true()


def visible_activity_types(viewer: Viewer) -> ColumnElement[bool]:
    return false() if viewer.role is Role.PARTNER else true()


def visible_targets(viewer: Viewer) -> ColumnElement[bool]:
    """Admins and managers read every target; a rep its own and its team's (the team
    board); partners none."""
    if viewer.role is Role.PARTNER:
        return false()
    if viewer.role is Role.REP:
        return ACTIVITY_TARGETS.c.user_id.in_(team_mates(viewer))
    return true()


def _account_filter() -> FilterSpec:
    from loaders.accounts import ACCOUNT_FILTER  # accounts' filter module imports ours

    return ACCOUNT_FILTER


ACTIVITY_TYPE_FILTER = FilterSpec(
    fields={
        "id": Scalar(ACTIVITY_TYPES.c.id, id_type="ActivityType"),
        "code": Scalar(ACTIVITY_TYPES.c.code),
        "name": Scalar(ACTIVITY_TYPES.c.name),
    },
    visibility=visible_activity_types,
)

ACTIVITY_FILTER = FilterSpec(
    fields={
        "id": Scalar(ACTIVITIES.c.id, id_type="Activity"),
        "subject": Scalar(ACTIVITIES.c.subject),
        "type_id": Scalar(ACTIVITIES.c.type_id, id_type="ActivityType"),
        "status": Scalar(ACTIVITIES.c.status),
        "owner_id": Scalar(ACTIVITIES.c.owner_id, id_type="User"),
        "team_id": Scalar(
            select(USERS.c.team_id).where(USERS.c.id == ACTIVITIES.c.owner_id)
            .scalar_subquery(), id_type="Team"),
        "account_id": Scalar(ACTIVITIES.c.account_id, id_type="Account"),
        "contact_id": Scalar(ACTIVITIES.c.contact_id, id_type="Contact"),
        "opportunity_id": Scalar(ACTIVITIES.c.opportunity_id, id_type="Opportunity"),
        "campaign_id": Scalar(ACTIVITIES.c.campaign_id, id_type="Campaign"),
        "due_at": Scalar(ACTIVITIES.c.due_at),
        "completed_at": Scalar(ACTIVITIES.c.completed_at),
        "points_earned": Scalar(ACTIVITIES.c.points_earned),
        "created_at": Scalar(ACTIVITIES.c.created_at),
        "updated_at": Scalar(ACTIVITIES.c.updated_at),
        "type": Related(lambda: ACTIVITY_TYPE_FILTER,
                        lambda: ACTIVITY_TYPES.c.id == ACTIVITIES.c.type_id, False),
        "owner": Related(lambda: USER_FILTER, lambda: USERS.c.id == ACTIVITIES.c.owner_id,
                         False),
        "account": Related(_account_filter, lambda: ACCOUNTS.c.id == ACTIVITIES.c.account_id,
                           False),
    },
    visibility=visible_activities,
)

ACTIVITY_ORDER = {
    "DUE_AT": Sortable(ACTIVITIES.c.due_at, nullable=True),
    "COMPLETED_AT": Sortable(ACTIVITIES.c.completed_at, nullable=True),
    "SUBJECT": Sortable(ACTIVITIES.c.subject),
    "CREATED_AT": Sortable(ACTIVITIES.c.created_at),
    "UPDATED_AT": Sortable(ACTIVITIES.c.updated_at),
}


def activities_statement(viewer: Viewer) -> Select[Any]:
    return select(ACTIVITIES).where(visible_activities(viewer))


class ActivityByIdLoader(RowByIdLoader):
    table = ACTIVITIES
    visibility = staticmethod(visible_activities)


class ActivityTypeByIdLoader(RowByIdLoader):
    table = ACTIVITY_TYPES
    visibility = staticmethod(visible_activity_types)


class ActivityTargetByIdLoader(RowByIdLoader):
    table = ACTIVITY_TARGETS
    visibility = staticmethod(visible_targets)


class _ActivityPages(ChildPageLoader):
    filter_spec = ACTIVITY_FILTER
    orderable = ACTIVITY_ORDER
    default_order = ("CREATED_AT",)

    def base_statement(self) -> Select[Any]:
        return activities_statement(self.viewer)


class _ActivityCounts(ChildCountLoader):
    filter_spec = ACTIVITY_FILTER

    def base_statement(self) -> Select[Any]:
        return activities_statement(self.viewer)


class ActivitiesByAccountLoader(_ActivityPages):
    parent_column = ACTIVITIES.c.account_id


class ActivityCountByAccountLoader(_ActivityCounts):
    parent_column = ACTIVITIES.c.account_id


class ActivitiesByContactLoader(_ActivityPages):
    parent_column = ACTIVITIES.c.contact_id


class ActivityCountByContactLoader(_ActivityCounts):
    parent_column = ACTIVITIES.c.contact_id


class ActivitiesByOpportunityLoader(_ActivityPages):
    parent_column = ACTIVITIES.c.opportunity_id


class ActivityCountByOpportunityLoader(_ActivityCounts):
    parent_column = ACTIVITIES.c.opportunity_id


# --- attainment figures -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Realized:
    count: int = 0
    points: int = 0


@dataclass
class UserWeekFigures:
    """What one user did and aimed for in one week, aggregated in SQL: the targets,
    and the completed activities' count and points per activity type."""

    user_id: int
    week: date
    targets: list[Any] = field(default_factory=list)  # activity_targets rows
    by_type: dict[int, Realized] = field(default_factory=dict)

    def realized(self, activity_type_id: int | None) -> Realized:
        if activity_type_id is not None:
            return self.by_type.get(activity_type_id, Realized())
        return Realized(sum(r.count for r in self.by_type.values()),
                        sum(r.points for r in self.by_type.values()))


class FiguresByUserWeekLoader(Loader):
    """Targets and realized figures for (user id, week Monday) keys: two statements for
    any number of users and weeks. Authorization is the resolver's: it asks only for
    user-weeks the viewer may see."""

    async def batch_load_fn(self, keys: list[tuple[int, date]]) -> list[UserWeekFigures]:
        figures = {key: UserWeekFigures(*key) for key in keys}
        wanted = list(dict.fromkeys(keys))
        targets = (
            select(ACTIVITY_TARGETS)
            .where(tuple_(ACTIVITY_TARGETS.c.user_id, ACTIVITY_TARGETS.c.week).in_(wanted))
            .order_by(ACTIVITY_TARGETS.c.id))
        realized = (
            select(ACTIVITIES.c.owner_id, ACTIVITIES.c.completed_week, ACTIVITIES.c.type_id,
                   func.count(), func.sum(ACTIVITIES.c.points_earned))
            .where(ACTIVITIES.c.status == ActivityStatus.DONE,
                   tuple_(ACTIVITIES.c.owner_id, ACTIVITIES.c.completed_week).in_(wanted))
            .group_by(ACTIVITIES.c.owner_id, ACTIVITIES.c.completed_week,
                      ACTIVITIES.c.type_id))
        async with self.db.read() as connection:
            for row in await connection.execute(targets):
                figures[(row.user_id, row.week)].targets.append(row)
            for owner, week, type_id, count, points in await connection.execute(realized):
                figures[(owner, week)].by_type[type_id] = Realized(int(count), int(points or 0))
        return [figures[key] for key in keys]


class MembersByTeamLoader(Loader):
    """Each team's active reps, by name: the people on the team's board."""

    async def batch_load_fn(self, keys: list[int]) -> list[list[Any]]:
        statement = (select(USERS).where(USERS.c.team_id.in_(keys), USERS.c.active.is_(True),
                                         USERS.c.role == Role.REP)
                     .order_by(USERS.c.team_id, USERS.c.name, USERS.c.id))
        grouped: dict[int, list[Any]] = {}
        async with self.db.read() as connection:
            for row in await connection.execute(statement):
                grouped.setdefault(row.team_id, []).append(row)
        return [grouped.get(key, []) for key in keys]
