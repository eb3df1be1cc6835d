"""Price books, entries, customer agreements and price resolution through the HTTP endpoint.

Resolution cases are worked out by hand; every refused mutation is checked in its
userErrors and in the database, which must hold exactly what it held before.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from loaders.ids import encode_id
from models.accounts import Account
from models.db import Database
from models.pricing import AccountPriceBook, OfferingArea, PriceBook, PriceBookEntry, Product
from resolvers import pricing as pricing_resolvers
from tests.factories import (
    Org,
    agreement_gid,
    gid,
    make_account,
    make_agreement,
    make_offering_area,
    make_org,
    make_price_book,
    make_price_entry,
    make_product,
    share,
)
from tests.graphql_client import GraphQLClient

PRICE = """unitPrice currency source explanation
  priceBook { id name currency }
  entry { id unitPrice minQuantity }"""
RESOLVE = f"""
query Resolve($account: ID!, $product: ID!, $quantity: Decimal! = "1", $date: Date,
              $currency: String) {{
  resolvePrice(accountId: $account, productId: $product, quantity: $quantity, date: $date,
               currency: $currency) {{ {PRICE} }}
}}"""
RESOLVE_MANY = f"""
query ResolveMany($account: ID!, $items: [PriceItemInput!]!, $date: Date, $currency: String) {{
  resolvePrices(accountId: $account, items: $items, date: $date, currency: $currency) {{
    {PRICE}
  }}
}}"""

BOOK = "id version name currency validFrom validTo isStandard active"
ENTRY = "id version unitPrice minQuantity priceBook { id } product { id code }"
AGREEMENT = "id version validFrom validTo priceBook { id name } account { id name }"
ERRORS = "userErrors { field code message }"

CREATE_BOOK = f"""mutation($input: CreatePriceBookInput!) {{
  createPriceBook(input: $input) {{ priceBook {{ {BOOK} }} {ERRORS} }} }}"""
UPDATE_BOOK = f"""mutation($input: UpdatePriceBookInput!) {{
  updatePriceBook(input: $input) {{ priceBook {{ {BOOK} }} {ERRORS} }} }}"""
DELETE_BOOK = f"""mutation($input: DeleteInput!) {{
  deletePriceBook(input: $input) {{ deletedId {ERRORS} }} }}"""
CREATE_ENTRY = f"""mutation($input: CreatePriceBookEntryInput!) {{
  createPriceBookEntry(input: $input) {{ priceBookEntry {{ {ENTRY} }} {ERRORS} }} }}"""
UPDATE_ENTRY = f"""mutation($input: UpdatePriceBookEntryInput!) {{
  updatePriceBookEntry(input: $input) {{ priceBookEntry {{ {ENTRY} }} {ERRORS} }} }}"""
DELETE_ENTRY = f"""mutation($input: DeleteInput!) {{
  deletePriceBookEntry(input: $input) {{ deletedId {ERRORS} }} }}"""
ASSIGN = f"""mutation($input: AssignPriceAgreementInput!) {{
  assignPriceAgreement(input: $input) {{ priceAgreement {{ {AGREEMENT} }} {ERRORS} }} }}"""
END = f"""mutation($input: EndPriceAgreementInput!) {{
  endPriceAgreement(input: $input) {{ priceAgreement {{ {AGREEMENT} }} {ERRORS} }} }}"""

BOOKS = PriceBook.__table__
ENTRIES = PriceBookEntry.__table__
AGREEMENTS = AccountPriceBook.__table__

MID_TERM = "2026-03-15"  # inside the agreement of the world below


# --- helpers ------------------------------------------------------------------------------


async def resolve(client: GraphQLClient, user: Any, account: Account, product: Product,
                  **variables: Any) -> dict[str, Any]:
    data = await client.query(RESOLVE, {"account": gid(account), "product": gid(product),
                                        **variables}, as_user=user)
    return data["resolvePrice"]


async def resolve_errors(client: GraphQLClient, user: Any, account: Account | str,
                         product: Product | str, **variables: Any) -> list[dict[str, Any]]:
    return await client.errors(RESOLVE, {
        "account": account if isinstance(account, str) else gid(account),
        "product": product if isinstance(product, str) else gid(product), **variables,
    }, as_user=user)


async def run(client: GraphQLClient, mutation: str, user: Any, **input: Any) -> dict[str, Any]:
    data = await client.query(mutation, {"input": input}, as_user=user)
    [payload] = data.values()
    return payload


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


def error_codes(errors: list[dict[str, Any]]) -> list[str]:
    return [error["extensions"]["code"] for error in errors]


async def snapshot(db: Database) -> list[list[dict[str, Any]]]:
    """Every row of the pricing tables: a refusal must leave them exactly as they were."""
    async with db.read() as connection:
        return [[dict(row) for row in (await connection.execute(
            select(table).order_by(table.c.id))).mappings()]
            for table in (BOOKS, ENTRIES, AGREEMENTS)]


async def agreements_of(db: Database, account: Account) -> list[tuple[date, date | None]]:
    async with db.read() as connection:
        rows = await connection.execute(
            select(AGREEMENTS.c.valid_from, AGREEMENTS.c.valid_to)
            .where(AGREEMENTS.c.account_id == account.id).order_by(AGREEMENTS.c.valid_from))
        return [tuple(row) for row in rows]  # type: ignore[misc]


def summary(price: dict[str, Any]) -> tuple[str, str, str, str | None, str | None]:
    """What a price is, in one comparable tuple: source, unit price, currency, book,
    tier."""
    return (price["source"], price["unitPrice"], price["currency"],
            price["priceBook"] and price["priceBook"]["name"],
            price["entry"] and price["entry"]["minQuantity"])


# --- a priced world -----------------------------------------------------------------------


@dataclass
class World:
    org: Org
    area: OfferingArea
    acme: Account  # has the Acme 2026 agreement, 2026-01-01 to 2026-06-30
    plain: Account  # no agreement
    widget: Product  # agreed 90.00 (from 100: 80.00); standard 95.00 (from 10: 92.50)
    gadget: Product  # standard only: 45.00
    gizmo: Product  # no book: list price 12.34
    agreed: PriceBook
    standard: PriceBook
    agreement: AccountPriceBook
    agreed_one: PriceBookEntry
    agreed_hundred: PriceBookEntry
    standard_one: PriceBookEntry
    standard_ten: PriceBookEntry


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


@pytest.fixture
async def world(db: Database, org: Org) -> World:
    area = await make_offering_area(db, "SW")
    widget = await make_product(db, area, code="WIDGET", list_price=Decimal("100.00"))
    gadget = await make_product(db, area, code="GADGET", list_price=Decimal("50.00"))
    gizmo = await make_product(db, area, code="GIZMO", list_price=Decimal("12.34"))
    agreed = await make_price_book(db, name="Acme 2026")
    standard = await make_price_book(db, name="Standard EUR", is_standard=True)
    agreed_one = await make_price_entry(db, agreed, widget, "90.00")
    agreed_hundred = await make_price_entry(db, agreed, widget, "80.00", "100")
    standard_one = await make_price_entry(db, standard, widget, "95.00")
    standard_ten = await make_price_entry(db, standard, widget, "92.50", "10")
    await make_price_entry(db, standard, gadget, "45.00")
    acme = await make_account(db, org.rep_a1, name="Acme")
    plain = await make_account(db, org.rep_a1, name="Plain")
    agreement = await make_agreement(db, acme, agreed, date(2026, 1, 1), date(2026, 6, 30))
    return World(org, area, acme, plain, widget, gadget, gizmo, agreed, standard, agreement,
                 agreed_one, agreed_hundred, standard_one, standard_ten)


# --- resolvePrice: the rule, case by case -------------------------------------------------


async def test_agreed_price_takes_the_tier_from_exactly_its_minimum_quantity(
    client: GraphQLClient, world: World
) -> None:
    admin = world.org.admin
    one = await resolve(client, admin, world.acme, world.widget, date=MID_TERM)
    assert one == {
        "unitPrice": "90.00", "currency": "EUR", "source": "AGREEMENT",
        "explanation": "agreed price book Acme 2026 (agreement 2026-01-01 to 2026-06-30): "
                       "90.00 EUR",
        "priceBook": {"id": gid(world.agreed), "name": "Acme 2026", "currency": "EUR"},
        "entry": {"id": gid(world.agreed_one), "unitPrice": "90.00", "minQuantity": "1"},
    }
    below = await resolve(client, admin, world.acme, world.widget, quantity="99.99",
                          date=MID_TERM)
    assert summary(below) == ("AGREEMENT", "90.00", "EUR", "Acme 2026", "1")
    at_tier = await resolve(client, admin, world.acme, world.widget, quantity="100",
                            date=MID_TERM)
    assert at_tier == {
        "unitPrice": "80.00", "currency": "EUR", "source": "AGREEMENT",
        "explanation": "agreed price book Acme 2026 (agreement 2026-01-01 to 2026-06-30): "
                       "tier from 100 units at 80.00 EUR",
        "priceBook": {"id": gid(world.agreed), "name": "Acme 2026", "currency": "EUR"},
        "entry": {"id": gid(world.agreed_hundred), "unitPrice": "80.00", "minQuantity": "100"},
    }
    above = await resolve(client, admin, world.acme, world.widget, quantity="250",
                          date=MID_TERM)
    assert summary(above) == ("AGREEMENT", "80.00", "EUR", "Acme 2026", "100")


async def test_standard_price_takes_the_tier_from_exactly_its_minimum_quantity(
    client: GraphQLClient, world: World
) -> None:
    rep = world.org.rep_a1
    below = await resolve(client, rep, world.plain, world.widget, quantity="9.99",
                          date=MID_TERM)
    assert below == {
        "unitPrice": "95.00", "currency": "EUR", "source": "STANDARD",
        "explanation": "standard price book Standard EUR: 95.00 EUR",
        "priceBook": {"id": gid(world.standard), "name": "Standard EUR", "currency": "EUR"},
        "entry": {"id": gid(world.standard_one), "unitPrice": "95.00", "minQuantity": "1"},
    }
    at_tier = await resolve(client, rep, world.plain, world.widget, quantity="10",
                            date=MID_TERM)
    assert at_tier["explanation"] == ("standard price book Standard EUR: tier from 10 units "
                                      "at 92.50 EUR")
    assert at_tier["entry"] == {"id": gid(world.standard_ten), "unitPrice": "92.50",
                                "minQuantity": "10"}
    assert summary(at_tier) == ("STANDARD", "92.50", "EUR", "Standard EUR", "10")


async def test_an_agreement_holds_from_its_first_day_through_its_last(
    client: GraphQLClient, world: World
) -> None:
    by_day = {day: summary(await resolve(client, world.org.manager_a, world.acme,
                                         world.widget, date=day))
              for day in ("2025-12-31", "2026-01-01", "2026-06-30", "2026-07-01")}
    assert by_day == {
        "2025-12-31": ("STANDARD", "95.00", "EUR", "Standard EUR", "1"),
        "2026-01-01": ("AGREEMENT", "90.00", "EUR", "Acme 2026", "1"),
        "2026-06-30": ("AGREEMENT", "90.00", "EUR", "Acme 2026", "1"),
        "2026-07-01": ("STANDARD", "95.00", "EUR", "Standard EUR", "1"),
    }


async def test_the_date_defaults_to_today(client: GraphQLClient, db: Database,
                                          world: World) -> None:
    await make_agreement(db, world.plain, world.agreed, date(2000, 1, 1))
    price = await resolve(client, world.org.admin, world.plain, world.widget)
    assert summary(price) == ("AGREEMENT", "90.00", "EUR", "Acme 2026", "1")
    assert "agreement 2000-01-01 to open" in price["explanation"]


async def test_an_agreed_book_without_the_product_falls_through_to_the_standard_book(
    client: GraphQLClient, world: World
) -> None:
    price = await resolve(client, world.org.admin, world.acme, world.gadget, date=MID_TERM)
    assert summary(price) == ("STANDARD", "45.00", "EUR", "Standard EUR", "1")
    assert price["explanation"] == ("the agreed price book Acme 2026 has no price for GADGET "
                                    "at quantity 1; standard price book Standard EUR: "
                                    "45.00 EUR")


async def test_a_product_in_no_book_gets_its_list_price(client: GraphQLClient,
                                                         world: World) -> None:
    price = await resolve(client, world.org.admin, world.acme, world.gizmo, quantity="3",
                          date=MID_TERM)
    assert price == {
        "unitPrice": "12.34", "currency": "EUR", "source": "LIST_PRICE",
        "explanation": "the agreed price book Acme 2026 has no price for GIZMO at quantity 3; "
                       "the standard price book Standard EUR has no price for GIZMO; "
                       "list price of GIZMO: 12.34 EUR",
        "priceBook": None, "entry": None,
    }


async def test_a_tier_the_quantity_does_not_reach_falls_through(
    client: GraphQLClient, db: Database, world: World
) -> None:
    # The agreed book prices the gadget only from 50 units.
    await make_price_entry(db, world.agreed, world.gadget, "40.00", "50")
    few = await resolve(client, world.org.admin, world.acme, world.gadget, quantity="49",
                        date=MID_TERM)
    assert summary(few) == ("STANDARD", "45.00", "EUR", "Standard EUR", "1")
    assert "has no price for GADGET at quantity 49" in few["explanation"]
    many = await resolve(client, world.org.admin, world.acme, world.gadget, quantity="50",
                         date=MID_TERM)
    assert summary(many) == ("AGREEMENT", "40.00", "EUR", "Acme 2026", "50")


async def test_unit_prices_keep_their_four_decimals(client: GraphQLClient, db: Database,
                                                    world: World) -> None:
    await make_price_entry(db, world.agreed, world.widget, "79.1234", "1000.5")
    price = await resolve(client, world.org.admin, world.acme, world.widget,
                          quantity="1000.5", date=MID_TERM)
    assert summary(price) == ("AGREEMENT", "79.1234", "EUR", "Acme 2026", "1000.5")


async def test_inactive_books_are_skipped(client: GraphQLClient, world: World) -> None:
    admin = world.org.admin
    retired = await run(client, UPDATE_BOOK, admin, id=gid(world.agreed), expectedVersion=1,
                        active=False)
    assert retired["userErrors"] == []
    assert summary(await resolve(client, admin, world.acme, world.widget, date=MID_TERM)) == (
        "STANDARD", "95.00", "EUR", "Standard EUR", "1")

    retired = await run(client, UPDATE_BOOK, admin, id=gid(world.standard),
                        expectedVersion=1, active=False)
    assert retired["userErrors"] == []
    price = await resolve(client, admin, world.acme, world.widget, date=MID_TERM)
    assert summary(price) == ("LIST_PRICE", "100.00", "EUR", None, None)
    assert price["explanation"] == "list price of WIDGET: 100.00 EUR"


async def test_a_book_outside_its_own_validity_is_skipped(client: GraphQLClient,
                                                          world: World) -> None:
    # The agreement runs to June, but its book only to March.
    payload = await run(client, UPDATE_BOOK, world.org.admin, id=gid(world.agreed),
                        expectedVersion=1, validTo="2026-03-31")
    assert payload["userErrors"] == []
    march, april = [summary(await resolve(client, world.org.admin, world.acme, world.widget,
                                          date=day)) for day in ("2026-03-31", "2026-04-01")]
    assert march == ("AGREEMENT", "90.00", "EUR", "Acme 2026", "1")
    assert april == ("STANDARD", "95.00", "EUR", "Standard EUR", "1")


async def test_an_agreement_in_another_currency_is_never_converted(
    client: GraphQLClient, db: Database, world: World
) -> None:
    nordic = await make_price_book(db, name="Nordic SEK", currency="SEK")
    await make_price_entry(db, nordic, world.widget, "990.00")
    await make_agreement(db, world.plain, nordic, date(2026, 1, 1))
    admin = world.org.admin

    in_its_currency = await resolve(client, admin, world.plain, world.widget, date=MID_TERM)
    assert summary(in_its_currency) == ("AGREEMENT", "990.00", "SEK", "Nordic SEK", "1")
    asked_sek = await resolve(client, admin, world.plain, world.widget, date=MID_TERM,
                              currency="SEK")
    assert summary(asked_sek) == summary(in_its_currency)

    errors = await resolve_errors(client, admin, world.plain, world.widget, date=MID_TERM,
                                  currency="EUR")
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    message = errors[0]["message"]
    assert message.startswith("productId: ")
    assert "Nordic SEK (SEK)" in message
    assert "in EUR" in message
    assert "never converted" in message


async def test_a_list_price_in_another_currency_is_never_converted(
    client: GraphQLClient, db: Database, world: World
) -> None:
    dollar = await make_product(db, world.area, code="DOLLAR", list_price=Decimal("10.00"),
                                currency="USD")
    admin = world.org.admin
    own = await resolve(client, admin, world.plain, dollar, date=MID_TERM)
    assert summary(own) == ("LIST_PRICE", "10.00", "USD", None, None)

    errors = await resolve_errors(client, admin, world.plain, dollar, date=MID_TERM,
                                  currency="EUR")
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    assert errors[0]["message"].startswith("productId: ")
    assert "DOLLAR" in errors[0]["message"]
    assert "list price is in USD" in errors[0]["message"]

    # A EUR book may price it in EUR: that is a price, not a conversion.
    await make_price_entry(db, world.standard, dollar, "9.00")
    priced = await resolve(client, admin, world.plain, dollar, date=MID_TERM, currency="EUR")
    assert summary(priced) == ("STANDARD", "9.00", "EUR", "Standard EUR", "1")


async def test_requests_that_cannot_be_priced_are_bad_user_input(
    client: GraphQLClient, world: World
) -> None:
    admin = world.org.admin
    for variables in ({"quantity": "0"}, {"quantity": "-1"}, {"currency": "eur"},
                      {"currency": "EURO"}):
        errors = await resolve_errors(client, admin, world.acme, world.widget, **variables)
        assert error_codes(errors) == ["BAD_USER_INPUT"], variables
    missing = await resolve_errors(client, admin, world.acme, encode_id("Product", 999999))
    assert error_codes(missing) == ["BAD_USER_INPUT"]
    assert missing[0]["message"] == "productId: product not found"
    nobody = await resolve_errors(client, admin, encode_id("Account", 999999), world.widget)
    assert error_codes(nobody) == ["BAD_USER_INPUT"]
    assert "accountId" in nobody[0]["message"]


# --- resolvePrices and Account.priceFor: many at once -------------------------------------


async def bulk_products(db: Database, area: OfferingArea, agreed: PriceBook,
                        standard: PriceBook, count: int) -> list[Product]:
    """``count`` products in one transaction: every third one agreed (90 + i, from 100
    units 80 + i), every third in the standard book only (95 + i), the rest in no book
    (list price 100 + i)."""
    async with db.transaction() as session:
        products = [Product(code=f"BULK{i:04}", name=f"Bulk {i}", offering_area_id=area.id,
                            unit="piece", list_price=Decimal(100 + i), currency="EUR")
                    for i in range(count)]
        session.add_all(products)
        await session.flush()
        entries = []
        for i, product in enumerate(products):
            if i % 3 == 0:
                entries += [PriceBookEntry(price_book_id=agreed.id, product_id=product.id,
                                           unit_price=Decimal(90 + i), min_quantity=Decimal(1)),
                            PriceBookEntry(price_book_id=agreed.id, product_id=product.id,
                                           unit_price=Decimal(80 + i),
                                           min_quantity=Decimal(100))]
            elif i % 3 == 1:
                entries.append(PriceBookEntry(price_book_id=standard.id,
                                              product_id=product.id,
                                              unit_price=Decimal(95 + i),
                                              min_quantity=Decimal(1)))
        session.add_all(entries)
    return products


def bulk_quantity(i: int) -> str:
    return "100" if i % 2 else "1"


def bulk_expected(i: int) -> tuple[str, str, str, str | None, str | None]:
    if i % 3 == 0:
        tier = i % 2 == 1
        price = (80 if tier else 90) + i
        return ("AGREEMENT", f"{price}.00", "EUR", "Acme 2026", "100" if tier else "1")
    if i % 3 == 1:
        return ("STANDARD", f"{95 + i}.00", "EUR", "Standard EUR", "1")
    return ("LIST_PRICE", f"{100 + i}.00", "EUR", None, None)


async def test_resolve_prices_prices_500_products_in_as_many_statements_as_5(
    client: GraphQLClient, db: Database, world: World
) -> None:
    products = await bulk_products(db, world.area, world.agreed, world.standard, 500)

    async def priced(indexes: list[int]) -> tuple[list[dict[str, Any]], int]:
        items = [{"productId": gid(products[i]), "quantity": bulk_quantity(i)}
                 for i in indexes]
        data, statements = await client.counted(RESOLVE_MANY, {
            "account": gid(world.acme), "items": items, "date": MID_TERM},
            as_user=world.org.rep_a1)
        return data["resolvePrices"], statements

    # In the order given, not the products' order.
    few_indexes = [4, 3, 2, 1, 0]
    few, few_statements = await priced(few_indexes)
    many_indexes = list(reversed(range(500)))
    many, many_statements = await priced(many_indexes)

    assert [summary(price) for price in few] == [bulk_expected(i) for i in few_indexes]
    assert [summary(price) for price in many] == [bulk_expected(i) for i in many_indexes]
    assert {price["source"] for price in many} == {"AGREEMENT", "STANDARD", "LIST_PRICE"}
    assert few_statements == many_statements
    # viewer, account, then products, agreements, books, entries, and the books shown.
    assert many_statements <= 7


async def test_resolve_prices_names_the_item_that_has_no_price(
    client: GraphQLClient, db: Database, world: World
) -> None:
    dollar = await make_product(db, world.area, code="DOLLAR", currency="USD")
    errors = await client.errors(RESOLVE_MANY, {
        "account": gid(world.acme), "date": MID_TERM, "currency": "EUR",
        "items": [{"productId": gid(world.widget)}, {"productId": gid(world.gizmo)},
                  {"productId": gid(dollar), "quantity": "2"}],
    }, as_user=world.org.admin)
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    assert errors[0]["message"].startswith("items.2: ")
    assert "DOLLAR" in errors[0]["message"]


PRICE_FOR = """
query PriceFor($n: Int!, $product: ID!, $date: Date) {
  accounts(first: $n, orderBy: [{field: NAME}]) {
    nodes {
      name
      priceFor(productId: $product, quantity: "100", date: $date) {
        unitPrice source priceBook { name } entry { minQuantity }
      }
    }
  }
}"""
IN_FORCE = """
query InForce($n: Int!, $date: Date) {
  accounts(first: $n, orderBy: [{field: NAME}]) {
    nodes { name effectivePriceBook(date: $date) { name } }
  }
}"""


async def many_customers(db: Database, world: World) -> None:
    """By name: Acme (agreed), Customer 01 (standard), Customer 02 (agreed), ..."""
    for n in range(1, 21):
        account = await make_account(db, world.org.rep_b1, name=f"Customer {n:02}")
        if n % 2 == 0:
            await make_agreement(db, account, world.agreed, date(2026, 1, 1))


def agreed_customer(name: str) -> bool:
    return name == "Acme" or int(name[-2:]) % 2 == 0


async def test_price_for_over_many_accounts_is_batched(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await many_customers(db, world)

    async def priced(n: int) -> tuple[list[dict[str, Any]], int]:
        data, statements = await client.counted(PRICE_FOR, {
            "n": n, "product": gid(world.widget), "date": MID_TERM}, as_user=world.org.admin)
        return data["accounts"]["nodes"], statements

    two, two_statements = await priced(2)
    twenty, twenty_statements = await priced(20)

    agreed = {"unitPrice": "80.00", "source": "AGREEMENT", "priceBook": {"name": "Acme 2026"},
              "entry": {"minQuantity": "100"}}
    standard = {"unitPrice": "92.50", "source": "STANDARD",
                "priceBook": {"name": "Standard EUR"}, "entry": {"minQuantity": "10"}}
    assert two == [{"name": "Acme", "priceFor": agreed},
                   {"name": "Customer 01", "priceFor": standard}]
    assert twenty[:2] == two
    assert [node["name"] for node in twenty[1:]] == [f"Customer {n:02}" for n in range(1, 20)]
    for node in twenty:
        assert node["priceFor"] == (agreed if agreed_customer(node["name"]) else standard)
    assert two_statements == twenty_statements
    # viewer, accounts, the four of price resolution, the books shown.
    assert twenty_statements <= 7


async def test_effective_price_book_over_many_accounts_is_batched(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await many_customers(db, world)

    async def in_force(n: int) -> tuple[list[dict[str, Any]], int]:
        data, statements = await client.counted(IN_FORCE, {"n": n, "date": MID_TERM},
                                                as_user=world.org.admin)
        return data["accounts"]["nodes"], statements

    two, two_statements = await in_force(2)
    twenty, twenty_statements = await in_force(20)
    assert twenty[:2] == two == [
        {"name": "Acme", "effectivePriceBook": {"name": "Acme 2026"}},
        {"name": "Customer 01", "effectivePriceBook": {"name": "Standard EUR"}}]
    for node in twenty:
        expected = "Acme 2026" if agreed_customer(node["name"]) else "Standard EUR"
        assert node["effectivePriceBook"] == {"name": expected}, node
    assert two_statements == twenty_statements
    # viewer, accounts, agreements, their books, the standard books.
    assert twenty_statements <= 5


EFFECTIVE = """query($date: Date) { accounts(first: 2, orderBy: [{field: NAME}]) {
    nodes { name effectivePriceBook(date: $date) { name } } } }"""


async def test_effective_price_book_statements_do_not_grow_with_agreement_history(
    client: GraphQLClient, db: Database, world: World
) -> None:
    # On 2026-03-01 Acme buys from Acme 2026 and Plain from the standard book.
    expected = [{"name": "Acme", "effectivePriceBook": {"name": "Acme 2026"}},
                {"name": "Plain", "effectivePriceBook": {"name": "Standard EUR"}}]
    data, without_history = await client.counted(EFFECTIVE, {"date": "2026-03-01"},
                                                  as_user=world.org.admin)
    assert data["accounts"]["nodes"] == expected

    # Four later agreements each: on 2026-03-01 the one in force is behind them, and
    # Plain has none in force. The answer is the same; the statements must be too.
    for year in range(2027, 2031):
        acme_book = await make_price_book(db, name=f"Acme {year}")
        await make_agreement(db, world.acme, acme_book, date(year, 1, 1),
                             date(year, 12, 31))
        plain_book = await make_price_book(db, name=f"Plain {year}")
        await make_agreement(db, world.plain, plain_book, date(year, 1, 1))
    data, with_history = await client.counted(EFFECTIVE, {"date": "2026-03-01"},
                                              as_user=world.org.admin)
    assert data["accounts"]["nodes"] == expected
    assert with_history == without_history


# --- agreements ---------------------------------------------------------------------------


async def assign(client: GraphQLClient, user: Any, account: Account, book: PriceBook,
                 valid_from: str, valid_to: str | None = None) -> dict[str, Any]:
    return await run(client, ASSIGN, user, accountId=gid(account), priceBookId=gid(book),
                     validFrom=valid_from, validTo=valid_to)


async def test_agreements_are_made_by_the_owners_manager_or_an_admin(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    before = await snapshot(db)
    for user in (org.manager_b, org.rep_a1, org.rep_b1, org.partner):
        payload = await assign(client, user, world.plain, world.agreed, "2026-01-01")
        assert payload["priceAgreement"] is None, user.name
        assert {code for _, code in codes(payload)} == {"FORBIDDEN"}, user.name
    assert await snapshot(db) == before

    by_manager = await assign(client, org.manager_a, world.plain, world.agreed, "2026-01-01",
                              "2026-06-30")
    assert by_manager["userErrors"] == []
    agreement = by_manager["priceAgreement"]
    assert {key: agreement[key] for key in ("version", "validFrom", "validTo", "priceBook",
                                            "account")} == {
        "version": 1, "validFrom": "2026-01-01", "validTo": "2026-06-30",
        "priceBook": {"id": gid(world.agreed), "name": "Acme 2026"},
        "account": {"id": gid(world.plain), "name": "Plain"},
    }
    by_admin = await assign(client, org.admin, world.plain, world.agreed, "2026-07-01")
    assert by_admin["userErrors"] == []
    assert await agreements_of(db, world.plain) == [
        (date(2026, 1, 1), date(2026, 6, 30)), (date(2026, 7, 1), None)]
    assert summary(await resolve(client, org.rep_a1, world.plain, world.widget,
                                 date="2026-02-01")) == (
        "AGREEMENT", "90.00", "EUR", "Acme 2026", "1")


async def test_overlapping_agreements_in_one_currency_are_refused(
    client: GraphQLClient, db: Database, world: World
) -> None:
    manager = world.org.manager_a
    other = await make_price_book(db, name="Acme 2026 b")
    before = await snapshot(db)
    # The world's agreement runs 2026-01-01 to 2026-06-30.
    for period in (("2026-06-30", "2026-12-31"), ("2025-01-01", "2026-01-01"),
                   ("2026-02-01", "2026-02-28"), ("2025-01-01", None), ("2026-06-30", None)):
        payload = await assign(client, manager, world.acme, other, *period)
        assert payload["priceAgreement"] is None, period
        assert codes(payload) == {("validFrom", "CONFLICT")}, period
        assert "Acme 2026 (2026-01-01 to 2026-06-30)" in payload["userErrors"][0]["message"]
    assert await snapshot(db) == before

    # The day after the last one is free, and so are the days before the first.
    assert (await assign(client, manager, world.acme, other, "2026-07-01"))["userErrors"] == []
    assert (await assign(client, manager, world.acme, other, "2025-01-01",
                         "2025-12-31"))["userErrors"] == []
    # Now an open-ended agreement from 2026-07-01 covers every later day.
    after = await snapshot(db)
    late = await assign(client, manager, world.acme, world.agreed, "2031-01-01",
                        "2031-12-31")
    assert codes(late) == {("validFrom", "CONFLICT")}
    assert await snapshot(db) == after
    assert await agreements_of(db, world.acme) == [
        (date(2025, 1, 1), date(2025, 12, 31)), (date(2026, 1, 1), date(2026, 6, 30)),
        (date(2026, 7, 1), None)]


async def test_agreements_in_different_currencies_may_overlap(
    client: GraphQLClient, db: Database, world: World
) -> None:
    nordic = await make_price_book(db, name="Nordic SEK", currency="SEK")
    await make_price_entry(db, nordic, world.widget, "990.00")
    payload = await assign(client, world.org.admin, world.acme, nordic, "2026-03-01")
    assert payload["userErrors"] == []
    assert len(await agreements_of(db, world.acme)) == 2

    eur = await resolve(client, world.org.admin, world.acme, world.widget, date="2026-04-01",
                        currency="EUR")
    sek = await resolve(client, world.org.admin, world.acme, world.widget, date="2026-04-01",
                        currency="SEK")
    assert summary(eur) == ("AGREEMENT", "90.00", "EUR", "Acme 2026", "1")
    assert summary(sek) == ("AGREEMENT", "990.00", "SEK", "Nordic SEK", "1")


async def test_agreements_on_an_inactive_book_or_with_a_bad_period_are_refused(
    client: GraphQLClient, db: Database, world: World
) -> None:
    retired = await make_price_book(db, name="Retired", active=False)
    before = await snapshot(db)
    inactive = await assign(client, world.org.admin, world.plain, retired, "2026-01-01")
    assert codes(inactive) == {("priceBookId", "VALIDATION")}
    backwards = await assign(client, world.org.admin, world.plain, world.agreed, "2026-02-01",
                             "2026-01-31")
    assert codes(backwards) == {("validTo", "VALIDATION")}
    assert await snapshot(db) == before


async def test_end_price_agreement_sets_the_last_day_without_overlap(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    open_ended = await make_agreement(db, world.plain, world.agreed, date(2026, 1, 1))
    # The id the API gives the agreement is the one it takes back.
    listed = await client.query(AGREEMENTS_QUERY, {"id": gid(world.plain)}, as_user=org.admin)
    ident = listed["account"]["priceAgreements"][0]["id"]
    assert ident == agreement_gid(open_ended)

    ended = await run(client, END, org.manager_a, id=ident, expectedVersion=1,
                      validTo="2026-06-30")
    assert ended["userErrors"] == []
    assert ended["priceAgreement"]["validTo"] == "2026-06-30"
    assert ended["priceAgreement"]["version"] == 2
    following = await assign(client, org.manager_a, world.plain, world.agreed, "2026-07-01")
    assert following["userErrors"] == []
    assert summary(await resolve(client, org.admin, world.plain, world.widget,
                                 date="2026-06-30"))[0] == "AGREEMENT"

    before = await snapshot(db)
    for user in (org.rep_a1, org.manager_b, org.partner):
        payload = await run(client, END, user, id=ident, expectedVersion=2,
                            validTo="2026-05-31")
        assert {code for _, code in codes(payload)} == {"FORBIDDEN"}, user.name
    stale = await run(client, END, org.manager_a, id=ident, expectedVersion=1,
                      validTo="2026-05-31")
    assert codes(stale) == {("expectedVersion", "CONFLICT")}
    backwards = await run(client, END, org.manager_a, id=ident, expectedVersion=2,
                          validTo="2025-12-31")
    assert codes(backwards) == {("validTo", "VALIDATION")}
    # Moving the end past the next one's start would overlap it.
    extended = await run(client, END, org.admin, id=ident, expectedVersion=2,
                         validTo="2026-07-01")
    assert codes(extended) == {("validTo", "CONFLICT")}
    assert await snapshot(db) == before

    # One day long is a period too.
    shortest = await run(client, END, org.admin, id=ident, expectedVersion=2,
                         validTo="2026-01-01")
    assert shortest["userErrors"] == []
    assert await agreements_of(db, world.plain) == [
        (date(2026, 1, 1), date(2026, 1, 1)), (date(2026, 7, 1), None)]


async def test_two_overlapping_agreements_made_at_once_cannot_both_win(
    client: GraphQLClient, db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold each request after its overlap check until the other has checked too (or a
    # second has passed, where the database makes the second wait for the first): both
    # may find no overlap, and only the database can keep the second out.
    arrived: list[int] = []
    both = asyncio.Event()
    overlapping = pricing_resolvers._overlapping

    async def in_step(*args: Any, **kwargs: Any) -> Any:
        found = await overlapping(*args, **kwargs)
        arrived.append(1)
        if len(arrived) == 2:
            both.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both.wait(), timeout=1)
        return found

    monkeypatch.setattr(pricing_resolvers, "_overlapping", in_step)
    first, second = await asyncio.gather(
        assign(client, world.org.manager_a, world.plain, world.agreed, "2026-01-01"),
        assign(client, world.org.admin, world.plain, world.agreed, "2026-03-01",
               "2026-03-31"))

    assert sorted([bool(first["userErrors"]), bool(second["userErrors"])]) == [False, True]
    assert len(await agreements_of(db, world.plain)) == 1


AGREEMENTS_QUERY = """query($id: ID!, $date: Date, $currency: String) {
  account(id: $id) {
    priceAgreements { id validFrom validTo priceBook { name } account { name } }
    effectivePriceBook(date: $date, currency: $currency) { name currency }
  }
}"""


async def test_account_lists_its_agreements_and_the_book_in_force(
    client: GraphQLClient, db: Database, world: World
) -> None:
    nordic = await make_price_book(db, name="Nordic SEK", currency="SEK")
    sek_standard = await make_price_book(db, name="Standard SEK", currency="SEK",
                                         is_standard=True)
    sek = await make_agreement(db, world.acme, nordic, date(2026, 3, 1))

    async def read(day: str | None, currency: str | None = None) -> dict[str, Any]:
        data = await client.query(AGREEMENTS_QUERY, {
            "id": gid(world.acme), "date": day, "currency": currency},
            as_user=world.org.rep_b1)
        return data["account"]

    account = await read("2026-02-01")
    assert account["priceAgreements"] == [
        {"id": agreement_gid(sek), "validFrom": "2026-03-01", "validTo": None,
         "priceBook": {"name": "Nordic SEK"}, "account": {"name": "Acme"}},
        {"id": agreement_gid(world.agreement), "validFrom": "2026-01-01",
         "validTo": "2026-06-30", "priceBook": {"name": "Acme 2026"},
         "account": {"name": "Acme"}},
    ]
    in_force = {(day, currency): (await read(day, currency))["effectivePriceBook"]
                for day, currency in (("2026-02-01", None), ("2026-02-01", "SEK"),
                                      ("2026-04-01", "EUR"), ("2026-04-01", "SEK"),
                                      ("2026-07-01", None), ("2026-07-01", "EUR"),
                                      ("2025-12-31", None), ("2025-12-31", "USD"))}
    assert in_force == {
        ("2026-02-01", None): {"name": "Acme 2026", "currency": "EUR"},
        ("2026-02-01", "SEK"): {"name": "Standard SEK", "currency": "SEK"},
        ("2026-04-01", "EUR"): {"name": "Acme 2026", "currency": "EUR"},
        ("2026-04-01", "SEK"): {"name": "Nordic SEK", "currency": "SEK"},
        ("2026-07-01", None): {"name": "Nordic SEK", "currency": "SEK"},
        ("2026-07-01", "EUR"): {"name": "Standard EUR", "currency": "EUR"},
        ("2025-12-31", None): {"name": "Standard EUR", "currency": "EUR"},
        ("2025-12-31", "USD"): None,
    }
    assert sek_standard.is_standard
    plain = (await client.query(AGREEMENTS_QUERY, {"id": gid(world.plain)},
                                as_user=world.org.rep_a1))["account"]
    assert plain == {"priceAgreements": [],
                     "effectivePriceBook": {"name": "Standard EUR", "currency": "EUR"}}


# --- price books and entries --------------------------------------------------------------


async def test_only_admins_keep_price_books_and_entries(
    client: GraphQLClient, db: Database, world: World
) -> None:
    org = world.org
    before = await snapshot(db)
    attempts = [
        (CREATE_BOOK, {"name": "Mine", "currency": "EUR"}),
        (UPDATE_BOOK, {"id": gid(world.agreed), "expectedVersion": 1, "name": "Renamed"}),
        (DELETE_BOOK, {"id": gid(world.agreed), "expectedVersion": 1}),
        (CREATE_ENTRY, {"priceBookId": gid(world.agreed), "productId": gid(world.gizmo),
                        "unitPrice": "1.00"}),
        (UPDATE_ENTRY, {"id": gid(world.agreed_one), "expectedVersion": 1,
                        "unitPrice": "1.00"}),
        (DELETE_ENTRY, {"id": gid(world.agreed_one), "expectedVersion": 1}),
    ]
    for user in (org.manager_a, org.rep_a1, org.partner):
        for mutation, input in attempts:
            payload = await run(client, mutation, user, **input)
            assert {code for _, code in codes(payload)} == {"FORBIDDEN"}, (user.name, input)
            assert not any(value for key, value in payload.items() if key != "userErrors")
    assert await snapshot(db) == before

    created = await run(client, CREATE_BOOK, org.admin, name="  Partner deals  ",
                        currency="EUR", validFrom="2026-01-01", validTo="2026-12-31")
    assert created["userErrors"] == []
    book = created["priceBook"]
    assert {key: value for key, value in book.items() if key != "id"} == {
        "version": 1, "name": "Partner deals", "currency": "EUR", "validFrom": "2026-01-01",
        "validTo": "2026-12-31", "isStandard": False, "active": True}
    async with db.read() as connection:
        stored = (await connection.execute(select(BOOKS.c.name, BOOKS.c.currency).where(
            BOOKS.c.name == "Partner deals"))).all()
    assert [tuple(row) for row in stored] == [("Partner deals", "EUR")]


async def test_one_standard_book_per_currency_and_unique_names(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    before = await snapshot(db)
    second_standard = await run(client, CREATE_BOOK, admin, name="Another standard",
                                currency="EUR", isStandard=True)
    assert codes(second_standard) == {("isStandard", "CONFLICT")}
    assert "Standard EUR" in second_standard["userErrors"][0]["message"]
    same_name = await run(client, CREATE_BOOK, admin, name="Acme 2026", currency="SEK")
    assert codes(same_name) == {("name", "CONFLICT")}
    renamed = await run(client, UPDATE_BOOK, admin, id=gid(world.agreed), expectedVersion=1,
                        name="Standard EUR")
    assert codes(renamed) == {("name", "CONFLICT")}
    assert await snapshot(db) == before

    sek = await run(client, CREATE_BOOK, admin, name="Standard SEK", currency="SEK",
                    isStandard=True)
    assert sek["userErrors"] == []
    assert sek["priceBook"]["isStandard"] is True
    # Once EUR's standard is no longer standard, another book may take its place.
    demoted = await run(client, UPDATE_BOOK, admin, id=gid(world.standard), expectedVersion=1,
                        isStandard=False)
    assert demoted["userErrors"] == []
    promoted = await run(client, UPDATE_BOOK, admin, id=gid(world.agreed), expectedVersion=1,
                         isStandard=True)
    assert promoted["userErrors"] == []
    assert promoted["priceBook"]["version"] == 2
    assert summary(await resolve(client, admin, world.plain, world.widget,
                                 date=MID_TERM)) == (
        "STANDARD", "90.00", "EUR", "Acme 2026", "1")


async def test_making_a_second_standard_book_names_the_standard_one(
    client: GraphQLClient, db: Database, world: World
) -> None:
    # No one else is writing: the refusal is about the standard book, not a lost race.
    before = await snapshot(db)
    payload = await run(client, UPDATE_BOOK, world.org.admin, id=gid(world.agreed),
                        expectedVersion=1, isStandard=True)
    assert payload["priceBook"] is None
    assert await snapshot(db) == before
    assert payload["userErrors"] == [{
        "field": "isStandard", "code": "CONFLICT",
        "message": "Standard EUR is the standard price book of EUR already"}]


async def test_update_price_book_needs_the_current_version_and_a_valid_period(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    before = await snapshot(db)
    stale = await run(client, UPDATE_BOOK, admin, id=gid(world.agreed), expectedVersion=2,
                      name="Acme 2026-27")
    assert codes(stale) == {("expectedVersion", "CONFLICT")}
    assert stale["priceBook"] is None
    backwards = await run(client, UPDATE_BOOK, admin, id=gid(world.agreed), expectedVersion=1,
                          validFrom="2026-06-01", validTo="2026-05-31")
    assert codes(backwards) == {("validTo", "VALIDATION")}
    empty = await run(client, UPDATE_BOOK, admin, id=gid(world.agreed), expectedVersion=1,
                      name="  ")
    assert codes(empty) == {("name", "VALIDATION")}
    missing = await run(client, UPDATE_BOOK, admin, id=encode_id("PriceBook", 999999),
                        expectedVersion=1, name="Nobody")
    assert codes(missing) == {("id", "NOT_FOUND")}
    assert await snapshot(db) == before

    updated = await run(client, UPDATE_BOOK, admin, id=gid(world.agreed), expectedVersion=1,
                        name="Acme 2026-27", validTo="2027-12-31")
    assert updated["userErrors"] == []
    assert {key: updated["priceBook"][key] for key in ("version", "name", "validTo")} == {
        "version": 2, "name": "Acme 2026-27", "validTo": "2027-12-31"}
    again = await run(client, UPDATE_BOOK, admin, id=gid(world.agreed), expectedVersion=1,
                      name="Lost update")
    assert codes(again) == {("expectedVersion", "CONFLICT")}


async def test_create_price_book_checks_its_input(client: GraphQLClient, db: Database,
                                                  world: World) -> None:
    before = await snapshot(db)
    for input, expected in (
        ({"name": "Lower", "currency": "eur"}, {("currency", "VALIDATION")}),
        ({"name": "Long", "currency": "EURO"}, {("currency", "VALIDATION")}),
        ({"name": "Digits", "currency": "E1R"}, {("currency", "VALIDATION")}),
        ({"name": "", "currency": "EUR"}, {("name", "VALIDATION")}),
        ({"name": "x" * 201, "currency": "EUR"}, {("name", "VALIDATION")}),
        ({"name": "Backwards", "currency": "EUR", "validFrom": "2026-02-01",
          "validTo": "2026-01-31"}, {("validTo", "VALIDATION")}),
        ({"name": " ", "currency": "eu", "validFrom": "2026-02-01", "validTo": "2026-01-01"},
         {("name", "VALIDATION"), ("currency", "VALIDATION"), ("validTo", "VALIDATION")}),
    ):
        payload = await run(client, CREATE_BOOK, world.org.admin, **input)
        assert payload["priceBook"] is None, input
        assert codes(payload) == expected, input
    assert await snapshot(db) == before


async def test_a_currency_is_three_ascii_capital_letters(
    client: GraphQLClient, db: Database, world: World
) -> None:
    # ISO 4217 codes are ASCII: str.isalpha() and str.isupper() also let "ÅÄÖ" through.
    before = await snapshot(db)
    payload = await run(client, CREATE_BOOK, world.org.admin, name="Letters", currency="ÅÄÖ")
    assert payload["priceBook"] is None
    assert codes(payload) == {("currency", "VALIDATION")}
    assert await snapshot(db) == before
    errors = await resolve_errors(client, world.org.admin, world.plain, world.widget,
                                  currency="ÅÄÖ")
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    assert "three-letter ISO 4217 code" in errors[0]["message"]


async def test_a_price_book_in_use_is_not_deleted(client: GraphQLClient, db: Database,
                                                  world: World) -> None:
    admin = world.org.admin
    before = await snapshot(db)
    in_use = await run(client, DELETE_BOOK, admin, id=gid(world.agreed), expectedVersion=1)
    assert in_use["deletedId"] is None
    assert codes(in_use) == {("id", "VALIDATION")}
    assert "agreements" in in_use["userErrors"][0]["message"]
    stale = await run(client, DELETE_BOOK, admin, id=gid(world.standard), expectedVersion=3)
    assert codes(stale) == {("expectedVersion", "CONFLICT")}
    assert await snapshot(db) == before

    # A book nothing refers to goes, with its entries.
    deleted = await run(client, DELETE_BOOK, admin, id=gid(world.standard), expectedVersion=1)
    assert deleted == {"deletedId": gid(world.standard), "userErrors": []}
    books, entries, agreements = await snapshot(db)
    assert [book["name"] for book in books] == ["Acme 2026"]
    assert {entry["price_book_id"] for entry in entries} == {world.agreed.id}
    assert len(agreements) == 1
    assert summary(await resolve(client, admin, world.plain, world.widget,
                                 date=MID_TERM)) == ("LIST_PRICE", "100.00", "EUR", None, None)


async def test_price_book_entries_are_unique_per_tier_and_checked(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    book, product = gid(world.agreed), gid(world.gizmo)
    created = await run(client, CREATE_ENTRY, admin, priceBookId=book, productId=product,
                        unitPrice="11.50")
    assert created["userErrors"] == []
    entry = created["priceBookEntry"]
    assert {key: value for key, value in entry.items() if key != "id"} == {
        "version": 1, "unitPrice": "11.50", "minQuantity": "1", "priceBook": {"id": book},
        "product": {"id": product, "code": "GIZMO"}}
    tier = await run(client, CREATE_ENTRY, admin, priceBookId=book, productId=product,
                     unitPrice="10.1234", minQuantity="25.5")
    assert tier["userErrors"] == []
    assert (tier["priceBookEntry"]["unitPrice"], tier["priceBookEntry"]["minQuantity"]) == (
        "10.1234", "25.5")

    before = await snapshot(db)
    for input, expected in (
        ({"unitPrice": "9.00"}, {("minQuantity", "CONFLICT")}),
        ({"unitPrice": "9.00", "minQuantity": "1.0000"}, {("minQuantity", "CONFLICT")}),
        ({"unitPrice": "-0.01", "minQuantity": "2"}, {("unitPrice", "VALIDATION")}),
        ({"unitPrice": "1.00001", "minQuantity": "2"}, {("unitPrice", "VALIDATION")}),
        ({"unitPrice": "1.00", "minQuantity": "-1"}, {("minQuantity", "VALIDATION")}),
        ({"unitPrice": "1.00", "minQuantity": "0.00001"}, {("minQuantity", "VALIDATION")}),
        ({"unitPrice": "1000000000", "minQuantity": "3"}, {("unitPrice", "VALIDATION")}),
    ):
        payload = await run(client, CREATE_ENTRY, admin, priceBookId=book, productId=product,
                            **input)
        assert payload["priceBookEntry"] is None, input
        assert codes(payload) == expected, input
    missing = await run(client, CREATE_ENTRY, admin, priceBookId=encode_id("PriceBook", 999),
                        productId=product, unitPrice="1.00")
    assert codes(missing) == {("priceBookId", "NOT_FOUND")}

    ident = entry["id"]
    for input, expected in (
        ({"expectedVersion": 2, "unitPrice": "12.00"}, {("expectedVersion", "CONFLICT")}),
        ({"expectedVersion": 1, "minQuantity": "25.5"}, {("minQuantity", "CONFLICT")}),
        ({"expectedVersion": 1, "unitPrice": "-5"}, {("unitPrice", "VALIDATION")}),
        ({"expectedVersion": 1, "unitPrice": "0.00005"}, {("unitPrice", "VALIDATION")}),
    ):
        payload = await run(client, UPDATE_ENTRY, admin, id=ident, **input)
        assert payload["priceBookEntry"] is None, input
        assert codes(payload) == expected, input
    stale_delete = await run(client, DELETE_ENTRY, admin, id=ident, expectedVersion=2)
    assert codes(stale_delete) == {("expectedVersion", "CONFLICT")}
    assert await snapshot(db) == before

    updated = await run(client, UPDATE_ENTRY, admin, id=ident, expectedVersion=1,
                        unitPrice="12.00", minQuantity="2")
    assert updated["userErrors"] == []
    assert {key: updated["priceBookEntry"][key] for key in ("unitPrice", "minQuantity")} == {
        "unitPrice": "12.00", "minQuantity": "2"}
    # Only tiers from 2 now: one unit falls through to the list price.
    one = await resolve(client, admin, world.acme, world.gizmo, date=MID_TERM)
    assert summary(one) == ("LIST_PRICE", "12.34", "EUR", None, None)
    two = await resolve(client, admin, world.acme, world.gizmo, quantity="2", date=MID_TERM)
    assert summary(two) == ("AGREEMENT", "12.00", "EUR", "Acme 2026", "2")

    version = updated["priceBookEntry"]["version"]
    deleted = await run(client, DELETE_ENTRY, admin, id=ident, expectedVersion=version)
    assert deleted == {"deletedId": ident, "userErrors": []}
    _, entries, _ = await snapshot(db)
    assert [(e["unit_price"], e["min_quantity"]) for e in entries
            if e["product_id"] == world.gizmo.id] == [(Decimal("10.1234"), Decimal("25.5"))]


async def test_one_entry_update_is_one_new_version(client: GraphQLClient, db: Database,
                                                   world: World) -> None:
    updated = await run(client, UPDATE_ENTRY, world.org.admin, id=gid(world.agreed_hundred),
                        expectedVersion=1, unitPrice="79.00", minQuantity="120")
    assert updated["userErrors"] == []
    assert updated["priceBookEntry"]["version"] == 2
    _, entries, _ = await snapshot(db)
    [row] = [entry for entry in entries if entry["id"] == world.agreed_hundred.id]
    assert (row["version"], row["unit_price"], row["min_quantity"]) == (
        2, Decimal("79.00"), Decimal("120"))


PRICE_BOOKS = """query($filter: PriceBookFilter, $first: Int) {
  priceBooks(filter: $filter, first: $first) { totalCount nodes { name } } }"""


async def test_price_books_filter_and_entries_page(client: GraphQLClient, db: Database,
                                                   world: World) -> None:
    await make_price_book(db, name="Standard SEK", currency="SEK", is_standard=True)
    await make_price_book(db, name="US deals", currency="USD")
    admin = world.org.admin

    async def names(filter: dict[str, Any] | None) -> tuple[int, list[str]]:
        data = await client.query(PRICE_BOOKS, {"filter": filter}, as_user=world.org.rep_b1)
        found = data["priceBooks"]
        return found["totalCount"], [node["name"] for node in found["nodes"]]

    assert await names(None) == (4, ["Acme 2026", "Standard EUR", "Standard SEK", "US deals"])
    assert await names({"currency": {"eq": "EUR"}}) == (2, ["Acme 2026", "Standard EUR"])
    assert await names({"isStandard": {"eq": True}}) == (2, ["Standard EUR", "Standard SEK"])
    assert await names({"currency": {"eq": "EUR"}, "isStandard": {"eq": False}}) == (
        1, ["Acme 2026"])

    # Five entries in the standard book: by product, then tier.
    await make_price_entry(db, world.standard, world.widget, "90.00", "50")
    await make_price_entry(db, world.standard, world.gizmo, "12.00")
    query = """query($id: ID!, $after: String) { node(id: $id) { ... on PriceBook {
        entries(first: 2, after: $after) {
          totalCount pageInfo { hasNextPage endCursor }
          nodes { unitPrice minQuantity product { code } } } } } }"""
    seen: list[tuple[str, str, str]] = []
    after = None
    pages = 0
    while True:
        data = await client.query(query, {"id": gid(world.standard), "after": after},
                                  as_user=admin)
        page = data["node"]["entries"]
        assert page["totalCount"] == 5
        seen += [(n["product"]["code"], n["minQuantity"], n["unitPrice"])
                 for n in page["nodes"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == [("WIDGET", "1", "95.00"), ("WIDGET", "10", "92.50"),
                    ("WIDGET", "50", "90.00"), ("GADGET", "1", "45.00"),
                    ("GIZMO", "1", "12.00")]


async def test_node_finds_price_books_entries_and_agreements(client: GraphQLClient,
                                                             world: World) -> None:
    query = """query($ids: [ID!]!) { nodes(ids: $ids) {
        __typename id
        ... on PriceBook { name }
        ... on PriceBookEntry { unitPrice priceBook { name } product { code } }
        ... on PriceAgreement { validFrom priceBook { name } account { name } } } }"""
    ids = [gid(world.standard), gid(world.agreed_hundred), agreement_gid(world.agreement),
           encode_id("PriceAgreement", 999999)]
    data = await client.query(query, {"ids": ids}, as_user=world.org.rep_b1)
    assert data["nodes"] == [
        {"__typename": "PriceBook", "id": ids[0], "name": "Standard EUR"},
        {"__typename": "PriceBookEntry", "id": ids[1], "unitPrice": "80.00",
         "priceBook": {"name": "Acme 2026"}, "product": {"code": "WIDGET"}},
        {"__typename": "PriceAgreement", "id": ids[2], "validFrom": "2026-01-01",
         "priceBook": {"name": "Acme 2026"}, "account": {"name": "Acme"}},
        None,
    ]


# --- partners -----------------------------------------------------------------------------


async def test_partners_see_no_prices(client: GraphQLClient, db: Database,
                                      world: World) -> None:
    await share(db, world.acme, world.org.partner_org)
    partner = world.org.partner

    for errors in (
        await resolve_errors(client, partner, world.acme, world.widget),
        await client.errors(RESOLVE_MANY, {"account": gid(world.acme),
                                           "items": [{"productId": gid(world.widget)}]},
                            as_user=partner),
    ):
        assert error_codes(errors) == ["FORBIDDEN"]

    data = await client.query(PRICE_BOOKS, {"filter": None}, as_user=partner)
    assert data["priceBooks"] == {"totalCount": 0, "nodes": []}

    account = await client.query("""query($id: ID!, $product: ID!) { account(id: $id) {
        name priceFor(productId: $product, date: "2026-03-15") { unitPrice }
        effectivePriceBook(date: "2026-03-15") { name }
        priceAgreements { id } } }""", {"id": gid(world.acme), "product": gid(world.widget)},
        as_user=partner)
    assert account["account"] == {"name": "Acme", "priceFor": None,
                                  "effectivePriceBook": None, "priceAgreements": []}

    nodes = await client.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {
        "ids": [gid(world.agreed), gid(world.agreed_one), agreement_gid(world.agreement)]},
        as_user=partner)
    assert nodes["nodes"] == [None, None, None]
