"""Accounts and contacts: read policy, filters, ordering and loaders."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, select, true

from loaders.base import ChildCountLoader, ChildPageLoader, RowByIdLoader
from loaders.opportunities import OPPORTUNITIES, OPPORTUNITY_FILTER
from loaders.query import FilterSpec, Related, Scalar, Sortable
from loaders.users import ACCOUNTS, CONTACTS, SHARES, USER_FILTER, USERS, shared_account_ids
from models.users import Role, Viewer


def visible_accounts(viewer: Viewer) -> ColumnElement[bool]:
    """Staff read every account; a partner only those shared with its org."""
    if viewer.role is Role.PARTNER:
        return ACCOUNTS.c.id.in_(shared_account_ids(viewer))
    return true()


def visible_contacts(viewer: Viewer) -> ColumnElement[bool]:
    if viewer.role is Role.PARTNER:
        return CONTACTS.c.account_id.in_(shared_account_ids(viewer))
    return true()


ACCOUNT_FILTER: FilterSpec
CONTACT_FILTER: FilterSpec

ACCOUNT_FILTER = FilterSpec(
    fields={
        "id": Scalar(ACCOUNTS.c.id, id_type="Account"),
        "name": Scalar(ACCOUNTS.c.name),
        "business_id": Scalar(ACCOUNTS.c.business_id),
        "industry": Scalar(ACCOUNTS.c.industry),
        "type": Scalar(ACCOUNTS.c.type),
        "owner_id": Scalar(ACCOUNTS.c.owner_id, id_type="User"),
        "parent_id": Scalar(ACCOUNTS.c.parent_id, id_type="Account"),
        "city": Scalar(ACCOUNTS.c.city),
        "country": Scalar(ACCOUNTS.c.country),
        "archived": Scalar(ACCOUNTS.c.archived),
        "created_at": Scalar(ACCOUNTS.c.created_at),
        "updated_at": Scalar(ACCOUNTS.c.updated_at),
        "owner": Related(lambda: USER_FILTER, lambda: USERS.c.id == ACCOUNTS.c.owner_id, False),
        "contacts": Related(
            lambda: CONTACT_FILTER, lambda: CONTACTS.c.account_id == ACCOUNTS.c.id, True
        ),
        "opportunities": Related(
            lambda: OPPORTUNITY_FILTER, lambda: OPPORTUNITIES.c.account_id == ACCOUNTS.c.id,
            True,
        ),
    },
    visibility=visible_accounts,
)

CONTACT_FILTER = FilterSpec(
    fields={
        "id": Scalar(CONTACTS.c.id, id_type="Contact"),
        "first_name": Scalar(CONTACTS.c.first_name),
        "last_name": Scalar(CONTACTS.c.last_name),
        "email": Scalar(CONTACTS.c.email),
        "phone": Scalar(CONTACTS.c.phone),
        "title": Scalar(CONTACTS.c.title),
        "account_id": Scalar(CONTACTS.c.account_id, id_type="Account"),
        "owner_id": Scalar(CONTACTS.c.owner_id, id_type="User"),
        "email_consent": Scalar(CONTACTS.c.email_consent),
        "phone_consent": Scalar(CONTACTS.c.phone_consent),
        "created_at": Scalar(CONTACTS.c.created_at),
        "updated_at": Scalar(CONTACTS.c.updated_at),
        "account": Related(
            lambda: ACCOUNT_FILTER, lambda: ACCOUNTS.c.id == CONTACTS.c.account_id, False
        ),
        "owner": Related(lambda: USER_FILTER, lambda: USERS.c.id == CONTACTS.c.owner_id, False),
    },
    visibility=visible_contacts,
)

ACCOUNT_ORDER = {
    "NAME": Sortable(ACCOUNTS.c.name),
    "BUSINESS_ID": Sortable(ACCOUNTS.c.business_id, nullable=True),
    "INDUSTRY": Sortable(ACCOUNTS.c.industry, nullable=True),
    "CITY": Sortable(ACCOUNTS.c.city, nullable=True),
    "CREATED_AT": Sortable(ACCOUNTS.c.created_at),
    "UPDATED_AT": Sortable(ACCOUNTS.c.updated_at),
}

CONTACT_ORDER = {
    "LAST_NAME": Sortable(CONTACTS.c.last_name),
    "FIRST_NAME": Sortable(CONTACTS.c.first_name, nullable=True),
    "EMAIL": Sortable(CONTACTS.c.email, nullable=True),
    "CREATED_AT": Sortable(CONTACTS.c.created_at),
    "UPDATED_AT": Sortable(CONTACTS.c.updated_at),
}


def accounts_statement(viewer: Viewer) -> Select[Any]:
    return select(ACCOUNTS).where(visible_accounts(viewer))


def contacts_statement(viewer: Viewer) -> Select[Any]:
    return select(CONTACTS).where(visible_contacts(viewer))


class AccountByIdLoader(RowByIdLoader):
    table = ACCOUNTS
    visibility = staticmethod(visible_accounts)


class ContactByIdLoader(RowByIdLoader):
    table = CONTACTS
    visibility = staticmethod(visible_contacts)


class ContactsByAccountLoader(ChildPageLoader):
    parent_column = CONTACTS.c.account_id
    filter_spec = CONTACT_FILTER
    orderable = CONTACT_ORDER
    default_order = ("LAST_NAME", "FIRST_NAME")

    def base_statement(self) -> Select[Any]:
        return contacts_statement(self.viewer)


class ContactCountByAccountLoader(ChildCountLoader):
    parent_column = CONTACTS.c.account_id
    filter_spec = CONTACT_FILTER

    def base_statement(self) -> Select[Any]:
        return contacts_statement(self.viewer)


class AccountsByParentLoader(ChildPageLoader):
    parent_column = ACCOUNTS.c.parent_id
    filter_spec = ACCOUNT_FILTER
    orderable = ACCOUNT_ORDER
    default_order = ("NAME",)

    def base_statement(self) -> Select[Any]:
        return accounts_statement(self.viewer)


class AccountCountByParentLoader(ChildCountLoader):
    parent_column = ACCOUNTS.c.parent_id
    filter_spec = ACCOUNT_FILTER

    def base_statement(self) -> Select[Any]:
        return accounts_statement(self.viewer)


def _shared_accounts(viewer: Viewer) -> Select[Any]:
    """Accounts with the org each share names, through the accounts' read policy: a
    share removed is gone from the next statement on."""
    return (select(ACCOUNTS, SHARES.c.partner_org_id)
            .select_from(ACCOUNTS.join(SHARES, SHARES.c.account_id == ACCOUNTS.c.id))
            .where(visible_accounts(viewer)))


class AccountsByPartnerOrgLoader(ChildPageLoader):
    """PartnerOrg.accounts: the accounts shared with each org."""

    parent_column = SHARES.c.partner_org_id
    filter_spec = ACCOUNT_FILTER
    orderable = ACCOUNT_ORDER
    default_order = ("NAME",)

    def id_column(self) -> ColumnElement[Any]:
        return ACCOUNTS.c.id

    def base_statement(self) -> Select[Any]:
        return _shared_accounts(self.viewer)


class AccountCountByPartnerOrgLoader(ChildCountLoader):
    parent_column = SHARES.c.partner_org_id
    filter_spec = ACCOUNT_FILTER

    def base_statement(self) -> Select[Any]:
        return _shared_accounts(self.viewer)
