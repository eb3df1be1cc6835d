"""Accounts and contacts: types, filters, ordering, inputs, queries and mutations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import UNSET, Private

from loaders.accounts import (
    AccountByIdLoader,
    AccountCountByParentLoader,
    AccountsByParentLoader,
    ContactByIdLoader,
    ContactCountByAccountLoader,
    ContactsByAccountLoader,
)
from loaders.billing import Granularity as GranularityEnum
from loaders.campaigns import MembershipsByContactLoader
from loaders.ids import decode_id, encode_id
from loaders.opportunities import OpportunitiesByAccountLoader, OpportunityCountByAccountLoader
from loaders.pricing import AgreementsByAccountLoader
from loaders.query import PageArgs
from loaders.users import UserByIdLoader
from models.accounts import AccountType as AccountTypeEnum
from resolvers import accounts as resolve
from schema import activities as activity_types  # they refer to accounts too
from schema import billing as billing_types
from schema import campaigns as campaign_types
from schema import opportunities as opportunity_types
from schema import planning as planning_types
from schema import pricing as pricing_types
from schema.context import Info, viewer_of
from schema.errors import UserError, user_errors
from schema.filters import (
    BooleanFilter,
    DateTimeFilter,
    IDFilter,
    OrderDirection,
    StringFilter,
    enum_filter,
)
from schema.inputs import sent_changes
from schema.periods import Granularity
from schema.relay import (
    Children,
    Connection,
    Node,
    child_connection,
    connection,
    planned_columns,
)
from schema.rows import FromRow, RowBacked, batched, reads, related, rows_of, using
from schema.users import (
    PartnerOrg,
    PartnerOrgFilter,
    PartnerOrgOrder,
    User,
    UserFilter,
    partner_orgs_of_account,
    user_of,
)

if TYPE_CHECKING:
    from schema.activities import Activity, ActivityFilter, ActivityOrder
    from schema.billing import BillingFigure, Invoice, InvoiceFilter, InvoiceOrder
    from schema.campaigns import Campaign, CampaignMember
    from schema.opportunities import (
        Opportunity,
        OpportunityFilter,
        OpportunityOrder,
        OpportunityRelationFilter,
    )
    from schema.planning import AccountPlan, ForecastKind
    from schema.pricing import PriceAgreement, PriceBook, ResolvedPrice

AccountType = strawberry.enum(AccountTypeEnum, name="AccountType",
                              description="The relationship with an account.")
AccountTypeFilter = enum_filter(AccountType, "AccountTypeFilter")


# --- filters and ordering -----------------------------------------------------------------


@strawberry.input(description="Conditions on accounts; combine with and, or, not.")
class AccountFilter:
    id: IDFilter | None = UNSET
    name: StringFilter | None = UNSET
    business_id: StringFilter | None = UNSET
    industry: StringFilter | None = UNSET
    type: AccountTypeFilter | None = UNSET  # type: ignore[valid-type]
    owner_id: IDFilter | None = UNSET
    parent_id: IDFilter | None = UNSET
    city: StringFilter | None = UNSET
    country: StringFilter | None = UNSET
    archived: BooleanFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    updated_at: DateTimeFilter | None = UNSET
    owner: UserFilter | None = strawberry.field(
        default=UNSET, description="Conditions on the account's owner."
    )
    contacts: ContactRelationFilter | None = strawberry.field(
        default=UNSET, description="Conditions on the account's contacts."
    )
    opportunities: Annotated[
        OpportunityRelationFilter, strawberry.lazy("schema.opportunities")
    ] | None = strawberry.field(default=UNSET,
                                description="Conditions on the account's opportunities.")
    and_: list[AccountFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[AccountFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: AccountFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.input(description="Conditions on contacts; combine with and, or, not.")
class ContactFilter:
    id: IDFilter | None = UNSET
    first_name: StringFilter | None = UNSET
    last_name: StringFilter | None = UNSET
    email: StringFilter | None = UNSET
    phone: StringFilter | None = UNSET
    title: StringFilter | None = UNSET
    account_id: IDFilter | None = UNSET
    owner_id: IDFilter | None = UNSET
    email_consent: BooleanFilter | None = UNSET
    phone_consent: BooleanFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    updated_at: DateTimeFilter | None = UNSET
    account: AccountFilter | None = UNSET
    owner: UserFilter | None = UNSET
    and_: list[ContactFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[ContactFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: ContactFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.input(description="Conditions on an account's contacts: some match, none "
                  "match, or every one matches.")
class ContactRelationFilter:
    some: ContactFilter | None = UNSET
    none: ContactFilter | None = UNSET
    every: ContactFilter | None = UNSET


@strawberry.enum(description="What accounts can be ordered by.")
class AccountOrderField(Enum):
    NAME = "NAME"
    BUSINESS_ID = "BUSINESS_ID"
    INDUSTRY = "INDUSTRY"
    CITY = "CITY"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    ID = "ID"


@strawberry.input(description="One ordering key for accounts; nulls sort last ascending.")
class AccountOrder:
    field: AccountOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.enum(description="What contacts can be ordered by.")
class ContactOrderField(Enum):
    LAST_NAME = "LAST_NAME"
    FIRST_NAME = "FIRST_NAME"
    EMAIL = "EMAIL"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    ID = "ID"


@strawberry.input(description="One ordering key for contacts; nulls sort last ascending.")
class ContactOrder:
    field: ContactOrderField
    direction: OrderDirection = OrderDirection.ASC


# --- types --------------------------------------------------------------------------------


@strawberry.type(description="A postal address.")
class Address:
    street: str | None
    postal_code: str | None
    city: str | None
    country: str | None


@strawberry.type(description="A company the organisation sells to or works with.")
class Account(RowBacked, Node):
    id: strawberry.ID
    name: str
    business_id: str | None = strawberry.field(description="The company registration id.")
    industry: str | None
    type: AccountType  # type: ignore[valid-type]
    website: str | None
    phone: str | None
    address: Address
    archived: bool
    archived_at: datetime | None
    version: int = strawberry.field(description="Pass as expectedVersion when updating.")
    created_at: datetime
    updated_at: datetime
    _key: Private[int]
    _owner_id: Private[int]
    _parent_id: Private[int | None]

    _reads = reads(
        id=using("id")(lambda row: encode_id("Account", row.id)), name="name",
        business_id="business_id",
        industry="industry", type="type", website="website", phone="phone",
        address=using("street", "postal_code", "city", "country")(
            lambda row: Address(street=row.street, postal_code=row.postal_code,
                                city=row.city, country=row.country)),
        archived="archived", archived_at="archived_at", version="version",
        created_at="created_at", updated_at="updated_at", _key="id", _owner_id="owner_id",
        _parent_id="parent_id",
    )

    @strawberry.field(description="The user responsible for the account.")
    @related(UserByIdLoader, "_owner_id", User.from_row)
    async def owner(self, info: Info) -> User:
        return await user_of(info, self._owner_id)  # type: ignore[return-value]

    @strawberry.field(description="The parent company, when the viewer may see it.")
    @related(AccountByIdLoader, "_parent_id", lambda row: Account.from_row(row))
    async def parent(self, info: Info) -> Account | None:
        if self._parent_id is None:
            return None
        row = await info.context.loaders.get(AccountByIdLoader).load(self._parent_id)
        return Account.from_row(row) if row else None

    @strawberry.field(description="Accounts whose parent this account is.")
    @batched(Children(AccountsByParentLoader, AccountCountByParentLoader,
                      lambda row: Account.from_row(row)))
    async def children(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: AccountFilter | None = None, order_by: list[AccountOrder] | None = None,
    ) -> Connection[Account]:
        return await child_connection(
            info.context.loaders, self._key, pages=AccountsByParentLoader,
            counts=AccountCountByParentLoader, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, convert=Account.from_row,
        )

    @strawberry.field(description="The people at this account.")
    @batched(Children(ContactsByAccountLoader, ContactCountByAccountLoader,
                      lambda row: Contact.from_row(row)))
    async def contacts(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: ContactFilter | None = None, order_by: list[ContactOrder] | None = None,
    ) -> Connection[Contact]:
        return await child_connection(
            info.context.loaders, self._key, pages=ContactsByAccountLoader,
            counts=ContactCountByAccountLoader, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, convert=Contact.from_row,
        )

    @strawberry.field(description="The account's opportunities.")
    @batched(Children(OpportunitiesByAccountLoader, OpportunityCountByAccountLoader,
                      FromRow(lambda: opportunity_types.Opportunity)))
    async def opportunities(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: Annotated[OpportunityFilter, strawberry.lazy("schema.opportunities")]
        | None = None,
        order_by: list[Annotated[OpportunityOrder, strawberry.lazy("schema.opportunities")]]
        | None = None,
    ) -> Connection[Annotated[Opportunity, strawberry.lazy("schema.opportunities")]]:
        return await child_connection(
            info.context.loaders, self._key, pages=OpportunitiesByAccountLoader,
            counts=OpportunityCountByAccountLoader, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, convert=opportunity_types.Opportunity.from_row,
        )

    @strawberry.field(description="The partner organisations the account is shared with; a "
                      "partner sees only its own.")
    async def shared_with(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: PartnerOrgFilter | None = None, order_by: list[PartnerOrgOrder] | None = None,
    ) -> Connection[PartnerOrg]:
        return await partner_orgs_of_account(info, self._key, PageArgs(first, after, last, before),
                                             filter, order_by)

    @strawberry.field(description="Calls, meetings and tasks about the account.")
    async def activities(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: Annotated[ActivityFilter, strawberry.lazy("schema.activities")] | None = None,
        order_by: list[Annotated[ActivityOrder, strawberry.lazy("schema.activities")]]
        | None = None,
    ) -> Connection[Annotated[Activity, strawberry.lazy("schema.activities")]]:
        pages, counts = activity_types.ACCOUNT_PAGES
        return await activity_types.activity_connection(
            info, self._key, pages=pages, counts=counts, first=first, after=after, last=last,
            before=before, filter=filter, order_by=order_by)

    @strawberry.field(description="The account's invoices (a rep: of its own and its team's "
                      "accounts; partners none).")
    async def invoices(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: Annotated[InvoiceFilter, strawberry.lazy("schema.billing")] | None = None,
        order_by: list[Annotated[InvoiceOrder, strawberry.lazy("schema.billing")]]
        | None = None,
    ) -> Connection[Annotated[Invoice, strawberry.lazy("schema.billing")]]:
        pages, counts = billing_types.INVOICE_PAGES
        return await child_connection(
            info.context.loaders, self._key, pages=pages, counts=counts,
            args=PageArgs(first, after, last, before), filter=filter, order_by=order_by,
            convert=billing_types.Invoice.from_row)

    @strawberry.field(description="What SENT and PAID invoices dated from `from` to `to` "
                      "billed, per period, offering area and currency.")
    async def billing(
        self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date,
        granularity: Granularity = GranularityEnum.MONTH,  # type: ignore[valid-type]
    ) -> list[Annotated[BillingFigure, strawberry.lazy("schema.billing")]]:
        return await billing_types.billing_field(info, self._key, from_, to, granularity)

    @strawberry.field(description="The account's plan: budget, forecast, billed, won and "
                      "pipeline per period and offering area (as accountPlan).")
    async def plan(
        self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date,
        granularity: Granularity = GranularityEnum.MONTH,  # type: ignore[valid-type]
        offering_area_ids: list[strawberry.ID] | None = None, currency: str = "EUR",
        forecast_kind: Annotated[ForecastKind, strawberry.lazy("schema.planning")]
        | None = None,
        as_of: date | None = None,
    ) -> Annotated[AccountPlan, strawberry.lazy("schema.planning")]:
        return await planning_types.account_plan_field(
            info, self._key, from_, to, granularity, offering_area_ids, currency,
            forecast_kind, as_of)

    @strawberry.field(description="The account's price agreements, newest first.")
    async def price_agreements(
        self, info: Info
    ) -> list[Annotated[PriceAgreement, strawberry.lazy("schema.pricing")]]:
        rows = await info.context.loaders.get(AgreementsByAccountLoader).load(self._key)
        return [pricing_types.PriceAgreement.from_row(row) for row in rows]

    @strawberry.field(description="The book the account's prices come from on a date (today "
                      "by default): its agreement then, else the standard book of the "
                      "currency (EUR unless given).")
    async def effective_price_book(
        self, info: Info, date: date | None = None, currency: str | None = None,
    ) -> Annotated[PriceBook, strawberry.lazy("schema.pricing")] | None:
        return await pricing_types.effective_price_book_field(info, self._key, date, currency)

    @strawberry.field(description="resolvePrice for this account; null for partners.")
    async def price_for(
        self, info: Info, product_id: strawberry.ID, quantity: Decimal = Decimal(1),
        date: date | None = None, currency: str | None = None,
    ) -> Annotated[ResolvedPrice, strawberry.lazy("schema.pricing")] | None:
        return await pricing_types.price_for_field(info, self._key, product_id, quantity, date,
                                                   currency)


@strawberry.type(description="A person at an account.")
class Contact(RowBacked, Node):
    id: strawberry.ID
    first_name: str | None
    last_name: str
    name: str = strawberry.field(description="First and last name.")
    email: str | None
    phone: str | None
    title: str | None
    email_consent: bool = strawberry.field(description="May be contacted by email.")
    phone_consent: bool = strawberry.field(description="May be contacted by phone.")
    version: int = strawberry.field(description="Pass as expectedVersion when updating.")
    created_at: datetime
    updated_at: datetime
    _key: Private[int]
    _account_id: Private[int]
    _owner_id: Private[int]

    _reads = reads(
        id=using("id")(lambda row: encode_id("Contact", row.id)), first_name="first_name",
        last_name="last_name",
        name=using("first_name", "last_name")(
            lambda row: f"{row.first_name} {row.last_name}" if row.first_name
            else row.last_name),
        email="email", phone="phone", title="title", email_consent="email_consent",
        phone_consent="phone_consent", version="version", created_at="created_at",
        updated_at="updated_at", _key="id", _account_id="account_id", _owner_id="owner_id",
    )

    @strawberry.field
    @related(AccountByIdLoader, "_account_id", Account.from_row)
    async def account(self, info: Info) -> Account:
        row = await info.context.loaders.get(AccountByIdLoader).load(self._account_id)
        return Account.from_row(row) if row else None  # type: ignore[return-value]

    @strawberry.field(description="The user responsible for the contact.")
    @related(UserByIdLoader, "_owner_id", User.from_row)
    async def owner(self, info: Info) -> User:
        return await user_of(info, self._owner_id)  # type: ignore[return-value]

    @strawberry.field(description="The campaigns the contact is a member of, newest first.")
    async def campaigns(
        self, info: Info
    ) -> list[Annotated[Campaign, strawberry.lazy("schema.campaigns")]]:
        memberships = await info.context.loaders.get(MembershipsByContactLoader).load(self._key)
        return await campaign_types.campaigns_of(info, [m.campaign_id for m in memberships])

    @strawberry.field(description="The contact's campaign memberships, with their status.")
    async def campaign_memberships(
        self, info: Info
    ) -> list[Annotated[CampaignMember, strawberry.lazy("schema.campaigns")]]:
        memberships = await info.context.loaders.get(MembershipsByContactLoader).load(self._key)
        return [campaign_types.CampaignMember.from_row(m) for m in memberships]

    @strawberry.field(description="Calls, meetings and tasks with the contact.")
    async def activities(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: Annotated[ActivityFilter, strawberry.lazy("schema.activities")] | None = None,
        order_by: list[Annotated[ActivityOrder, strawberry.lazy("schema.activities")]]
        | None = None,
    ) -> Connection[Annotated[Activity, strawberry.lazy("schema.activities")]]:
        pages, counts = activity_types.CONTACT_PAGES
        return await activity_types.activity_connection(
            info, self._key, pages=pages, counts=counts, first=first, after=after, last=last,
            before=before, filter=filter, order_by=order_by)


# --- queries ------------------------------------------------------------------------------


@strawberry.type
class AccountQueries:
    @strawberry.field(description="One account by ID; null when it does not exist or is "
                      "not visible to the viewer.")
    @rows_of(AccountByIdLoader)
    async def account(self, info: Info, id: strawberry.ID) -> Account | None:
        viewer_of(info)
        row = await info.context.loaders.get(AccountByIdLoader).load(decode_id(id, "Account"))
        return Account.from_row(row) if row else None

    @strawberry.field(description="Accounts the viewer may see, filtered and ordered.")
    async def accounts(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: AccountFilter | None = None, order_by: list[AccountOrder] | None = None,
    ) -> Connection[Account]:
        viewer_of(info)
        listing = await resolve.list_accounts(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, columns=planned_columns(info),
        )
        return connection(listing.page, Account.from_row, listing.total_count)

    @strawberry.field(description="One contact by ID; null when not visible.")
    @rows_of(ContactByIdLoader)
    async def contact(self, info: Info, id: strawberry.ID) -> Contact | None:
        viewer_of(info)
        row = await info.context.loaders.get(ContactByIdLoader).load(decode_id(id, "Contact"))
        return Contact.from_row(row) if row else None

    @strawberry.field(description="Contacts the viewer may see, filtered and ordered.")
    async def contacts(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: ContactFilter | None = None, order_by: list[ContactOrder] | None = None,
    ) -> Connection[Contact]:
        viewer_of(info)
        listing = await resolve.list_contacts(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, columns=planned_columns(info),
        )
        return connection(listing.page, Contact.from_row, listing.total_count)


# --- mutations ----------------------------------------------------------------------------


@strawberry.input(description="A postal address; omitted parts are cleared.")
class AddressInput:
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None


@strawberry.input
class CreateAccountInput:
    name: str
    business_id: str | None = None
    industry: str | None = None
    type: AccountType = AccountTypeEnum.PROSPECT  # type: ignore[valid-type]
    owner_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the viewer."
    )
    parent_id: strawberry.ID | None = None
    website: str | None = None
    phone: str | None = None
    address: AddressInput | None = None


@strawberry.input(description="Only the fields sent are changed; null clears a field.")
class UpdateAccountInput:
    id: strawberry.ID
    expected_version: int = strawberry.field(
        description="The version you read; a stale one is a CONFLICT and changes nothing."
    )
    name: str | None = UNSET
    business_id: str | None = UNSET
    industry: str | None = UNSET
    type: AccountType | None = UNSET  # type: ignore[valid-type]
    owner_id: strawberry.ID | None = UNSET
    parent_id: strawberry.ID | None = UNSET
    website: str | None = UNSET
    phone: str | None = UNSET
    address: AddressInput | None = UNSET


@strawberry.input
class ArchiveAccountInput:
    id: strawberry.ID
    expected_version: int


@strawberry.input
class CreateContactInput:
    account_id: strawberry.ID
    last_name: str
    first_name: str | None = None
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    owner_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the viewer."
    )
    email_consent: bool = False
    phone_consent: bool = False


@strawberry.input(description="Only the fields sent are changed; null clears a field.")
class UpdateContactInput:
    id: strawberry.ID
    expected_version: int
    account_id: strawberry.ID | None = UNSET
    first_name: str | None = UNSET
    last_name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    title: str | None = UNSET
    owner_id: strawberry.ID | None = UNSET
    email_consent: bool | None = UNSET
    phone_consent: bool | None = UNSET


@strawberry.input
class DeleteContactInput:
    id: strawberry.ID
    expected_version: int | None = strawberry.field(
        default=None, description="When given, a stale version is a CONFLICT."
    )


@strawberry.type
class CreateAccountPayload:
    account: Account | None
    user_errors: list[UserError]


@strawberry.type
class UpdateAccountPayload:
    account: Account | None
    user_errors: list[UserError]


@strawberry.type
class ArchiveAccountPayload:
    account: Account | None
    user_errors: list[UserError]


@strawberry.type
class CreateContactPayload:
    contact: Contact | None
    user_errors: list[UserError]


@strawberry.type
class UpdateContactPayload:
    contact: Contact | None
    user_errors: list[UserError]


@strawberry.type
class DeleteContactPayload:
    deleted_contact_id: strawberry.ID | None
    user_errors: list[UserError]


def _address(value: AddressInput | None) -> dict[str, str | None] | None:
    return vars(value) if value is not None else None


def _account(row: Any) -> Account | None:
    return Account.from_row(row) if row is not None else None


def _contact(row: Any) -> Contact | None:
    return Contact.from_row(row) if row is not None else None


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Create an account, owned by the viewer by default.")
    async def create_account(self, info: Info, input: CreateAccountInput) -> CreateAccountPayload:
        outcome = await resolve.create_account(
            viewer=viewer_of(info), db=info.context.db, name=input.name,
            business_id=input.business_id, industry=input.industry, type=input.type,
            owner_id=input.owner_id, parent_id=input.parent_id, website=input.website,
            phone=input.phone, address=_address(input.address),
        )
        return CreateAccountPayload(account=_account(outcome.value),
                                    user_errors=user_errors(outcome.errors))

    @strawberry.mutation(description="Change an account's fields.")
    async def update_account(self, info: Info, input: UpdateAccountInput) -> UpdateAccountPayload:
        outcome = await resolve.update_account(
            viewer=viewer_of(info), db=info.context.db, account_id=input.id,
            expected_version=input.expected_version,
            changes=sent_changes(input),
        )
        return UpdateAccountPayload(account=_account(outcome.value),
                                    user_errors=user_errors(outcome.errors))

    @strawberry.mutation(description="Archive an account: it stays readable, and no longer "
                         "takes changes or new contacts.")
    async def archive_account(self, info: Info, input: ArchiveAccountInput
                              ) -> ArchiveAccountPayload:
        outcome = await resolve.archive_account(
            viewer=viewer_of(info), db=info.context.db, account_id=input.id,
            expected_version=input.expected_version,
        )
        return ArchiveAccountPayload(account=_account(outcome.value),
                                     user_errors=user_errors(outcome.errors))

    @strawberry.mutation(description="Add a person to an account.")
    async def create_contact(self, info: Info, input: CreateContactInput) -> CreateContactPayload:
        outcome = await resolve.create_contact(
            viewer=viewer_of(info), db=info.context.db, account_id=input.account_id,
            last_name=input.last_name, first_name=input.first_name, email=input.email,
            phone=input.phone, title=input.title, owner_id=input.owner_id,
            email_consent=input.email_consent, phone_consent=input.phone_consent,
        )
        return CreateContactPayload(contact=_contact(outcome.value),
                                    user_errors=user_errors(outcome.errors))

    @strawberry.mutation(description="Change a contact's fields.")
    async def update_contact(self, info: Info, input: UpdateContactInput) -> UpdateContactPayload:
        outcome = await resolve.update_contact(
            viewer=viewer_of(info), db=info.context.db, contact_id=input.id,
            expected_version=input.expected_version,
            changes=sent_changes(input),
        )
        return UpdateContactPayload(contact=_contact(outcome.value),
                                    user_errors=user_errors(outcome.errors))

    @strawberry.mutation(description="Delete a contact for good.")
    async def delete_contact(self, info: Info, input: DeleteContactInput) -> DeleteContactPayload:
        outcome = await resolve.delete_contact(
            viewer=viewer_of(info), db=info.context.db, contact_id=input.id,
            expected_version=input.expected_version,
        )
        deleted = encode_id("Contact", outcome.value) if outcome.value is not None else None
        return DeleteContactPayload(deleted_contact_id=deleted,
                                    user_errors=user_errors(outcome.errors))
