"""Accounts and contacts: lists, and the mutations with their business rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.accounts import (
    ACCOUNT_FILTER,
    ACCOUNT_ORDER,
    CONTACT_FILTER,
    CONTACT_ORDER,
    AccountByIdLoader,
    accounts_statement,
    contacts_statement,
    visible_accounts,
    visible_contacts,
)
from loaders.activities import ACTIVITIES
from loaders.campaigns import CAMPAIGN_MEMBERS
from loaders.container import Loaders
from loaders.opportunities import LEADS
from loaders.query import PageArgs
from loaders.target_groups import ENTRIES
from models.accounts import Account, AccountType, Contact
from models.base import utcnow
from models.campaigns import Campaign
from models.db import Database
from models.users import Viewer
from resolvers.campaigns import SEATED, fill_places, lock_campaign
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
from resolvers.policy import Owner, can_assign, can_write, load_owner

MAX_HIERARCHY_DEPTH = 100

ACCOUNT_TEXT = {  # field -> max length, for the optional free-text fields
    "industry": 100, "website": 300, "phone": 50,
}
ADDRESS_TEXT = {"street": 200, "postal_code": 20, "city": 100, "country": 100}
CONTACT_TEXT = {"first_name": 100, "phone": 50, "title": 200}


async def list_accounts(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any,
                        columns: tuple[str, ...] | None = None) -> Listing:
    listing = await list_rows(
        loaders=loaders, statement=accounts_statement(loaders.viewer), spec=ACCOUNT_FILTER,
        filter=filter, orderable=ACCOUNT_ORDER, default_order=("NAME",), order_by=order_by,
        args=args, columns=columns,
    )
    if columns is None:  # whole rows, through the policy AccountByIdLoader applies
        loaders.get(AccountByIdLoader).know(listing.page.rows)
    return listing


async def list_contacts(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any,
                        columns: tuple[str, ...] | None = None) -> Listing:
    return await list_rows(
        loaders=loaders, statement=contacts_statement(loaders.viewer), spec=CONTACT_FILTER,
        filter=filter, orderable=CONTACT_ORDER, default_order=("LAST_NAME", "FIRST_NAME"),
        order_by=order_by, args=args, columns=columns,
    )


# --- shared steps -------------------------------------------------------------------------


def _refuse_partners(viewer: Viewer) -> None:
    """Where a mutation names a record, call this only once the record is found visible:
    a record not shared with the partner must be NOT_FOUND, as if it did not exist."""
    if viewer.is_partner:
        raise forbidden("partners cannot change accounts or contacts")


async def _visible_account(session: AsyncSession, viewer: Viewer, account_id: int,
                           field_name: str) -> Account:
    account = (
        await session.execute(
            select(Account).where(Account.id == account_id, visible_accounts(viewer))
        )
    ).scalar_one_or_none()
    if account is None:
        raise not_found(field_name, "account")
    return account


async def _owner_of(session: AsyncSession, user_id: int) -> Owner:
    owner = await load_owner(session, user_id)
    if owner is None:  # pragma: no cover - owner_id is a foreign key
        raise AssertionError(f"record owner {user_id} does not exist")
    return owner


async def _check_may_write(session: AsyncSession, viewer: Viewer, owner_id: int,
                           what: str) -> None:
    if not can_write(viewer, await _owner_of(session, owner_id)):
        raise forbidden(f"you cannot change this {what}")


async def _assignable_owner(session: AsyncSession, viewer: Viewer, checks: Checks,
                            owner_gid: str | None) -> int | None:
    """The owner a new or reassigned record gets: the viewer by default."""
    owner_id = checks.global_id("ownerId", owner_gid, "User")
    if owner_gid is None:
        return viewer.user_id
    if owner_id is None:
        return None
    owner = await load_owner(session, owner_id)
    if owner is None:
        checks.fail("ownerId", "user not found", UserErrorCode.NOT_FOUND)
        return None
    if reason := can_assign(viewer, owner):
        checks.fail("ownerId", reason, UserErrorCode.FORBIDDEN)
        return None
    return owner_id


async def _check_parent(session: AsyncSession, viewer: Viewer, checks: Checks,
                        parent_gid: str | None, account_id: int | None) -> int | None:
    parent_id = checks.global_id("parentId", parent_gid, "Account")
    if parent_id is None:
        return None
    found = (await session.execute(
        select(exists().where(Account.id == parent_id, visible_accounts(viewer)))
    )).scalar_one()
    if not found:
        checks.fail("parentId", "parent account not found", UserErrorCode.NOT_FOUND)
        return None
    if account_id is not None:
        # Walk up from the new parent: meeting the account itself would close a loop.
        current: int | None = parent_id
        for _ in range(MAX_HIERARCHY_DEPTH):
            if current is None:
                break
            if current == account_id:
                checks.fail("parentId", "an account cannot be its own ancestor")
                return None
            current = (await session.execute(
                select(Account.parent_id).where(Account.id == current)
            )).scalar_one_or_none()
        else:
            checks.fail("parentId", f"account hierarchies are at most {MAX_HIERARCHY_DEPTH} deep")
            return None
    return parent_id


async def _check_business_id(session: AsyncSession, checks: Checks, business_id: str | None,
                             account_id: int | None) -> None:
    if business_id is None:
        return
    clash = select(Account.id).where(Account.business_id == business_id)
    if account_id is not None:
        clash = clash.where(Account.id != account_id)
    if (await session.execute(clash)).first() is not None:
        checks.fail("businessId", f"business id {business_id!r} is already used by another "
                    "account", UserErrorCode.CONFLICT)


def _unique_violation(exc: IntegrityError) -> UserInputError:
    message = str(exc.orig).lower()
    if "business_id" in message:
        return UserInputError.one("businessId", UserErrorCode.CONFLICT,
                                  "business id is already used by another account")
    raise exc


def _address_text(checks: Checks, address: dict[str, str | None] | None
                  ) -> dict[str, str | None]:
    if address is None:
        return dict.fromkeys(ADDRESS_TEXT)
    return {
        name: checks.text(f"address.{_camel(name)}", address.get(name), max_length=max_length)
        for name, max_length in ADDRESS_TEXT.items()
    }


# --- accounts -----------------------------------------------------------------------------


async def create_account(
    *, viewer: Viewer, db: Database, name: str, business_id: str | None = None,
    industry: str | None = None, type: AccountType = AccountType.PROSPECT,
    owner_id: str | None = None, parent_id: str | None = None, website: str | None = None,
    phone: str | None = None, address: dict[str, str | None] | None = None,
) -> Outcome[Account]:
    async def action() -> Account:
        _refuse_partners(viewer)
        async with db.transaction() as session:
            checks = Checks()
            values: dict[str, Any] = {
                "name": checks.text("name", name, max_length=200, required=True),
                "business_id": checks.text("businessId", business_id, max_length=50),
                "industry": checks.text("industry", industry, max_length=100),
                "website": checks.text("website", website, max_length=300),
                "phone": checks.text("phone", phone, max_length=50),
                "type": type,
                **_address_text(checks, address),
            }
            values["owner_id"] = await _assignable_owner(session, viewer, checks, owner_id)
            values["parent_id"] = await _check_parent(session, viewer, checks, parent_id, None)
            await _check_business_id(session, checks, values["business_id"], None)
            checks.raise_if_any()
            account = Account(**values, archived=False)
            session.add(account)
            try:
                await session.flush()
            except IntegrityError as exc:
                raise _unique_violation(exc) from None
            return account

    return await mutate(action)


async def update_account(
    *, viewer: Viewer, db: Database, account_id: str, expected_version: int,
    changes: dict[str, Any],
) -> Outcome[Account]:
    """``changes`` holds only the fields the client sent; None clears a field."""

    async def action() -> Account:
        async with db.transaction() as session:
            checks = Checks()
            key = checks.global_id("id", account_id, "Account")
            checks.raise_if_any()
            account = await _visible_account(session, viewer, key, "id")
            _refuse_partners(viewer)
            await _check_may_write(session, viewer, account.owner_id, "account")
            require_version(account.version, expected_version)
            if account.archived:
                raise UserInputError.one("id", UserErrorCode.VALIDATION,
                                         "archived accounts cannot be changed")
            # The checks below query as they go: an autoflush would send the UPDATE before
            # they pass, and a duplicate business id would fail it as a server error.
            with session.no_autoflush:
                if "name" in changes:
                    account.name = checks.text("name", changes["name"], max_length=200,
                                               required=True) or account.name
                if "business_id" in changes:
                    account.business_id = checks.text("businessId", changes["business_id"],
                                                      max_length=50)
                    await _check_business_id(session, checks, account.business_id, account.id)
                for name, max_length in ACCOUNT_TEXT.items():
                    if name in changes:
                        setattr(account, name, checks.text(name, changes[name],
                                                           max_length=max_length))
                if "type" in changes:
                    if changes["type"] is None:
                        checks.fail("type", "type cannot be null")
                    else:
                        account.type = changes["type"]
                if "address" in changes:
                    for name, value in _address_text(checks, changes["address"]).items():
                        setattr(account, name, value)
                if "owner_id" in changes:
                    if changes["owner_id"] is None:
                        checks.fail("ownerId", "an account always has an owner")
                    elif (owner := await _assignable_owner(session, viewer, checks,
                                                           changes["owner_id"])) is not None:
                        account.owner_id = owner
                if "parent_id" in changes:
                    account.parent_id = await _check_parent(session, viewer, checks,
                                                            changes["parent_id"], account.id)
            checks.raise_if_any()
            try:
                await session.flush()
            except IntegrityError as exc:
                raise _unique_violation(exc) from None
            return account

    return await mutate(action)


async def archive_account(
    *, viewer: Viewer, db: Database, account_id: str, expected_version: int
) -> Outcome[Account]:
    async def action() -> Account:
        async with db.transaction() as session:
            checks = Checks()
            key = checks.global_id("id", account_id, "Account")
            checks.raise_if_any()
            account = await _visible_account(session, viewer, key, "id")
            _refuse_partners(viewer)
            await _check_may_write(session, viewer, account.owner_id, "account")
            if account.archived:
                # An archived account takes no other change, so whatever version the
                # caller read, its intent is met: a retried archive succeeds as a no-op.
                return account
            require_version(account.version, expected_version)
            account.archived = True
            account.archived_at = utcnow()
            await session.flush()
            return account

    return await mutate(action)


# --- contacts -----------------------------------------------------------------------------


async def _open_account(session: AsyncSession, viewer: Viewer, checks: Checks,
                        account_gid: str) -> int | None:
    key = checks.global_id("accountId", account_gid, "Account")
    if key is None:
        return None
    account = await _visible_account(session, viewer, key, "accountId")
    _refuse_partners(viewer)
    if account.archived:
        checks.fail("accountId", "contacts cannot be added to an archived account")
        return None
    return account.id


async def create_contact(
    *, viewer: Viewer, db: Database, account_id: str, last_name: str,
    first_name: str | None = None, email: str | None = None, phone: str | None = None,
    title: str | None = None, owner_id: str | None = None, email_consent: bool = False,
    phone_consent: bool = False,
) -> Outcome[Contact]:
    async def action() -> Contact:
        async with db.transaction() as session:
            checks = Checks()
            values: dict[str, Any] = {
                "account_id": await _open_account(session, viewer, checks, account_id),
                "last_name": checks.text("lastName", last_name, max_length=100, required=True),
                "first_name": checks.text("firstName", first_name, max_length=100),
                "email": checks.email("email", email),
                "phone": checks.text("phone", phone, max_length=50),
                "title": checks.text("title", title, max_length=200),
                "email_consent": email_consent,
                "phone_consent": phone_consent,
            }
            values["owner_id"] = await _assignable_owner(session, viewer, checks, owner_id)
            checks.raise_if_any()
            contact = Contact(**values)
            session.add(contact)
            await session.flush()
            return contact

    return await mutate(action)


async def _writable_contact(session: AsyncSession, viewer: Viewer, checks: Checks,
                            contact_gid: str) -> Contact:
    key = checks.global_id("id", contact_gid, "Contact")
    checks.raise_if_any()
    contact = (
        await session.execute(
            select(Contact).where(Contact.id == key, visible_contacts(viewer))
        )
    ).scalar_one_or_none()
    if contact is None:
        raise not_found("id", "contact")
    _refuse_partners(viewer)
    await _check_may_write(session, viewer, contact.owner_id, "contact")
    return contact


async def update_contact(
    *, viewer: Viewer, db: Database, contact_id: str, expected_version: int,
    changes: dict[str, Any],
) -> Outcome[Contact]:
    async def action() -> Contact:
        async with db.transaction() as session:
            checks = Checks()
            contact = await _writable_contact(session, viewer, checks, contact_id)
            require_version(contact.version, expected_version)
            if "last_name" in changes:
                contact.last_name = checks.text("lastName", changes["last_name"],
                                                max_length=100, required=True) or contact.last_name
            for name, max_length in CONTACT_TEXT.items():
                if name in changes:
                    setattr(contact, name, checks.text(_camel(name), changes[name],
                                                       max_length=max_length))
            if "email" in changes:
                contact.email = checks.email("email", changes["email"])
            for flag in ("email_consent", "phone_consent"):
                if flag in changes:
                    if changes[flag] is None:
                        checks.fail(_camel(flag), f"{_camel(flag)} cannot be null")
                    else:
                        setattr(contact, flag, changes[flag])
            if "account_id" in changes:
                if changes["account_id"] is None:
                    checks.fail("accountId", "a contact always belongs to an account")
                elif (moved := await _open_account(session, viewer, checks,
                                                   changes["account_id"])) is not None:
                    contact.account_id = moved
            if "owner_id" in changes:
                if changes["owner_id"] is None:
                    checks.fail("ownerId", "a contact always has an owner")
                elif (owner := await _assignable_owner(session, viewer, checks,
                                                       changes["owner_id"])) is not None:
                    contact.owner_id = owner
            checks.raise_if_any()
            await session.flush()
            return contact

    return await mutate(action)


async def delete_contact(
    *, viewer: Viewer, db: Database, contact_id: str, expected_version: int | None
) -> Outcome[int]:
    async def action() -> int:
        async with db.transaction() as session:
            contact = await _writable_contact(session, viewer, Checks(), contact_id)
            if expected_version is not None:
                require_version(contact.version, expected_version)
            await _release_contact(session, contact.id)
            await session.delete(contact)
            await session.flush()
            return contact.id

    return await mutate(action)


async def _release_contact(session: AsyncSession, contact_id: int) -> None:
    """What refers to a contact lets go of it: activities and converted leads keep
    their record without the person; its campaign memberships and target group entries
    go with it."""
    await session.execute(update(ACTIVITIES).where(ACTIVITIES.c.contact_id == contact_id)
                          .values(contact_id=None))
    await session.execute(update(LEADS).where(LEADS.c.converted_contact_id == contact_id)
                          .values(converted_contact_id=None))
    seated_in = (await session.execute(select(CAMPAIGN_MEMBERS.c.campaign_id).where(
        CAMPAIGN_MEMBERS.c.contact_id == contact_id,
        CAMPAIGN_MEMBERS.c.status.in_(SEATED)))).scalars().all()
    await session.execute(delete(CAMPAIGN_MEMBERS)
                          .where(CAMPAIGN_MEMBERS.c.contact_id == contact_id))
    for campaign_id in seated_in:  # the place it held goes to the waiting list
        await lock_campaign(session, campaign_id)
        campaign = await session.get(Campaign, campaign_id)
        if campaign is not None:
            await fill_places(session, campaign)
    await session.execute(delete(ENTRIES).where(ENTRIES.c.contact_id == contact_id))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
