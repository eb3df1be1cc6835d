"""Target groups: lists, members, and the mutations (the saved filter is checked when it
is saved, so a group never holds a filter that cannot run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from loaders.accounts import ACCOUNT_FILTER, ACCOUNT_ORDER, CONTACT_FILTER, CONTACT_ORDER
from loaders.container import Loaders
from loaders.errors import ApiError
from loaders.query import PageArgs, compile_filter
from loaders.target_groups import (
    ENTRIES,
    TARGET_GROUP_FILTER,
    TARGET_GROUP_ORDER,
    members_statement,
    target_groups_statement,
)
from loaders.users import ACCOUNTS, CONTACTS
from models.base import utcnow
from models.db import Database
from models.target_groups import (
    TargetGroup,
    TargetGroupEntry,
    TargetGroupKind,
    TargetGroupVisibility,
)
from models.users import Role, Viewer
from resolvers.errors import UserErrorCode
from resolvers.mutations import (
    Checks,
    Outcome,
    conflict,
    forbidden,
    mutate,
    not_found,
    require_version,
)
from resolvers.pages import Listing, list_rows
from resolvers.policy import can_write, load_owner

MAX_MEMBERS_PER_CALL = 5000


async def list_target_groups(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
                             ) -> Listing:
    return await list_rows(
        loaders=loaders, statement=target_groups_statement(loaders.viewer),
        spec=TARGET_GROUP_FILTER, filter=filter, orderable=TARGET_GROUP_ORDER,
        default_order=("NAME",), order_by=order_by, args=args,
    )


async def list_members(*, loaders: Loaders, group: Any, saved_filter: Any, args: PageArgs
                       ) -> Listing:
    """A keyset page of the group's members (accounts or contacts), by name."""
    kind = group.kind
    spec, order = (ACCOUNT_FILTER, ACCOUNT_ORDER) if kind is TargetGroupKind.ACCOUNT else (
        CONTACT_FILTER, CONTACT_ORDER)
    default = ("NAME",) if kind is TargetGroupKind.ACCOUNT else ("LAST_NAME",)
    return await list_rows(
        loaders=loaders,
        statement=members_statement(group.id, kind, loaders.viewer, saved_filter),
        spec=spec, filter=None, orderable=order, default_order=default, order_by=None,
        args=args)


def check_filter(checks: Checks, viewer: Viewer, kind: TargetGroupKind, saved_filter: Any,
                 field_name: str, names: Callable[[str], str]) -> None:
    """Compile the filter field by field, as a query would: a problem is a VALIDATION
    error naming the field (``names`` gives a field's API name)."""
    spec = ACCOUNT_FILTER if kind is TargetGroupKind.ACCOUNT else CONTACT_FILTER
    failed = False
    for name, value in vars(saved_filter).items():
        if value is None or type(value).__name__ == "UnsetType":
            continue
        single = type(saved_filter)(**{name: value})
        try:
            compile_filter(spec, single, viewer)
        except ApiError as exc:
            checks.fail(f"{field_name}.{names(name)}", exc.message)
            failed = True
    if not failed:
        try:  # the limits hold for the filter as a whole too (conditions add up)
            compile_filter(spec, saved_filter, viewer)
        except ApiError as exc:
            checks.fail(field_name, exc.message)


async def _writable(session: Any, viewer: Viewer, gid: str, expected_version: int | None
                    ) -> TargetGroup:
    if viewer.role is Role.PARTNER:
        raise forbidden("partners have no target groups")
    checks = Checks()
    key = checks.global_id("id", gid, "TargetGroup")
    checks.raise_if_any()
    group = await session.get(TargetGroup, key)
    # A PERSONAL group is its owner's alone: not even an admin sees or changes it.
    if group is None or (group.visibility is TargetGroupVisibility.PERSONAL
                         and group.owner_id != viewer.user_id):
        raise not_found("id", "target group")
    owner = await load_owner(session, group.owner_id)
    if owner is None or not can_write(viewer, owner):
        raise forbidden("only the owner, its manager or an admin changes a target group")
    if expected_version is not None:
        require_version(group.version, expected_version)
    return group


async def create_target_group(*, viewer: Viewer, db: Database, name: str,
                              kind: TargetGroupKind, visibility: TargetGroupVisibility,
                              description: str | None, saved_filter: dict[str, Any] | None,
                              check: Callable[[Checks, TargetGroupKind], None]
                              ) -> Outcome[TargetGroup]:
    """``saved_filter`` is the filter as stored (API shape); ``check`` checks it."""
    async def action() -> TargetGroup:
        if viewer.role is Role.PARTNER:
            raise forbidden("partners have no target groups")
        checks = Checks()
        group = TargetGroup(
            name=checks.text("name", name, max_length=200, required=True), kind=kind,
            visibility=visibility, owner_id=viewer.user_id,
            description=checks.text("description", description, max_length=5000),
            filter=saved_filter)
        check(checks, kind)
        checks.raise_if_any()
        async with db.transaction() as session:
            session.add(group)
            await session.flush()
        return group

    return await mutate(action)


async def update_target_group(*, viewer: Viewer, db: Database, group_id: str,
                              expected_version: int, changes: dict[str, Any],
                              check: Callable[[Checks, TargetGroupKind], None]
                              ) -> Outcome[TargetGroup]:
    async def action() -> TargetGroup:
        async with db.transaction() as session:
            group = await _writable(session, viewer, group_id, expected_version)
            checks = Checks()
            if "name" in changes:
                group.name = checks.text("name", changes["name"], max_length=200,
                                         required=True) or group.name
            if "description" in changes:
                group.description = checks.text("description", changes["description"],
                                                max_length=5000)
            if "visibility" in changes:
                if changes["visibility"] is None:
                    checks.fail("visibility", "visibility cannot be null")
                else:
                    group.visibility = changes["visibility"]
            filters = changes.get("filters", {})
            if filters:
                # The filter of the group's kind; a null in the other kind's field changes
                # nothing, a filter there is refused by the check.
                if group.kind in filters:
                    group.filter = filters[group.kind]
                check(checks, group.kind)
            checks.raise_if_any()
            await session.flush()
        return group

    return await mutate(action)


async def delete_target_group(*, viewer: Viewer, db: Database, group_id: str,
                              expected_version: int) -> Outcome[int]:
    async def action() -> int:
        async with db.transaction() as session:
            group = await _writable(session, viewer, group_id, expected_version)
            key = group.id
            await session.execute(delete(ENTRIES).where(ENTRIES.c.target_group_id == key))
            await session.delete(group)
        return key

    return await mutate(action)


async def change_entries(*, viewer: Viewer, db: Database, group_id: str,
                         member_ids: list[str], excluded: bool | None
                         ) -> Outcome[TargetGroup]:
    """Add static members (``excluded`` False), exclusions (True), or remove entries of
    either kind (None). Ids are of accounts or contacts, by the group's kind."""
    async def action() -> TargetGroup:
        async with db.transaction() as session:
            group = await _writable(session, viewer, group_id, None)
            checks = Checks()
            if len(member_ids) > MAX_MEMBERS_PER_CALL:
                checks.fail("memberIds", f"at most {MAX_MEMBERS_PER_CALL} ids per call")
                checks.raise_if_any()
            accounts = group.kind is TargetGroupKind.ACCOUNT
            type_name, table = ("Account", ACCOUNTS) if accounts else ("Contact", CONTACTS)
            column = TargetGroupEntry.account_id if accounts else TargetGroupEntry.contact_id
            keys = [checks.global_id(f"memberIds.{n}", gid, type_name)
                    for n, gid in enumerate(member_ids)]
            checks.raise_if_any()
            wanted = set(keys)
            found = set((await session.execute(
                select(table.c.id).where(table.c.id.in_(wanted)))).scalars())
            for n, key in enumerate(keys):
                if key not in found:
                    checks.fail(f"memberIds.{n}", f"{type_name.lower()} not found",
                                UserErrorCode.NOT_FOUND)
            checks.raise_if_any()
            existing = {getattr(e, column.key): e for e in (await session.execute(
                select(TargetGroupEntry).where(TargetGroupEntry.target_group_id == group.id,
                                               column.in_(wanted)))).scalars()}
            for key in dict.fromkeys(keys):
                entry = existing.get(key)
                if excluded is None:
                    if entry is not None:
                        await session.delete(entry)
                elif entry is None:
                    session.add(TargetGroupEntry(target_group_id=group.id, excluded=excluded,
                                                 **{column.key: key}))
                else:
                    entry.excluded = excluded
            group.updated_at = utcnow()  # its entries changed: the group takes a version
            await session.flush()
        return group

    try:
        return await mutate(action)
    except IntegrityError:
        return Outcome(errors=conflict("someone else changed the group at the same time; "
                                       "retry").errors)
