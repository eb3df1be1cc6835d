"""Partner organisations and the accounts shared with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import UNSET

from loaders.query import PageArgs
from resolvers import sharing as resolve
from schema.context import Info, viewer_of
from schema.errors import UserError, payload, user_errors
from schema.inputs import sent_changes
from schema.relay import Connection, connection
from schema.users import PartnerOrg, PartnerOrgFilter, PartnerOrgOrder

if TYPE_CHECKING:
    from schema.accounts import Account


@strawberry.input
class CreatePartnerOrgInput:
    name: str = strawberry.field(description="Unique, regardless of case.")
    allow_introspection: bool = False
    trusted_documents_only: bool = False


@strawberry.input(description="Only the fields sent are changed.")
class UpdatePartnerOrgInput:
    id: strawberry.ID
    expected_version: int = strawberry.field(
        description="The version you read; a stale one is a CONFLICT and changes nothing.")
    name: str | None = UNSET
    active: bool | None = strawberry.field(
        default=UNSET, description="false refuses the org's users and API keys at once and "
        "closes their open WebSockets.")
    allow_introspection: bool | None = UNSET
    trusted_documents_only: bool | None = UNSET


@strawberry.input(description="Accounts to share with, or unshare from, a partner "
                  "organisation: at most 500, all or nothing.")
class AccountSharingInput:
    partner_org_id: strawberry.ID
    account_ids: list[strawberry.ID]


@strawberry.type
class PartnerOrgPayload:
    partner_org: PartnerOrg | None
    user_errors: list[UserError]


def _accounts(rows: list[Any]) -> list[Account]:
    from schema.accounts import Account  # the account types import users, as this does

    return [Account.from_row(row) for row in rows]


@strawberry.type(description="The accounts newly shared, and how many were shared already.")
class ShareAccountsPayload:
    partner_org: PartnerOrg | None
    shared_accounts: list[Annotated[Account, strawberry.lazy("schema.accounts")]]
    shared_count: int
    already_shared_count: int
    user_errors: list[UserError]


@strawberry.type(description="The accounts unshared, and how many were not shared anyway.")
class UnshareAccountsPayload:
    partner_org: PartnerOrg | None
    unshared_accounts: list[Annotated[Account, strawberry.lazy("schema.accounts")]]
    unshared_count: int
    not_shared_count: int
    user_errors: list[UserError]


def _org_payload(outcome: Any) -> PartnerOrgPayload:
    return payload(PartnerOrgPayload, "partner_org", PartnerOrg.from_row, outcome)


@strawberry.type
class SharingQueries:
    @strawberry.field(description="Admins: partner organisations, filtered and ordered.")
    async def partner_orgs(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: PartnerOrgFilter | None = None, order_by: list[PartnerOrgOrder] | None = None,
    ) -> Connection[PartnerOrg]:
        viewer_of(info)
        listing = await resolve.list_partner_orgs(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by)
        return connection(listing.page, PartnerOrg.from_row, listing.total_count)


@strawberry.type
class SharingMutations:
    @strawberry.mutation(description="Admins: a new partner organisation, active.")
    async def create_partner_org(self, info: Info, input: CreatePartnerOrgInput
                                 ) -> PartnerOrgPayload:
        return _org_payload(await resolve.create_partner_org(
            viewer=viewer_of(info), db=info.context.db, name=input.name,
            allow_introspection=input.allow_introspection,
            trusted_documents_only=input.trusted_documents_only))

    @strawberry.mutation(description="Admins: rename a partner organisation, set its "
                         "switches, deactivate or reactivate it.")
    async def update_partner_org(self, info: Info, input: UpdatePartnerOrgInput
                                 ) -> PartnerOrgPayload:
        return _org_payload(await resolve.update_partner_org(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            org_id=input.id, expected_version=input.expected_version,
            changes=sent_changes(input)))

    @strawberry.mutation(description="Admins: share accounts with a partner organisation; "
                         "those shared already stay as they are.")
    async def share_accounts(self, info: Info, input: AccountSharingInput
                             ) -> ShareAccountsPayload:
        outcome = await resolve.share_accounts(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            partner_org_id=input.partner_org_id, account_ids=input.account_ids)
        done = outcome.value
        return ShareAccountsPayload(
            partner_org=PartnerOrg.from_row(done.org) if done else None,
            shared_accounts=_accounts(done.accounts) if done else [],
            shared_count=len(done.accounts) if done else 0,
            already_shared_count=done.unchanged if done else 0,
            user_errors=user_errors(outcome.errors))

    @strawberry.mutation(description="Admins: unshare accounts from a partner organisation: "
                         "its users and keys lose them from the next request on, open "
                         "subscriptions included.")
    async def unshare_accounts(self, info: Info, input: AccountSharingInput
                               ) -> UnshareAccountsPayload:
        outcome = await resolve.unshare_accounts(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            partner_org_id=input.partner_org_id, account_ids=input.account_ids)
        done = outcome.value
        return UnshareAccountsPayload(
            partner_org=PartnerOrg.from_row(done.org) if done else None,
            unshared_accounts=_accounts(done.accounts) if done else [],
            unshared_count=len(done.accounts) if done else 0,
            not_shared_count=done.unchanged if done else 0,
            user_errors=user_errors(outcome.errors))
