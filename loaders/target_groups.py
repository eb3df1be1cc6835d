"""Target groups: read policy, filters, ordering, and their members: the static members
and the saved filter's matches, less the exclusions, as one SQL statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select

from loaders.accounts import (
    ACCOUNT_FILTER,
    CONTACT_FILTER,
    accounts_statement,
    contacts_statement,
)
from loaders.base import RowByIdLoader
from loaders.query import FilterSpec, Scalar, Sortable, compile_filter
from loaders.users import ACCOUNTS, CONTACTS
from models.target_groups import TargetGroup, TargetGroupEntry, TargetGroupKind
from models.users import Role, Viewer

TARGET_GROUPS = TargetGroup.__table__
ENTRIES = TargetGroupEntry.__table__


def visible_target_groups(viewer: Viewer) -> ColumnElement[bool]:
    """SHARED groups for every staff member, PERSONAL ones for their owner alone."""
    if viewer.role is Role.PARTNER:
        return false()
    return or_(TARGET_GROUPS.c.visibility == "SHARED",
               TARGET_GROUPS.c.owner_id == viewer.user_id)


TARGET_GROUP_FILTER = FilterSpec(
    fields={
        "id": Scalar(TARGET_GROUPS.c.id, id_type="TargetGroup"),
        "name": Scalar(TARGET_GROUPS.c.name),
        "kind": Scalar(TARGET_GROUPS.c.kind),
        "visibility": Scalar(TARGET_GROUPS.c.visibility),
        "owner_id": Scalar(TARGET_GROUPS.c.owner_id, id_type="User"),
        "created_at": Scalar(TARGET_GROUPS.c.created_at),
    },
    visibility=visible_target_groups,
)

TARGET_GROUP_ORDER = {
    "NAME": Sortable(TARGET_GROUPS.c.name),
    "CREATED_AT": Sortable(TARGET_GROUPS.c.created_at),
}


def target_groups_statement(viewer: Viewer) -> Select[Any]:
    return select(TARGET_GROUPS).where(visible_target_groups(viewer))


class TargetGroupByIdLoader(RowByIdLoader):
    table = TARGET_GROUPS
    visibility = staticmethod(visible_target_groups)


def member_ids(group_id: int, kind: TargetGroupKind, viewer: Viewer, saved_filter: Any
               ) -> Select[Any]:
    """The ids of the group's members (accounts or contacts by kind) the viewer may see:
    static members and the filter's matches, less the exclusions."""
    table, spec = (ACCOUNTS, ACCOUNT_FILTER) if kind is TargetGroupKind.ACCOUNT else (
        CONTACTS, CONTACT_FILTER)
    column = ENTRIES.c.account_id if kind is TargetGroupKind.ACCOUNT else ENTRIES.c.contact_id
    entries = select(column).where(ENTRIES.c.target_group_id == group_id)
    static = entries.where(ENTRIES.c.excluded.is_(False))
    excluded = entries.where(ENTRIES.c.excluded.is_(True))
    chosen = table.c.id.in_(static)
    if saved_filter is not None:
        chosen = or_(chosen, compile_filter(spec, saved_filter, viewer))
    statement = accounts_statement(viewer) if kind is TargetGroupKind.ACCOUNT else (
        contacts_statement(viewer))
    # Never correlated: it is used inside queries on the same table.
    return (statement.with_only_columns(table.c.id)
            .where(chosen, table.c.id.not_in(excluded)).correlate(None))


def members_statement(group_id: int, kind: TargetGroupKind, viewer: Viewer,
                      saved_filter: Any) -> Select[Any]:
    """The member rows, for a keyset page of TargetGroup.members."""
    table = ACCOUNTS if kind is TargetGroupKind.ACCOUNT else CONTACTS
    statement = accounts_statement(viewer) if kind is TargetGroupKind.ACCOUNT else (
        contacts_statement(viewer))
    return statement.where(table.c.id.in_(member_ids(group_id, kind, viewer, saved_filter)))


def group_contact_ids(group_id: int, kind: TargetGroupKind, viewer: Viewer,
                      saved_filter: Any) -> Select[Any]:
    """The contacts a group stands for: its contacts, or its accounts' contacts."""
    ids = member_ids(group_id, kind, viewer, saved_filter)
    if kind is TargetGroupKind.CONTACT:
        return ids
    return select(CONTACTS.c.id).where(CONTACTS.c.account_id.in_(ids)).correlate(None)
