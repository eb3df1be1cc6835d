"""Users, teams and partner orgs: read policy, filters, ordering and loaders."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, exists, false, or_, select, true

from loaders.base import ChildCountLoader, ChildPageLoader, RowByIdLoader
from loaders.query import FilterSpec, Related, Scalar, Sortable
from models.accounts import Account, AccountShare, Contact
from models.opportunities import Opportunity, PhaseChange
from models.users import PartnerOrg, Role, Team, User, Viewer

USERS = User.__table__
TEAMS = Team.__table__
PARTNER_ORGS = PartnerOrg.__table__
ACCOUNTS = Account.__table__
CONTACTS = Contact.__table__
SHARES = AccountShare.__table__
OPPORTUNITIES = Opportunity.__table__
PHASE_CHANGES = PhaseChange.__table__


def shared_account_ids(viewer: Viewer) -> Select[Any]:
    return select(SHARES.c.account_id).where(SHARES.c.partner_org_id == viewer.partner_org_id)


def account_is_shared(viewer: Viewer, account_id: int) -> ColumnElement[bool]:
    return exists().where(SHARES.c.account_id == account_id,
                          SHARES.c.partner_org_id == viewer.partner_org_id)


def team_mates(viewer: Viewer) -> Select[Any]:
    """The ids of the viewer and the members of its team: whose attainment, plans and
    billing a rep sees."""
    return select(USERS.c.id).where(or_(
        USERS.c.id == viewer.user_id,
        USERS.c.team_id == viewer.team_id if viewer.team_id is not None else false()))


def team_accounts(viewer: Viewer) -> Select[Any]:
    """The ids of the accounts the viewer or a member of its team owns."""
    return select(ACCOUNTS.c.id).where(ACCOUNTS.c.owner_id.in_(team_mates(viewer)))


def visible_users(viewer: Viewer) -> ColumnElement[bool]:
    """Staff see every user. A partner sees itself and the people on what is shared
    with it (owners of the accounts, contacts and opportunities, and who moved those
    opportunities), so every user field on a shared record resolves; no one else."""
    if viewer.role is not Role.PARTNER:
        return true()
    shared = shared_account_ids(viewer)
    return or_(
        USERS.c.id == viewer.user_id,
        USERS.c.id.in_(select(OPPORTUNITIES.c.owner_id)
                       .where(OPPORTUNITIES.c.account_id.in_(shared))),
        USERS.c.id.in_(select(PHASE_CHANGES.c.changed_by_id).where(
            PHASE_CHANGES.c.opportunity_id.in_(select(OPPORTUNITIES.c.id).where(
                OPPORTUNITIES.c.account_id.in_(shared))))),
        USERS.c.id.in_(select(ACCOUNTS.c.owner_id).where(ACCOUNTS.c.id.in_(shared))),
        USERS.c.id.in_(select(CONTACTS.c.owner_id).where(CONTACTS.c.account_id.in_(shared))),
    )


def visible_teams(viewer: Viewer) -> ColumnElement[bool]:
    return false() if viewer.role is Role.PARTNER else true()


def visible_partner_orgs(viewer: Viewer) -> ColumnElement[bool]:
    if viewer.role is Role.PARTNER:
        return PARTNER_ORGS.c.id == viewer.partner_org_id
    return true()


TEAM_FILTER = FilterSpec(
    fields={
        "id": Scalar(TEAMS.c.id, id_type="Team"),
        "name": Scalar(TEAMS.c.name),
    },
    visibility=visible_teams,
)

USER_FILTER = FilterSpec(
    fields={
        "id": Scalar(USERS.c.id, id_type="User"),
        "email": Scalar(USERS.c.email),
        "name": Scalar(USERS.c.name),
        "role": Scalar(USERS.c.role),
        "active": Scalar(USERS.c.active),
        "team_id": Scalar(USERS.c.team_id, id_type="Team"),
        "team": Related(lambda: TEAM_FILTER, lambda: TEAMS.c.id == USERS.c.team_id, False),
        "created_at": Scalar(USERS.c.created_at),
    },
    visibility=visible_users,
)

USER_ORDER = {
    "NAME": Sortable(USERS.c.name),
    "EMAIL": Sortable(USERS.c.email),
    "CREATED_AT": Sortable(USERS.c.created_at),
}


def users_statement(viewer: Viewer) -> Select[Any]:
    return select(USERS).where(visible_users(viewer))


class UserByIdLoader(RowByIdLoader):
    table = USERS
    visibility = staticmethod(visible_users)


class TeamByIdLoader(RowByIdLoader):
    table = TEAMS
    visibility = staticmethod(visible_teams)


class PartnerOrgByIdLoader(RowByIdLoader):
    table = PARTNER_ORGS
    visibility = staticmethod(visible_partner_orgs)


class UsersByTeamLoader(ChildPageLoader):
    parent_column = USERS.c.team_id
    filter_spec = USER_FILTER
    orderable = USER_ORDER
    default_order = ("NAME",)

    def base_statement(self) -> Select[Any]:
        return users_statement(self.viewer)


class UserCountByTeamLoader(ChildCountLoader):
    parent_column = USERS.c.team_id
    filter_spec = USER_FILTER

    def base_statement(self) -> Select[Any]:
        return users_statement(self.viewer)


PARTNER_ORG_FILTER = FilterSpec(
    fields={
        "id": Scalar(PARTNER_ORGS.c.id, id_type="PartnerOrg"),
        "name": Scalar(PARTNER_ORGS.c.name),
        "active": Scalar(PARTNER_ORGS.c.active),
        "allow_introspection": Scalar(PARTNER_ORGS.c.allow_introspection),
        "trusted_documents_only": Scalar(PARTNER_ORGS.c.trusted_documents_only),
        "created_at": Scalar(PARTNER_ORGS.c.created_at),
    },
    visibility=visible_partner_orgs,
)

PARTNER_ORG_ORDER = {
    "NAME": Sortable(PARTNER_ORGS.c.name),
    "CREATED_AT": Sortable(PARTNER_ORGS.c.created_at),
}


def partner_orgs_statement(viewer: Viewer) -> Select[Any]:
    return select(PARTNER_ORGS).where(visible_partner_orgs(viewer))


def _sharing_orgs(viewer: Viewer) -> Select[Any]:
    """Orgs with the account each share names: a partner sees only its own org among
    those an account is shared with."""
    return (select(PARTNER_ORGS, SHARES.c.account_id)
            .select_from(PARTNER_ORGS.join(SHARES, SHARES.c.partner_org_id == PARTNER_ORGS.c.id))
            .where(visible_partner_orgs(viewer)))


class PartnerOrgsByAccountLoader(ChildPageLoader):
    """Account.sharedWith: the orgs each account is shared with."""

    parent_column = SHARES.c.account_id
    filter_spec = PARTNER_ORG_FILTER
    orderable = PARTNER_ORG_ORDER
    default_order = ("NAME",)

    def id_column(self) -> ColumnElement[Any]:
        return PARTNER_ORGS.c.id

    def base_statement(self) -> Select[Any]:
        return _sharing_orgs(self.viewer)


class PartnerOrgCountByAccountLoader(ChildCountLoader):
    parent_column = SHARES.c.account_id
    filter_spec = PARTNER_ORG_FILTER

    def base_statement(self) -> Select[Any]:
        return _sharing_orgs(self.viewer)
