"""Activities, activity types, weekly targets and attainment: types, filters, queries,
mutations, and the live attainment feed and leaderboard."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import UNSET, Private

from loaders.accounts import AccountByIdLoader, ContactByIdLoader
from loaders.activities import (
    ActivitiesByAccountLoader,
    ActivitiesByContactLoader,
    ActivitiesByOpportunityLoader,
    ActivityByIdLoader,
    ActivityCountByAccountLoader,
    ActivityCountByContactLoader,
    ActivityCountByOpportunityLoader,
    ActivityTypeByIdLoader,
    FiguresByUserWeekLoader,
)
from loaders.ids import decode_id, decode_optional_id, encode_id
from loaders.opportunities import OpportunityByIdLoader
from loaders.query import PageArgs
from loaders.users import TeamByIdLoader
from models.activities import ActivityStatus as ActivityStatusEnum
from models.activities import TargetMetric as TargetMetricEnum
from resolvers import activities as resolve
from resolvers.activities import AttainmentData, Reason, TargetLine, week_argument
from resolvers.weeks import current_week, format_week
from schema import accounts as account_types  # accounts and opportunities refer back here
from schema import campaigns as campaign_types
from schema import opportunities as opportunity_types
from schema.context import Info, viewer_of
from schema.errors import UserError, payload, user_errors
from schema.filters import (
    DateTimeFilter,
    IDFilter,
    IntFilter,
    OrderDirection,
    StringFilter,
    enum_filter,
)
from schema.inputs import sent_changes
from schema.live import after_event, bursts, close_behind
from schema.relay import Connection, Node, child_connection, connection
from schema.rows import rows_of
from schema.users import Team, User, UserFilter, user_of
from subscriptions.hub import Overflowed
from subscriptions.outbox import EventRecord, last_event_id

if TYPE_CHECKING:
    from schema.accounts import Account, AccountFilter, Contact
    from schema.campaigns import Campaign
    from schema.opportunities import Opportunity

ActivityStatus = strawberry.enum(ActivityStatusEnum, name="ActivityStatus")
TargetMetric = strawberry.enum(
    TargetMetricEnum, name="TargetMetric",
    description="COUNT: number of completed activities; POINTS: their points.")
ActivityStatusFilter = enum_filter(ActivityStatus, "ActivityStatusFilter")


@strawberry.enum(description="What changed a user-week's attainment.")
class AttainmentChangeReason(Enum):
    COMPLETED = Reason.COMPLETED
    REOPENED = Reason.REOPENED
    CANCELLED = Reason.CANCELLED
    DELETED = Reason.DELETED
    MOVED = Reason.MOVED
    TARGET_CHANGED = Reason.TARGET_CHANGED


# --- types --------------------------------------------------------------------------------


@strawberry.type(description="A kind of activity and the points completing one earns.")
class ActivityType(Node):
    id: strawberry.ID
    code: str
    name: str
    points: int = strawberry.field(description="Earned by activities completed from now on; "
                                   "what was earned before stays.")
    active: bool = strawberry.field(description="Inactive types take no new activities.")
    version: int

    @classmethod
    def from_row(cls, row: Any) -> ActivityType:
        return cls(id=encode_id("ActivityType", row.id), code=row.code, name=row.name,
                   points=row.points, active=row.active, version=row.version)


async def _activity_type(info: Info, key: int | None) -> ActivityType | None:
    if key is None:
        return None
    row = await info.context.loaders.get(ActivityTypeByIdLoader).load(key)
    return ActivityType.from_row(row) if row else None


@strawberry.type(description="A call, meeting, task ... planned, done or cancelled.")
class Activity(Node):
    id: strawberry.ID
    version: int = strawberry.field(description="Pass as expectedVersion when changing it.")
    subject: str
    notes: str | None
    status: ActivityStatus  # type: ignore[valid-type]
    due_at: datetime | None
    completed_at: datetime | None
    completed_week: str | None = strawberry.field(
        description="The ISO week (org time zone) it counts for, once DONE.")
    points_earned: int | None = strawberry.field(
        description="The type's points when it was completed; null unless DONE.")
    campaign_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime
    _key: Private[int]
    _type_id: Private[int]
    _owner_id: Private[int]
    _account_id: Private[int | None]
    _contact_id: Private[int | None]
    _opportunity_id: Private[int | None]
    _campaign_key: Private[int | None]

    @classmethod
    def from_row(cls, row: Any) -> Activity:
        return cls(
            id=encode_id("Activity", row.id), version=row.version, subject=row.subject,
            notes=row.notes, status=row.status, due_at=row.due_at,
            completed_at=row.completed_at,
            completed_week=format_week(row.completed_week) if row.completed_week else None,
            points_earned=row.points_earned,
            campaign_id=encode_id("Campaign", row.campaign_id) if row.campaign_id else None,
            created_at=row.created_at, updated_at=row.updated_at, _key=row.id,
            _type_id=row.type_id, _owner_id=row.owner_id, _account_id=row.account_id,
            _contact_id=row.contact_id, _opportunity_id=row.opportunity_id,
            _campaign_key=row.campaign_id,
        )

    @strawberry.field(description="The campaign the activity belongs to.")
    async def campaign(self, info: Info
                       ) -> Annotated[Campaign, strawberry.lazy("schema.campaigns")] | None:
        return await campaign_types.campaign_of(info, self._campaign_key)

    @strawberry.field
    async def type(self, info: Info) -> ActivityType:
        return await _activity_type(info, self._type_id)  # type: ignore[return-value]

    @strawberry.field
    async def owner(self, info: Info) -> User:
        return await user_of(info, self._owner_id)  # type: ignore[return-value]

    @strawberry.field
    async def account(self, info: Info
                      ) -> Annotated[Account, strawberry.lazy("schema.accounts")] | None:
        if self._account_id is None:
            return None
        row = await info.context.loaders.get(AccountByIdLoader).load(self._account_id)
        return account_types.Account.from_row(row) if row else None

    @strawberry.field
    async def contact(self, info: Info
                      ) -> Annotated[Contact, strawberry.lazy("schema.accounts")] | None:
        if self._contact_id is None:
            return None
        row = await info.context.loaders.get(ContactByIdLoader).load(self._contact_id)
        return account_types.Contact.from_row(row) if row else None

    @strawberry.field
    async def opportunity(
        self, info: Info
    ) -> Annotated[Opportunity, strawberry.lazy("schema.opportunities")] | None:
        if self._opportunity_id is None:
            return None
        row = await info.context.loaders.get(OpportunityByIdLoader).load(self._opportunity_id)
        return opportunity_types.Opportunity.from_row(row) if row else None


@strawberry.type(description="What one user should do in one week.")
class ActivityTarget(Node):
    id: strawberry.ID
    version: int
    week: str = strawberry.field(description="ISO week, e.g. 2026-W48.")
    week_start: date = strawberry.field(description="The Monday the week starts on.")
    metric: TargetMetric  # type: ignore[valid-type]
    target: int
    _user_id: Private[int]
    _type_id: Private[int | None]

    @classmethod
    def from_row(cls, row: Any) -> ActivityTarget:
        return cls(id=encode_id("ActivityTarget", row.id), version=row.version,
                   week=format_week(row.week), week_start=row.week, metric=row.metric,
                   target=row.target, _user_id=row.user_id, _type_id=row.activity_type_id)

    @strawberry.field
    async def user(self, info: Info) -> User:
        return await user_of(info, self._user_id)  # type: ignore[return-value]

    @strawberry.field(description="Null: activities of every type count.")
    async def activity_type(self, info: Info) -> ActivityType | None:
        return await _activity_type(info, self._type_id)


@strawberry.type(description="A user's target for one week against what was realized.")
class AttainmentRow:
    week: str = strawberry.field(description="ISO week, e.g. 2026-W48.")
    week_start: date
    metric: TargetMetric  # type: ignore[valid-type]
    target: int | None = strawberry.field(description="Null when no target is set.")
    realized: int = strawberry.field(
        description="Completed activities (COUNT) or their points (POINTS) in the week.")
    ratio: float | None = strawberry.field(
        description="realized / target, to four decimals; null without a target.")
    _user_id: Private[int]
    _type_id: Private[int | None]

    @classmethod
    def from_data(cls, data: AttainmentData) -> AttainmentRow:
        return cls(week=format_week(data.week), week_start=data.week, metric=data.metric,
                   target=data.target, realized=data.realized, ratio=data.ratio,
                   _user_id=data.user_id, _type_id=data.activity_type_id)

    @strawberry.field
    async def user(self, info: Info) -> User:
        return await user_of(info, self._user_id)  # type: ignore[return-value]

    @strawberry.field(description="Null: the row counts activities of every type.")
    async def activity_type(self, info: Info) -> ActivityType | None:
        return await _activity_type(info, self._type_id)


@strawberry.type(description="A user-week's attainment row after a change, live.")
class AttainmentEvent(AttainmentRow):
    event_id: str = strawberry.field(
        description="Pass as `after` when resubscribing to miss nothing. The rows one "
        "change touched come one after the other with the same eventId.")
    reason: AttainmentChangeReason

    @classmethod
    def from_event(cls, event: EventRecord, data: AttainmentData) -> AttainmentEvent:
        return cls(event_id=str(event.id), reason=AttainmentChangeReason(event.payload["reason"]),
                   week=format_week(data.week), week_start=data.week, metric=data.metric,
                   target=data.target, realized=data.realized, ratio=data.ratio,
                   _user_id=data.user_id, _type_id=data.activity_type_id)


@strawberry.type(description="One place on a team's activity leaderboard.")
class LeaderboardEntry:
    rank: int = strawberry.field(description="1 is first; equal figures share a rank.")
    realized: int
    target: int | None
    ratio: float | None
    _user_id: Private[int]

    @strawberry.field
    async def user(self, info: Info) -> User:
        return await user_of(info, self._user_id)  # type: ignore[return-value]


@strawberry.type(description="A team's members ranked by what they realized in a week.")
class ActivityLeaderboard:
    week: str
    week_start: date
    metric: TargetMetric  # type: ignore[valid-type]
    entries: list[LeaderboardEntry]
    _team_id: Private[int]

    @classmethod
    def build(cls, team_id: int, week: date, metric: TargetMetricEnum,
              entries: list[resolve.LeaderboardEntry]) -> ActivityLeaderboard:
        return cls(week=format_week(week), week_start=week, metric=metric, _team_id=team_id,
                   entries=[LeaderboardEntry(rank=e.rank, realized=e.row.realized,
                                             target=e.row.target, ratio=e.row.ratio,
                                             _user_id=e.row.user_id) for e in entries])

    @strawberry.field
    async def team(self, info: Info) -> Team:
        return Team.from_row(await info.context.loaders.get(TeamByIdLoader).load(self._team_id))


def _rows(data: list[AttainmentData]) -> list[AttainmentRow]:
    return [AttainmentRow.from_data(row) for row in data]


async def user_attainment_field(info: Info, user_id: int, week: str | None
                                ) -> list[AttainmentRow]:
    """User.attainment: the user's rows for a week (this week when none is given)."""
    monday = week_argument(week) if week else current_week(info.context.org_timezone)
    return _rows(await resolve.user_attainment(loaders=info.context.loaders, user_id=user_id,
                                               week=monday))


# --- filters and ordering -----------------------------------------------------------------


@strawberry.input(description="Conditions on activity types.")
class ActivityTypeFilter:
    id: IDFilter | None = UNSET
    code: StringFilter | None = UNSET
    name: StringFilter | None = UNSET


@strawberry.input(description="Conditions on activities; combine with and, or, not.")
class ActivityFilter:
    id: IDFilter | None = UNSET
    subject: StringFilter | None = UNSET
    type_id: IDFilter | None = UNSET
    status: ActivityStatusFilter | None = UNSET  # type: ignore[valid-type]
    owner_id: IDFilter | None = UNSET
    team_id: IDFilter | None = strawberry.field(default=UNSET,
                                                description="The owner's team.")
    account_id: IDFilter | None = UNSET
    contact_id: IDFilter | None = UNSET
    opportunity_id: IDFilter | None = UNSET
    campaign_id: IDFilter | None = UNSET
    due_at: DateTimeFilter | None = UNSET
    completed_at: DateTimeFilter | None = UNSET
    points_earned: IntFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    updated_at: DateTimeFilter | None = UNSET
    type: ActivityTypeFilter | None = UNSET
    owner: UserFilter | None = UNSET
    account: Annotated[AccountFilter, strawberry.lazy("schema.accounts")] | None = UNSET
    and_: list[ActivityFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[ActivityFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: ActivityFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What activities can be ordered by.")
class ActivityOrderField(Enum):
    DUE_AT = "DUE_AT"
    COMPLETED_AT = "COMPLETED_AT"
    SUBJECT = "SUBJECT"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    ID = "ID"


@strawberry.input(description="One ordering key for activities; nulls sort last ascending.")
class ActivityOrder:
    field: ActivityOrderField
    direction: OrderDirection = OrderDirection.ASC


async def activity_connection(
    info: Info, key: int, *, pages: type[Any], counts: type[Any], first: int | None,
    after: str | None, last: int | None, before: str | None, filter: ActivityFilter | None,
    order_by: list[ActivityOrder] | None,
) -> Connection[Activity]:
    """Account.activities, Contact.activities, Opportunity.activities."""
    return await child_connection(
        info.context.loaders, key, pages=pages, counts=counts,
        args=PageArgs(first, after, last, before), filter=filter, order_by=order_by,
        convert=Activity.from_row)


ACCOUNT_PAGES = (ActivitiesByAccountLoader, ActivityCountByAccountLoader)
CONTACT_PAGES = (ActivitiesByContactLoader, ActivityCountByContactLoader)
OPPORTUNITY_PAGES = (ActivitiesByOpportunityLoader, ActivityCountByOpportunityLoader)


# --- queries ------------------------------------------------------------------------------


@strawberry.type
class ActivityQueries:
    @strawberry.field
    @rows_of(ActivityByIdLoader)
    async def activity(self, info: Info, id: strawberry.ID) -> Activity | None:
        viewer_of(info)
        row = await info.context.loaders.get(ActivityByIdLoader).load(decode_id(id, "Activity"))
        return Activity.from_row(row) if row else None

    @strawberry.field(description="Activities (none for partners), filtered and ordered.")
    async def activities(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: ActivityFilter | None = None, order_by: list[ActivityOrder] | None = None,
    ) -> Connection[Activity]:
        viewer_of(info)
        listing = await resolve.list_activities(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by)
        return connection(listing.page, Activity.from_row, listing.total_count)

    @strawberry.field(description="Activity types by code; inactive ones only when asked.")
    async def activity_types(self, info: Info, include_inactive: bool = False
                             ) -> list[ActivityType]:
        viewer_of(info)
        rows = await resolve.list_activity_types(loaders=info.context.loaders,
                                                 include_inactive=include_inactive)
        return [ActivityType.from_row(row) for row in rows]

    @strawberry.field(description="The ISO week it is now in the organisation's time zone.")
    def current_week(self, info: Info) -> str:
        viewer_of(info)
        return format_week(current_week(info.context.org_timezone))

    @strawberry.field(description="The targets of a week, for one user, one team, or every "
                      "user the viewer may see (a rep: itself and its team).")
    async def activity_targets(
        self, info: Info, week: str, user_id: strawberry.ID | None = None,
        team_id: strawberry.ID | None = None,
    ) -> list[ActivityTarget]:
        viewer_of(info)
        rows = await resolve.list_targets(
            loaders=info.context.loaders, week=week_argument(week),
            user_id=decode_optional_id(user_id, "User"),
            team_id=decode_optional_id(team_id, "Team"))
        return [ActivityTarget.from_row(row) for row in rows]

    @strawberry.field(description="A user's week: overall COUNT and POINTS rows, then one "
                      "row per activity-type target. `week` is an ISO week or a date in it.")
    async def attainment(self, info: Info, user_id: strawberry.ID, week: str
                         ) -> list[AttainmentRow]:
        viewer_of(info)
        return _rows(await resolve.user_attainment(
            loaders=info.context.loaders, user_id=decode_id(user_id, "User"),
            week=week_argument(week)))

    @strawberry.field(description="The attainment rows of the team's active reps for a week, "
                      "by name.")
    async def team_attainment(self, info: Info, team_id: strawberry.ID, week: str
                              ) -> list[AttainmentRow]:
        viewer_of(info)
        return _rows(await resolve.team_attainment(
            loaders=info.context.loaders, team_id=decode_id(team_id, "Team"),
            week=week_argument(week)))

    @strawberry.field(description="A user's attainment rows week by week, at most 106 weeks.")
    async def attainment_history(self, info: Info, user_id: strawberry.ID, from_week: str,
                                 to_week: str) -> list[AttainmentRow]:
        viewer_of(info)
        return _rows(await resolve.attainment_history(
            loaders=info.context.loaders, user_id=decode_id(user_id, "User"),
            from_week=week_argument(from_week, "fromWeek"),
            to_week=week_argument(to_week, "toWeek")))

    @strawberry.field(description="A team's active reps ranked by what they realized in a week.")
    async def activity_leaderboard(
        self, info: Info, team_id: strawberry.ID, week: str,
        metric: TargetMetric = TargetMetricEnum.POINTS,  # type: ignore[valid-type]
    ) -> ActivityLeaderboard:
        viewer_of(info)
        team, monday = decode_id(team_id, "Team"), week_argument(week)
        entries = await resolve.leaderboard(loaders=info.context.loaders, team_id=team,
                                            week=monday, metric=metric)
        return ActivityLeaderboard.build(team, monday, metric, entries)


# --- mutations ----------------------------------------------------------------------------


@strawberry.input
class LogActivityInput:
    type_id: strawberry.ID
    subject: str
    notes: str | None = None
    status: ActivityStatus | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Defaults to PLANNED; DONE logs a completed activity.")
    due_at: datetime | None = None
    completed_at: datetime | None = strawberry.field(
        default=None, description="For DONE only; defaults to now.")
    account_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the contact's or opportunity's account.")
    contact_id: strawberry.ID | None = None
    opportunity_id: strawberry.ID | None = None
    campaign_id: strawberry.ID | None = None
    owner_id: strawberry.ID | None = strawberry.field(default=None,
                                                      description="Defaults to the viewer.")


@strawberry.input(description="Only the fields sent are changed; null clears a field.")
class UpdateActivityInput:
    id: strawberry.ID
    expected_version: int
    type_id: strawberry.ID | None = UNSET
    subject: str | None = UNSET
    notes: str | None = UNSET
    due_at: datetime | None = UNSET
    completed_at: datetime | None = strawberry.field(
        default=UNSET, description="Of a DONE activity: may move it to another week.")
    account_id: strawberry.ID | None = UNSET
    contact_id: strawberry.ID | None = UNSET
    opportunity_id: strawberry.ID | None = UNSET
    campaign_id: strawberry.ID | None = UNSET
    owner_id: strawberry.ID | None = UNSET


@strawberry.input
class CompleteActivityInput:
    id: strawberry.ID
    expected_version: int
    completed_at: datetime | None = strawberry.field(default=None,
                                                     description="Defaults to now.")


@strawberry.input
class ActivityVersionInput:
    id: strawberry.ID
    expected_version: int


@strawberry.type
class ActivityPayload:
    activity: Activity | None
    user_errors: list[UserError]


@strawberry.type
class DeleteActivityPayload:
    deleted_activity_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.input(description="One target; a target of 0 removes it.")
class ActivityTargetInput:
    user_id: strawberry.ID
    metric: TargetMetric  # type: ignore[valid-type]
    activity_type_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only activities of this type count; null: every type.")
    target: int


@strawberry.input(description="Targets of one week, created or replaced; others stay.")
class SetActivityTargetsInput:
    week: str = strawberry.field(description="ISO week (2026-W48) or a date in it.")
    targets: list[ActivityTargetInput]


@strawberry.input(description="Copy a week's targets of a team's members to another week.")
class CopyActivityTargetsInput:
    from_week: str
    to_week: str
    team_id: strawberry.ID
    overwrite: bool = strawberry.field(
        default=False, description="Replace the targets toWeek already has for the same "
        "user, metric and type; without it they stay.")


@strawberry.type
class ActivityTargetsPayload:
    targets: list[ActivityTarget]
    user_errors: list[UserError]


@strawberry.input
class CreateActivityTypeInput:
    code: str
    name: str
    points: int


@strawberry.input(description="Only the fields sent are changed.")
class UpdateActivityTypeInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    points: int | None = strawberry.field(
        default=UNSET, description="Counts for activities completed from now on.")
    active: bool | None = UNSET


@strawberry.type
class ActivityTypePayload:
    activity_type: ActivityType | None
    user_errors: list[UserError]


def _activity_payload(outcome: Any) -> ActivityPayload:
    return payload(ActivityPayload, "activity", Activity.from_row, outcome)


def _targets_payload(outcome: Any) -> ActivityTargetsPayload:
    return ActivityTargetsPayload(
        targets=[ActivityTarget.from_row(t) for t in outcome.value or []],
        user_errors=user_errors(outcome.errors))


def _type_payload(outcome: Any) -> ActivityTypePayload:
    return payload(ActivityTypePayload, "activity_type", ActivityType.from_row, outcome)


@strawberry.type
class ActivityMutations:
    @strawberry.mutation(description="Log an activity: planned, or already DONE.")
    async def log_activity(self, info: Info, input: LogActivityInput) -> ActivityPayload:
        return _activity_payload(await resolve.log_activity(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            timezone=info.context.org_timezone, type_id=input.type_id, subject=input.subject,
            notes=input.notes, status=input.status, due_at=input.due_at,
            completed_at=input.completed_at, account_id=input.account_id,
            contact_id=input.contact_id, opportunity_id=input.opportunity_id,
            campaign_id=input.campaign_id, owner_id=input.owner_id))

    @strawberry.mutation(description="Change an activity's fields.")
    async def update_activity(self, info: Info, input: UpdateActivityInput) -> ActivityPayload:
        return _activity_payload(await resolve.update_activity(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            timezone=info.context.org_timezone, activity_id=input.id,
            expected_version=input.expected_version, changes=sent_changes(input)))

    @strawberry.mutation(description="Mark an activity DONE: it earns its type's points now.")
    async def complete_activity(self, info: Info, input: CompleteActivityInput
                                ) -> ActivityPayload:
        return _activity_payload(await resolve.change_status(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            timezone=info.context.org_timezone, activity_id=input.id,
            expected_version=input.expected_version, status=ActivityStatusEnum.DONE,
            completed_at=input.completed_at))

    @strawberry.mutation(description="Back to PLANNED from DONE or CANCELLED.")
    async def reopen_activity(self, info: Info, input: ActivityVersionInput) -> ActivityPayload:
        return _activity_payload(await resolve.change_status(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            timezone=info.context.org_timezone, activity_id=input.id,
            expected_version=input.expected_version, status=ActivityStatusEnum.PLANNED))

    @strawberry.mutation(description="Cancel a planned (or done) activity; it stops counting.")
    async def cancel_activity(self, info: Info, input: ActivityVersionInput) -> ActivityPayload:
        return _activity_payload(await resolve.change_status(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            timezone=info.context.org_timezone, activity_id=input.id,
            expected_version=input.expected_version, status=ActivityStatusEnum.CANCELLED))

    @strawberry.mutation(description="Delete an activity for good.")
    async def delete_activity(self, info: Info, input: ActivityVersionInput
                              ) -> DeleteActivityPayload:
        outcome = await resolve.delete_activity(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            activity_id=input.id, expected_version=input.expected_version)
        return DeleteActivityPayload(
            deleted_activity_id=input.id if outcome.value is not None else None,
            user_errors=user_errors(outcome.errors))

    @strawberry.mutation(description="Set targets of one week in bulk: a manager for the "
                         "team's members, an admin for anyone.")
    async def set_activity_targets(self, info: Info, input: SetActivityTargetsInput
                                   ) -> ActivityTargetsPayload:
        return _targets_payload(await resolve.set_targets(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            week=input.week, lines=[
                TargetLine(t.user_id, t.metric, t.activity_type_id, t.target)
                for t in input.targets]))

    @strawberry.mutation(description="Copy a team's targets from one week to another; returns "
                         "the targets written.")
    async def copy_activity_targets(self, info: Info, input: CopyActivityTargetsInput
                                    ) -> ActivityTargetsPayload:
        return _targets_payload(await resolve.copy_targets(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            from_week=input.from_week, to_week=input.to_week, team_id=input.team_id,
            overwrite=input.overwrite))

    @strawberry.mutation(description="Admins: a new activity type.")
    async def create_activity_type(self, info: Info, input: CreateActivityTypeInput
                                   ) -> ActivityTypePayload:
        return _type_payload(await resolve.create_activity_type(
            viewer=viewer_of(info), db=info.context.db, code=input.code, name=input.name,
            points=input.points))

    @strawberry.mutation(description="Admins: rename, re-point or retire an activity type.")
    async def update_activity_type(self, info: Info, input: UpdateActivityTypeInput
                                   ) -> ActivityTypePayload:
        return _type_payload(await resolve.update_activity_type(
            viewer=viewer_of(info), db=info.context.db, type_id=input.id,
            expected_version=input.expected_version, changes=sent_changes(input)))


# --- subscriptions ------------------------------------------------------------------------

LEADERBOARD_INTERVAL = 0.25


@strawberry.type
class ActivitySubscriptions:
    @strawberry.subscription(description="A user-week's attainment each time an activity is "
                             "completed, reopened, cancelled, deleted or moved between weeks, "
                             "or a target changes: one message per row the change touched. "
                             "Without userId or teamId a rep gets itself and its team. "
                             "With `after`, first every such change after that eventId.")
    async def target_attainment_changed(
        self, info: Info, user_id: strawberry.ID | None = None,
        team_id: strawberry.ID | None = None, week: str | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[AttainmentEvent, None]:
        viewer_of(info)
        feed = await resolve.attainment_feed(
            loaders=info.context.loaders, user_id=decode_optional_id(user_id, "User"),
            team_id=decode_optional_id(team_id, "Team"), week=week_argument(week) if week else None)
        try:
            async for event in resolve.attainment_changes(
                events=info.context.events, feed=feed,
                after=after_event(after),
            ):
                info.context.renew_loaders()  # each event is read fresh
                payload = event.payload
                monday = date.fromisoformat(payload["weekStart"])
                figures = await info.context.loaders.get(FiguresByUserWeekLoader).load(
                    (payload["userId"], monday))
                for row in resolve.event_rows(event, figures):
                    yield AttainmentEvent.from_event(event, row)
        except Overflowed:
            await close_behind(info)

    @strawberry.subscription(description="The team's leaderboard for a week, sent at once and "
                             "again after every change to it, at most every 250 ms.")
    async def leaderboard_changed(
        self, info: Info, team_id: strawberry.ID, week: str,
        metric: TargetMetric = TargetMetricEnum.POINTS,  # type: ignore[valid-type]
    ) -> AsyncGenerator[ActivityLeaderboard, None]:
        viewer_of(info)
        team, monday = decode_id(team_id, "Team"), week_argument(week)
        feed = await resolve.attainment_feed(loaders=info.context.loaders, user_id=None,
                                             team_id=team, week=monday)

        async def current() -> ActivityLeaderboard:
            info.context.renew_loaders()
            entries = await resolve.leaderboard(loaders=info.context.loaders, team_id=team,
                                                week=monday, metric=metric)
            return ActivityLeaderboard.build(team, monday, metric, entries)

        # Changes committed while the first board is read come after this position:
        # they are replayed, not lost.
        position = await last_event_id(info.context.db)
        yield await current()
        changes = resolve.attainment_changes(events=info.context.events, feed=feed,
                                             after=position)
        try:
            async with contextlib.aclosing(bursts(changes, LEADERBOARD_INTERVAL)) as each:
                async for _burst in each:
                    yield await current()
        except Overflowed:
            await close_behind(info)
