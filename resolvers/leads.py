"""Leads: worked through a MARKETING pipeline, then converted into an account, a
contact and optionally an opportunity, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.container import Loaders
from loaders.opportunities import LEAD_FILTER, LEAD_ORDER, leads_statement
from loaders.query import PageArgs
from models.accounts import Account, AccountType, Contact
from models.base import utcnow
from models.db import Database
from models.leads import Lead
from models.opportunities import Phase, PhaseOutcome, Pipeline, PipelineKind
from models.users import Viewer
from resolvers.errors import UserErrorCode, UserInputError
from resolvers.mutations import Checks, Outcome, forbidden, mutate, not_found, require_version
from resolvers.opportunities import insert_opportunity
from resolvers.pages import Listing, list_rows
from resolvers.policy import can_assign, can_write, load_owner
from subscriptions.hub import EventHub
from subscriptions.outbox import EventRecord

# Optional text fields: column, the input field userErrors name, maximum length.
LEAD_TEXT = {"first_name": ("firstName", 100), "phone": ("phone", 50),
             "title": ("title", 200), "source": ("source", 100)}


async def list_leads(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
                     ) -> Listing:
    return await list_rows(
        loaders=loaders, statement=leads_statement(loaders.viewer), spec=LEAD_FILTER,
        filter=filter, orderable=LEAD_ORDER, default_order=("CREATED_AT",), order_by=order_by,
        args=args,
    )


def _refuse_partners(viewer: Viewer) -> None:
    if viewer.is_partner:
        raise forbidden("partners cannot see or change leads")


async def _marketing_phase(session: AsyncSession, checks: Checks, phase_gid: str | None
                           ) -> Phase | None:
    """The given phase, or the first open phase of the first MARKETING pipeline."""
    if phase_gid is not None:
        key = checks.global_id("phaseId", phase_gid, "Phase")
        phase = await session.get(Phase, key) if key is not None else None
        if key is not None and (phase is None or phase.removed_at is not None):
            checks.fail("phaseId", "phase not found", UserErrorCode.NOT_FOUND)
            phase = None  # a removed phase takes no new entries
    else:
        phase = (await session.execute(
            select(Phase).join(Pipeline, Pipeline.id == Phase.pipeline_id)
            .where(Pipeline.kind == PipelineKind.MARKETING, Phase.outcome == PhaseOutcome.OPEN,
                   Phase.removed_at.is_(None))
            .order_by(Pipeline.id, Phase.position).limit(1))).scalars().first()
        if phase is None:
            checks.fail("phaseId", "no MARKETING pipeline with an open phase",
                        UserErrorCode.NOT_FOUND)
    if phase is not None:
        pipeline = await session.get(Pipeline, phase.pipeline_id)
        if pipeline is None or pipeline.kind is not PipelineKind.MARKETING:
            checks.fail("phaseId", "leads live in a MARKETING pipeline")
            return None
    return phase


async def _assignable(session: AsyncSession, viewer: Viewer, checks: Checks,
                      owner_gid: str | None) -> int | None:
    if owner_gid is None:
        return viewer.user_id
    owner_id = checks.global_id("ownerId", owner_gid, "User")
    owner = await load_owner(session, owner_id) if owner_id is not None else None
    if owner_id is not None and owner is None:
        checks.fail("ownerId", "user not found", UserErrorCode.NOT_FOUND)
    elif owner is not None and (reason := can_assign(viewer, owner)):
        checks.fail("ownerId", reason, UserErrorCode.FORBIDDEN)
    return owner.id if owner else None


async def create_lead(
    *, viewer: Viewer, db: Database, company: str, last_name: str,
    first_name: str | None = None, email: str | None = None, phone: str | None = None,
    title: str | None = None, source: str | None = None, owner_id: str | None = None,
    phase_id: str | None = None,
) -> Outcome[Lead]:
    async def action() -> Lead:
        _refuse_partners(viewer)
        async with db.transaction() as session:
            checks = Checks()
            values = {
                "company": checks.text("company", company, max_length=200, required=True),
                "last_name": checks.text("lastName", last_name, max_length=100, required=True),
                "first_name": checks.text("firstName", first_name, max_length=100),
                "email": checks.email("email", email),
                "phone": checks.text("phone", phone, max_length=50),
                "title": checks.text("title", title, max_length=200),
                "source": checks.text("source", source, max_length=100),
                "owner_id": await _assignable(session, viewer, checks, owner_id),
            }
            phase = await _marketing_phase(session, checks, phase_id)
            checks.raise_if_any()
            assert phase is not None
            lead = Lead(**values, pipeline_id=phase.pipeline_id, phase_id=phase.id,
                        phase_entered_at=utcnow())
            session.add(lead)
            await session.flush()
            return lead

    return await mutate(action)


async def _writable_lead(session: AsyncSession, viewer: Viewer, checks: Checks, gid: str,
                         expected_version: int) -> Lead:
    _refuse_partners(viewer)
    key = checks.global_id("id", gid, "Lead")
    checks.raise_if_any()
    lead = await session.get(Lead, key)
    if lead is None:
        raise not_found("id", "lead")
    owner = await load_owner(session, lead.owner_id)
    if owner is None or not can_write(viewer, owner):
        raise forbidden("you cannot change this lead")
    require_version(lead.version, expected_version)
    if lead.converted_at is not None:
        raise UserInputError.one("id", UserErrorCode.VALIDATION,
                                 "a converted lead is read-only")
    return lead


async def update_lead(*, viewer: Viewer, db: Database, lead_id: str, expected_version: int,
                      changes: dict[str, Any]) -> Outcome[Lead]:
    async def action() -> Lead:
        async with db.transaction() as session:
            checks = Checks()
            lead = await _writable_lead(session, viewer, checks, lead_id, expected_version)
            if "company" in changes:
                lead.company = checks.text("company", changes["company"], max_length=200,
                                           required=True) or lead.company
            if "last_name" in changes:
                lead.last_name = checks.text("lastName", changes["last_name"], max_length=100,
                                             required=True) or lead.last_name
            if "email" in changes:
                lead.email = checks.email("email", changes["email"])
            for name, (field_name, max_length) in LEAD_TEXT.items():
                if name in changes:
                    setattr(lead, name, checks.text(field_name, changes[name],
                                                    max_length=max_length))
            if "owner_id" in changes:
                if changes["owner_id"] is None:
                    checks.fail("ownerId", "a lead always has an owner")
                elif (owner := await _assignable(session, viewer, checks,
                                                 changes["owner_id"])) is not None:
                    lead.owner_id = owner
            checks.raise_if_any()
            await session.flush()
            return lead

    return await mutate(action)


async def move_lead_phase(*, viewer: Viewer, db: Database, lead_id: str, phase_id: str,
                          expected_version: int) -> Outcome[Lead]:
    async def action() -> Lead:
        async with db.transaction() as session:
            checks = Checks()
            lead = await _writable_lead(session, viewer, checks, lead_id, expected_version)
            phase = await _marketing_phase(session, checks, phase_id)
            checks.raise_if_any()
            assert phase is not None
            if phase.pipeline_id != lead.pipeline_id:
                checks.fail("phaseId", "the phase belongs to another pipeline")
            elif phase.id == lead.phase_id:
                checks.fail("phaseId", "the lead is already in that phase")
            checks.raise_if_any()
            lead.phase_id = phase.id
            lead.phase_entered_at = utcnow()
            await session.flush()
            return lead

    return await mutate(action)


@dataclass(frozen=True)
class NewOpportunity:
    name: str
    amount: Decimal
    currency: str
    phase_id: str | None = None
    expected_close_date: date | None = None


async def convert_lead(
    *, viewer: Viewer, db: Database, events: EventHub, lead_id: str, expected_version: int,
    account_id: str | None = None, contact_id: str | None = None,
    opportunity: NewOpportunity | None = None,
) -> Outcome[Lead]:
    """Link or create the account and the contact, optionally open an opportunity, and
    mark the lead converted: all of it or none of it."""

    async def action() -> Lead:
        event: EventRecord | None = None
        async with db.transaction() as session:
            checks = Checks()
            lead = await _writable_lead(session, viewer, checks, lead_id, expected_version)
            account = await _account_for_lead(session, checks, lead, account_id)
            contact = await _contact_for_lead(session, checks, lead, account, contact_id)
            checks.raise_if_any()
            assert account is not None
            assert contact is not None
            if opportunity is not None:
                created, event = await insert_opportunity(
                    session, viewer=viewer, checks=checks, account_id=account.id,
                    name=opportunity.name, amount=opportunity.amount,
                    currency=opportunity.currency, phase_gid=opportunity.phase_id,
                    pipeline_gid=None, probability=None,
                    expected_close_date=opportunity.expected_close_date,
                    owner_gid=None, offering_area_gid=None, field_prefix="opportunity.",
                    default_owner_id=lead.owner_id,
                    # The lead's campaign sourced the opportunity.
                    source_campaign_key=lead.campaign_id,
                )
                lead.converted_opportunity_id = created.id
            lead.converted_account_id = account.id
            lead.converted_contact_id = contact.id
            lead.converted_at = utcnow()
            await session.flush()
        if event is not None:
            await events.announce(event)
        return lead

    return await mutate(action)


async def _account_for_lead(session: AsyncSession, checks: Checks, lead: Lead,
                            account_gid: str | None) -> Account | None:
    if account_gid is not None:
        key = checks.global_id("accountId", account_gid, "Account")
        if key is None:
            return None
        account = await session.get(Account, key)
        if account is None:
            checks.fail("accountId", "account not found", UserErrorCode.NOT_FOUND)
        elif account.archived:
            checks.fail("accountId", "archived accounts cannot take converted leads")
            return None
        return account
    account = Account(name=lead.company, type=AccountType.PROSPECT, owner_id=lead.owner_id,
                      archived=False)
    session.add(account)
    await session.flush()
    return account


async def _contact_for_lead(session: AsyncSession, checks: Checks, lead: Lead,
                            account: Account | None, contact_gid: str | None
                            ) -> Contact | None:
    if account is None:
        return None
    if contact_gid is not None:
        key = checks.global_id("contactId", contact_gid, "Contact")
        contact = await session.get(Contact, key) if key is not None else None
        if key is not None and contact is None:
            checks.fail("contactId", "contact not found", UserErrorCode.NOT_FOUND)
        elif contact is not None and contact.account_id != account.id:
            checks.fail("contactId", "the contact belongs to another account")
        return contact
    contact = Contact(account_id=account.id, first_name=lead.first_name,
                      last_name=lead.last_name, email=lead.email, phone=lead.phone,
                      title=lead.title, owner_id=lead.owner_id)
    session.add(contact)
    await session.flush()
    return contact
