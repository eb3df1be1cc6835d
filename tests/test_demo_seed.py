"""The demo data set: counts, relations, determinism and idempotence.

Runs on a SQLite file always, and on PostgreSQL when TEST_DATABASE_URL is set. The
PostgreSQL runs use a database of their own, created and dropped here, since other
tests own the one TEST_DATABASE_URL names.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models.accounts import Account, AccountShare, AccountType, Contact
from models.db import Database
from models.pricing import OfferingArea, Product
from models.users import PartnerOrg, Role, Team, User
from server.demo import BASE_DATE, DEMO_EMAILS, HISTORY_START, seed_demo
from tests.databases import BACKENDS, scratch_database

DEMO_TEST_DATABASE = "crmgraph_demo_test"
SEEDED_MODELS = (PartnerOrg, Team, User, OfferingArea, Product, Account, Contact, AccountShare)
EXPECTED_COUNTS = {
    "partner_orgs": 1,
    "teams": 3,
    "users": 12,
    "offering_areas": 5,
    "products": 24,
    "accounts": 200,
    "contacts": 600,
    "account_shares": 30,
}


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
    with scratch_database("sqlite", "first", tmp_path) as first, scratch_database(
        "sqlite", "second", tmp_path
    ) as second:
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
    assert counts == EXPECTED_COUNTS

    assert await seed_demo(seed_db) is False
    assert await _counts(seed_db) == counts


async def test_seed_demo_writes_nothing_when_users_exist(seed_db: Database) -> None:
    async with seed_db.transaction() as session:
        session.add(User(email="someone@example.com", name="Someone", role=Role.ADMIN))

    assert await seed_demo(seed_db) is False
    assert await _counts(seed_db) == {name: 0 for name in EXPECTED_COUNTS} | {"users": 1}


async def test_seed_demo_writes_nothing_over_other_data(seed_db: Database) -> None:
    # No users yet, but the demo's fixed ids would collide with the catalogue there.
    async with seed_db.transaction() as session:
        session.add(OfferingArea(code="CLD", name="Cloud"))

    assert await seed_demo(seed_db) is False
    assert await _counts(seed_db) == {name: 0 for name in EXPECTED_COUNTS} | {"offering_areas": 1}


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
    assert 1 <= sum(not product.active for product in products) <= 2
    assert {product.offering_area_id for product in products} == {1, 2, 3, 4, 5}


async def test_seed_demo_leaves_ids_to_the_database(seed_db: Database) -> None:
    await seed_demo(seed_db)
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
        session.add_all([contact, share])
        await session.flush()
        new_ids = {
            row.__tablename__: row.id
            for row in (org, team, area, user, product, account, contact, share)
        }

    assert new_ids == {name: count + 1 for name, count in EXPECTED_COUNTS.items()}


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
    finally:
        await db.dispose()
    lines = sorted(f"{name}|{bid}|{created.isoformat()}" for name, bid, created in accounts)
    return hashlib.sha256("\n".join([*lines, *sorted(emails)]).encode()).hexdigest()


async def test_seed_demo_is_deterministic(seed_sqlite_pair: tuple[str, str]) -> None:
    first, second = seed_sqlite_pair
    assert await _seed_and_digest(first) == await _seed_and_digest(second)
