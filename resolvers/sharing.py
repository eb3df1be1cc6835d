"""Partner organisations and the accounts shared with them: admins only.

A partner reads only the accounts shared with its org, with their contacts and
opportunities (loaders/accounts.py and loaders/opportunities.py apply that in SQL on
every statement), so a share or an unshare counts from the next request on. Rules
where the issue is silent:

- Org names are unique regardless of case; an org is never deleted, only deactivated.
  Deactivating refuses its users' and keys' requests at once (resolvers/users.py
  viewer_statement) and closes their open WebSockets with 4403 (server/revocation.py,
  through an ORG_DEACTIVATED_TOPIC event).
- shareAccounts and unshareAccounts are idempotent and all-or-nothing: an unknown id
  fails the whole call with a userError at its position and changes nothing. Accounts
  may be shared with an inactive org (it reads nothing until reactivated).
- Live feeds: opportunityPhaseChanged checks each event against the shares as they are
  when it is delivered. A partner's pipelineSummaryChanged covers the shared accounts,
  so a share or unshare writes, per pipeline and owner team the accounts' opportunities
  are in, an UPDATED opportunity event that makes open summaries recompute; the org that
  lost the accounts hears of an unshare though it can no longer read them
  (``unsharedFrom``, resolvers/opportunities.py phase_changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.container import Loaders
from loaders.errors import Forbidden
from loaders.opportunities import OPPORTUNITIES
from loaders.query import PageArgs
from loaders.users import (
    ACCOUNTS,
    PARTNER_ORG_FILTER,
    PARTNER_ORG_ORDER,
    PARTNER_ORGS,
    SHARES,
    USERS,
    partner_orgs_statement,
)
from models.base import utcnow
from models.db import Database
from models.users import PartnerOrg, Viewer
from resolvers.audit import fields_of, record_audit
from resolvers.errors import UserErrorCode
from resolvers.mutations import (
    Checks,
    Outcome,
    forbidden,
    lock_row,
    mutate,
    not_found,
    require_version,
)
from resolvers.opportunities import ChangeKind
from resolvers.pages import Listing, list_rows
from subscriptions.hub import EventHub
from subscriptions.outbox import (
    OPPORTUNITY_TOPIC,
    ORG_DEACTIVATED_TOPIC,
    EventRecord,
    record_event,
)

ORG_FIELDS = ("name", "active", "allow_introspection", "trusted_documents_only")
SWITCHES = ("active", "allow_introspection", "trusted_documents_only")
MAX_ACCOUNTS_PER_CALL = 500
NAME_TAKEN = "a partner organisation with that name exists already"


@dataclass
class Sharing:
    """What shareAccounts or unshareAccounts did: the org, the accounts whose share
    changed (in the order asked), and how many asked for were so already."""

    org: PartnerOrg
    accounts: list[Any]
    unchanged: int


def _admin(viewer: Viewer, what: str) -> None:
    if not viewer.is_admin:
        raise forbidden(f"only admins {what}")


async def list_partner_orgs(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
                            ) -> Listing:
    if not loaders.viewer.is_admin:
        raise Forbidden("only admins list partner organisations")
    return await list_rows(
        loaders=loaders, statement=partner_orgs_statement(loaders.viewer),
        spec=PARTNER_ORG_FILTER, filter=filter, orderable=PARTNER_ORG_ORDER,
        default_order=("NAME",), order_by=order_by, args=args)


async def _name(session: AsyncSession, checks: Checks, value: str | None,
                org_id: int | None = None) -> str | None:
    name = checks.text("name", value, max_length=200, required=True)
    if name is None:
        return None
    statement = select(PARTNER_ORGS.c.id).where(func.lower(PARTNER_ORGS.c.name) == name.lower())
    if org_id is not None:
        statement = statement.where(PARTNER_ORGS.c.id != org_id)
    if (await session.execute(statement)).first() is not None:
        checks.fail("name", NAME_TAKEN, UserErrorCode.CONFLICT)
        return None
    return name


def _switch(checks: Checks, changes: dict[str, Any], name: str, label: str) -> bool | None:
    if name not in changes:
        return None
    if changes[name] is None:
        checks.fail(label, f"{label} cannot be null")
    return changes[name]


async def create_partner_org(*, viewer: Viewer, db: Database, name: str,
                             allow_introspection: bool, trusted_documents_only: bool
                             ) -> Outcome[PartnerOrg]:
    async def action() -> PartnerOrg:
        _admin(viewer, "create partner organisations")
        async with db.transaction() as session:
            checks = Checks()
            org = PartnerOrg(name=await _name(session, checks, name), active=True,
                             allow_introspection=allow_introspection,
                             trusted_documents_only=trusted_documents_only)
            checks.raise_if_any()
            session.add(org)
            await session.flush()
            await record_audit(session, viewer, action="partner_org.created",
                               entity_type="PartnerOrg", entity_id=org.id,
                               after=fields_of(org, *ORG_FIELDS))
        return org

    return await mutate(action, on_duplicate=NAME_TAKEN)


async def update_partner_org(*, viewer: Viewer, db: Database, events: EventHub, org_id: str,
                             expected_version: int, changes: dict[str, Any]
                             ) -> Outcome[PartnerOrg]:
    """Only the fields sent change. Deactivating closes the org's open WebSockets."""
    announced: list[EventRecord] = []

    async def action() -> PartnerOrg:
        announced.clear()
        _admin(viewer, "change partner organisations")
        async with db.transaction() as session:
            checks = Checks()
            key = checks.global_id("id", org_id, "PartnerOrg")
            checks.raise_if_any()
            org = await session.get(PartnerOrg, key)
            if org is None:
                raise not_found("id", "partner organisation")
            require_version(org.version, expected_version)
            before = fields_of(org, *ORG_FIELDS)
            if "name" in changes:
                name = await _name(session, checks, changes["name"], org.id)
                if name is not None:
                    org.name = name
            labels = {"active": "active", "allow_introspection": "allowIntrospection",
                      "trusted_documents_only": "trustedDocumentsOnly"}
            switches = {name: _switch(checks, changes, name, labels[name]) for name in SWITCHES}
            checks.raise_if_any()
            for name, value in switches.items():
                if value is not None:
                    setattr(org, name, value)
            after = fields_of(org, *ORG_FIELDS)
            if after == before:
                return org  # nothing changed: no new version, no entry
            await session.flush()
            verb = "updated"
            if before["active"] != after["active"]:
                verb = "reactivated" if after["active"] else "deactivated"
            await record_audit(session, viewer, action=f"partner_org.{verb}",
                               entity_type="PartnerOrg", entity_id=org.id,
                               before={k: v for k, v in before.items() if after[k] != v},
                               after={k: v for k, v in after.items() if before[k] != v})
            if verb == "deactivated":
                announced.append(await record_event(
                    session, topic=ORG_DEACTIVATED_TOPIC, payload={"partnerOrgId": org.id}))
        for event in announced:
            await events.announce(event)
        return org

    return await mutate(action, on_duplicate=NAME_TAKEN)


async def _org_and_accounts(session: AsyncSession, checks: Checks, org_id: str,
                            account_ids: list[str]) -> tuple[PartnerOrg, list[int]]:
    """The org (locked, so calls on one org take turns) and the account keys, each
    known, deduplicated in the order asked."""
    key = checks.global_id("partnerOrgId", org_id, "PartnerOrg")
    if len(account_ids) > MAX_ACCOUNTS_PER_CALL:
        checks.fail("accountIds", f"at most {MAX_ACCOUNTS_PER_CALL} accounts per call")
    checks.raise_if_any()
    keys = [checks.global_id(f"accountIds.{n}", gid, "Account")
            for n, gid in enumerate(account_ids)]
    org = await session.get(PartnerOrg, key)
    if org is None:
        checks.fail("partnerOrgId", "partner organisation not found", UserErrorCode.NOT_FOUND)
    wanted = {k for k in keys if k is not None}
    found = set((await session.execute(
        select(ACCOUNTS.c.id).where(ACCOUNTS.c.id.in_(wanted))))
        .scalars()) if wanted else set()
    for n, account in enumerate(keys):
        if account is not None and account not in found:
            checks.fail(f"accountIds.{n}", "account not found", UserErrorCode.NOT_FOUND)
    checks.raise_if_any()
    assert org is not None
    await lock_row(session, PARTNER_ORGS, org.id)
    return org, list(dict.fromkeys(k for k in keys if k is not None))


async def _shared_already(session: AsyncSession, org_id: int, keys: list[int]) -> set[int]:
    if not keys:
        return set()
    return set((await session.execute(select(SHARES.c.account_id).where(
        SHARES.c.partner_org_id == org_id, SHARES.c.account_id.in_(keys)))).scalars())


async def _accounts(session: AsyncSession, keys: list[int]) -> list[Any]:
    if not keys:
        return []
    by_id = {row.id: row for row in await session.execute(
        select(ACCOUNTS).where(ACCOUNTS.c.id.in_(keys)))}
    return [by_id[key] for key in keys]


async def _summaries_changed(session: AsyncSession, viewer: Viewer, org_id: int,
                             keys: list[int], *, unshared: bool) -> list[EventRecord]:
    """One UPDATED event per pipeline and owner team the accounts' opportunities are in:
    open pipeline summaries of that pipeline recompute. ``accountId`` is one of the
    accounts, for the feed's visibility check (the org that gained them can read it);
    after an unshare ``unsharedFrom`` lets the org that lost them hear of it."""
    if not keys:
        return []
    groups = (await session.execute(
        select(OPPORTUNITIES.c.pipeline_id, USERS.c.team_id,
               func.min(OPPORTUNITIES.c.account_id))
        .select_from(OPPORTUNITIES.join(USERS, USERS.c.id == OPPORTUNITIES.c.owner_id))
        .where(OPPORTUNITIES.c.account_id.in_(keys))
        .group_by(OPPORTUNITIES.c.pipeline_id, USERS.c.team_id)
        .order_by(OPPORTUNITIES.c.pipeline_id, USERS.c.team_id))).all()
    now = utcnow().isoformat()
    records = []
    for pipeline_id, team_id, account_id in groups:
        records.append(await record_event(session, topic=OPPORTUNITY_TOPIC, payload={
            "kind": ChangeKind.UPDATED,
            "sharing": "UNSHARED" if unshared else "SHARED",
            "partnerOrgId": org_id,
            "unsharedFrom": org_id if unshared else None,
            "opportunityId": None,
            "accountId": account_id,
            "pipelineId": pipeline_id,
            "ownerId": None,
            "ownerTeamId": team_id,
            "changedById": viewer.user_id,
            "changedAt": now,
        }))
    return records


async def share_accounts(*, viewer: Viewer, db: Database, events: EventHub,
                         partner_org_id: str, account_ids: list[str]) -> Outcome[Sharing]:
    announced: list[EventRecord] = []

    async def action() -> Sharing:
        announced.clear()
        _admin(viewer, "share accounts with partner organisations")
        async with db.transaction() as session:
            org, keys = await _org_and_accounts(session, Checks(), partner_org_id, account_ids)
            already = await _shared_already(session, org.id, keys)
            new = [key for key in keys if key not in already]
            if new:
                await session.execute(SHARES.insert(), [
                    {"account_id": key, "partner_org_id": org.id} for key in new])
                await record_audit(session, viewer, action="partner_org.accounts_shared",
                                   entity_type="PartnerOrg", entity_id=org.id,
                                   after={"accountIds": new})
                announced.extend(await _summaries_changed(session, viewer, org.id, new,
                                                          unshared=False))
            sharing = Sharing(org, await _accounts(session, new), len(keys) - len(new))
        for event in announced:
            await events.announce(event)
        return sharing

    return await mutate(action, on_duplicate="the accounts were being shared at the same "
                        "time; reload and retry")


async def unshare_accounts(*, viewer: Viewer, db: Database, events: EventHub,
                           partner_org_id: str, account_ids: list[str]) -> Outcome[Sharing]:
    announced: list[EventRecord] = []

    async def action() -> Sharing:
        announced.clear()
        _admin(viewer, "unshare accounts")
        async with db.transaction() as session:
            org, keys = await _org_and_accounts(session, Checks(), partner_org_id, account_ids)
            already = await _shared_already(session, org.id, keys)
            gone = [key for key in keys if key in already]
            if gone:
                await session.execute(delete(SHARES).where(
                    SHARES.c.partner_org_id == org.id, SHARES.c.account_id.in_(gone)))
                await record_audit(session, viewer, action="partner_org.accounts_unshared",
                                   entity_type="PartnerOrg", entity_id=org.id,
                                   before={"accountIds": gone})
                announced.extend(await _summaries_changed(session, viewer, org.id, gone,
                                                          unshared=True))
            sharing = Sharing(org, await _accounts(session, gone), len(keys) - len(gone))
        for event in announced:
            await events.announce(event)
        return sharing

    return await mutate(action)
