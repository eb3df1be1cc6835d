"""The demo data set: counts, relations, determinism and idempotence.

Runs on a SQLite file always, and on PostgreSQL when TEST_DATABASE_URL is set. The
PostgreSQL runs use a database of their own, created and dropped here, since other
tests own the one TEST_DATABASE_URL names.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from graphql import Undefined
from graphql.utilities import coerce_input_value, validate_input_value
from sqlalchemy import and_, delete, func, select, update

from loaders.ids import encode_id
from models.accounts import Account, AccountShare, AccountType, Contact
from models.activities import (
    Activity,
    ActivityStatus,
    ActivityTarget,
    ActivityType,
    TargetMetric,
)
from models.billing import Invoice, InvoiceLine, InvoiceStatus
from models.campaigns import (
    Campaign,
    CampaignMember,
    CampaignStatus,
    CampaignType,
    MemberStatus,
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
from models.planning import Budget, Forecast, ForecastKind
from models.pricing import (
    AccountPriceBook,
    OfferingArea,
    PriceBook,
    PriceBookEntry,
    PriceSource,
    Product,
)
from models.target_groups import (
    TargetGroup,
    TargetGroupEntry,
    TargetGroupKind,
    TargetGroupVisibility,
)
from models.users import PartnerOrg, Role, Team, User
from resolvers.pricing import PriceError, PriceRequest, resolve_prices
from resolvers.users import find_user_id_by_email
from resolvers.weeks import monday_of, week_of
from schema.root import build_schema
from server.app import create_app
from server.demo import BASE_DATE, DEMO_EMAILS, HISTORY_START, build_demo_rows, seed_demo
from server.settings import Settings
from tests.conftest import TEST_SECRET
from tests.databases import BACKENDS, scratch_database
from tests.graphql_client import GraphQLClient

DEMO_TEST_DATABASE = "crmgraph_demo_test"
SEEDED_MODELS = (
    PartnerOrg,
    Team,
    User,
    OfferingArea,
    Product,
    Account,
    Contact,
    AccountShare,
    Campaign,
    CampaignMember,
    Pipeline,
    Phase,
    Opportunity,
    PhaseChange,
    Lead,
    ActivityTarget,
    Activity,
    PriceBook,
    PriceBookEntry,
    AccountPriceBook,
    Invoice,
    InvoiceLine,
    Budget,
    Forecast,
    TargetGroup,
    TargetGroupEntry,
)
SEEDED_TABLES = tuple(model.__tablename__ for model in SEEDED_MODELS)
# Every seeded table but those whose counts follow from generated histories:
# phase_changes, activities, the price book entries, agreements and invoices, the plans,
# the campaigns' members and the target groups' entries.
EXPECTED_COUNTS = {
    "partner_orgs": 1,
    "teams": 3,
    "users": 12,
    "offering_areas": 5,
    "products": 24,
    "accounts": 200,
    "contacts": 600,
    "account_shares": 30,
    "pipelines": 3,
    "phases": 16,
    "opportunities": 1000,
    "leads": 300,
    # Per rep and week of the 52 before the base date and 8 after: COUNT and POINTS,
    # and for 3 of the 7 reps a MEETING count.
    "activity_targets": 7 * 60 * 2 + 3 * 60,
    # The standard book, and nine customer books.
    "price_books": 10,
    "campaigns": 18,
    "target_groups": 8,
}
EMPTY = dict.fromkeys(SEEDED_TABLES, 0)
PIPELINE_PHASES = {
    ("Sales", PipelineKind.SALES): [
        ("Qualification", 10, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
        ("Needs Analysis", 20, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
        ("Proposal", 40, PhaseOutcome.OPEN, ForecastCategory.BEST_CASE),
        ("Negotiation", 60, PhaseOutcome.OPEN, ForecastCategory.BEST_CASE),
        ("Commit", 80, PhaseOutcome.OPEN, ForecastCategory.COMMIT),
        ("Closed Won", 100, PhaseOutcome.WON, ForecastCategory.CLOSED),
        ("Closed Lost", 0, PhaseOutcome.LOST, ForecastCategory.OMITTED),
    ],
    ("Partner Deals", PipelineKind.SALES): [
        ("Registered", 20, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
        ("Qualified", 50, PhaseOutcome.OPEN, ForecastCategory.BEST_CASE),
        ("Closed Won", 100, PhaseOutcome.WON, ForecastCategory.CLOSED),
        ("Closed Lost", 0, PhaseOutcome.LOST, ForecastCategory.OMITTED),
    ],
    ("Lead Funnel", PipelineKind.MARKETING): [
        ("New", 5, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
        ("Contacted", 10, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
        ("Engaged", 25, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
        ("Qualified", 50, PhaseOutcome.OPEN, ForecastCategory.PIPELINE),
        ("Disqualified", 0, PhaseOutcome.LOST, ForecastCategory.OMITTED),
    ],
}
DASH = "\u2013"  # the en dash between account and offering in deal names
LOST_REASONS = {"Price", "Competitor", "No budget", "Timing", "No decision"}
LEAD_SOURCES = {"Web form", "Trade show", "Webinar", "Referral", "Cold call", "LinkedIn"}
ORG_TIMEZONE = "Europe/Helsinki"  # seed_demo's default
ACTIVITY_TYPES = {
    "CALL": ("Call", 1),
    "MEETING": ("Meeting", 3),
    "TASK": ("Task", 1),
    "DEMO": ("Product demo", 5),
}
BASE_WEEK = week_of(BASE_DATE, ORG_TIMEZONE)
HISTORY_WEEKS = [BASE_WEEK - timedelta(weeks=n) for n in range(51, -1, -1)]
TARGET_WEEKS = [*HISTORY_WEEKS, *(BASE_WEEK + timedelta(weeks=n) for n in range(1, 9))]


@pytest.fixture(params=BACKENDS)
def seed_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    # A database of its own: the shared test database belongs to the other tests.
    with scratch_database(request.param, DEMO_TEST_DATABASE, tmp_path) as url:
        yield url


@pytest.fixture
async def seed_db(seed_url: str) -> AsyncIterator[Database]:
    db = Database(seed_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def seed_sqlite_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with (
        scratch_database("sqlite", "first", tmp_path) as first,
        scratch_database("sqlite", "second", tmp_path) as second,
    ):
        yield first, second


async def _counts(db: Database) -> dict[str, int]:
    async with db.read() as connection:
        return {
            model.__tablename__: (
                await connection.execute(select(func.count()).select_from(model))
            ).scalar_one()
            for model in SEEDED_MODELS
        }


async def test_seed_demo_fills_an_empty_database_once(seed_db: Database) -> None:
    assert await seed_demo(seed_db) is True
    counts = await _counts(seed_db)
    assert {name: counts[name] for name in EXPECTED_COUNTS} == EXPECTED_COUNTS
    # A creation entry per opportunity, and most of them moved on since.
    assert 2 * counts["opportunities"] < counts["phase_changes"] < 6 * counts["opportunities"]
    assert 6_000 <= counts["activities"] <= 10_000
    assert 200 <= counts["price_book_entries"] <= 600
    assert 70 <= counts["account_price_books"] <= 130
    assert 1_500 <= counts["invoices"] <= 3_000
    assert counts["invoices"] <= counts["invoice_lines"] <= 4 * counts["invoices"]
    # Two years of months for one to three areas of each of about 130 accounts.
    assert counts["budgets"] % 24 == 0
    assert 24 * 150 <= counts["budgets"] <= 24 * 300
    # A FIXED figure per month of one year, and about two ROLLING versions per month.
    assert counts["budgets"] * 1.5 <= counts["forecasts"] <= counts["budgets"] * 3.5
    assert 1_000 <= counts["campaign_members"] <= 3_000
    assert 30 <= counts["target_group_entries"] <= 150

    assert await seed_demo(seed_db) is False
    assert await _counts(seed_db) == counts


async def test_seed_demo_writes_nothing_when_users_exist(seed_db: Database) -> None:
    async with seed_db.transaction() as session:
        session.add(User(email="someone@example.com", name="Someone", role=Role.ADMIN))

    assert await seed_demo(seed_db) is False
    assert await _counts(seed_db) == EMPTY | {"users": 1}


async def test_seed_demo_writes_nothing_over_other_data(seed_db: Database) -> None:
    # No users yet, but the demo's fixed ids would collide with the catalogue there.
    async with seed_db.transaction() as session:
        session.add(OfferingArea(code="CLD", name="Cloud"))

    assert await seed_demo(seed_db) is False
    assert await _counts(seed_db) == EMPTY | {"offering_areas": 1}


async def test_seed_demo_writes_nothing_over_a_pipeline(seed_db: Database) -> None:
    # The pipeline tables count as data too: the demo's pipeline ids would collide.
    async with seed_db.transaction() as session:
        session.add(Pipeline(name="Renewals", kind=PipelineKind.SALES))

    assert await seed_demo(seed_db) is False
    assert await _counts(seed_db) == EMPTY | {"pipelines": 1}


async def test_seed_demo_writes_nothing_over_a_price_book(seed_db: Database) -> None:
    # Pricing and billing count as data too: the demo's book ids would collide.
    async with seed_db.transaction() as session:
        session.add(PriceBook(name="List prices", currency="EUR", is_standard=True))

    assert await seed_demo(seed_db) is False
    assert await _counts(seed_db) == EMPTY | {"price_books": 1}


async def test_seed_demo_people(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        users = (await connection.execute(select(User))).all()
        teams = (await connection.execute(select(Team))).all()

    assert Counter(user.role for user in users) == {
        Role.ADMIN: 1,
        Role.MANAGER: 3,
        Role.REP: 7,
        Role.PARTNER: 1,
    }
    assert all(user.active and user.email == user.email.lower() for user in users)
    by_email = {user.email: user for user in users}
    for role, email in DEMO_EMAILS.items():
        assert by_email[email].role is role
    assert set(DEMO_EMAILS) == set(Role)

    partner = next(user for user in users if user.role is Role.PARTNER)
    assert partner.partner_org_id is not None
    assert partner.team_id is None
    assert all(user.team_id is not None for user in users if user.role is Role.REP)

    by_id = {user.id: user for user in users}
    assert len(teams) == 3
    for team in teams:
        manager = by_id[team.manager_id]
        assert manager.role is Role.MANAGER
        assert manager.team_id == team.id
        assert any(u.role is Role.REP and u.team_id == team.id for u in users)


async def test_seed_demo_accounts_and_contacts(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        accounts = (await connection.execute(select(Account))).all()
        contacts = (await connection.execute(select(Contact))).all()
        shares = (await connection.execute(select(AccountShare))).all()
        sellers = set(
            (
                await connection.execute(
                    select(User.id).where(User.role.in_([Role.REP, Role.MANAGER]))
                )
            ).scalars()
        )

    assert len(accounts) == 200
    assert len({account.name for account in accounts}) == 200
    assert len({account.business_id for account in accounts}) == 200
    assert {account.owner_id for account in accounts} <= sellers
    types = Counter(account.type for account in accounts)
    assert types[AccountType.CUSTOMER] + types[AccountType.PROSPECT] >= 160
    assert all(account.version == 1 for account in accounts)
    for account in accounts:
        assert HISTORY_START <= account.created_at <= account.updated_at <= BASE_DATE
        assert account.created_at.tzinfo is not None
        assert account.archived == (account.archived_at is not None)

    parent_of = {account.id: account.parent_id for account in accounts}
    children = [child for child, parent in parent_of.items() if parent is not None]
    assert 15 <= len(children) <= 25
    for child in children:
        parent = parent_of[child]
        assert parent < child
        assert parent_of[parent] is None
    for account_id in parent_of:
        seen = {account_id}
        ancestor = parent_of[account_id]
        while ancestor is not None:
            assert ancestor not in seen, f"account {account_id} is its own ancestor"
            seen.add(ancestor)
            ancestor = parent_of[ancestor]

    archived = {account.id for account in accounts if account.archived}
    assert archived
    assert shares
    assert not {share.account_id for share in shares} & archived

    assert len(contacts) == 600
    per_account = Counter(contact.account_id for contact in contacts)
    assert set(per_account) == set(parent_of)
    assert min(per_account.values()) >= 1
    assert max(per_account.values()) <= 6
    assert {contact.owner_id for contact in contacts} <= sellers
    websites = {account.id: account.website for account in accounts}
    for contact in contacts:
        assert contact.email.endswith("@" + websites[contact.account_id].split("www.", 1)[1])
    assert 0.6 < sum(contact.email_consent for contact in contacts) / 600 < 0.8
    assert 0.4 < sum(contact.phone_consent for contact in contacts) / 600 < 0.6


async def test_seed_demo_catalogue(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        products = (await connection.execute(select(Product))).all()

    assert {product.currency for product in products} == {"EUR"}
    assert all(isinstance(product.list_price, Decimal) for product in products)
    assert all(product.list_price.as_tuple().exponent == -2 for product in products)
    assert sum(not product.active for product in products) in (1, 2)
    assert {product.offering_area_id for product in products} == {1, 2, 3, 4, 5}


async def test_seed_demo_leaves_ids_to_the_database(seed_db: Database) -> None:
    await seed_demo(seed_db)
    counts = await _counts(seed_db)
    async with seed_db.read() as connection:
        counts["activity_types"] = (
            await connection.execute(select(func.count()).select_from(ActivityType))
        ).scalar_one()
    # On PostgreSQL this fails with a duplicate key unless the sequences were moved on.
    async with seed_db.transaction() as session:
        org = PartnerOrg(name="Contoso Partners")
        team = Team(name="Iberia")
        area = OfferingArea(code="CLD", name="Cloud")
        session.add_all([org, team, area])
        await session.flush()
        user = User(email="new.rep@demo.crmgraph.dev", name="New Rep", role=Role.REP)
        user.team_id = team.id
        product = Product(
            code="CLD-SEAT",
            name="Cloud Seat",
            offering_area_id=area.id,
            unit="month",
            list_price=Decimal("10.00"),
            currency="EUR",
        )
        session.add_all([user, product])
        await session.flush()
        account = Account(name="Fresh Start Oy", type=AccountType.PROSPECT, owner_id=user.id)
        session.add(account)
        await session.flush()
        contact = Contact(account_id=account.id, last_name="Nieminen", owner_id=user.id)
        share = AccountShare(account_id=account.id, partner_org_id=org.id)
        pipeline = Pipeline(name="Renewals", kind=PipelineKind.SALES)
        session.add_all([contact, share, pipeline])
        await session.flush()
        phase = Phase(
            pipeline_id=pipeline.id,
            name="Due",
            position=1,
            probability=90,
            outcome=PhaseOutcome.OPEN,
            forecast_category=ForecastCategory.COMMIT,
        )
        session.add(phase)
        await session.flush()
        now = datetime.now(UTC)
        opportunity = Opportunity(
            account_id=account.id,
            name=f"Fresh Start {DASH} Renewal",
            amount=Decimal("1000.00"),
            currency="EUR",
            pipeline_id=pipeline.id,
            phase_id=phase.id,
            probability=90,
            owner_id=user.id,
            phase_entered_at=now,
        )
        lead = Lead(
            company="Fresh Lead Oy",
            last_name="Virtanen",
            owner_id=user.id,
            pipeline_id=pipeline.id,
            phase_id=phase.id,
            phase_entered_at=now,
        )
        session.add_all([opportunity, lead])
        await session.flush()
        change = PhaseChange(
            opportunity_id=opportunity.id,
            to_phase_id=phase.id,
            changed_by_id=user.id,
            changed_at=now,
            amount=Decimal("1000.00"),
            probability=90,
        )
        kind = ActivityType(code="VISIT", name="Site visit", points=2)
        session.add_all([change, kind])
        await session.flush()
        activity = Activity(
            type_id=kind.id,
            subject="Visit Fresh Start",
            owner_id=user.id,
            account_id=account.id,
            status=ActivityStatus.PLANNED,
            due_at=now,
        )
        target = ActivityTarget(
            user_id=user.id, week=BASE_WEEK, metric=TargetMetric.COUNT, target=10
        )
        session.add_all([activity, target])
        await session.flush()
        book = PriceBook(name="Iberia 2027", currency="EUR")
        session.add(book)
        await session.flush()
        entry = PriceBookEntry(
            price_book_id=book.id,
            product_id=product.id,
            unit_price=Decimal("9.00"),
            min_quantity=Decimal(1),
        )
        agreement = AccountPriceBook(
            account_id=account.id, price_book_id=book.id, valid_from=date(2027, 1, 1)
        )
        invoice = Invoice(
            account_id=account.id,
            number="INV-2027-000001",
            invoice_date=date(2027, 1, 1),
            status=InvoiceStatus.DRAFT,
            currency="EUR",
            total=Decimal("9.00"),
        )
        session.add_all([entry, agreement, invoice])
        await session.flush()
        line = InvoiceLine(
            invoice_id=invoice.id,
            position=1,
            product_id=product.id,
            quantity=Decimal(1),
            unit_price=Decimal("9.00"),
            price_source=PriceSource.AGREEMENT,
            price_book_id=book.id,
            line_total=Decimal("9.00"),
        )
        session.add(line)
        await session.flush()
        campaign = Campaign(
            name="Iberia Launch",
            type=CampaignType.CALL,
            status=CampaignStatus.PLANNED,
            currency="EUR",
            owner_id=user.id,
        )
        group = TargetGroup(
            name="Iberia prospects",
            kind=TargetGroupKind.ACCOUNT,
            visibility=TargetGroupVisibility.PERSONAL,
            owner_id=user.id,
        )
        budget = Budget(
            account_id=account.id,
            offering_area_id=area.id,
            period=date(2027, 1, 1),
            amount=Decimal("100.00"),
            currency="EUR",
        )
        forecast = Forecast(
            account_id=account.id,
            offering_area_id=area.id,
            period=date(2027, 1, 1),
            amount=Decimal("100.00"),
            currency="EUR",
            kind=ForecastKind.ROLLING,
            submitted_by_id=user.id,
            submitted_at=now,
        )
        session.add_all([campaign, group, budget, forecast])
        await session.flush()
        member = CampaignMember(
            campaign_id=campaign.id, contact_id=contact.id, status=MemberStatus.TO_CALL
        )
        group_entry = TargetGroupEntry(target_group_id=group.id, account_id=account.id)
        session.add_all([member, group_entry])
        await session.flush()
        rows = (
            org,
            team,
            area,
            user,
            product,
            account,
            contact,
            share,
            pipeline,
            phase,
            opportunity,
            change,
            lead,
            kind,
            activity,
            target,
            book,
            entry,
            agreement,
            invoice,
            line,
            campaign,
            member,
            budget,
            forecast,
            group,
            group_entry,
        )
        new_ids = {row.__tablename__: row.id for row in rows}

    assert new_ids == {name: count + 1 for name, count in counts.items()}


async def test_seed_demo_pipelines(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        pipelines = (await connection.execute(select(Pipeline).order_by(Pipeline.id))).all()
        phases = (await connection.execute(select(Phase).order_by(Phase.position))).all()

    found = {
        (pipeline.name, pipeline.kind): [
            (phase.name, phase.probability, phase.outcome, phase.forecast_category)
            for phase in phases
            if phase.pipeline_id == pipeline.id
        ]
        for pipeline in pipelines
    }
    assert found == PIPELINE_PHASES
    assert all(pipeline.active and pipeline.version == 1 for pipeline in pipelines)
    for pipeline in pipelines:
        positions = [phase.position for phase in phases if phase.pipeline_id == pipeline.id]
        assert positions == list(range(1, len(positions) + 1))
        assert HISTORY_START <= pipeline.created_at <= BASE_DATE


async def test_seed_demo_opportunities(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        opportunities = (await connection.execute(select(Opportunity))).all()
        changes = (await connection.execute(select(PhaseChange).order_by(PhaseChange.id))).all()
        phases = {row.id: row for row in (await connection.execute(select(Phase))).all()}
        pipelines = {row.id: row.name for row in (await connection.execute(select(Pipeline)))}
        accounts = {row.id: row for row in (await connection.execute(select(Account))).all()}
        users = {row.id: row for row in (await connection.execute(select(User))).all()}
        teams = {row.id: row for row in (await connection.execute(select(Team))).all()}
        shared = set((await connection.execute(select(AccountShare.account_id))).scalars())
        areas = set((await connection.execute(select(OfferingArea.id))).scalars())

    assert len(opportunities) == 1000
    assert Counter(pipelines[o.pipeline_id] for o in opportunities) == {
        "Sales": 850,
        "Partner Deals": 150,
    }
    outcomes = Counter(phases[o.phase_id].outcome for o in opportunities)
    assert 0.5 <= outcomes[PhaseOutcome.OPEN] / 1000 <= 0.7
    assert 0.18 <= outcomes[PhaseOutcome.WON] / 1000 <= 0.32
    assert 0.08 <= outcomes[PhaseOutcome.LOST] / 1000 <= 0.22
    open_phases = {
        phase.id
        for phase in phases.values()
        if phase.outcome is PhaseOutcome.OPEN and pipelines[phase.pipeline_id] != "Lead Funnel"
    }
    assert {o.phase_id for o in opportunities} >= open_phases

    history: dict[int, list] = defaultdict(list)
    previous_at = None
    for change in changes:
        # Ids follow time, as if the changes had been written one after the other.
        assert previous_at is None or previous_at <= change.changed_at
        previous_at = change.changed_at
        history[change.opportunity_id].append(change)
    assert set(history) == {o.id for o in opportunities}

    earliest_close = (BASE_DATE - timedelta(days=30)).date()
    latest_close = date(2027, 8, 1)  # nine months after the base date
    for o in opportunities:
        account = accounts[o.account_id]
        phase = phases[o.phase_id]
        owner = users[o.owner_id]
        manager = teams[owner.team_id].manager_id
        assert not account.archived
        if pipelines[o.pipeline_id] == "Partner Deals":
            assert o.account_id in shared
        assert owner.role in (Role.REP, Role.MANAGER)
        assert isinstance(o.amount, Decimal)
        assert o.amount.as_tuple().exponent == -2
        assert Decimal(2000) <= o.amount <= Decimal(250_000)
        assert o.currency == "EUR"
        assert o.offering_area_id in areas
        assert o.name.startswith(f"{account.name.rsplit(' ', 1)[0]} {DASH} ")
        assert o.version == 1
        assert phase.pipeline_id == o.pipeline_id
        assert o.probability == phase.probability
        assert o.created_at.tzinfo is not None
        assert account.created_at < o.created_at <= o.phase_entered_at <= BASE_DATE
        assert o.created_at >= HISTORY_START
        assert o.updated_at >= o.created_at

        if phase.outcome is PhaseOutcome.OPEN:
            assert o.closed_at is None
            assert o.lost_reason is None
            assert earliest_close <= o.expected_close_date <= latest_close
        else:
            assert o.closed_at == o.phase_entered_at
            assert o.expected_close_date == o.closed_at.date()
            if phase.outcome is PhaseOutcome.LOST:
                assert o.lost_reason in LOST_REASONS
            else:
                assert o.lost_reason is None

        steps = history[o.id]
        first, last = steps[0], steps[-1]
        assert first.from_phase_id is None
        assert phases[first.to_phase_id].position == 1
        assert first.changed_at == o.created_at
        assert last.to_phase_id == o.phase_id
        assert last.amount == o.amount
        assert last.changed_at == o.phase_entered_at
        for before, after in itertools.pairwise(steps):
            assert before.changed_at < after.changed_at
            assert after.from_phase_id == before.to_phase_id
            assert phases[before.to_phase_id].outcome is PhaseOutcome.OPEN
        for change in steps:
            assert (change.from_phase_id is None) == (change is first)
            assert phases[change.to_phase_id].pipeline_id == o.pipeline_id
            if change.from_phase_id is not None:
                assert phases[change.from_phase_id].pipeline_id == o.pipeline_id
            assert change.probability == phases[change.to_phase_id].probability
            assert change.changed_by_id in (o.owner_id, manager)
            assert isinstance(change.amount, Decimal)
            assert change.event_id is None
            assert change.changed_at <= BASE_DATE

    # The histories look like real ones: deals skip a phase, fall back one, change
    # their figure, and managers move some of them.
    moves = [change for change in changes if change.from_phase_id is not None]
    open_moves = [m for m in moves if phases[m.to_phase_id].outcome is PhaseOutcome.OPEN]
    steps_taken = Counter(
        phases[m.to_phase_id].position - phases[m.from_phase_id].position for m in open_moves
    )
    assert set(steps_taken) == {-1, 1, 2}
    assert steps_taken[1] > steps_taken[2] > steps_taken[-1] > 0
    amount_changes = sum(
        before.amount != after.amount
        for steps in history.values()
        for before, after in itertools.pairwise(steps)
    )
    assert amount_changes > 100
    owners = {o.id: o.owner_id for o in opportunities}
    assert 0 < sum(m.changed_by_id != owners[m.opportunity_id] for m in moves) < len(moves) / 5
    assert sum(o.owner_id == accounts[o.account_id].owner_id for o in opportunities) > 800


async def test_seed_demo_leads(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        leads = (await connection.execute(select(Lead))).all()
        phases = {row.id: row for row in (await connection.execute(select(Phase))).all()}
        funnel = (
            await connection.execute(select(Pipeline).where(Pipeline.name == "Lead Funnel"))
        ).one()
        contacts = {row.id: row for row in (await connection.execute(select(Contact))).all()}
        accounts = set((await connection.execute(select(Account.id))).scalars())
        opportunities = {
            row.id: row
            for row in (
                await connection.execute(select(Opportunity.id, Opportunity.account_id))
            ).all()
        }
        reps = set(
            (await connection.execute(select(User.id).where(User.role == Role.REP))).scalars()
        )

    assert len(leads) == 300
    assert funnel.kind is PipelineKind.MARKETING
    assert {lead.pipeline_id for lead in leads} == {funnel.id}
    by_phase = Counter(phases[lead.phase_id].name for lead in leads)
    assert set(by_phase) == {"New", "Contacted", "Engaged", "Qualified", "Disqualified"}
    assert all(phases[lead.phase_id].pipeline_id == funnel.id for lead in leads)
    assert {lead.owner_id for lead in leads} <= reps
    assert {lead.source for lead in leads} == LEAD_SOURCES
    for lead in leads:
        assert all((lead.company, lead.first_name, lead.last_name, lead.title))
        assert lead.email.endswith(".example")
        assert lead.phone.startswith("+")
        assert lead.version == 1
        assert HISTORY_START <= lead.created_at <= lead.phase_entered_at <= BASE_DATE
        assert lead.phase_entered_at.tzinfo is not None
        assert lead.updated_at >= lead.phase_entered_at

    converted = [lead for lead in leads if lead.converted_at is not None]
    assert 30 <= len(converted) <= 50
    for lead in leads:
        if lead.converted_at is None:
            assert lead.converted_account_id is None
            assert lead.converted_contact_id is None
            assert lead.converted_opportunity_id is None
    with_opportunity = 0
    for lead in converted:
        assert phases[lead.phase_id].name == "Qualified"
        assert lead.phase_entered_at <= lead.converted_at <= BASE_DATE
        assert lead.converted_account_id in accounts
        contact = contacts[lead.converted_contact_id]
        assert contact.account_id == lead.converted_account_id
        assert lead.email == contact.email
        if lead.converted_opportunity_id is not None:
            with_opportunity += 1
            opportunity = opportunities[lead.converted_opportunity_id]
            assert opportunity.account_id == lead.converted_account_id
    assert 0.3 <= with_opportunity / len(converted) <= 0.7


async def _activity_types(db: Database) -> dict[str, tuple[int, str, int]]:
    async with db.read() as connection:
        rows = (await connection.execute(select(ActivityType))).all()
    return {row.code: (row.id, row.name, row.points) for row in rows}


async def test_seed_demo_reuses_the_activity_types_there(seed_db: Database) -> None:
    # Migration 0003 brought CALL, MEETING and TASK; an admin has since changed a
    # value and added a type. Types are no sign of data: the demo seeds all the same.
    async with seed_db.transaction() as session:
        await session.execute(
            update(ActivityType).where(ActivityType.code == "MEETING").values(points=4)
        )
        session.add(ActivityType(code="VISIT", name="Site visit", points=2))
    before = await _activity_types(seed_db)
    assert set(before) == {"CALL", "MEETING", "TASK", "VISIT"}

    assert await seed_demo(seed_db) is True
    after = await _activity_types(seed_db)
    assert {code: after[code] for code in before} == before
    assert after["DEMO"][1:] == ACTIVITY_TYPES["DEMO"]
    async with seed_db.read() as connection:
        used = set((await connection.execute(select(Activity.type_id).distinct())).scalars())
    assert used == {after[code][0] for code in ACTIVITY_TYPES}


async def test_seed_demo_adds_the_activity_types_missing(seed_db: Database) -> None:
    # As in the test suite, whose databases are emptied, standard types included.
    async with seed_db.transaction() as session:
        await session.execute(delete(ActivityType))

    assert await seed_demo(seed_db) is True
    types = await _activity_types(seed_db)
    assert {code: (name, points) for code, (_, name, points) in types.items()} == ACTIVITY_TYPES


async def test_seed_demo_activities(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        activities = (await connection.execute(select(Activity))).all()
        types = {row.id: row for row in (await connection.execute(select(ActivityType))).all()}
        users = {row.id: row for row in (await connection.execute(select(User))).all()}
        accounts = {row.id: row for row in (await connection.execute(select(Account))).all()}
        contacts = {row.id: row for row in (await connection.execute(select(Contact))).all()}
        deals = {row.id: row for row in (await connection.execute(select(Opportunity))).all()}

    reps = {user.id for user in users.values() if user.role is Role.REP}
    assert {activity.owner_id for activity in activities} == reps
    by_status = Counter(activity.status for activity in activities)
    assert by_status[ActivityStatus.DONE] > 0.85 * len(activities)
    assert 0.03 < by_status[ActivityStatus.CANCELLED] / len(activities) < 0.1
    mix = Counter(types[activity.type_id].code for activity in activities)
    assert mix["CALL"] > mix["TASK"] > mix["MEETING"] > mix["DEMO"] > 0
    assert sum(activity.due_at is not None for activity in activities) > 0.75 * len(activities)

    zone = ZoneInfo(ORG_TIMEZONE)
    done = [a for a in activities if a.status is ActivityStatus.DONE]
    for activity in done:
        assert activity.completed_at.tzinfo is not None
        assert activity.created_at <= activity.completed_at <= BASE_DATE
        assert activity.updated_at == activity.completed_at
        assert activity.completed_week == week_of(activity.completed_at, ORG_TIMEZONE)
        assert activity.points_earned == types[activity.type_id].points
    assert sorted({a.completed_week for a in done}) == HISTORY_WEEKS
    local = [a.completed_at.astimezone(zone) for a in done]
    in_office = sum(t.weekday() < 5 and 8 <= t.hour < 19 for t in local)
    assert in_office > 0.9 * len(done)
    assert any(t.weekday() == 6 and t.hour >= 18 for t in local)
    # Just after midnight into Monday locally it is still Sunday in UTC: that work counts
    # for the local week, also on the Mondays after the clocks changed.
    shifted = {
        a.completed_week for a in done if monday_of(a.completed_at.date()) != a.completed_week
    }
    assert {date(2026, 3, 30), date(2026, 10, 26)} <= shifted

    for activity in activities:
        if activity.status is not ActivityStatus.DONE:
            assert activity.completed_at is None
            assert activity.completed_week is None
            assert activity.points_earned is None
            assert activity.due_at is not None
            assert activity.created_at <= activity.due_at
            assert activity.created_at <= activity.updated_at <= BASE_DATE
    planned = [a for a in activities if a.status is ActivityStatus.PLANNED]
    assert {a.owner_id for a in planned if a.due_at > BASE_DATE} == reps
    assert any(a.due_at < BASE_DATE for a in planned)  # overdue
    assert all(a.due_at < BASE_DATE for a in activities if a.status is ActivityStatus.CANCELLED)

    for activity in activities:
        moment = activity.completed_at or activity.due_at
        linked = []
        if activity.contact_id is not None:
            contact = contacts[activity.contact_id]
            assert contact.account_id == activity.account_id
            linked.append(contact)
        if activity.opportunity_id is not None:
            deal = deals[activity.opportunity_id]
            assert deal.account_id == activity.account_id
            assert deal.owner_id == activity.owner_id
            assert deal.created_at <= moment
            assert deal.closed_at is None or moment <= deal.closed_at
            linked.append(deal)
        elif activity.account_id is not None:
            assert accounts[activity.account_id].owner_id == activity.owner_id
        if activity.account_id is not None:
            account = accounts[activity.account_id]
            assert account.archived_at is None or moment <= account.archived_at
            linked.append(account)
        assert all(record.created_at <= activity.created_at for record in linked)
        assert activity.subject
    linked_to_deals = sum(a.opportunity_id is not None for a in activities)
    assert 0.2 < linked_to_deals / len(activities) < 0.6


async def test_seed_demo_activity_targets(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        targets = (await connection.execute(select(ActivityTarget))).all()
        reps = set(
            (await connection.execute(select(User.id).where(User.role == Role.REP))).scalars()
        )
        meeting = (
            await connection.execute(select(ActivityType.id).where(ActivityType.code == "MEETING"))
        ).scalar_one()

    keys = Counter((t.user_id, t.week, t.metric, t.activity_type_id or 0) for t in targets)
    assert max(keys.values()) == 1
    assert {t.user_id for t in targets} == reps
    assert {t.activity_type_id for t in targets} == {None, meeting}
    for metric in TargetMetric:
        for user_id in reps:
            weeks = sorted(
                t.week
                for t in targets
                if t.user_id == user_id and t.metric is metric and t.activity_type_id is None
            )
            assert weeks == TARGET_WEEKS
    with_meetings = {t.user_id for t in targets if t.activity_type_id == meeting}
    assert 0 < len(with_meetings) < len(reps)
    assert all(t.metric is TargetMetric.COUNT for t in targets if t.activity_type_id == meeting)

    value = {(t.user_id, t.week, t.metric, t.activity_type_id): t.target for t in targets}
    for (user_id, week, metric, type_id), target in value.items():
        assert target >= 1
        if metric is TargetMetric.POINTS:
            # Points targets allow for the meetings and demos worth more than one.
            assert value[user_id, week, TargetMetric.COUNT, None] <= target <= 60
        elif type_id is None:
            assert target <= 30
        else:
            assert target < value[user_id, week, TargetMetric.COUNT, None]
    ordinary = [
        value[user_id, week, TargetMetric.COUNT, None]
        for user_id in reps
        for week in TARGET_WEEKS
        if week.month not in (7, 12, 1)
    ]
    assert min(ordinary) >= 15
    for target in targets:
        assert target.created_at <= BASE_DATE
        assert target.created_at < datetime.combine(target.week, datetime.min.time(), UTC)
        assert target.version == 1


async def test_seed_demo_attainment_spreads_around_target(seed_db: Database) -> None:
    await seed_demo(seed_db)
    done = Activity.status == ActivityStatus.DONE
    realized = (
        select(
            Activity.owner_id,
            Activity.completed_week,
            func.count().label("count"),
            func.sum(Activity.points_earned).label("points"),
        )
        .where(done)
        .group_by(Activity.owner_id, Activity.completed_week)
        .subquery()
    )
    query = (
        select(
            ActivityTarget.user_id,
            ActivityTarget.metric,
            ActivityTarget.target,
            func.coalesce(realized.c.count, 0),
            func.coalesce(realized.c.points, 0),
        )
        .outerjoin(
            realized,
            and_(
                realized.c.owner_id == ActivityTarget.user_id,
                realized.c.completed_week == ActivityTarget.week,
            ),
        )
        .where(ActivityTarget.activity_type_id.is_(None), ActivityTarget.week <= BASE_WEEK)
    )
    async with seed_db.read() as connection:
        rows = (await connection.execute(query)).all()

    for metric in TargetMetric:
        ratios: dict[int, list[float]] = defaultdict(list)
        for user_id, row_metric, target, count, points in rows:
            if row_metric is metric:
                ratios[user_id].append((count if metric is TargetMetric.COUNT else points) / target)
        every = [ratio for per_rep in ratios.values() for ratio in per_rep]
        assert len(every) == 7 * 52
        assert sum(ratio < 0.8 for ratio in every) > 0.15 * len(every)
        assert sum(ratio > 1.1 for ratio in every) > 0.15 * len(every)
        # Each rep has a level of their own: a laggard and a star, not one average.
        means = sorted(sum(per_rep) / len(per_rep) for per_rep in ratios.values())
        assert means[0] < 0.8
        assert means[-1] > 1.1


async def test_seed_demo_price_books(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        books = {row.id: row for row in (await connection.execute(select(PriceBook))).all()}
        entries = (await connection.execute(select(PriceBookEntry))).all()
        products = {row.id: row for row in (await connection.execute(select(Product))).all()}
        standards = (
            await connection.execute(
                select(PriceBook.currency, func.count())
                .where(PriceBook.is_standard.is_(True))
                .group_by(PriceBook.currency)
            )
        ).all()

    assert [tuple(row) for row in standards] == [("EUR", 1)]
    standard = next(book for book in books.values() if book.is_standard)
    assert standard.active
    assert standard.valid_from is None
    assert standard.valid_to is None
    assert {book.currency for book in books.values()} == {"EUR"}
    assert len({book.name for book in books.values()}) == len(books)

    tiers: dict[tuple[int, int], list[tuple[Decimal, Decimal]]] = defaultdict(list)
    for entry in entries:
        tiers[entry.price_book_id, entry.product_id].append((entry.min_quantity, entry.unit_price))
    for steps in tiers.values():
        steps.sort()
        quantities = [quantity for quantity, _ in steps]
        assert len(set(quantities)) == len(quantities)
        # The more bought, the lower the unit price.
        assert all(a[1] > b[1] for a, b in itertools.pairwise(steps))
        assert all(price.as_tuple().exponent == -2 for _, price in steps)

    # The standard book prices every product on sale from one unit, at its list price or
    # a little under, and only those; some also by volume.
    on_sale = [product for product in products.values() if product.active]
    for product in on_sale:
        quantity, price = tiers[standard.id, product.id][0]
        assert quantity == 1
        assert product.list_price * Decimal("0.9") <= price <= product.list_price
    assert any(tiers[standard.id, p.id][0][1] < p.list_price for p in on_sale)
    assert any(tiers[standard.id, p.id][0][1] == p.list_price for p in on_sale)
    assert all((standard.id, p.id) not in tiers for p in products.values() if not p.active)
    volume = [p for p in on_sale if len(tiers[standard.id, p.id]) > 1]
    assert 2 <= len(volume) < len(on_sale)

    customer_books = [book for book in books.values() if not book.is_standard]
    assert 6 <= len(customer_books) <= 10
    for book in customer_books:
        priced = [key for key in tiers if key[0] == book.id]
        assert priced, book.name
        if book.active:
            assert max(len(tiers[key]) for key in priced) >= 3, book.name
        for _, product_id in priced:
            # Below the standard price at every tier, where the standard book has one.
            standard_steps = tiers.get((standard.id, product_id), [])
            for quantity, price in tiers[book.id, product_id]:
                reached = [step for step in standard_steps if step[0] <= quantity]
                if reached:
                    assert price < reached[-1][1], (book.name, product_id, quantity)
    assert any(
        {1, 10, 50} <= {quantity for quantity, _ in steps}
        for (book_id, _), steps in tiers.items()
        if book_id != standard.id
    )
    # A book with volume tiers only: below its first tier the standard price applies.
    assert any(
        all(tiers[key][0][0] > 1 for key in tiers if key[0] == book.id) for book in customer_books
    )
    today = BASE_DATE.date()
    assert any(not book.active for book in customer_books)
    assert any(book.valid_to is not None and book.valid_to < today for book in customer_books)
    for book in books.values():
        assert HISTORY_START <= book.created_at <= book.updated_at <= BASE_DATE


async def test_seed_demo_price_agreements(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        agreements = (await connection.execute(select(AccountPriceBook))).all()
        books = {row.id: row for row in (await connection.execute(select(PriceBook))).all()}
        accounts = {row.id: row for row in (await connection.execute(select(Account))).all()}

    by_account: dict[int, list] = defaultdict(list)
    for agreement in agreements:
        by_account[agreement.account_id].append(agreement)
    assert 0.25 <= len(by_account) / len(accounts) <= 0.40
    for account_id in by_account:
        assert not accounts[account_id].archived
        assert accounts[account_id].type in (AccountType.CUSTOMER, AccountType.PARTNER)
    customers = sum(accounts[a].type is AccountType.CUSTOMER for a in by_account)
    assert customers > 0.8 * len(by_account)

    # One account's agreements in one currency never overlap.
    for periods in by_account.values():
        per_currency: dict[str, list] = defaultdict(list)
        for agreement in periods:
            per_currency[books[agreement.price_book_id].currency].append(agreement)
        for same_currency in per_currency.values():
            same_currency.sort(key=lambda agreement: agreement.valid_from)
            for before, after in itertools.pairwise(same_currency):
                assert before.valid_to is not None
                assert before.valid_to < after.valid_from

    first_invoice_day = date(2024, 11, 1)
    for agreement in agreements:
        book = books[agreement.price_book_id]
        account = accounts[agreement.account_id]
        assert not book.is_standard
        assert agreement.valid_to is None or agreement.valid_from <= agreement.valid_to
        # Within the book's own period.
        assert book.valid_from is None or book.valid_from <= agreement.valid_from
        assert book.valid_to is None or (
            agreement.valid_to is not None and agreement.valid_to <= book.valid_to
        )
        if not book.active:
            assert agreement.valid_to < first_invoice_day
        assert (book.name == "Partner Resale") == (account.type is AccountType.PARTNER)
        assert account.created_at <= agreement.created_at <= agreement.updated_at <= BASE_DATE
        assert agreement.version == 1

    # Some agreements ended and a new one followed, some ended for good, some end later;
    # some began before the CRM came, entered from the contracts.
    today = BASE_DATE.date()
    renewed = [periods for periods in by_account.values() if len(periods) > 1]
    assert len(renewed) >= 10
    current = {
        a.account_id
        for a in agreements
        if a.valid_from <= today and (a.valid_to is None or today <= a.valid_to)
    }
    assert 0.6 * len(by_account) < len(current) < len(by_account)
    assert any(a.valid_to is not None and a.valid_to > today for a in agreements)
    assert any(a.valid_from < HISTORY_START.date() for a in agreements)


def _half_even(quantity: Decimal, unit_price: Decimal, discount: Decimal) -> Decimal:
    exact = quantity * unit_price * (100 - discount) / 100
    return exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


async def test_seed_demo_invoices(seed_db: Database) -> None:
    await seed_demo(seed_db)
    line_sum = (
        select(func.coalesce(func.sum(InvoiceLine.line_total), 0))
        .where(InvoiceLine.invoice_id == Invoice.id)
        .scalar_subquery()
    )
    has_lines = select(InvoiceLine.id).where(InvoiceLine.invoice_id == Invoice.id).exists()
    async with seed_db.read() as connection:
        invoices = (await connection.execute(select(Invoice))).all()
        lines = (await connection.execute(select(InvoiceLine))).all()
        accounts = {row.id: row for row in (await connection.execute(select(Account))).all()}
        books = set((await connection.execute(select(PriceBook.id))).scalars())
        # Totals checked in SQL, as the API's figures are summed there.
        off_total = (
            await connection.execute(
                select(func.count()).select_from(Invoice).where(Invoice.total != line_sum)
            )
        ).scalar_one()
        without_lines = (
            await connection.execute(select(func.count()).select_from(Invoice).where(~has_lines))
        ).scalar_one()

    assert off_total == 0
    assert without_lines == 0
    assert 1_500 <= len(invoices) <= 3_000

    # Two years: every month from November 2024 to October 2026.
    months = {invoice.invoice_date.replace(day=1) for invoice in invoices}
    expected = {date(2024 + (10 + n) // 12, (10 + n) % 12 + 1, 1) for n in range(24)}
    assert months == expected

    numbers = Counter(invoice.number for invoice in invoices)
    assert max(numbers.values()) == 1
    external = Counter(invoice.external_id for invoice in invoices if invoice.external_id)
    assert max(external.values()) == 1
    assert 0.7 < sum(external.values()) / len(invoices) < 1
    statuses = Counter(invoice.status for invoice in invoices)
    assert set(statuses) == set(InvoiceStatus)
    assert statuses[InvoiceStatus.PAID] > 0.8 * len(invoices)
    assert 0 < statuses[InvoiceStatus.CANCELLED] < 0.05 * len(invoices)
    last_month = date(2026, 10, 1)
    today = BASE_DATE.date()
    for invoice in invoices:
        account = accounts[invoice.account_id]
        match = re.fullmatch(r"INV-(\d{4})-\d{6}", invoice.number)
        assert match is not None
        assert int(match.group(1)) == invoice.invoice_date.year
        assert invoice.external_id is None or re.fullmatch(r"ERP-\d+", invoice.external_id)
        assert invoice.due_date == invoice.invoice_date + timedelta(days=30)
        assert invoice.currency == "EUR"
        assert invoice.total > 0
        assert invoice.version == 1
        assert not account.archived
        assert account.created_at <= invoice.created_at <= invoice.updated_at <= BASE_DATE
        if invoice.invoice_date < account.created_at.date():
            # Billed before the account came into the CRM: imported from the ERP.
            assert invoice.external_id is not None
        if invoice.status is InvoiceStatus.DRAFT:
            assert invoice.invoice_date >= last_month
            assert invoice.external_id is None
        if invoice.status is InvoiceStatus.PAID:
            assert invoice.invoice_date <= today - timedelta(days=20)
    overdue = [
        i
        for i in invoices
        if i.status is InvoiceStatus.SENT and i.due_date < today - timedelta(days=30)
    ]
    assert len(overdue) < 0.03 * len(invoices)

    per_invoice: dict[int, list] = defaultdict(list)
    for line in lines:
        per_invoice[line.invoice_id].append(line)
    assert {len(rows) for rows in per_invoice.values()} == {1, 2, 3, 4}
    for rows in per_invoice.values():
        assert sorted(line.position for line in rows) == list(range(1, len(rows) + 1))
    sources = Counter(line.price_source for line in lines)
    assert set(sources) == set(PriceSource)
    assert sources[PriceSource.AGREEMENT] > 0.3 * len(lines)
    assert sources[PriceSource.STANDARD] > 0.2 * len(lines)
    rounded = 0
    for line in lines:
        assert line.quantity > 0
        assert 0 <= line.discount_percent <= 100
        assert line.line_total == _half_even(line.quantity, line.unit_price, line.discount_percent)
        exact = line.quantity * line.unit_price * (100 - line.discount_percent) / 100
        rounded += exact != line.line_total
        assert line.description
        if line.price_source in (PriceSource.AGREEMENT, PriceSource.STANDARD):
            assert line.price_book_id in books
        else:
            assert line.price_book_id is None
        if line.product_id is None:
            assert line.price_source is PriceSource.MANUAL
    assert rounded > 0, "no line total needed rounding: the half-even rule goes untested"
    manual = [line for line in lines if line.price_source is PriceSource.MANUAL]
    assert any(line.product_id is None for line in manual)
    assert any(line.product_id is not None for line in manual)
    assert any(line.discount_percent > 0 for line in lines)
    assert any(line.quantity != line.quantity.to_integral_value() for line in lines)


async def test_seed_demo_invoice_prices_follow_price_resolution(seed_db: Database) -> None:
    # The demo prices its invoice lines in memory; the API resolves prices in the
    # database. Both must follow the one rule: the API, asked again, gives each line the
    # price, source and book it has.
    await seed_demo(seed_db)
    query = (
        select(
            InvoiceLine.id,
            InvoiceLine.product_id,
            InvoiceLine.quantity,
            InvoiceLine.unit_price,
            InvoiceLine.price_source,
            InvoiceLine.price_book_id,
            Invoice.account_id,
            Invoice.invoice_date,
            Invoice.currency,
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(InvoiceLine.price_source != PriceSource.MANUAL)
        .order_by(InvoiceLine.id)
    )
    async with seed_db.read() as connection:
        priced = (await connection.execute(query)).all()
        by_source: dict[PriceSource, list] = defaultdict(list)
        for row in priced:
            by_source[row.price_source].append(row)
        assert set(by_source) == {
            PriceSource.AGREEMENT,
            PriceSource.STANDARD,
            PriceSource.LIST_PRICE,
        }
        # A fixed sample of each source: about fifty lines.
        pick = random.Random(2026)
        sample = sorted(
            (row for rows in by_source.values() for row in pick.sample(rows, min(len(rows), 17))),
            key=lambda row: row.id,
        )
        found = await resolve_prices(
            connection,
            [
                PriceRequest(
                    row.account_id, row.product_id, row.quantity, row.invoice_date, row.currency
                )
                for row in sample
            ],
        )

    assert 45 <= len(sample) <= 55
    tiers_above_one = 0
    for row, price in zip(sample, found, strict=True):
        assert not isinstance(price, PriceError), (row, price)
        book_id = price.price_book.id if price.price_book is not None else None
        assert (price.unit_price, price.source, book_id) == (
            row.unit_price,
            row.price_source,
            row.price_book_id,
        ), row
        if price.entry is not None and price.entry.min_quantity > 1:
            tiers_above_one += 1
    assert tiers_above_one > 0, "no sampled line reached a volume tier"


PLAN_MONTHS = [date(2025 + n // 12, n % 12 + 1, 1) for n in range(24)]
# Statuses per campaign type, and those that are a member's response.
MEMBER_STATUSES = {
    CampaignType.EVENT: {
        MemberStatus.INVITED,
        MemberStatus.REGISTERED,
        MemberStatus.WAITLISTED,
        MemberStatus.ATTENDED,
        MemberStatus.NO_SHOW,
        MemberStatus.DECLINED,
    },
    CampaignType.CALL: {
        MemberStatus.TO_CALL,
        MemberStatus.CALLED,
        MemberStatus.REACHED,
        MemberStatus.NOT_REACHED,
    },
    CampaignType.EMAIL: {
        MemberStatus.SENT,
        MemberStatus.OPENED,
        MemberStatus.BOUNCED,
        MemberStatus.UNSUBSCRIBED,
    },
    CampaignType.PROJECT: {MemberStatus.INVOLVED, MemberStatus.RESPONDED},
}
RESPONSES = {
    MemberStatus.REGISTERED,
    MemberStatus.WAITLISTED,
    MemberStatus.ATTENDED,
    MemberStatus.NO_SHOW,
    MemberStatus.DECLINED,
    MemberStatus.OPENED,
    MemberStatus.REACHED,
    MemberStatus.RESPONDED,
}
SEATED = {MemberStatus.REGISTERED, MemberStatus.ATTENDED, MemberStatus.NO_SHOW}
# A response that makes a deal on the member's account count as sourced by the campaign.
TOUCHES = {
    MemberStatus.ATTENDED,
    MemberStatus.OPENED,
    MemberStatus.REACHED,
    MemberStatus.RESPONDED,
}
LEAD_SOURCE_TYPES = {
    "Trade show": {CampaignType.EVENT},
    "Webinar": {CampaignType.EVENT, CampaignType.EMAIL},
    "Web form": {CampaignType.EMAIL},
    "Cold call": {CampaignType.CALL},
}


def _month_start(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=UTC)


async def test_seed_demo_budgets(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        budgets = (await connection.execute(select(Budget))).all()
        accounts = {row.id: row for row in (await connection.execute(select(Account))).all()}
        invoiced = set((await connection.execute(select(Invoice.account_id))).scalars())
        billed_lines = (
            await connection.execute(
                select(
                    Invoice.account_id,
                    Product.offering_area_id,
                    Invoice.invoice_date,
                    InvoiceLine.line_total,
                )
                .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
                .join(Product, Product.id == InvoiceLine.product_id)
                .where(Invoice.status.in_((InvoiceStatus.SENT, InvoiceStatus.PAID)))
            )
        ).all()

    # Every account with invoices, and only those, has a budget for every month of the
    # two years, in one to three offering areas.
    months: dict[tuple[int, int], list[date]] = defaultdict(list)
    for budget in budgets:
        months[budget.account_id, budget.offering_area_id].append(budget.period)
    assert {account_id for account_id, _ in months} == invoiced
    assert all(sorted(periods) == PLAN_MONTHS for periods in months.values())
    areas = Counter(account_id for account_id, _ in months)
    assert set(areas.values()) == {1, 2, 3}
    for budget in budgets:
        assert budget.currency == "EUR"
        assert budget.amount > 0
        assert budget.amount % 100 == 0
        assert budget.amount.as_tuple().exponent == -2
        assert budget.version == 1
        assert budget.created_at.tzinfo is not None
        assert budget.created_at <= BASE_DATE
        assert accounts[budget.account_id].created_at <= budget.created_at
        if budget.period.year == 2026:
            # Set at the latest in the December before, unless the account came later.
            account_came = accounts[budget.account_id].created_at
            assert budget.created_at < datetime(2026, 1, 1, tzinfo=UTC) or (
                budget.created_at - account_came < timedelta(hours=5)
            )

    # A year's budget follows what the account was billed in the area that year: from
    # nine tenths to a third more, a little less in project areas over the holidays.
    billed: Counter[tuple[int, int, int]] = Counter()
    for account_id, area_id, day, total in billed_lines:
        if day >= date(2025, 1, 1):
            billed[account_id, area_id, day.year] += total
    budgeted: Counter[tuple[int, int, int]] = Counter()
    for budget in budgets:
        if budget.period < BASE_DATE.date():
            budgeted[budget.account_id, budget.offering_area_id, budget.period.year] += (
                budget.amount
            )
    months_billed = {2025: 12, 2026: 10}
    ratios = [
        float(budgeted[key] / total)
        for key, total in billed.items()
        if key in budgeted and total / months_billed[key[2]] >= 1000  # rounding aside
    ]
    assert len(ratios) > 0.6 * len(months)
    assert min(ratios) > 0.8
    assert max(ratios) < 1.4


async def test_seed_demo_forecasts(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        forecasts = (await connection.execute(select(Forecast))).all()
        budget_keys = set(
            (
                await connection.execute(
                    select(Budget.account_id, Budget.offering_area_id).distinct()
                )
            ).all()
        )
        owners = dict((await connection.execute(select(Account.id, Account.owner_id))).all())

    fixed = [f for f in forecasts if f.kind is ForecastKind.FIXED]
    rolling = [f for f in forecasts if f.kind is ForecastKind.ROLLING]
    for forecast in forecasts:
        assert forecast.currency == "EUR"
        assert forecast.amount >= 0
        assert forecast.amount.as_tuple().exponent == -2
        assert forecast.submitted_by_id == owners[forecast.account_id]
        assert forecast.submitted_at.tzinfo is not None
        assert forecast.submitted_at <= BASE_DATE
        # Figures from before the account came into the CRM were brought in with it.
        assert forecast.submitted_at <= forecast.updated_at
        assert forecast.created_at <= forecast.updated_at <= BASE_DATE
        assert forecast.period in PLAN_MONTHS

    # One FIXED figure per key and month of 2026, set before the month began; some
    # changed in place since, before their months.
    fixed_keys = Counter((f.account_id, f.offering_area_id, f.period) for f in fixed)
    assert max(fixed_keys.values()) == 1
    assert {(a, area) for a, area, _ in fixed_keys} == budget_keys
    assert {period for _, _, period in fixed_keys} == {m for m in PLAN_MONTHS if m.year == 2026}
    assert len(fixed) == 12 * len(budget_keys)
    assert all(f.submitted_at < _month_start(f.period) - timedelta(days=1) for f in fixed)
    revised = [f for f in fixed if f.version == 2]
    assert revised
    assert all(f.updated_at == f.submitted_at for f in revised)
    assert all(f.version == 1 for f in rolling)

    # ROLLING: every month of the two years has one to three versions per key, most
    # of them two, each submitted at its own time before the month ends.
    versions: dict[tuple[int, int, date], list[datetime]] = defaultdict(list)
    for forecast in rolling:
        versions[forecast.account_id, forecast.offering_area_id, forecast.period].append(
            forecast.submitted_at
        )
    assert {(a, area) for a, area, _ in versions} == budget_keys
    assert len(versions) == 24 * len(budget_keys)
    spread = Counter(len(times) for times in versions.values())
    assert set(spread) == {1, 2, 3}
    assert spread[2] > spread[1] + spread[3]
    for (_, _, period), times in versions.items():
        assert len(set(times)) == len(times)
        next_month = _month_start(period + timedelta(days=31))
        assert all(t < next_month for t in times)
    # Each submission covers up to six months from when it was made.
    per_submission = Counter((f.account_id, f.offering_area_id, f.submitted_at) for f in rolling)
    assert max(per_submission.values()) == 6


async def test_seed_demo_campaigns(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        campaigns = {row.id: row for row in (await connection.execute(select(Campaign))).all()}
        members = (await connection.execute(select(CampaignMember))).all()
        contacts = {row.id: row for row in (await connection.execute(select(Contact))).all()}
        accounts = {row.id: row for row in (await connection.execute(select(Account))).all()}
        users = {row.id: row for row in (await connection.execute(select(User))).all()}

    assert {c.type for c in campaigns.values()} == set(CampaignType)
    assert {c.status for c in campaigns.values()} == set(CampaignStatus)
    today = BASE_DATE.date()
    for campaign in campaigns.values():
        assert campaign.currency == "EUR"
        assert campaign.starts_on <= campaign.ends_on
        assert users[campaign.owner_id].role in (Role.ADMIN, Role.MANAGER)
        assert campaign.budget > 0
        assert campaign.budget.as_tuple().exponent == -2
        assert campaign.expected_revenue > campaign.budget
        assert campaign.created_at <= campaign.updated_at <= BASE_DATE
        assert campaign.version == 1
        if campaign.status is CampaignStatus.PLANNED:
            assert campaign.starts_on > today
            assert campaign.actual_cost is None
        else:
            assert campaign.actual_cost > 0
        if campaign.status is CampaignStatus.ACTIVE:
            assert campaign.starts_on <= today <= campaign.ends_on
        if campaign.status is CampaignStatus.COMPLETED:
            assert campaign.ends_on < today
        is_event = campaign.type is CampaignType.EVENT
        assert (campaign.event_place is not None) == is_event
        assert (campaign.event_starts_at is not None) == is_event
        assert (campaign.capacity is not None) == is_event
        if is_event:
            assert campaign.event_starts_at.date() == campaign.starts_on
    span = max(c.ends_on for c in campaigns.values()) - min(c.starts_on for c in campaigns.values())
    assert span > timedelta(days=365)

    per_campaign: dict[int, list] = defaultdict(list)
    for member in members:
        per_campaign[member.campaign_id].append(member)
    assert set(per_campaign) == set(campaigns)
    reps = {user.id for user in users.values() if user.role is Role.REP}
    waitlisted = 0
    for campaign_id, group in per_campaign.items():
        campaign = campaigns[campaign_id]
        assert 20 <= len(group) <= 300, campaign.name
        assert len({m.contact_id for m in group}) == len(group)
        statuses = Counter(m.status for m in group)
        assert set(statuses) <= MEMBER_STATUSES[campaign.type], campaign.name
        for member in group:
            contact = contacts[member.contact_id]
            account = accounts[contact.account_id]
            assert account.type is not AccountType.COMPETITOR
            assert contact.created_at <= member.created_at <= member.updated_at <= BASE_DATE
            assert account.archived_at is None or member.created_at < account.archived_at
            assert (member.responded_at is not None) == (member.status in RESPONSES)
            if member.responded_at is not None:
                assert member.created_at <= member.responded_at <= member.updated_at
            assert (member.waitlisted_at is not None) == (member.status is MemberStatus.WAITLISTED)
            assert (member.agent_id is not None) == (campaign.type is CampaignType.CALL)
            assert member.version == 1
            if campaign.type is CampaignType.EMAIL:
                assert contact.email_consent
                assert contact.email
            if campaign.type is CampaignType.CALL:
                assert contact.phone_consent
                assert contact.phone
        if campaign.type is CampaignType.CALL:
            # Two or three reps take the members in turn.
            agents = Counter(m.agent_id for m in group)
            assert set(agents) <= reps
            assert len(agents) in (2, 3)
            assert max(agents.values()) - min(agents.values()) <= 1
            turns = [m.agent_id for m in sorted(group, key=lambda m: m.id)]
            assert all(a != b for a, b in itertools.pairwise(turns))
            if campaign.status is CampaignStatus.PLANNED:
                assert set(statuses) == {MemberStatus.TO_CALL}
            else:
                assert statuses[MemberStatus.REACHED] > 0
        if campaign.type is CampaignType.EVENT:
            assert sum(statuses[s] for s in SEATED) <= campaign.capacity
            waitlisted += statuses[MemberStatus.WAITLISTED]
            if statuses[MemberStatus.WAITLISTED]:
                # The list fills only once every seat is taken.
                assert sum(statuses[s] for s in SEATED) == campaign.capacity
            held = campaign.status is CampaignStatus.COMPLETED
            assert (statuses[MemberStatus.ATTENDED] > 0) == held
            assert (statuses[MemberStatus.REGISTERED] > 0) == (not held)
            for member in group:
                if member.status in RESPONSES:
                    assert member.responded_at < campaign.event_starts_at
        if campaign.type is CampaignType.EMAIL:
            assert statuses[MemberStatus.OPENED] > 0.2 * len(group)
    assert waitlisted > 0


async def test_seed_demo_campaign_links(seed_db: Database) -> None:
    # Campaign figures (sourced deals, won amounts, return on cost) need deals and leads
    # that campaigns brought in.
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        campaigns = {row.id: row for row in (await connection.execute(select(Campaign))).all()}
        members = (await connection.execute(select(CampaignMember))).all()
        contacts = dict((await connection.execute(select(Contact.id, Contact.account_id))).all())
        deals = (await connection.execute(select(Opportunity))).all()
        leads = (await connection.execute(select(Lead))).all()
        won = set(
            (
                await connection.execute(select(Phase.id).where(Phase.outcome == PhaseOutcome.WON))
            ).scalars()
        )

    campaign_leads = [lead for lead in leads if lead.campaign_id is not None]
    assert 30 <= len(campaign_leads) <= 50
    converted_from: dict[int, int] = {}
    for lead in campaign_leads:
        campaign = campaigns[lead.campaign_id]
        assert campaign.status is not CampaignStatus.CANCELLED
        assert campaign.type in LEAD_SOURCE_TYPES[lead.source]
        came = campaign.event_starts_at or datetime.combine(campaign.starts_on, time(), UTC)
        assert came <= lead.created_at
        if lead.converted_opportunity_id is not None:
            converted_from[lead.converted_opportunity_id] = lead.campaign_id

    touches: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for member in members:
        if member.status in TOUCHES:
            campaign = campaigns[member.campaign_id]
            touched = member.responded_at
            if member.status is MemberStatus.ATTENDED:
                touched = campaign.event_starts_at
            touches[contacts[member.contact_id], member.campaign_id].append(touched)
    sourced = [deal for deal in deals if deal.source_campaign_id is not None]
    assert 50 <= len(sourced) <= 80
    for deal in sourced:
        if deal.id in converted_from:
            assert deal.source_campaign_id == converted_from[deal.id]
            continue
        # A contact of the account responded in the three months before the deal.
        assert any(
            touched < deal.created_at <= touched + timedelta(days=90)
            for touched in touches[deal.account_id, deal.source_campaign_id]
        ), deal.id
    assert len({deal.source_campaign_id for deal in sourced}) >= 8
    assert any(deal.phase_id in won for deal in sourced)


def _input_errors(value: object, input_type: Any) -> list[str]:
    errors: list[str] = []
    validate_input_value(value, input_type, lambda error, path: errors.append(f"{path}: {error}"))
    return errors


async def test_seed_demo_target_groups(seed_db: Database) -> None:
    await seed_demo(seed_db)
    async with seed_db.read() as connection:
        groups = (await connection.execute(select(TargetGroup))).all()
        entries = (await connection.execute(select(TargetGroupEntry))).all()
        accounts = {row.id: row for row in (await connection.execute(select(Account))).all()}
        contacts = {row.id: row for row in (await connection.execute(select(Contact))).all()}
        users = {row.id: row for row in (await connection.execute(select(User))).all()}

    assert {g.kind for g in groups} == set(TargetGroupKind)
    assert {g.visibility for g in groups} == set(TargetGroupVisibility)
    per_group: dict[int, list] = defaultdict(list)
    for entry in entries:
        per_group[entry.target_group_id].append(entry)
    shapes = set()
    schema = build_schema()
    for group in groups:
        assert users[group.owner_id].role in (Role.ADMIN, Role.MANAGER, Role.REP)
        assert group.name
        assert group.description
        assert group.created_at <= group.updated_at <= BASE_DATE
        group_entries = per_group[group.id]
        included = [e for e in group_entries if not e.excluded]
        excluded = [e for e in group_entries if e.excluded]
        shapes.add((group.filter is not None, bool(included), bool(excluded)))
        for entry in group_entries:
            if group.kind is TargetGroupKind.ACCOUNT:
                assert entry.account_id in accounts
                assert entry.contact_id is None
                record = accounts[entry.account_id]
            else:
                assert entry.contact_id in contacts
                assert entry.account_id is None
                record = contacts[entry.contact_id]
            assert group.created_at <= entry.created_at <= BASE_DATE
            assert record.created_at <= entry.created_at
        members = [e.account_id or e.contact_id for e in group_entries]
        assert len(set(members)) == len(members)
        if excluded:
            assert group.filter is not None, "an exclusion only takes from a filter's matches"
        if group.filter is not None:
            # The filter as a client would send it: valid for the kind's filter input.
            input_type = schema._schema.type_map[f"{group.kind.value.title()}Filter"]
            assert _input_errors(group.filter, input_type) == [], group.name
            assert coerce_input_value(group.filter, input_type) is not Undefined
    # Filter only, static only, and both with exclusions; shared and personal.
    assert {(True, False, False), (False, True, False), (True, True, True)} <= shapes
    for visibility in TargetGroupVisibility:
        assert any(g.visibility is visibility and g.filter is not None for g in groups)


async def test_seed_demo_target_group_filters_work(seed_url: str) -> None:
    # Asked through the API, every saved filter finds records, every exclusion is one of
    # them, and every member added by hand is one the filter would have missed.
    app = create_app(Settings(database_url=seed_url, jwt_secret=TEST_SECRET))
    async with app.router.lifespan_context(app):
        db = app.state.db
        await seed_demo(db)
        async with db.read() as connection:
            groups = (
                await connection.execute(select(TargetGroup).where(TargetGroup.filter.is_not(None)))
            ).all()
            entries = (await connection.execute(select(TargetGroupEntry))).all()
        admin = await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN])
        token = app.state.authenticator.mint(admin)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://testserver"
        ) as http:
            client = GraphQLClient(app, http)

            async def matches(kind: TargetGroupKind, filter: dict) -> int:
                type_name = kind.value.title()
                field = f"{kind.value.lower()}s"
                query = (
                    f"query ($filter: {type_name}Filter) "
                    f"{{ {field}(filter: $filter, first: 1) {{ totalCount }} }}"
                )
                data = await client.query(query, {"filter": filter}, token=token)
                return data[field]["totalCount"]

            assert len(groups) >= 4
            for group in groups:
                type_name = group.kind.value.title()
                ids = {True: [], False: []}
                for entry in entries:
                    if entry.target_group_id == group.id:
                        key = entry.account_id or entry.contact_id
                        ids[entry.excluded].append(encode_id(type_name, key))
                found = await matches(group.kind, group.filter)
                assert found > len(ids[True]), group.name
                for excluded, chosen in ids.items():
                    if chosen:
                        only = {"and": [group.filter, {"id": {"in": chosen}}]}
                        expected = len(chosen) if excluded else 0
                        assert await matches(group.kind, only) == expected, group.name


def test_demo_rows_count_weeks_in_the_time_zone_given() -> None:
    helsinki = build_demo_rows()
    new_york = build_demo_rows(timezone="America/New_York")
    # The time zone moves activities only; everything else stays as it was.
    for name in (
        "users",
        "accounts",
        "contacts",
        "opportunities",
        "phase_changes",
        "leads",
        "price_books",
        "price_book_entries",
        "account_price_books",
        "invoices",
        "invoice_lines",
        "budgets",
        "forecasts",
        "campaigns",
        "campaign_members",
        "opportunity_sources",
        "lead_campaigns",
        "target_groups",
        "target_group_entries",
    ):
        assert getattr(new_york, name) == getattr(helsinki, name)
    done = [a for a in new_york.activities if a["status"] is ActivityStatus.DONE]
    assert done
    for activity in done:
        assert activity["completed_at"] <= BASE_DATE
        assert activity["completed_week"] == week_of(activity["completed_at"], "America/New_York")
    weeks = {t["week"] for t in new_york.activity_targets}
    assert all(week.weekday() == 0 for week in weeks)
    assert max(weeks) == week_of(BASE_DATE, "America/New_York") + timedelta(weeks=8)


async def _seed_and_digest(url: str) -> str:
    db = Database(url)
    try:
        assert await seed_demo(db) is True
        async with db.read() as connection:
            accounts = (
                await connection.execute(
                    select(Account.name, Account.business_id, Account.created_at)
                )
            ).all()
            emails = (await connection.execute(select(Contact.email))).scalars().all()
            opportunities = (
                await connection.execute(
                    select(Opportunity.name, Opportunity.amount, Opportunity.phase_id)
                )
            ).all()
            changes = (
                await connection.execute(
                    select(
                        PhaseChange.opportunity_id, PhaseChange.to_phase_id, PhaseChange.changed_at
                    )
                )
            ).all()
            leads = (await connection.execute(select(Lead.email, Lead.phase_id))).all()
            activities = (
                await connection.execute(
                    select(
                        Activity.id,
                        Activity.owner_id,
                        Activity.subject,
                        Activity.status,
                        Activity.due_at,
                        Activity.completed_at,
                        Activity.opportunity_id,
                    )
                )
            ).all()
            targets = (
                await connection.execute(
                    select(
                        ActivityTarget.user_id,
                        ActivityTarget.week,
                        ActivityTarget.metric,
                        ActivityTarget.target,
                    )
                )
            ).all()
            pricing = [
                *(await connection.execute(select(PriceBook.name, PriceBook.valid_from))).all(),
                *(
                    await connection.execute(
                        select(
                            PriceBookEntry.price_book_id,
                            PriceBookEntry.product_id,
                            PriceBookEntry.unit_price,
                            PriceBookEntry.min_quantity,
                        )
                    )
                ).all(),
                *(
                    await connection.execute(
                        select(
                            AccountPriceBook.account_id,
                            AccountPriceBook.price_book_id,
                            AccountPriceBook.valid_from,
                            AccountPriceBook.valid_to,
                        )
                    )
                ).all(),
            ]
            billing = [
                *(
                    await connection.execute(
                        select(
                            Invoice.id,
                            Invoice.number,
                            Invoice.account_id,
                            Invoice.invoice_date,
                            Invoice.status,
                            Invoice.external_id,
                            Invoice.total,
                            Invoice.updated_at,
                        )
                    )
                ).all(),
                *(
                    await connection.execute(
                        select(
                            InvoiceLine.invoice_id,
                            InvoiceLine.position,
                            InvoiceLine.product_id,
                            InvoiceLine.quantity,
                            InvoiceLine.unit_price,
                            InvoiceLine.discount_percent,
                            InvoiceLine.price_source,
                            InvoiceLine.price_book_id,
                            InvoiceLine.line_total,
                        )
                    )
                ).all(),
            ]
            plans = [
                *(
                    await connection.execute(
                        select(
                            Budget.id,
                            Budget.account_id,
                            Budget.offering_area_id,
                            Budget.period,
                            Budget.amount,
                            Budget.created_at,
                        )
                    )
                ).all(),
                *(
                    await connection.execute(
                        select(
                            Forecast.id,
                            Forecast.account_id,
                            Forecast.offering_area_id,
                            Forecast.period,
                            Forecast.kind,
                            Forecast.amount,
                            Forecast.submitted_by_id,
                            Forecast.submitted_at,
                            Forecast.version,
                        )
                    )
                ).all(),
            ]
            marketing = [
                *(
                    await connection.execute(
                        select(
                            Campaign.id,
                            Campaign.name,
                            Campaign.status,
                            Campaign.starts_on,
                            Campaign.actual_cost,
                            Campaign.event_starts_at,
                        )
                    )
                ).all(),
                *(
                    await connection.execute(
                        select(
                            CampaignMember.id,
                            CampaignMember.campaign_id,
                            CampaignMember.contact_id,
                            CampaignMember.status,
                            CampaignMember.agent_id,
                            CampaignMember.responded_at,
                            CampaignMember.waitlisted_at,
                        )
                    )
                ).all(),
                *(
                    await connection.execute(
                        select(Opportunity.id, Opportunity.source_campaign_id).where(
                            Opportunity.source_campaign_id.is_not(None)
                        )
                    )
                ).all(),
                *(
                    await connection.execute(
                        select(Lead.id, Lead.campaign_id).where(Lead.campaign_id.is_not(None))
                    )
                ).all(),
                *(
                    await connection.execute(
                        select(
                            TargetGroup.id,
                            TargetGroup.name,
                            TargetGroup.kind,
                            TargetGroup.owner_id,
                            TargetGroup.filter,
                        )
                    )
                ).all(),
                *(
                    await connection.execute(
                        select(
                            TargetGroupEntry.target_group_id,
                            TargetGroupEntry.account_id,
                            TargetGroupEntry.contact_id,
                            TargetGroupEntry.excluded,
                        )
                    )
                ).all(),
            ]
    finally:
        await db.dispose()
    lines = sorted(f"{name}|{bid}|{created.isoformat()}" for name, bid, created in accounts)
    deals = sorted(f"{name}|{amount}|{phase}" for name, amount, phase in opportunities)
    moves = sorted(f"{deal}|{phase}|{at.isoformat()}" for deal, phase, at in changes)
    prospects = sorted(f"{email}|{phase}" for email, phase in leads)
    work = sorted("|".join(map(str, activity)) for activity in activities)
    goals = sorted("|".join(map(str, target)) for target in targets)
    prices = sorted("|".join(map(str, row)) for row in pricing)
    bills = sorted("|".join(map(str, row)) for row in billing)
    planned = sorted("|".join(map(str, row)) for row in plans)
    reached = sorted("|".join(map(str, row)) for row in marketing)
    text = "\n".join(
        [
            *lines,
            *sorted(emails),
            *deals,
            *moves,
            *prospects,
            *work,
            *goals,
            *prices,
            *bills,
            *planned,
            *reached,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


async def test_seed_demo_is_deterministic(seed_sqlite_pair: tuple[str, str]) -> None:
    first, second = seed_sqlite_pair
    assert await _seed_and_digest(first) == await _seed_and_digest(second)
