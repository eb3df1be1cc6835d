"""Small factories that write test data straight to the database."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from loaders.ids import encode_id
from models.accounts import Account, AccountShare, AccountType, Contact
from models.activities import (
    Activity,
    ActivityStatus,
    ActivityTarget,
    ActivityType,
    TargetMetric,
)
from models.db import Database
from models.leads import Lead
from models.opportunities import (
    ForecastCategory,
    Opportunity,
    Phase,
    PhaseChange,
    PhaseOutcome,
    Pipeline,
    PipelineKind,
)
from models.pricing import AccountPriceBook, OfferingArea, PriceBook, PriceBookEntry, Product
from models.users import PartnerOrg, Role, Team, User
from resolvers.weeks import week_of

_sequence = itertools.count(1)


def gid(record: Any) -> str:
    """The global id of a model instance."""
    return encode_id(type(record).__name__, record.id)


async def _add(db: Database, record: Any) -> Any:
    async with db.transaction() as session:
        session.add(record)
    return record


async def make_team(db: Database, name: str | None = None, manager: User | None = None) -> Team:
    return await _add(db, Team(name=name or f"Team {next(_sequence)}",
                               manager_id=manager.id if manager else None))


async def set_manager(db: Database, team: Team, manager: User) -> Team:
    async with db.transaction() as session:
        team = await session.merge(team)
        team.manager_id = manager.id
    return team


async def make_partner_org(db: Database, name: str | None = None) -> PartnerOrg:
    return await _add(db, PartnerOrg(name=name or f"Partner {next(_sequence)}"))


async def make_user(db: Database, role: Role = Role.REP, *, team: Team | None = None,
                    partner_org: PartnerOrg | None = None, name: str | None = None,
                    email: str | None = None, active: bool = True) -> User:
    n = next(_sequence)
    return await _add(db, User(
        email=(email or f"user{n}@example.com").lower(), name=name or f"User {n}", role=role,
        team_id=team.id if team else None,
        partner_org_id=partner_org.id if partner_org else None, active=active,
    ))


async def make_account(db: Database, owner: User, *, name: str | None = None,
                       parent: Account | None = None, **values: Any) -> Account:
    values.setdefault("type", AccountType.CUSTOMER)
    return await _add(db, Account(
        name=name or f"Account {next(_sequence)}", owner_id=owner.id,
        parent_id=parent.id if parent else None, archived=False, **values,
    ))


async def make_contact(db: Database, account: Account, owner: User | None = None, *,
                       last_name: str | None = None, **values: Any) -> Contact:
    return await _add(db, Contact(
        account_id=account.id, owner_id=(owner.id if owner else account.owner_id),
        last_name=last_name or f"Contact{next(_sequence)}", **values,
    ))


async def share(db: Database, account: Account, org: PartnerOrg) -> AccountShare:
    return await _add(db, AccountShare(account_id=account.id, partner_org_id=org.id))


async def make_offering_area(db: Database, code: str | None = None) -> OfferingArea:
    n = next(_sequence)
    return await _add(db, OfferingArea(code=code or f"OA{n}", name=f"Area {n}"))


async def make_product(db: Database, area: OfferingArea, *, code: str | None = None,
                       list_price: Decimal = Decimal("100.00"), **values: Any) -> Product:
    n = next(_sequence)
    values.setdefault("unit", "piece")
    values.setdefault("currency", "EUR")
    return await _add(db, Product(code=code or f"P{n}", name=values.pop("name", f"Product {n}"),
                                  offering_area_id=area.id, list_price=list_price, **values))


class Org:
    """A small organisation: an admin, two teams with a manager and reps, a partner."""

    admin: User
    team_a: Team
    team_b: Team
    manager_a: User
    manager_b: User
    rep_a1: User
    rep_a2: User
    rep_b1: User
    partner_org: PartnerOrg
    partner: User


async def make_org(db: Database) -> Org:
    org = Org()
    org.admin = await make_user(db, Role.ADMIN, name="Admin")
    org.team_a = await make_team(db, "Team A")
    org.team_b = await make_team(db, "Team B")
    org.manager_a = await make_user(db, Role.MANAGER, team=org.team_a, name="Manager A")
    org.manager_b = await make_user(db, Role.MANAGER, team=org.team_b, name="Manager B")
    org.team_a = await set_manager(db, org.team_a, org.manager_a)
    org.team_b = await set_manager(db, org.team_b, org.manager_b)
    org.rep_a1 = await make_user(db, Role.REP, team=org.team_a, name="Rep A1")
    org.rep_a2 = await make_user(db, Role.REP, team=org.team_a, name="Rep A2")
    org.rep_b1 = await make_user(db, Role.REP, team=org.team_b, name="Rep B1")
    org.partner_org = await make_partner_org(db, "Partner Org")
    org.partner = await make_user(db, Role.PARTNER, partner_org=org.partner_org, name="Partner")
    return org


SALES_PHASES = [
    ("Qualify", 10, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
    ("Propose", 40, PhaseOutcome.OPEN, ForecastCategory.BEST_CASE),
    ("Negotiate", 75, PhaseOutcome.OPEN, ForecastCategory.COMMIT),
    ("Won", 100, PhaseOutcome.WON, ForecastCategory.CLOSED),
    ("Lost", 0, PhaseOutcome.LOST, ForecastCategory.OMITTED),
]
MARKETING_PHASES = [
    ("New", 5, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
    ("Engaged", 20, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
    ("Qualified", 50, PhaseOutcome.WON, ForecastCategory.CLOSED),
    ("Disqualified", 0, PhaseOutcome.LOST, ForecastCategory.OMITTED),
]


async def make_pipeline(
    db: Database, kind: PipelineKind = PipelineKind.SALES,
    phases: list[tuple[str, int, PhaseOutcome, ForecastCategory]] | None = None, *,
    name: str | None = None, positions: list[int] | None = None,
) -> tuple[Pipeline, list[Phase]]:
    """A pipeline and its phases, in the order given; ``positions`` defaults to 1, 2, ..."""
    if phases is None:
        phases = SALES_PHASES if kind is PipelineKind.SALES else MARKETING_PHASES
    positions = positions or list(range(1, len(phases) + 1))
    async with db.transaction() as session:
        pipeline = Pipeline(name=name or f"{kind.value.title()} {next(_sequence)}", kind=kind,
                            active=True)
        session.add(pipeline)
        await session.flush()
        records = [
            Phase(pipeline_id=pipeline.id, name=phase_name, position=position,
                  probability=probability, outcome=outcome, forecast_category=category)
            for (phase_name, probability, outcome, category), position
            in zip(phases, positions, strict=True)
        ]
        session.add_all(records)
    return pipeline, records


async def make_opportunity(
    db: Database, account: Account, phase: Phase, owner: User | None = None, *,
    amount: Decimal | str = "1000.00", currency: str = "EUR", probability: int | None = None,
    name: str | None = None, entered_at: datetime | None = None, history: bool = True,
    **values: Any,
) -> Opportunity:
    """An opportunity in ``phase`` (owned by the account's owner unless told), and with
    ``history`` its creation entry in phase_changes, by the owner, at ``entered_at``."""
    entered_at = entered_at or datetime.now(UTC)
    owner_id = owner.id if owner else account.owner_id
    async with db.transaction() as session:
        opportunity = Opportunity(
            account_id=account.id, name=name or f"Deal {next(_sequence)}",
            amount=Decimal(amount), currency=currency, pipeline_id=phase.pipeline_id,
            phase_id=phase.id,
            probability=phase.probability if probability is None else probability,
            owner_id=owner_id, phase_entered_at=entered_at, created_at=entered_at, **values,
        )
        session.add(opportunity)
        await session.flush()
        if history:
            session.add(PhaseChange(
                opportunity_id=opportunity.id, from_phase_id=None, to_phase_id=phase.id,
                changed_by_id=owner_id, changed_at=entered_at, amount=opportunity.amount,
                probability=opportunity.probability,
            ))
    return opportunity


async def make_lead(db: Database, phase: Phase, owner: User, *, company: str | None = None,
                    last_name: str | None = None, **values: Any) -> Lead:
    n = next(_sequence)
    values.setdefault("phase_entered_at", datetime.now(UTC))
    return await _add(db, Lead(company=company or f"Prospect {n}",
                               last_name=last_name or f"Lead{n}", owner_id=owner.id,
                               pipeline_id=phase.pipeline_id, phase_id=phase.id, **values))


ORG_TIMEZONE = "Europe/Helsinki"  # the Settings default the test app runs with


async def make_activity_type(db: Database, code: str, points: int = 1, *,
                             active: bool = True) -> ActivityType:
    """A new activity type (tests start from empty tables, without the standard types
    the migration seeds)."""
    return await _add(db, ActivityType(code=code, name=code.title(), points=points,
                                       active=active))


async def make_activity(db: Database, owner: User, kind: ActivityType, *,
                        completed_at: datetime | None = None,
                        status: ActivityStatus | None = None, subject: str | None = None,
                        **values: Any) -> Activity:
    """An activity of ``owner``; with ``completed_at`` a DONE one that earned the type's
    points, in the week of that moment in the org time zone."""
    status = status or (ActivityStatus.DONE if completed_at else ActivityStatus.PLANNED)
    done = status is ActivityStatus.DONE
    moment = (completed_at or datetime.now(UTC)) if done else None
    return await _add(db, Activity(
        type_id=kind.id, subject=subject or f"Activity {next(_sequence)}", owner_id=owner.id,
        status=status, completed_at=moment,
        completed_week=week_of(moment, ORG_TIMEZONE) if moment else None,
        points_earned=kind.points if done else None, **values))


async def make_target(db: Database, user: User, week: date, metric: TargetMetric, target: int,
                      kind: ActivityType | None = None) -> ActivityTarget:
    return await _add(db, ActivityTarget(user_id=user.id, week=week, metric=metric,
                                         activity_type_id=kind.id if kind else None,
                                         target=target))


async def make_price_book(db: Database, *, name: str | None = None, currency: str = "EUR",
                          is_standard: bool = False, active: bool = True,
                          valid_from: date | None = None, valid_to: date | None = None
                          ) -> PriceBook:
    return await _add(db, PriceBook(
        name=name or f"Price book {next(_sequence)}", currency=currency,
        is_standard=is_standard, active=active, valid_from=valid_from, valid_to=valid_to))


async def make_price_entry(db: Database, book: PriceBook, product: Product,
                           unit_price: Decimal | str, min_quantity: Decimal | str = "1"
                           ) -> PriceBookEntry:
    return await _add(db, PriceBookEntry(price_book_id=book.id, product_id=product.id,
                                         unit_price=Decimal(unit_price),
                                         min_quantity=Decimal(min_quantity)))


async def make_agreement(db: Database, account: Account, book: PriceBook, valid_from: date,
                         valid_to: date | None = None) -> AccountPriceBook:
    """A customer price agreement (its global id is a PriceAgreement's: agreement_gid)."""
    return await _add(db, AccountPriceBook(account_id=account.id, price_book_id=book.id,
                                           valid_from=valid_from, valid_to=valid_to))


def agreement_gid(agreement: AccountPriceBook) -> str:
    return encode_id("PriceAgreement", agreement.id)


async def make_invoice(db: Database, account: Account, *, number: str | None = None,
                       invoice_date: date = date(2026, 1, 15), status: Any = None,
                       currency: str = "EUR",
                       lines: list[tuple[Product | None, str, str]] | None = None) -> Any:
    """An invoice (DRAFT unless told) with MANUAL lines (product or None, quantity, unit
    price), its line totals and total computed as the API does (half-even to cents)."""
    # Imported here: this helper is appended after the module's imports were settled.
    from decimal import ROUND_HALF_EVEN

    from models.billing import Invoice, InvoiceLine, InvoiceStatus
    from models.pricing import PriceSource

    n = next(_sequence)
    values = [(product, Decimal(quantity), Decimal(price)) for product, quantity, price
              in lines or []]
    totals = [(q * p).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
              for _, q, p in values]
    async with db.transaction() as session:
        invoice = Invoice(account_id=account.id, number=number or f"T-{n:06d}",
                          invoice_date=invoice_date, due_date=invoice_date,
                          status=status or InvoiceStatus.DRAFT, currency=currency,
                          total=sum(totals, Decimal(0)))
        session.add(invoice)
        await session.flush()
        session.add_all([InvoiceLine(
            invoice_id=invoice.id, position=position, product_id=product.id if product else None,
            description=None if product else "Service", quantity=q, unit_price=p,
            discount_percent=Decimal(0), price_source=PriceSource.MANUAL, line_total=total)
            for position, ((product, q, p), total) in enumerate(zip(values, totals, strict=True),
                                                                 start=1)])
    return invoice


async def make_budget(db: Database, account: Account, area: OfferingArea, month: date,
                      amount: Decimal | str, *, currency: str = "EUR") -> Any:
    """A budget cell straight in the table (setBudgets is what the API tests use)."""
    # Imported here: this helper is appended after the module's imports were settled.
    from models.planning import Budget

    return await _add(db, Budget(account_id=account.id, offering_area_id=area.id, period=month,
                                 amount=Decimal(amount), currency=currency))


async def make_forecast(db: Database, account: Account, area: OfferingArea, month: date,
                        amount: Decimal | str, *, kind: Any, by: User,
                        submitted_at: datetime | None = None, currency: str = "EUR") -> Any:
    """A FIXED or ROLLING forecast row submitted by ``by`` at ``submitted_at`` (now unless
    told): lets a test place rolling versions in time, which submitForecast cannot."""
    from models.planning import Forecast

    return await _add(db, Forecast(
        account_id=account.id, offering_area_id=area.id, period=month, amount=Decimal(amount),
        currency=currency, kind=kind, submitted_by_id=by.id,
        submitted_at=submitted_at or datetime.now(UTC)))


async def make_target_group(db: Database, owner: User, *, name: str | None = None,
                            kind: str = "ACCOUNT", visibility: str = "PERSONAL",
                            filter: dict[str, Any] | None = None,
                            members: list[Any] | None = None,
                            excluded: list[Any] | None = None) -> Any:
    """A target group straight in the tables: ``filter`` as the API saves it (an
    AccountFilter or ContactFilter in GraphQL names and values), ``members`` its static
    members and ``excluded`` its exclusions (accounts or contacts, by ``kind``)."""
    # Imported here: this helper is appended after the module's imports were settled.
    from models.target_groups import (
        TargetGroup,
        TargetGroupEntry,
        TargetGroupKind,
        TargetGroupVisibility,
    )

    group_kind = TargetGroupKind(kind)
    column = "account_id" if group_kind is TargetGroupKind.ACCOUNT else "contact_id"
    async with db.transaction() as session:
        group = TargetGroup(name=name or f"Group {next(_sequence)}", kind=group_kind,
                            visibility=TargetGroupVisibility(visibility), owner_id=owner.id,
                            filter=filter)
        session.add(group)
        await session.flush()
        session.add_all(
            [TargetGroupEntry(target_group_id=group.id, excluded=False, **{column: m.id})
             for m in members or []]
            + [TargetGroupEntry(target_group_id=group.id, excluded=True, **{column: m.id})
               for m in excluded or []])
    return group


async def make_campaign(db: Database, owner: User, *, kind: str = "EMAIL",
                        status: str = "PLANNED", name: str | None = None,
                        currency: str = "EUR", **values: Any) -> Any:
    """A campaign straight in the table (createCampaign is what the API tests use)."""
    # Imported here: this helper is appended after the module's imports were settled.
    from models.campaigns import Campaign, CampaignStatus, CampaignType

    return await _add(db, Campaign(name=name or f"Campaign {next(_sequence)}",
                                   type=CampaignType(kind), status=CampaignStatus(status),
                                   currency=currency, owner_id=owner.id, **values))


async def make_campaign_member(db: Database, campaign: Any, contact: Contact, status: str, *,
                               agent: User | None = None, **values: Any) -> Any:
    """A member of ``campaign`` with ``status`` as it is, without the API's rules."""
    from models.campaigns import CampaignMember, MemberStatus

    return await _add(db, CampaignMember(campaign_id=campaign.id, contact_id=contact.id,
                                         status=MemberStatus(status),
                                         agent_id=agent.id if agent else None, **values))


async def make_campaign_audience(db: Database, account: Account, count: int, **values: Any
                                 ) -> list[int]:
    """``count`` contacts of ``account`` written in one transaction; their ids in order."""
    async with db.transaction() as session:
        contacts = [Contact(account_id=account.id, owner_id=account.owner_id,
                            last_name=f"Audience{next(_sequence)}", **values)
                    for _ in range(count)]
        session.add_all(contacts)
    return [contact.id for contact in contacts]
