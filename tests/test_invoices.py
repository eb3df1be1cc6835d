"""Invoices through the HTTP endpoint: drafts priced by price resolution (agreement,
standard book, list price, MANUAL) with half-even cents, repricing, the status changes,
who may write and who may read, the invoices list, Account.billing, and the idempotent
all-or-nothing ERP import with its statement count.

Every mutation is checked in its payload and in the database. Price books, entries and
agreements are made through the API, as an admin or manager would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from loaders.ids import decode_id, encode_id
from models.billing import Invoice, InvoiceLine, InvoiceStatus
from models.db import Database
from models.pricing import Product
from models.users import User
from tests.factories import (
    ORG_TIMEZONE,
    Org,
    gid,
    make_account,
    make_invoice,
    make_offering_area,
    make_org,
    make_product,
    share,
)
from tests.graphql_client import GraphQLClient

INVOICES = Invoice.__table__
LINES = InvoiceLine.__table__

ERRORS = "userErrors { field code message }"
LINE = """
  id position description quantity unitPrice discountPercent priceSource lineTotal
  product { code } priceBook { name }
"""
INVOICE = f"""
  id version number invoiceDate dueDate status currency externalId notes total
  account {{ id name }} lines {{ {LINE} }}
"""


def _mutation(name: str, input_type: str) -> str:
    return f"""
mutation M($input: {input_type}!) {{
  {name}(input: $input) {{ invoice {{ {INVOICE} }} {ERRORS} }}
}}"""


CREATE = _mutation("createInvoice", "CreateInvoiceInput")
ADD_LINES = _mutation("addInvoiceLines", "AddInvoiceLinesInput")
UPDATE_LINE = _mutation("updateInvoiceLine", "UpdateInvoiceLineInput")
REMOVE_LINE = _mutation("removeInvoiceLine", "RemoveInvoiceLineInput")
REPRICE = _mutation("repriceInvoice", "InvoiceVersionInput")
SEND = _mutation("sendInvoice", "InvoiceVersionInput")
PAY = _mutation("markInvoicePaid", "InvoiceVersionInput")
CANCEL = _mutation("cancelInvoice", "InvoiceVersionInput")

IMPORT = f"""
mutation Import($input: ImportInvoicesInput!) {{
  importInvoices(input: $input) {{
    importedCount skippedExternalIds imported {{ externalId number }} {ERRORS}
  }}
}}"""

LIST = """
query List($filter: InvoiceFilter, $orderBy: [InvoiceOrder!], $first: Int, $after: String,
           $last: Int, $before: String) {
  invoices(filter: $filter, orderBy: $orderBy, first: $first, after: $after, last: $last,
           before: $before) {
    totalCount
    nodes { number }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

# The granularity is written into the document: its enum type's name is not what is
# under test here.
BILLING = """
query Billing($id: ID!, $from: Date!, $to: Date!) {
  node(id: $id) {
    ... on Account {
      billing(from: $from, to: $to, granularity: GRANULARITY) {
        period currency amount invoiceCount offeringArea { code }
      }
    }
  }
}"""

CREATE_BOOK = f"""
mutation Book($input: CreatePriceBookInput!) {{
  createPriceBook(input: $input) {{ priceBook {{ id }} {ERRORS} }}
}}"""
CREATE_ENTRY = f"""
mutation Entry($input: CreatePriceBookEntryInput!) {{
  createPriceBookEntry(input: $input) {{ priceBookEntry {{ id }} {ERRORS} }}
}}"""
AGREE = f"""
mutation Agree($input: AssignPriceAgreementInput!) {{
  assignPriceAgreement(input: $input) {{ priceAgreement {{ id }} {ERRORS} }}
}}"""


# --- helpers ------------------------------------------------------------------------------


async def run(client: GraphQLClient, document: str, user: Any, **input: Any) -> dict[str, Any]:
    """The payload of a one-field mutation."""
    data = await client.query(document, {"input": input}, as_user=user)
    return next(iter(data.values()))


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


def ok(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["invoice"]


def key(global_id: str) -> int:
    return decode_id(global_id, "Invoice")


async def price_book(client: GraphQLClient, admin: User, name: str, currency: str = "EUR", *,
                     standard: bool = False,
                     prices: Sequence[tuple[Product, str, str]] = ()) -> str:
    """A price book made through the API, with its entries (product, unit price, minimum
    quantity); returns its global id."""
    payload = await run(client, CREATE_BOOK, admin, name=name, currency=currency,
                        isStandard=standard)
    assert payload["userErrors"] == [], payload["userErrors"]
    book = payload["priceBook"]["id"]
    for product, unit_price, min_quantity in prices:
        entry = await run(client, CREATE_ENTRY, admin, priceBookId=book, productId=gid(product),
                          unitPrice=unit_price, minQuantity=min_quantity)
        assert entry["userErrors"] == [], entry["userErrors"]
    return book


async def agree(client: GraphQLClient, user: User, account: Any, book: str,
                valid_from: str = "2026-01-01") -> None:
    payload = await run(client, AGREE, user, accountId=gid(account), priceBookId=book,
                        validFrom=valid_from)
    assert payload["userErrors"] == [], payload["userErrors"]


async def snapshot(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every invoice and line row, for 'nothing changed' assertions."""
    async with db.read() as conn:
        invoices = (await conn.execute(select(INVOICES).order_by(INVOICES.c.id))).mappings()
        invoice_rows = [dict(row) for row in invoices]
        lines = (await conn.execute(select(LINES).order_by(LINES.c.id))).mappings()
        return invoice_rows, [dict(row) for row in lines]


async def stored(db: Database, invoice_key: int) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(INVOICES).where(INVOICES.c.id == invoice_key))
               ).mappings().one()
    return dict(row)


async def stored_lines(db: Database, invoice_key: int) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(LINES).where(LINES.c.invoice_id == invoice_key)
                                   .order_by(LINES.c.position))).mappings().all()
    return [dict(row) for row in rows]


async def count(db: Database, table: Any) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


def line_view(line: dict[str, Any]) -> tuple[Any, ...]:
    """(product code, quantity, unit price, source, book, line total) of a line in a
    response: quantity and unit price as Decimals, the line total as sent (in cents)."""
    return ((line["product"] or {}).get("code"), Decimal(line["quantity"]),
            Decimal(line["unitPrice"]), line["priceSource"],
            (line["priceBook"] or {}).get("name"), line["lineTotal"])


class Catalogue:
    """Two EUR products: STD (standard book 20.00, from 10 units 17.00) and LST (no book
    prices it: list price 12.00)."""

    std: Product
    lst: Product


async def catalogue(db: Database, client: GraphQLClient, org: Org) -> Catalogue:
    cat = Catalogue()
    area = await make_offering_area(db, "SW")
    cat.std = await make_product(db, area, code="STD", list_price=Decimal("30.00"))
    cat.lst = await make_product(db, area, code="LST", list_price=Decimal("12.00"))
    await price_book(client, org.admin, "Standard EUR", standard=True,
                     prices=[(cat.std, "20.00", "1"), (cat.std, "17.00", "10")])
    return cat


# --- creating and pricing -----------------------------------------------------------------


async def test_create_invoice_prices_every_line_by_its_source_and_rounds_half_even(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    area = await make_offering_area(db, "SW")
    agr = await make_product(db, area, code="AGR", list_price=Decimal("50.00"))
    std = await make_product(db, area, code="STD", list_price=Decimal("30.00"))
    lst = await make_product(db, area, code="LST", list_price=Decimal("12.125"))
    standard = await price_book(client, org.admin, "Standard EUR", standard=True,
                                prices=[(agr, "45.00", "1"), (std, "20.45", "1")])
    acme_book = await price_book(client, org.admin, "Acme EUR",
                                 prices=[(agr, "40.00", "1"), (agr, "37.50", "10")])
    account = await make_account(db, org.rep_a1, name="Acme")
    await agree(client, org.manager_a, account, acme_book)

    payload = await run(client, CREATE, org.rep_a1, accountId=gid(account),
                        invoiceDate="2026-03-10", lines=[
                            # the agreed book's tier from 10 units, not its 40.00 nor the
                            # standard book's 45.00
                            {"productId": gid(agr), "quantity": "10"},
                            # not in the agreed book: the standard book; 102.25 less 10 %
                            # is 92.025, half-even 92.02 (half-up would say 92.03)
                            {"productId": gid(std), "quantity": "5", "discountPercent": "10"},
                            # in no book: the list price; 12.125 is 12.12 half-even
                            {"productId": gid(lst)},
                            # free text: 3 x 12.125 = 36.375, half-even 36.38
                            {"description": "Setup", "quantity": "3", "unitPrice": "12.125"},
                            # a typed price wins over the agreement
                            {"productId": gid(agr), "unitPrice": "99.99"},
                        ])
    invoice = ok(payload)

    assert [line_view(line) for line in invoice["lines"]] == [
        ("AGR", Decimal(10), Decimal("37.50"), "AGREEMENT", "Acme EUR", "375.00"),
        ("STD", Decimal(5), Decimal("20.45"), "STANDARD", "Standard EUR", "92.02"),
        ("LST", Decimal(1), Decimal("12.125"), "LIST_PRICE", None, "12.12"),
        (None, Decimal(3), Decimal("12.125"), "MANUAL", None, "36.38"),
        ("AGR", Decimal(1), Decimal("99.99"), "MANUAL", None, "99.99"),
    ]
    assert [line["position"] for line in invoice["lines"]] == [1, 2, 3, 4, 5]
    assert invoice["lines"][1]["discountPercent"] == "10"
    assert invoice["lines"][3]["description"] == "Setup"
    # 375.00 + 92.02 + 12.12 + 36.38 + 99.99 (half-up cents would make 615.53)
    assert invoice["total"] == "615.51"
    invoice_key = key(invoice["id"])
    assert invoice["number"] == f"INV-{invoice_key:06d}"
    assert (invoice["status"], invoice["version"], invoice["currency"]) == ("DRAFT", 1, "EUR")
    assert (invoice["invoiceDate"], invoice["dueDate"]) == ("2026-03-10", "2026-04-09")
    assert invoice["account"] == {"id": gid(account), "name": "Acme"}

    row = await stored(db, invoice_key)
    assert (row["number"], row["status"].value, row["total"], row["due_date"], row["version"]) \
        == (invoice["number"], "DRAFT", Decimal("615.51"), date(2026, 4, 9), 1)
    lines = await stored_lines(db, invoice_key)
    assert [(line["price_source"].value, line["unit_price"], line["line_total"])
            for line in lines] == [
        ("AGREEMENT", Decimal("37.50"), Decimal("375.00")),
        ("STANDARD", Decimal("20.45"), Decimal("92.02")),
        ("LIST_PRICE", Decimal("12.125"), Decimal("12.12")),
        ("MANUAL", Decimal("12.125"), Decimal("36.38")),
        ("MANUAL", Decimal("99.99"), Decimal("99.99")),
    ]
    assert lines[0]["price_book_id"] == decode_id(acme_book, "PriceBook")
    assert lines[1]["price_book_id"] == decode_id(standard, "PriceBook")
    assert [line["price_book_id"] for line in lines[2:]] == [None, None, None]


async def test_create_invoice_defaults_number_dates_and_refuses_a_taken_number(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    account = await make_account(db, org.rep_a1)

    first = ok(await run(client, CREATE, org.rep_a1, accountId=gid(account)))
    today = datetime.now(ZoneInfo(ORG_TIMEZONE)).date()
    assert first["invoiceDate"] == today.isoformat()
    assert first["dueDate"] == (today + timedelta(days=30)).isoformat()
    assert (first["status"], first["version"], first["lines"]) == ("DRAFT", 1, [])
    assert Decimal(first["total"]) == 0
    assert first["number"] == f"INV-{key(first['id']):06d}"

    second = ok(await run(client, CREATE, org.rep_a1, accountId=gid(account),
                          invoiceDate="2026-05-01", dueDate="2026-05-15", number="ACME-7",
                          currency="SEK", notes="by hand"))
    assert (second["number"], second["dueDate"], second["currency"], second["notes"]) == (
        "ACME-7", "2026-05-15", "SEK", "by hand")

    before = await snapshot(db)
    taken = await run(client, CREATE, org.rep_a1, accountId=gid(account), number="ACME-7")
    assert taken["invoice"] is None
    assert codes(taken) == {("number", "CONFLICT")}
    early = await run(client, CREATE, org.rep_a1, accountId=gid(account),
                      invoiceDate="2026-05-01", dueDate="2026-04-30")
    assert codes(early) == {("dueDate", "VALIDATION")}
    bad = await run(client, CREATE, org.rep_a1, accountId=gid(account), currency="eur", lines=[
        {"description": "No price"},
        {"description": "Zero", "quantity": "0", "unitPrice": "1"},
        {"description": "Too much off", "unitPrice": "1", "discountPercent": "100.5"},
        {"unitPrice": "-1", "description": "Negative"},
    ])
    assert codes(bad) == {("currency", "VALIDATION"), ("lines.0.productId", "VALIDATION"),
                          ("lines.1.quantity", "VALIDATION"),
                          ("lines.2.discountPercent", "VALIDATION"),
                          ("lines.3.unitPrice", "VALIDATION")}
    assert await snapshot(db) == before


async def test_an_empty_drafts_total_reads_the_same_in_the_payload_and_in_queries(
        db: Database, client: GraphQLClient):
    """Money is sent with its cents ("0.00"), in a mutation payload as in a query."""
    org = await make_org(db)
    account = await make_account(db, org.rep_a1)
    created = ok(await run(client, CREATE, org.rep_a1, accountId=gid(account)))
    read = await client.query("query($id: ID!) { node(id: $id) { ... on Invoice { total } } }",
                              {"id": created["id"]}, as_user=org.rep_a1)
    assert read["node"]["total"] == "0.00"
    assert created["total"] == read["node"]["total"]


async def test_auto_number_is_not_blocked_by_a_number_typed_by_hand(
        db: Database, client: GraphQLClient):
    """A hand-typed number of the automatic shape must not make automatic numbering
    fail: the next automatic number is one nobody has."""
    org = await make_org(db)
    account = await make_account(db, org.rep_a1)
    manual = ok(await run(client, CREATE, org.rep_a1, accountId=gid(account),
                          number=f"INV-{2:06d}"))
    assert key(manual["id"]) == 1  # the next invoice gets key 2, whose number is taken

    payload = await run(client, CREATE, org.rep_a1, accountId=gid(account))
    assert payload["userErrors"] == [], payload["userErrors"]
    numbers = {manual["number"], payload["invoice"]["number"]}
    assert len(numbers) == 2
    assert await count(db, INVOICES) == 2


async def test_prices_are_never_converted_between_currencies(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    area = await make_offering_area(db, "SW")
    product = await make_product(db, area, code="P", list_price=Decimal("50.00"))
    dollars = await make_product(db, area, code="USD1", list_price=Decimal("10.00"),
                                 currency="USD")
    await price_book(client, org.admin, "Standard EUR", standard=True,
                     prices=[(product, "45.00", "1")])
    nordic_book = await price_book(client, org.admin, "Nordic SEK", "SEK",
                                   prices=[(product, "450.00", "1")])
    nordic = await make_account(db, org.rep_a1, name="Nordic")
    await agree(client, org.manager_a, nordic, nordic_book)
    plain = await make_account(db, org.rep_a1, name="Plain")

    # The account buys from a SEK book: an EUR invoice has no price for it, and the EUR
    # standard book does not stand in for the agreement.
    refused = await run(client, CREATE, org.rep_a1, accountId=gid(nordic), currency="EUR",
                        invoiceDate="2026-03-10", lines=[{"productId": gid(product)}])
    assert refused["invoice"] is None
    assert codes(refused) == {("lines.0.unitPrice", "VALIDATION")}
    message = refused["userErrors"][0]["message"]
    assert "Nordic SEK" in message
    assert "converted" in message
    # An EUR product whose list price is in USD, with no EUR book pricing it.
    usd = await run(client, CREATE, org.rep_a1, accountId=gid(plain), currency="EUR",
                    invoiceDate="2026-03-10", lines=[{"productId": gid(dollars)}])
    assert codes(usd) == {("lines.0.unitPrice", "VALIDATION")}
    assert "USD" in usd["userErrors"][0]["message"]
    assert await count(db, INVOICES) == 0
    assert await count(db, LINES) == 0

    # The same products in their own currencies are priced.
    sek = ok(await run(client, CREATE, org.rep_a1, accountId=gid(nordic), currency="SEK",
                       invoiceDate="2026-03-10", lines=[{"productId": gid(product)}]))
    assert [line_view(line) for line in sek["lines"]] == [
        ("P", Decimal(1), Decimal("450.00"), "AGREEMENT", "Nordic SEK", "450.00")]
    in_usd = ok(await run(client, CREATE, org.rep_a1, accountId=gid(plain), currency="USD",
                          invoiceDate="2026-03-10", lines=[{"productId": gid(dollars)}]))
    assert [line_view(line) for line in in_usd["lines"]] == [
        ("USD1", Decimal(1), Decimal("10.00"), "LIST_PRICE", None, "10.00")]

    # Adding or changing a line to one without a price in the currency changes nothing.
    draft = ok(await run(client, CREATE, org.rep_a1, accountId=gid(plain),
                         invoiceDate="2026-03-10", lines=[{"productId": gid(product)}]))
    before = await snapshot(db)
    added = await run(client, ADD_LINES, org.rep_a1, id=draft["id"], expectedVersion=1,
                      lines=[{"productId": gid(dollars)}])
    assert codes(added) == {("lines.0.unitPrice", "VALIDATION")}
    changed = await run(client, UPDATE_LINE, org.rep_a1, id=draft["lines"][0]["id"],
                        expectedVersion=1, productId=gid(dollars))
    assert codes(changed) == {("unitPrice", "VALIDATION")}
    assert await snapshot(db) == before


# --- changing drafts ----------------------------------------------------------------------


async def test_line_changes_on_a_draft_reprice_and_take_new_versions(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    cat = await catalogue(db, client, org)
    account = await make_account(db, org.rep_a1)
    draft = ok(await run(client, CREATE, org.rep_a1, accountId=gid(account),
                         invoiceDate="2026-03-10",
                         lines=[{"productId": gid(cat.std), "quantity": "2"}]))
    line = draft["lines"][0]["id"]
    assert draft["total"] == "40.00"

    async def update(version: int, **changes: Any) -> dict[str, Any]:
        return ok(await run(client, UPDATE_LINE, org.rep_a1, id=line, expectedVersion=version,
                            **changes))

    tier = await update(1, quantity="10")
    assert line_view(tier["lines"][0]) == (
        "STD", Decimal(10), Decimal("17.00"), "STANDARD", "Standard EUR", "170.00")
    assert (tier["version"], tier["total"]) == (2, "170.00")
    typed = await update(2, unitPrice="16.5")
    assert line_view(typed["lines"][0])[2:] == (Decimal("16.5"), "MANUAL", None, "165.00")
    more = await update(3, quantity="12")  # a MANUAL price stays typed
    assert line_view(more["lines"][0])[2:] == (Decimal("16.5"), "MANUAL", None, "198.00")
    back = await update(4, unitPrice=None)  # null hands it back to price resolution
    assert line_view(back["lines"][0])[2:] == (
        Decimal("17.00"), "STANDARD", "Standard EUR", "204.00")
    off = await update(5, discountPercent="12.5")  # 204.00 x 0.875
    assert (off["version"], off["total"], off["lines"][0]["lineTotal"]) == (6, "178.50",
                                                                            "178.50")

    added = ok(await run(client, ADD_LINES, org.rep_a1, id=draft["id"], expectedVersion=6,
                         lines=[{"productId": gid(cat.lst)}]))
    assert [(x["position"], x["priceSource"], x["lineTotal"]) for x in added["lines"]] == [
        (1, "STANDARD", "178.50"), (2, "LIST_PRICE", "12.00")]
    assert (added["version"], added["total"]) == (7, "190.50")

    before = await snapshot(db)
    stale = await run(client, UPDATE_LINE, org.rep_a1, id=line, expectedVersion=6,
                      quantity="1")
    assert codes(stale) == {("expectedVersion", "CONFLICT")}
    assert await snapshot(db) == before

    removed = ok(await run(client, REMOVE_LINE, org.rep_a1, id=line, expectedVersion=7))
    assert (removed["version"], removed["total"]) == (8, "12.00")
    assert [x["priceSource"] for x in removed["lines"]] == ["LIST_PRICE"]
    row = await stored(db, key(draft["id"]))
    assert (row["version"], row["total"]) == (8, Decimal("12.00"))
    assert [x["line_total"] for x in await stored_lines(db, key(draft["id"]))] == [
        Decimal("12.00")]


async def test_reprice_follows_a_new_agreement_and_keeps_manual_lines(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    cat = await catalogue(db, client, org)
    acme = await make_account(db, org.rep_a1, name="Acme")
    later = await make_account(db, org.rep_a2, name="Later")
    lines = [{"productId": gid(cat.std), "quantity": "2"},
             {"productId": gid(cat.lst)},
             {"description": "Setup", "unitPrice": "15.00"},
             {"productId": gid(cat.std), "unitPrice": "25.00"}]
    draft = ok(await run(client, CREATE, org.rep_a1, accountId=gid(acme),
                         invoiceDate="2026-03-10", lines=lines))
    other = ok(await run(client, CREATE, org.rep_a2, accountId=gid(later),
                         invoiceDate="2026-03-10", lines=lines[:1]))
    assert draft["total"] == "92.00"  # 40.00 + 12.00 + 15.00 + 25.00

    acme_book = await price_book(client, org.admin, "Acme EUR",
                                 prices=[(cat.std, "18.00", "1"), (cat.lst, "11.00", "1")])
    await agree(client, org.manager_a, acme, acme_book, "2026-03-01")
    # Starts after the other draft's invoice date: it does not apply to it.
    await agree(client, org.manager_a, later, acme_book, "2026-04-01")

    # A new agreement alone does not touch a draft.
    unchanged = await client.query("query($id: ID!) { node(id: $id) { ... on Invoice { "
                                   "version total } } }", {"id": draft["id"]},
                                   as_user=org.rep_a1)
    assert unchanged["node"] == {"version": 1, "total": "92.00"}

    repriced = ok(await run(client, REPRICE, org.rep_a1, id=draft["id"], expectedVersion=1))
    assert [line_view(line) for line in repriced["lines"]] == [
        ("STD", Decimal(2), Decimal("18.00"), "AGREEMENT", "Acme EUR", "36.00"),
        ("LST", Decimal(1), Decimal("11.00"), "AGREEMENT", "Acme EUR", "11.00"),
        (None, Decimal(1), Decimal("15.00"), "MANUAL", None, "15.00"),
        ("STD", Decimal(1), Decimal("25.00"), "MANUAL", None, "25.00"),
    ]
    assert (repriced["version"], repriced["total"], repriced["status"]) == (2, "87.00", "DRAFT")
    row = await stored(db, key(draft["id"]))
    assert (row["version"], row["total"]) == (2, Decimal("87.00"))
    assert [(x["price_source"].value, x["line_total"])
            for x in await stored_lines(db, key(draft["id"]))] == [
        ("AGREEMENT", Decimal("36.00")), ("AGREEMENT", Decimal("11.00")),
        ("MANUAL", Decimal("15.00")), ("MANUAL", Decimal("25.00"))]

    # Priced as of its own invoice date: the later agreement leaves the standard price.
    same = ok(await run(client, REPRICE, org.rep_a2, id=other["id"], expectedVersion=1))
    assert [line_view(line) for line in same["lines"]] == [
        ("STD", Decimal(2), Decimal("20.00"), "STANDARD", "Standard EUR", "40.00")]
    assert (same["version"], same["total"]) == (2, "40.00")


async def test_sent_and_paid_invoices_never_change(db: Database, client: GraphQLClient):
    org = await make_org(db)
    cat = await catalogue(db, client, org)
    account = await make_account(db, org.rep_a1)
    draft = ok(await run(client, CREATE, org.rep_a1, accountId=gid(account),
                         invoiceDate="2026-03-10",
                         lines=[{"productId": gid(cat.std), "quantity": "2"},
                                {"description": "Setup", "unitPrice": "15.00"}]))
    sent = ok(await run(client, SEND, org.rep_a1, id=draft["id"], expectedVersion=1))
    assert (sent["status"], sent["version"], sent["total"]) == ("SENT", 2, "55.00")
    book = await price_book(client, org.admin, "Cheaper", prices=[(cat.std, "1.00", "1")])
    await agree(client, org.manager_a, account, book)

    line = draft["lines"][0]["id"]
    for status, version in (("SENT", 2), ("PAID", 3)):
        if status == "PAID":
            paid = ok(await run(client, PAY, org.rep_a1, id=draft["id"], expectedVersion=2))
            assert (paid["status"], paid["version"]) == ("PAID", 3)
        before = await snapshot(db)
        attempts = [
            await run(client, REPRICE, org.rep_a1, id=draft["id"], expectedVersion=version),
            await run(client, ADD_LINES, org.admin, id=draft["id"], expectedVersion=version,
                      lines=[{"description": "More", "unitPrice": "1"}]),
            await run(client, UPDATE_LINE, org.rep_a1, id=line, expectedVersion=version,
                      quantity="5"),
            await run(client, REMOVE_LINE, org.rep_a1, id=line, expectedVersion=version),
        ]
        for attempt in attempts:
            assert attempt["invoice"] is None
            assert codes(attempt) == {("id", "VALIDATION")}, (status, attempt)
            assert status in attempt["userErrors"][0]["message"]
        assert await snapshot(db) == before
    assert [x["unit_price"] for x in await stored_lines(db, key(draft["id"]))] == [
        Decimal("20.00"), Decimal("15.00")]


# --- status -------------------------------------------------------------------------------


async def test_status_transitions_and_their_refusals(db: Database, client: GraphQLClient):
    org = await make_org(db)
    account = await make_account(db, org.rep_a1)
    user = org.rep_a1
    draft = ok(await run(client, CREATE, user, accountId=gid(account),
                         invoiceDate="2026-03-10"))
    invoice = draft["id"]

    async def refused(document: str, version: int, code: str, field: str = "id") -> str:
        before = await snapshot(db)
        payload = await run(client, document, user, id=invoice, expectedVersion=version)
        assert payload["invoice"] is None
        assert codes(payload) == {(field, code)}, payload
        assert await snapshot(db) == before
        return payload["userErrors"][0]["message"]

    assert "without lines" in await refused(SEND, 1, "VALIDATION")
    assert "DRAFT" in await refused(PAY, 1, "VALIDATION")
    added = ok(await run(client, ADD_LINES, user, id=invoice, expectedVersion=1,
                         lines=[{"description": "Work", "unitPrice": "10.00"}]))
    assert added["version"] == 2
    await refused(SEND, 1, "CONFLICT", "expectedVersion")
    await refused(CANCEL, 1, "CONFLICT", "expectedVersion")
    await refused(REPRICE, 1, "CONFLICT", "expectedVersion")
    stale_add = await run(client, ADD_LINES, user, id=invoice, expectedVersion=1,
                          lines=[{"description": "Late", "unitPrice": "1"}])
    assert codes(stale_add) == {("expectedVersion", "CONFLICT")}
    stale_remove = await run(client, REMOVE_LINE, user, id=added["lines"][0]["id"],
                             expectedVersion=1)
    assert codes(stale_remove) == {("expectedVersion", "CONFLICT")}

    sent = ok(await run(client, SEND, user, id=invoice, expectedVersion=2))
    assert (sent["status"], sent["version"]) == ("SENT", 3)
    await refused(SEND, 3, "VALIDATION")
    paid = ok(await run(client, PAY, user, id=invoice, expectedVersion=3))
    assert (paid["status"], paid["version"]) == ("PAID", 4)
    assert "PAID" in await refused(CANCEL, 4, "VALIDATION")
    await refused(SEND, 4, "VALIDATION")
    await refused(PAY, 4, "VALIDATION")
    row = await stored(db, key(invoice))
    assert (row["status"].value, row["version"], row["total"]) == ("PAID", 4, Decimal("10.00"))

    # A draft and a sent invoice can be cancelled; a cancelled one goes nowhere.
    lines = [{"description": "Work", "unitPrice": "10.00"}]
    other = ok(await run(client, CREATE, user, accountId=gid(account), lines=lines))
    cancelled = ok(await run(client, CANCEL, user, id=other["id"], expectedVersion=1))
    assert (cancelled["status"], cancelled["version"]) == ("CANCELLED", 2)
    invoice = other["id"]
    await refused(SEND, 2, "VALIDATION")
    await refused(PAY, 2, "VALIDATION")
    third = ok(await run(client, CREATE, user, accountId=gid(account), lines=lines))
    ok(await run(client, SEND, user, id=third["id"], expectedVersion=1))
    gone = ok(await run(client, CANCEL, user, id=third["id"], expectedVersion=2))
    assert (gone["status"], gone["version"]) == ("CANCELLED", 3)
    assert (await stored(db, key(third["id"])))["status"].value == "CANCELLED"


# --- who may write, who may read ----------------------------------------------------------


async def test_only_the_owner_its_manager_and_admins_write_invoices(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    account = await make_account(db, org.rep_a1, name="Acme")
    await share(db, account, org.partner_org)
    lines = [{"description": "Work", "unitPrice": "10.00"}]
    draft = ok(await run(client, CREATE, org.rep_a1, accountId=gid(account), lines=lines))
    line = draft["lines"][0]["id"]

    before = await snapshot(db)
    for user in (org.rep_b1, org.rep_a2, org.manager_b, org.partner):
        created = await run(client, CREATE, user, accountId=gid(account), lines=lines)
        assert created["invoice"] is None
        assert {code for _, code in codes(created)} == {"FORBIDDEN"}, user.name
        for document, input in (
                (ADD_LINES, {"id": draft["id"], "expectedVersion": 1, "lines": lines}),
                (UPDATE_LINE, {"id": line, "expectedVersion": 1, "quantity": "2"}),
                (REMOVE_LINE, {"id": line, "expectedVersion": 1}),
                (REPRICE, {"id": draft["id"], "expectedVersion": 1}),
                (SEND, {"id": draft["id"], "expectedVersion": 1}),
                (CANCEL, {"id": draft["id"], "expectedVersion": 1})):
            payload = await run(client, document, user, **input)
            assert payload["invoice"] is None
            assert {code for _, code in codes(payload)} == {"FORBIDDEN"}, (user.name, document)
    assert await snapshot(db) == before

    by_manager = ok(await run(client, CREATE, org.manager_a, accountId=gid(account),
                              lines=lines))
    by_admin = ok(await run(client, CREATE, org.admin, accountId=gid(account), lines=lines))
    assert by_manager["account"]["id"] == by_admin["account"]["id"] == gid(account)
    added = ok(await run(client, ADD_LINES, org.manager_a, id=draft["id"], expectedVersion=1,
                         lines=lines))
    assert (added["version"], added["total"]) == (2, "20.00")
    sent = ok(await run(client, SEND, org.manager_a, id=draft["id"], expectedVersion=2))
    assert sent["status"] == "SENT"
    assert await count(db, INVOICES) == 3


async def test_reps_see_invoices_of_their_own_and_their_teams_accounts_only(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    area = await make_offering_area(db, "SW")
    product = await make_product(db, area, code="P")
    acme = await make_account(db, org.rep_a1, name="Acme")
    globex = await make_account(db, org.rep_a2, name="Globex")
    initech = await make_account(db, org.rep_b1, name="Initech")
    await share(db, acme, org.partner_org)
    invoices = {}
    for number, account in (("A-1", acme), ("G-1", globex), ("I-1", initech)):
        invoices[number] = await make_invoice(db, account, number=number, status=InvoiceStatus.SENT,
                                              lines=[(product, "1", "10.00")])
    async with db.read() as conn:
        line_keys = {row.invoice_id: row.id for row in await conn.execute(select(LINES))}

    all_numbers = ["A-1", "G-1", "I-1"]
    expected = {org.rep_a1: ["A-1", "G-1"], org.rep_a2: ["A-1", "G-1"], org.rep_b1: ["I-1"],
                org.manager_a: all_numbers, org.manager_b: all_numbers,
                org.admin: all_numbers, org.partner: []}
    accounts = {"A-1": acme, "G-1": globex, "I-1": initech}
    query = """
    query See($ids: [ID!]!, $accounts: [ID!]!) {
      invoices(orderBy: [{field: NUMBER}]) { totalCount nodes { number } }
      nodes(ids: $ids) { ... on Invoice { number } ... on InvoiceLine { lineTotal } }
      accounts: nodes(ids: $accounts) {
        ... on Account {
          name
          invoices { totalCount nodes { number lines { lineTotal } } }
          billing(from: "2026-01-01", to: "2026-12-31") { amount }
        }
      }
    }"""
    ids = [gid(invoices[n]) for n in all_numbers] + [
        encode_id("InvoiceLine", line_keys[invoices[n].id]) for n in all_numbers]
    account_ids = [gid(accounts[n]) for n in all_numbers]
    for user, visible in expected.items():
        data = await client.query(query, {"ids": ids, "accounts": account_ids}, as_user=user)
        assert [n["number"] for n in data["invoices"]["nodes"]] == visible, user.name
        assert data["invoices"]["totalCount"] == len(visible)
        assert [node["number"] if node else None for node in data["nodes"][:3]] == [
            n if n in visible else None for n in all_numbers], user.name
        assert [node["lineTotal"] if node else None for node in data["nodes"][3:]] == [
            "10.00" if n in visible else None for n in all_numbers], user.name
        for number, account in zip(all_numbers, data["accounts"], strict=True):
            if account is None:  # a partner sees only the shared account
                assert user is org.partner
                assert number != "A-1"
                continue
            seen = number in visible
            assert account["invoices"]["totalCount"] == int(seen), (user.name, number)
            assert account["invoices"]["nodes"] == (
                [{"number": number, "lines": [{"lineTotal": "10.00"}]}] if seen else [])
            assert account["billing"] == ([{"amount": "10.00"}] if seen else [])
    partner_view = await client.query(query, {"ids": ids, "accounts": account_ids},
                                      as_user=org.partner)
    assert partner_view["accounts"][0]["name"] == "Acme"  # shared, yet no billing shown



# --- the invoices list --------------------------------------------------------------------


async def test_invoices_filters_ordering_paging_lines_and_account(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    area = await make_offering_area(db, "SW")
    product = await make_product(db, area, code="P")
    acme = await make_account(db, org.rep_a1, name="Acme Oy")
    globex = await make_account(db, org.rep_a2, name="Globex")
    initech = await make_account(db, org.rep_b1, name="Initech")
    for number, account, on, status, lines in (
            ("A-1", acme, date(2026, 1, 10), InvoiceStatus.SENT,
             [(product, "2", "40.00"), (None, "1", "20.00")]),
            ("A-2", acme, date(2026, 2, 10), InvoiceStatus.DRAFT, [(product, "1", "250.00")]),
            ("A-3", acme, date(2026, 3, 10), InvoiceStatus.PAID, [(product, "1", "75.50")]),
            ("G-1", globex, date(2026, 1, 20), InvoiceStatus.SENT, [(product, "3", "100.00")]),
            ("G-2", globex, date(2026, 2, 20), InvoiceStatus.CANCELLED,
             [(product, "1", "40.00")]),
            ("I-1", initech, date(2026, 2, 5), InvoiceStatus.SENT, [(None, "1", "120.00")])):
        await make_invoice(db, account, number=number, invoice_date=on, status=status,
                           lines=lines)

    async def numbers(filter: dict[str, Any] | None = None, **args: Any) -> list[str]:
        data = await client.query(LIST, {"filter": filter, **args}, as_user=org.admin)
        found = [node["number"] for node in data["invoices"]["nodes"]]
        assert data["invoices"]["totalCount"] == len(found) or "first" in args
        return found

    # The default order is by invoice date.
    assert await numbers() == ["A-1", "G-1", "I-1", "A-2", "G-2", "A-3"]
    assert await numbers({"accountId": {"eq": gid(acme)}}) == ["A-1", "A-2", "A-3"]
    assert await numbers({"status": {"in": ["SENT", "PAID"]}}) == ["A-1", "G-1", "I-1", "A-3"]
    assert await numbers({"invoiceDate": {"gte": "2026-02-01", "lte": "2026-02-28"}}) == [
        "I-1", "A-2", "G-2"]
    assert await numbers({"total": {"gt": "75.50", "lte": "250"}}) == ["A-1", "I-1", "A-2"]
    assert await numbers({"total": {"eq": "75.5"}}) == ["A-3"]
    assert await numbers({"account": {"name": {"startsWith": "Acme"}}}) == [
        "A-1", "A-2", "A-3"]
    assert await numbers({"or": [{"accountId": {"eq": gid(initech)}},
                                 {"total": {"gte": "300"}}]}) == ["G-1", "I-1"]
    assert await numbers({"not": {"status": {"in": ["DRAFT", "CANCELLED"]}},
                          "account": {"name": {"eq": "Globex"}}}) == ["G-1"]

    # Paging by total, largest first: G-1 300, A-2 250, I-1 120, A-1 100, A-3 75.50, G-2 40.
    by_total = [{"field": "TOTAL", "direction": "DESC"}]
    pages: list[list[str]] = []
    after = None
    while True:
        data = await client.query(LIST, {"orderBy": by_total, "first": 2, "after": after},
                                  as_user=org.admin)
        connection = data["invoices"]
        pages.append([node["number"] for node in connection["nodes"]])
        assert connection["totalCount"] == 6
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert pages == [["G-1", "A-2"], ["I-1", "A-1"], ["A-3", "G-2"]]
    tail = await client.query(LIST, {"orderBy": by_total, "last": 2}, as_user=org.admin)
    assert [node["number"] for node in tail["invoices"]["nodes"]] == ["A-3", "G-2"]
    before = await client.query(LIST, {"orderBy": by_total, "last": 2,
                                       "before": tail["invoices"]["pageInfo"]["startCursor"]},
                                as_user=org.admin)
    assert [node["number"] for node in before["invoices"]["nodes"]] == ["I-1", "A-1"]
    assert await numbers(orderBy=[{"field": "NUMBER", "direction": "DESC"}]) == [
        "I-1", "G-2", "G-1", "A-3", "A-2", "A-1"]

    detail = await client.query("""
    { invoices(filter: {number: {eq: "A-1"}}) { nodes {
        number status total account { name }
        lines { position description quantity unitPrice lineTotal product { code }
                invoice { number } }
    } } }""", as_user=org.admin)
    assert detail["invoices"]["nodes"] == [{
        "number": "A-1", "status": "SENT", "total": "100.00", "account": {"name": "Acme Oy"},
        "lines": [
            {"position": 1, "description": None, "quantity": "2", "unitPrice": "40.00",
             "lineTotal": "80.00", "product": {"code": "P"}, "invoice": {"number": "A-1"}},
            {"position": 2, "description": "Service", "quantity": "1", "unitPrice": "20.00",
             "lineTotal": "20.00", "product": None, "invoice": {"number": "A-1"}},
        ]}]

    by_account = await client.query("""
    query($id: ID!) { node(id: $id) { ... on Account {
      invoices(filter: {status: {ne: DRAFT}}, orderBy: [{field: TOTAL}]) {
        totalCount nodes { number } } } } }""",
                                    {"id": gid(acme)}, as_user=org.rep_a2)
    assert by_account["node"]["invoices"] == {"totalCount": 2,
                                              "nodes": [{"number": "A-3"}, {"number": "A-1"}]}


# --- billed figures -----------------------------------------------------------------------


async def test_account_billing_sums_sent_and_paid_lines_per_period_area_and_currency(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    software = await make_offering_area(db, "SW")
    hardware = await make_offering_area(db, "HW")
    app = await make_product(db, software, code="APP")
    box = await make_product(db, hardware, code="BOX")
    account = await make_account(db, org.rep_a1)
    other = await make_account(db, org.rep_a1)
    sent, paid = InvoiceStatus.SENT, InvoiceStatus.PAID
    for on, status, currency, lines in (
            (date(2026, 1, 15), sent, "EUR",
             [(app, "1", "100.00"), (box, "2", "25.00"), (None, "1", "10.00")]),
            (date(2026, 1, 31), paid, "EUR", [(app, "2", "100.00")]),
            (date(2026, 2, 1), sent, "EUR", [(app, "1", "7.50")]),
            (date(2026, 2, 10), sent, "SEK", [(app, "1", "1000.00")]),
            (date(2026, 2, 11), InvoiceStatus.DRAFT, "EUR", [(app, "1", "999.00")]),
            (date(2026, 3, 5), InvoiceStatus.CANCELLED, "EUR", [(app, "1", "888.00")]),
            (date(2026, 3, 31), sent, "EUR", [(box, "1", "5.00")]),
            (date(2026, 4, 2), sent, "EUR", [(box, "1", "40.00")]),
            (date(2026, 12, 31), paid, "EUR", [(app, "1", "1.00")]),
            (date(2025, 12, 31), sent, "EUR", [(app, "1", "5000.00")]),
            (date(2027, 1, 1), paid, "EUR", [(app, "1", "6000.00")])):
        await make_invoice(db, account, invoice_date=on, status=status, currency=currency,
                           lines=lines)
    await make_invoice(db, other, invoice_date=date(2026, 1, 15), status=sent,
                       lines=[(app, "1", "333.00")])

    async def billing(granularity: str, start: str = "2026-01-01", end: str = "2026-12-31",
                      user: User = org.admin) -> list[tuple[Any, ...]]:
        data = await client.query(BILLING.replace("GRANULARITY", granularity),
                                  {"id": gid(account), "from": start, "to": end}, as_user=user)
        return [(f["period"], (f["offeringArea"] or {}).get("code"), f["currency"],
                 f["amount"], f["invoiceCount"]) for f in data["node"]["billing"]]

    # Draft, cancelled and out-of-range invoices count for nothing; the other account's
    # invoice is not this account's.
    assert sorted(await billing("MONTH"), key=str) == sorted([
        ("2026-01-01", "SW", "EUR", "300.00", 2),
        ("2026-01-01", "HW", "EUR", "50.00", 1),
        ("2026-01-01", None, "EUR", "10.00", 1),
        ("2026-02-01", "SW", "EUR", "7.50", 1),
        ("2026-02-01", "SW", "SEK", "1000.00", 1),
        ("2026-03-01", "HW", "EUR", "5.00", 1),
        ("2026-04-01", "HW", "EUR", "40.00", 1),
        ("2026-12-01", "SW", "EUR", "1.00", 1),
    ], key=str)
    assert sorted(await billing("QUARTER"), key=str) == sorted([
        ("2026-01-01", "SW", "EUR", "307.50", 3),
        ("2026-01-01", "HW", "EUR", "55.00", 2),
        ("2026-01-01", None, "EUR", "10.00", 1),
        ("2026-01-01", "SW", "SEK", "1000.00", 1),
        ("2026-04-01", "HW", "EUR", "40.00", 1),
        ("2026-10-01", "SW", "EUR", "1.00", 1),
    ], key=str)
    assert sorted(await billing("YEAR"), key=str) == sorted([
        ("2026-01-01", "SW", "EUR", "308.50", 4),
        ("2026-01-01", "HW", "EUR", "95.00", 3),
        ("2026-01-01", None, "EUR", "10.00", 1),
        ("2026-01-01", "SW", "SEK", "1000.00", 1),
    ], key=str)
    # Both ends of the range are included.
    assert sorted(await billing("MONTH", "2026-01-31", "2026-02-01"), key=str) == [
        ("2026-01-01", "SW", "EUR", "200.00", 1), ("2026-02-01", "SW", "EUR", "7.50", 1)]
    assert await billing("YEAR", "2025-01-01", "2025-12-31") == [
        ("2025-01-01", "SW", "EUR", "5000.00", 1)]
    # A rep of another team sees no billing of the account; its team mate does.
    assert await billing("YEAR", user=org.rep_b1) == []
    assert len(await billing("YEAR", user=org.rep_a2)) == 4


async def test_billing_of_many_accounts_takes_a_constant_number_of_statements(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    area = await make_offering_area(db, "SW")
    product = await make_product(db, area, code="P")
    query = """
    { accounts(first: 50) { nodes {
        name billing(from: "2026-01-01", to: "2026-12-31", granularity: QUARTER) {
          period currency amount invoiceCount offeringArea { code } }
    } } }"""

    async def add_accounts(how_many: int) -> None:
        for _ in range(how_many):
            account = await make_account(db, org.rep_a1)
            await make_invoice(db, account, invoice_date=date(2026, 5, 5),
                               status=InvoiceStatus.SENT, lines=[(product, "1", "10.00"),
                                                                 (None, "2", "1.25")])

    await add_accounts(2)
    few, few_statements = await client.counted(query, as_user=org.admin)
    await add_accounts(18)
    many, many_statements = await client.counted(query, as_user=org.admin)
    assert len(few["accounts"]["nodes"]) == 2
    assert len(many["accounts"]["nodes"]) == 20
    for node in many["accounts"]["nodes"]:
        assert sorted(node["billing"], key=str) == sorted([
            {"period": "2026-04-01", "currency": "EUR", "amount": "10.00", "invoiceCount": 1,
             "offeringArea": {"code": "SW"}},
            {"period": "2026-04-01", "currency": "EUR", "amount": "2.50", "invoiceCount": 1,
             "offeringArea": None}], key=str)
    assert many_statements == few_statements, (few_statements, many_statements)


# --- the ERP import -----------------------------------------------------------------------


async def import_setup(db: Database, client: GraphQLClient, org: Org) -> list[Any]:
    """Products P1 (standard book 10.00) and P2, and accounts B0-B3 by business id; B0
    buys P1 at 8.00 by agreement."""
    area = await make_offering_area(db, "SW")
    p1 = await make_product(db, area, code="P1", list_price=Decimal("12.00"))
    await make_product(db, area, code="P2", list_price=Decimal("3.00"))
    await price_book(client, org.admin, "Standard EUR", standard=True,
                     prices=[(p1, "10.00", "1")])
    accounts = [await make_account(db, org.rep_a1, business_id=f"B{n}") for n in range(4)]
    await agree(client, org.admin, accounts[0],
                await price_book(client, org.admin, "B0 EUR", prices=[(p1, "8.00", "1")]))
    return accounts


def feed(count: int, start: int = 0) -> list[dict[str, Any]]:
    """ERP invoices, compact (the request body limit is 1 MiB): P1 x 2 priced by
    resolution, and P2 at a typed 1.005, which is 1.00 half-even. Totals: 17.00 on B0
    (agreement), 21.00 elsewhere (standard book)."""
    return [{"externalId": f"E{i:04d}", "number": f"N{i:04d}",
             "invoiceDate": (date(2026, 1, 1) + timedelta(days=i % 28)).isoformat(),
             "accountBusinessId": f"B{i % 4}",
             "lines": [{"productCode": "P1", "quantity": "2"},
                       {"productCode": "P2", "unitPrice": "1.005"}]}
            for i in range(start, start + count)]


async def import_(client: GraphQLClient, user: User, invoices: list[dict[str, Any]]
                  ) -> dict[str, Any]:
    return await run(client, IMPORT, user, invoices=invoices)


async def test_importing_the_same_1000_invoices_twice_keeps_1000(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    accounts = await import_setup(db, client, org)
    invoices = feed(1000)

    first = await import_(client, org.admin, invoices)
    assert first["userErrors"] == []
    assert (first["importedCount"], first["skippedExternalIds"]) == (1000, [])
    assert [x["externalId"] for x in first["imported"]] == [f"E{i:04d}" for i in range(1000)]
    assert await count(db, INVOICES) == 1000
    assert await count(db, LINES) == 2000
    async with db.read() as conn:
        total = (await conn.execute(select(func.sum(INVOICES.c.total)))).scalar_one()
    assert total == Decimal("20000.00")  # 250 x 17.00 (B0) + 750 x 21.00
    rows = {row["external_id"]: row for row in (await snapshot(db))[0]}
    e0, e1 = rows["E0000"], rows["E0001"]
    assert (e0["account_id"], e0["number"], e0["status"].value, e0["total"], e0["due_date"]) \
        == (accounts[0].id, "N0000", "SENT", Decimal("17.00"), date(2026, 1, 31))
    assert (e1["account_id"], e1["total"], e1["invoice_date"]) == (
        accounts[1].id, Decimal("21.00"), date(2026, 1, 2))
    assert [(x["position"], x["price_source"].value, x["unit_price"], x["line_total"])
            for x in await stored_lines(db, e0["id"])] == [
        (1, "AGREEMENT", Decimal("8.00"), Decimal("16.00")),
        (2, "MANUAL", Decimal("1.005"), Decimal("1.00"))]

    before = await snapshot(db)
    again = await import_(client, org.admin, invoices)
    assert again["userErrors"] == []
    assert (again["importedCount"], again["imported"]) == (0, [])
    assert again["skippedExternalIds"] == [f"E{i:04d}" for i in range(1000)]
    assert await snapshot(db) == before


async def test_an_import_of_1000_invoices_takes_as_many_statements_as_one_of_10(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    await import_setup(db, client, org)
    data, small = await client.counted(IMPORT, {"input": {"invoices": feed(10, 5000)}},
                                       as_user=org.admin)
    assert data["importInvoices"]["importedCount"] == 10
    data, big = await client.counted(IMPORT, {"input": {"invoices": feed(1000)}},
                                     as_user=org.admin)
    assert data["importInvoices"]["importedCount"] == 1000
    assert await count(db, INVOICES) == 1010
    assert await count(db, LINES) == 2020
    assert big == small, f"{small} statements for 10 invoices, {big} for 1,000"


async def test_one_bad_invoice_in_1000_imports_nothing_and_is_named(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    await import_setup(db, client, org)
    invoices = feed(1000)
    invoices[637]["lines"][0]["productCode"] = "NOPE"
    invoices[998]["accountBusinessId"] = "B-NONE"

    payload = await import_(client, org.admin, invoices)
    assert (payload["importedCount"], payload["imported"]) == (0, [])
    assert codes(payload) == {("invoices.637.lines.0.productCode", "NOT_FOUND"),
                              ("invoices.998.accountBusinessId", "NOT_FOUND")}
    messages = {error["field"]: error["message"] for error in payload["userErrors"]}
    assert "E0637" in messages["invoices.637.lines.0.productCode"]
    assert "NOPE" in messages["invoices.637.lines.0.productCode"]
    assert "E0998" in messages["invoices.998.accountBusinessId"]
    assert await count(db, INVOICES) == 0
    assert await count(db, LINES) == 0


async def test_import_refuses_duplicates_taken_numbers_and_non_admins(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    accounts = await import_setup(db, client, org)

    async def refused(invoices: list[dict[str, Any]], user: User = org.admin
                      ) -> dict[str, Any]:
        before = await snapshot(db)
        payload = await import_(client, user, invoices)
        assert (payload["importedCount"], payload["imported"]) == (0, [])
        assert await snapshot(db) == before
        return payload

    twice = feed(3)
    twice[2]["externalId"] = "E0000"
    payload = await refused(twice)
    assert codes(payload) == {("invoices.2.externalId", "VALIDATION")}
    assert "invoices.0" in payload["userErrors"][0]["message"]
    same_number = feed(3)
    same_number[1]["number"] = "N0000"
    assert codes(await refused(same_number)) == {("invoices.1.number", "VALIDATION")}

    ok(await run(client, CREATE, org.rep_a1, accountId=gid(accounts[1]), number="N0001"))
    payload = await refused(feed(3))
    assert codes(payload) == {("invoices.1.number", "CONFLICT")}
    assert "E0001" in payload["userErrors"][0]["message"]

    for user in (org.manager_a, org.rep_a1, org.partner):
        payload = await refused(feed(2, 10), user)
        assert {code for _, code in codes(payload)} == {"FORBIDDEN"}, user.name

    payload = await refused(feed(5001, 100))
    assert codes(payload) == {("invoices", "VALIDATION")}
    assert await count(db, INVOICES) == 1


async def test_import_by_global_ids_prices_on_the_invoice_date_and_skips_known_ones(
        db: Database, client: GraphQLClient):
    org = await make_org(db)
    accounts = await import_setup(db, client, org)
    async with db.read() as conn:
        p1 = (await conn.execute(select(Product.__table__.c.id).where(
            Product.__table__.c.code == "P1"))).scalar_one()
    by_ids = {"externalId": "X-1", "number": "X-1", "invoiceDate": "2026-02-01",
              "accountId": gid(accounts[2]), "currency": "EUR", "status": "PAID",
              "dueDate": "2026-02-15", "notes": "from the ERP",
              "lines": [{"productId": encode_id("Product", p1), "quantity": "3",
                         "discountPercent": "50"}]}
    first = await import_(client, org.admin, [by_ids])
    assert first["userErrors"] == []
    assert first["imported"] == [{"externalId": "X-1", "number": "X-1"}]
    row = (await snapshot(db))[0][0]
    assert (row["account_id"], row["status"].value, row["due_date"], row["notes"],
            row["total"]) == (accounts[2].id, "PAID", date(2026, 2, 15), "from the ERP",
                              Decimal("15.00"))

    # Known external ids are skipped as they are, even when the ERP sends them changed.
    changed = {**by_ids, "number": "X-1b", "lines": [{"productCode": "P2", "unitPrice": "9"}]}
    second = await import_(client, org.admin, [changed, *feed(1)])
    assert second["userErrors"] == []
    assert second["imported"] == [{"externalId": "E0000", "number": "N0000"}]
    assert second["skippedExternalIds"] == ["X-1"]
    assert (await stored(db, row["id"]))["total"] == Decimal("15.00")

    # No conversion on import either: B0 buys from an EUR book, the invoice is in SEK.
    sek = feed(1, 1)
    sek[0]["accountBusinessId"], sek[0]["currency"] = "B0", "SEK"
    payload = await import_(client, org.admin, sek)
    assert codes(payload) == {("invoices.0.lines.0.unitPrice", "VALIDATION")}
    assert "E0001" in payload["userErrors"][0]["message"]
    assert await count(db, INVOICES) == 2
