"""The catalogue kept through the API: offering areas, products and activity types created,
changed, deactivated and reactivated by admins, each change with its audit entry.

Every refusal is checked in its userErrors and in the database, which must hold exactly
what it held before (audit log included).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from loaders.ids import decode_id, encode_id
from models.accounts import Account
from models.activities import Activity, ActivityType
from models.audit import AuditEntry
from models.billing import Invoice, InvoiceLine
from models.db import Database
from models.pricing import OfferingArea, PriceBookEntry, Product
from resolvers import catalogue as catalogue_resolvers
from tests.factories import (
    Org,
    gid,
    make_account,
    make_activity_type,
    make_offering_area,
    make_org,
    make_price_book,
    make_price_entry,
    make_product,
)
from tests.graphql_client import GraphQLClient

AREAS = OfferingArea.__table__
PRODUCTS = Product.__table__
TYPES = ActivityType.__table__
ACTIVITIES = Activity.__table__
ENTRIES = PriceBookEntry.__table__
INVOICES = Invoice.__table__
LINES = InvoiceLine.__table__
AUDIT = AuditEntry.__table__

ERRORS = "userErrors { field code message }"
AREA = "id code name active version"
PRODUCT = ("id code name description unit listPrice currency active version "
           "offeringArea { code }")
TYPE = "id code name points active version"


def _mutation(name: str, input_type: str, field: str, selection: str) -> str:
    return f"""mutation M($input: {input_type}!) {{
  {name}(input: $input) {{ {field} {{ {selection} }} {ERRORS} }} }}"""


CREATE_AREA = _mutation("createOfferingArea", "CreateOfferingAreaInput", "offeringArea", AREA)
UPDATE_AREA = _mutation("updateOfferingArea", "UpdateOfferingAreaInput", "offeringArea", AREA)
DEACTIVATE_AREA = _mutation("deactivateOfferingArea", "CatalogueVersionInput", "offeringArea",
                            AREA)
REACTIVATE_AREA = _mutation("reactivateOfferingArea", "CatalogueVersionInput", "offeringArea",
                            AREA)
CREATE_PRODUCT = _mutation("createProduct", "CreateProductInput", "product", PRODUCT)
UPDATE_PRODUCT = _mutation("updateProduct", "UpdateProductInput", "product", PRODUCT)
DEACTIVATE_PRODUCT = _mutation("deactivateProduct", "CatalogueVersionInput", "product",
                               PRODUCT)
REACTIVATE_PRODUCT = _mutation("reactivateProduct", "CatalogueVersionInput", "product",
                               PRODUCT)
CREATE_TYPE = _mutation("createActivityType", "CreateActivityTypeInput", "activityType", TYPE)
UPDATE_TYPE = _mutation("updateActivityType", "UpdateActivityTypeInput", "activityType", TYPE)
DEACTIVATE_TYPE = _mutation("deactivateActivityType", "CatalogueVersionInput", "activityType",
                            TYPE)
REACTIVATE_TYPE = _mutation("reactivateActivityType", "CatalogueVersionInput", "activityType",
                            TYPE)

LIST_AREAS = "query($all: Boolean!) { offeringAreas(includeInactive: $all) { code active } }"
LIST_PRODUCTS = """query($filter: ProductFilter) {
  products(filter: $filter) { nodes { code active } } }"""
LIST_TYPES = "query($all: Boolean!) { activityTypes(includeInactive: $all) { code } }"

LINE = "id product { code active } unitPrice priceSource"
INVOICE = f"id version total lines {{ {LINE} }}"
CREATE_INVOICE = _mutation("createInvoice", "CreateInvoiceInput", "invoice", INVOICE)
ADD_LINES = _mutation("addInvoiceLines", "AddInvoiceLinesInput", "invoice", INVOICE)
UPDATE_LINE = _mutation("updateInvoiceLine", "UpdateInvoiceLineInput", "invoice", INVOICE)
REPRICE = _mutation("repriceInvoice", "InvoiceVersionInput", "invoice", INVOICE)
IMPORT = f"""mutation M($input: ImportInvoicesInput!) {{
  importInvoices(input: $input) {{ importedCount {ERRORS} }} }}"""
CREATE_ENTRY = _mutation("createPriceBookEntry", "CreatePriceBookEntryInput",
                         "priceBookEntry", "id unitPrice product { code }")
UPDATE_ENTRY = _mutation("updatePriceBookEntry", "UpdatePriceBookEntryInput",
                         "priceBookEntry", "id unitPrice product { code active }")
LOG = _mutation("logActivity", "LogActivityInput", "activity", "id type { code }")


# --- helpers ------------------------------------------------------------------------------


async def run(client: GraphQLClient, document: str, user: Any, **input: Any) -> dict[str, Any]:
    """The payload of a one-field mutation."""
    data = await client.query(document, {"input": input}, as_user=user)
    return next(iter(data.values()))


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


def ok(payload: dict[str, Any], field: str) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload[field]


async def snapshot(db: Database) -> list[list[dict[str, Any]]]:
    """Every row of the catalogue, of what refers to it, and of the audit log."""
    async with db.read() as connection:
        return [[dict(row) for row in (await connection.execute(
            select(table).order_by(table.c.id))).mappings()]
            for table in (AREAS, PRODUCTS, TYPES, ACTIVITIES, ENTRIES, INVOICES, LINES, AUDIT)]


async def row(db: Database, table: Any, key: int) -> dict[str, Any]:
    async with db.read() as connection:
        return dict((await connection.execute(
            select(table).where(table.c.id == key))).mappings().one())


async def audit_of(db: Database, entity_type: str, key: int) -> list[dict[str, Any]]:
    """(action, actor, before, after) of a record's audit entries, oldest first."""
    async with db.read() as connection:
        rows = (await connection.execute(
            select(AUDIT).where(AUDIT.c.entity_type == entity_type, AUDIT.c.entity_id == key)
            .order_by(AUDIT.c.id))).mappings().all()
    return [{"action": r["action"], "actor": r["actor_id"], "before": r["before"],
             "after": r["after"]} for r in rows]


@dataclass
class World:
    org: Org
    sw: OfferingArea
    lic: Product  # in SW, list price 100.00 EUR
    account: Account  # owned by rep_a1


@pytest.fixture
async def world(db: Database) -> World:
    org = await make_org(db)
    sw = await make_offering_area(db, "SW")
    lic = await make_product(db, sw, code="LIC", list_price=Decimal("100.00"))
    account = await make_account(db, org.rep_a1, name="Acme")
    return World(org, sw, lic, account)


# --- offering areas -----------------------------------------------------------------------


async def test_an_admin_creates_renames_deactivates_and_reactivates_an_offering_area(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    created = ok(await run(client, CREATE_AREA, admin, code=" cloud-1 ", name=" Cloud "),
                 "offeringArea")
    key = decode_id(created["id"], "OfferingArea")
    assert created == {"id": created["id"], "code": "CLOUD-1", "name": "Cloud",
                       "active": True, "version": 1}

    renamed = ok(await run(client, UPDATE_AREA, admin, id=created["id"], expectedVersion=1,
                           name="Cloud services"), "offeringArea")
    assert (renamed["name"], renamed["version"]) == ("Cloud services", 2)

    retired = ok(await run(client, DEACTIVATE_AREA, admin, id=created["id"],
                           expectedVersion=2), "offeringArea")
    assert (retired["active"], retired["version"]) == (False, 3)
    assert (await row(db, AREAS, key))["active"] is False
    listed = await client.query(LIST_AREAS, {"all": False}, as_user=world.org.rep_a1)
    assert listed["offeringAreas"] == [{"code": "SW", "active": True}]
    every = await client.query(LIST_AREAS, {"all": True}, as_user=world.org.rep_a1)
    assert every["offeringAreas"] == [{"code": "CLOUD-1", "active": False},
                                      {"code": "SW", "active": True}]

    # A retry of a deactivation already done is a no-op, whatever version it names.
    before = await snapshot(db)
    again = ok(await run(client, DEACTIVATE_AREA, admin, id=created["id"], expectedVersion=1),
               "offeringArea")
    assert (again["active"], again["version"]) == (False, 3)
    assert await snapshot(db) == before

    back = ok(await run(client, REACTIVATE_AREA, admin, id=created["id"], expectedVersion=3),
              "offeringArea")
    assert (back["active"], back["version"]) == (True, 4)
    assert (await row(db, AREAS, key))["active"] is True

    assert await audit_of(db, "OfferingArea", key) == [
        {"action": "offering_area.created", "actor": admin.id, "before": None,
         "after": {"code": "CLOUD-1", "name": "Cloud", "active": True}},
        {"action": "offering_area.updated", "actor": admin.id,
         "before": {"code": "CLOUD-1", "name": "Cloud", "active": True},
         "after": {"code": "CLOUD-1", "name": "Cloud services", "active": True}},
        {"action": "offering_area.deactivated", "actor": admin.id,
         "before": {"code": "CLOUD-1", "name": "Cloud services", "active": True},
         "after": {"code": "CLOUD-1", "name": "Cloud services", "active": False}},
        {"action": "offering_area.reactivated", "actor": admin.id,
         "before": {"code": "CLOUD-1", "name": "Cloud services", "active": False},
         "after": {"code": "CLOUD-1", "name": "Cloud services", "active": True}},
    ]


async def test_an_area_with_active_products_is_not_deactivated_and_takes_none_once_it_is(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    before = await snapshot(db)
    refused = await run(client, DEACTIVATE_AREA, admin, id=gid(world.sw), expectedVersion=1)
    assert refused["offeringArea"] is None
    assert codes(refused) == {("id", "CONFLICT")}
    assert "1 active product" in refused["userErrors"][0]["message"]
    assert await snapshot(db) == before

    ok(await run(client, DEACTIVATE_PRODUCT, admin, id=gid(world.lic), expectedVersion=1),
       "product")
    ok(await run(client, DEACTIVATE_AREA, admin, id=gid(world.sw), expectedVersion=1),
       "offeringArea")

    svc = await make_offering_area(db, "SVC")
    other = await make_product(db, svc, code="OTHER")
    before = await snapshot(db)
    new_product = await run(client, CREATE_PRODUCT, admin, code="NEW", name="New",
                            offeringAreaId=gid(world.sw), unit="piece", listPrice="1",
                            currency="EUR")
    moved_in = await run(client, UPDATE_PRODUCT, admin, id=gid(other), expectedVersion=1,
                         offeringAreaId=gid(world.sw))
    reactivated = await run(client, REACTIVATE_PRODUCT, admin, id=gid(world.lic),
                            expectedVersion=2)
    assert codes(new_product) == {("offeringAreaId", "VALIDATION")}
    assert codes(moved_in) == {("offeringAreaId", "VALIDATION")}
    assert codes(reactivated) == {("id", "CONFLICT")}
    assert await snapshot(db) == before

    # A product in the deactivated area may still be changed, its area named as it is.
    renamed = ok(await run(client, UPDATE_PRODUCT, admin, id=gid(world.lic),
                           expectedVersion=2, offeringAreaId=gid(world.sw),
                           name="Legacy licence"), "product")
    assert (renamed["name"], renamed["active"], renamed["offeringArea"]) == (
        "Legacy licence", False, {"code": "SW"})

    # Once the area is back, so may its product be.
    ok(await run(client, REACTIVATE_AREA, admin, id=gid(world.sw), expectedVersion=2),
       "offeringArea")
    back = ok(await run(client, REACTIVATE_PRODUCT, admin, id=gid(world.lic),
                        expectedVersion=3), "product")
    assert back["active"] is True


async def test_a_stale_area_update_is_a_conflict_and_changes_nothing(
    client: GraphQLClient, db: Database, world: World
) -> None:
    ok(await run(client, UPDATE_AREA, world.org.admin, id=gid(world.sw), expectedVersion=1,
                 name="Software"), "offeringArea")
    before = await snapshot(db)
    for document, input in ((UPDATE_AREA, {"name": "Stale"}), (DEACTIVATE_AREA, {}),
                            (UPDATE_PRODUCT, {"name": "Stale"})):
        target = world.lic if document is UPDATE_PRODUCT else world.sw
        version = 0 if document is UPDATE_PRODUCT else 1
        payload = await run(client, document, world.org.admin, id=gid(target),
                            expectedVersion=version, **input)
        assert codes(payload) == {("expectedVersion", "CONFLICT")}, document
    assert await snapshot(db) == before


# --- products -----------------------------------------------------------------------------


async def test_an_admin_creates_changes_deactivates_and_reactivates_a_product(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    svc = await make_offering_area(db, "SVC")
    created = ok(await run(client, CREATE_PRODUCT, admin, code="sw-pro", name="Pro licence",
                           description="Per seat", offeringAreaId=gid(world.sw),
                           unit="license", listPrice="49.90", currency="EUR"), "product")
    key = decode_id(created["id"], "Product")
    assert {k: v for k, v in created.items() if k not in ("id", "listPrice")} == {
        "code": "SW-PRO", "name": "Pro licence", "description": "Per seat", "unit": "license",
        "currency": "EUR", "active": True, "version": 1, "offeringArea": {"code": "SW"}}
    assert Decimal(created["listPrice"]) == Decimal("49.90")
    stored = await row(db, PRODUCTS, key)
    assert (stored["code"], stored["list_price"], stored["offering_area_id"]) == (
        "SW-PRO", Decimal("49.90"), world.sw.id)

    changed = ok(await run(client, UPDATE_PRODUCT, admin, id=created["id"], expectedVersion=1,
                           listPrice="55", offeringAreaId=gid(svc), description=None,
                           currency="SEK"), "product")
    assert (Decimal(changed["listPrice"]), changed["offeringArea"], changed["description"],
            changed["currency"], changed["name"], changed["version"]) == (
        Decimal(55), {"code": "SVC"}, None, "SEK", "Pro licence", 2)

    retired = ok(await run(client, DEACTIVATE_PRODUCT, admin, id=created["id"],
                           expectedVersion=2), "product")
    assert (retired["active"], retired["version"]) == (False, 3)
    active = await client.query(LIST_PRODUCTS, {"filter": {"active": {"eq": True}}},
                                as_user=world.org.rep_a1)
    assert [p["code"] for p in active["products"]["nodes"]] == ["LIC"]
    # Deactivated products stay in the catalogue: invoices and reports name them.
    every = await client.query(LIST_PRODUCTS, {}, as_user=world.org.rep_a1)
    assert {"code": "SW-PRO", "active": False} in every["products"]["nodes"]

    back = ok(await run(client, REACTIVATE_PRODUCT, admin, id=created["id"],
                        expectedVersion=3), "product")
    assert (back["active"], back["version"]) == (True, 4)

    entries = await audit_of(db, "Product", key)
    assert [e["action"] for e in entries] == ["product.created", "product.updated",
                                              "product.deactivated", "product.reactivated"]
    assert all(e["actor"] == admin.id for e in entries)
    for entry in entries:  # money as a string: compared as the amount it is
        for side in ("before", "after"):
            if entry[side] is not None:
                entry[side]["list_price"] = Decimal(entry[side]["list_price"])
    assert entries[0]["before"] is None
    assert entries[0]["after"] == {
        "code": "SW-PRO", "name": "Pro licence", "description": "Per seat",
        "offering_area_id": world.sw.id, "unit": "license", "list_price": Decimal("49.90"),
        "currency": "EUR", "active": True}
    update = entries[1]
    assert {k: (update["before"][k], update["after"][k]) for k in update["after"]
            if update["before"][k] != update["after"][k]} == {
        "list_price": (Decimal("49.90"), Decimal(55)),
        "offering_area_id": (world.sw.id, svc.id), "description": ("Per seat", None),
        "currency": ("EUR", "SEK")}
    assert (entries[2]["before"]["active"], entries[2]["after"]["active"]) == (True, False)
    assert (entries[3]["before"]["active"], entries[3]["after"]["active"]) == (False, True)


VALID_PRODUCT = {"code": "NEW", "name": "New", "unit": "piece", "listPrice": "10.00",
                 "currency": "EUR"}


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"code": "lic"}, {("code", "CONFLICT")}, id="duplicate-code-other-case"),
    pytest.param({"code": "NO SPACES"}, {("code", "VALIDATION")}, id="bad-code"),
    pytest.param({"code": "  "}, {("code", "VALIDATION")}, id="empty-code"),
    pytest.param({"listPrice": "-0.01"}, {("listPrice", "VALIDATION")}, id="negative-price"),
    pytest.param({"listPrice": "1.00001"}, {("listPrice", "VALIDATION")}, id="five-decimals"),
    pytest.param({"currency": "eur"}, {("currency", "VALIDATION")}, id="lower-currency"),
    pytest.param({"currency": "EURO"}, {("currency", "VALIDATION")}, id="unknown-currency"),
    pytest.param({"name": ""}, {("name", "VALIDATION")}, id="empty-name"),
    pytest.param({"unit": "x" * 31}, {("unit", "VALIDATION")}, id="long-unit"),
    pytest.param({"offeringAreaId": encode_id("OfferingArea", 9999)},
                 {("offeringAreaId", "NOT_FOUND")}, id="unknown-area"),
    pytest.param({"offeringAreaId": encode_id("Product", 1)},
                 {("offeringAreaId", "VALIDATION")}, id="not-an-area-id"),
    pytest.param({"code": "lic", "listPrice": "-1", "currency": "XX"},
                 {("code", "CONFLICT"), ("listPrice", "VALIDATION"),
                  ("currency", "VALIDATION")}, id="all-at-once"),
])
async def test_product_input_is_checked_and_a_refusal_writes_nothing(
    client: GraphQLClient, db: Database, world: World, changes: dict[str, Any],
    expected: set[tuple[str, str]]
) -> None:
    before = await snapshot(db)
    payload = await run(client, CREATE_PRODUCT, world.org.admin,
                        **{**VALID_PRODUCT, "offeringAreaId": gid(world.sw), **changes})
    assert payload["product"] is None
    assert codes(payload) == expected
    assert await snapshot(db) == before


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"listPrice": "-5"}, {("listPrice", "VALIDATION")}, id="negative-price"),
    pytest.param({"listPrice": None}, {("listPrice", "VALIDATION")}, id="null-price"),
    pytest.param({"currency": "ABCD"}, {("currency", "VALIDATION")}, id="unknown-currency"),
    pytest.param({"name": None}, {("name", "VALIDATION")}, id="null-name"),
    pytest.param({"offeringAreaId": None}, {("offeringAreaId", "VALIDATION")}, id="null-area"),
    pytest.param({"offeringAreaId": encode_id("OfferingArea", 9999)},
                 {("offeringAreaId", "NOT_FOUND")}, id="unknown-area"),
    pytest.param({"name": "Fine", "listPrice": "-1"}, {("listPrice", "VALIDATION")},
                 id="one-bad-field-changes-none"),
])
async def test_product_updates_are_checked_and_a_refusal_writes_nothing(
    client: GraphQLClient, db: Database, world: World, changes: dict[str, Any],
    expected: set[tuple[str, str]]
) -> None:
    before = await snapshot(db)
    payload = await run(client, UPDATE_PRODUCT, world.org.admin, id=gid(world.lic),
                        expectedVersion=1, **changes)
    assert payload["product"] is None
    assert codes(payload) == expected
    assert await snapshot(db) == before


@pytest.mark.parametrize(("document", "input", "expected"), [
    pytest.param(CREATE_AREA, {"code": "sw", "name": "Again"}, {("code", "CONFLICT")},
                 id="duplicate-code-other-case"),
    pytest.param(CREATE_AREA, {"code": "S/W", "name": "Slash"}, {("code", "VALIDATION")},
                 id="bad-code"),
    pytest.param(CREATE_AREA, {"code": "X" * 51, "name": "Long"}, {("code", "VALIDATION")},
                 id="long-code"),
    pytest.param(CREATE_AREA, {"code": "OK", "name": " "}, {("name", "VALIDATION")},
                 id="empty-name"),
    pytest.param(UPDATE_AREA, {"name": None}, {("name", "VALIDATION")}, id="null-name"),
    pytest.param(UPDATE_AREA, {"id": encode_id("OfferingArea", 9999), "name": "X"},
                 {("id", "NOT_FOUND")}, id="unknown-area"),
    pytest.param(DEACTIVATE_PRODUCT, {"id": encode_id("Product", 9999)},
                 {("id", "NOT_FOUND")}, id="unknown-product"),
    pytest.param(REACTIVATE_AREA, {"id": "not-an-id"}, {("id", "VALIDATION")},
                 id="malformed-id"),
])
async def test_area_input_is_checked_and_a_refusal_writes_nothing(
    client: GraphQLClient, db: Database, world: World, document: str, input: dict[str, Any],
    expected: set[tuple[str, str]]
) -> None:
    if document is not CREATE_AREA:
        input = {"id": gid(world.sw), "expectedVersion": 1, **input}
    before = await snapshot(db)
    payload = await run(client, document, world.org.admin, **input)
    assert codes(payload) == expected
    assert await snapshot(db) == before


async def test_a_code_taken_by_a_concurrent_writer_is_a_conflict(
    client: GraphQLClient, db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other admin commits the same code between our check and our insert: the unique
    key stops us, and that is a CONFLICT, not an internal error."""
    async def too_late(*_args: Any) -> None:
        return None  # our check ran before the other admin's commit

    monkeypatch.setattr(catalogue_resolvers, "_code_taken", too_late)
    before = await snapshot(db)
    area = await run(client, CREATE_AREA, world.org.admin, code="SW", name="Twin")
    product = await run(client, CREATE_PRODUCT, world.org.admin,
                        **{**VALID_PRODUCT, "code": "LIC", "offeringAreaId": gid(world.sw)})
    for payload, field in ((area, "offeringArea"), (product, "product")):
        assert payload[field] is None
        assert codes(payload) == {(None, "CONFLICT")}
    assert await snapshot(db) == before


# --- a deactivated product in billing and pricing -----------------------------------------


async def test_a_deactivated_product_goes_on_no_new_line_and_old_lines_keep_it(
    client: GraphQLClient, db: Database, world: World
) -> None:
    rep, admin = world.org.rep_a1, world.org.admin
    other = await make_product(db, world.sw, code="OTHER", list_price=Decimal("5.00"))
    book = await make_price_book(db, name="Standard EUR", is_standard=True)
    await make_price_entry(db, book, world.lic, "80.00")
    invoice = ok(await run(client, CREATE_INVOICE, rep, accountId=gid(world.account),
                           invoiceDate="2026-03-02",
                           lines=[{"productId": gid(world.lic), "quantity": "2"},
                                  {"productId": gid(other)}]), "invoice")
    assert [Decimal(line["unitPrice"]) for line in invoice["lines"]] == [Decimal(80),
                                                                         Decimal(5)]
    ok(await run(client, DEACTIVATE_PRODUCT, admin, id=gid(world.lic), expectedVersion=1),
       "product")

    before = await snapshot(db)
    created = await run(client, CREATE_INVOICE, rep, accountId=gid(world.account),
                        lines=[{"productId": gid(world.lic)}])
    added = await run(client, ADD_LINES, rep, id=invoice["id"], expectedVersion=1,
                      lines=[{"productId": gid(other)}, {"productId": gid(world.lic)}])
    switched = await run(client, UPDATE_LINE, rep, id=invoice["lines"][1]["id"],
                         expectedVersion=1, productId=gid(world.lic))
    imported = await run(client, IMPORT, admin, invoices=[{
        "externalId": "X1", "number": "EXT-1", "invoiceDate": "2026-03-02",
        "accountId": gid(world.account), "lines": [{"productCode": "LIC"}]}])
    assert (created["invoice"], codes(created)) == (None, {("lines.0.productId",
                                                            "VALIDATION")})
    assert "deactivated" in created["userErrors"][0]["message"]
    assert codes(added) == {("lines.1.productId", "VALIDATION")}
    assert codes(switched) == {("productId", "VALIDATION")}
    assert (imported["importedCount"], codes(imported)) == (
        0, {("invoices.0.lines.0.productCode", "VALIDATION")})
    assert await snapshot(db) == before

    # The invoice that has it still reads it, and is repriced as before.
    data = await client.query("query($id: ID!) { node(id: $id) { ... on Invoice { "
                              f"{INVOICE} }} }} }}", {"id": invoice["id"]}, as_user=rep)
    assert data["node"]["lines"][0]["product"] == {"code": "LIC", "active": False}
    await make_price_entry(db, book, world.lic, "70.00", "2")
    repriced = ok(await run(client, REPRICE, rep, id=invoice["id"], expectedVersion=1),
                  "invoice")
    assert [(line["product"]["code"], Decimal(line["unitPrice"]), line["priceSource"])
            for line in repriced["lines"]] == [("LIC", Decimal(70), "STANDARD"),
                                               ("OTHER", Decimal(5), "LIST_PRICE")]
    # The line's other fields still change: it keeps its product.
    kept = ok(await run(client, UPDATE_LINE, rep, id=invoice["lines"][0]["id"],
                        expectedVersion=2, quantity="3"), "invoice")
    assert kept["lines"][0]["product"]["code"] == "LIC"


async def test_a_deactivated_product_goes_in_no_price_book_and_its_entries_stay(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin = world.org.admin
    book = await make_price_book(db, name="Partners")
    entry = await make_price_entry(db, book, world.lic, "90.00")
    ok(await run(client, DEACTIVATE_PRODUCT, admin, id=gid(world.lic), expectedVersion=1),
       "product")

    before = await snapshot(db)
    refused = await run(client, CREATE_ENTRY, admin, priceBookId=gid(book),
                        productId=gid(world.lic), unitPrice="85.00", minQuantity="10")
    assert (refused["priceBookEntry"], codes(refused)) == (None, {("productId", "VALIDATION")})
    assert await snapshot(db) == before

    kept = ok(await run(client, UPDATE_ENTRY, admin, id=gid(entry), expectedVersion=1,
                        unitPrice="88.00"), "priceBookEntry")
    assert (Decimal(kept["unitPrice"]), kept["product"]) == (
        Decimal(88), {"code": "LIC", "active": False})

    ok(await run(client, REACTIVATE_PRODUCT, admin, id=gid(world.lic), expectedVersion=2),
       "product")
    ok(await run(client, CREATE_ENTRY, admin, priceBookId=gid(book), productId=gid(world.lic),
                 unitPrice="85.00", minQuantity="10"), "priceBookEntry")


# --- activity types -----------------------------------------------------------------------


async def test_activity_types_are_created_changed_deactivated_and_reactivated(
    client: GraphQLClient, db: Database, world: World
) -> None:
    admin, rep = world.org.admin, world.org.rep_a1
    created = ok(await run(client, CREATE_TYPE, admin, code="demo", name="Demo", points=2),
                 "activityType")
    key = decode_id(created["id"], "ActivityType")
    changed = ok(await run(client, UPDATE_TYPE, admin, id=created["id"], expectedVersion=1,
                           points=4), "activityType")
    assert (changed["points"], changed["version"]) == (4, 2)

    retired = ok(await run(client, DEACTIVATE_TYPE, admin, id=created["id"],
                           expectedVersion=2), "activityType")
    assert (retired["active"], retired["version"]) == (False, 3)
    before = await snapshot(db)
    refused = await run(client, LOG, rep, typeId=created["id"], subject="A demo")
    assert codes(refused) == {("typeId", "VALIDATION")}
    assert await snapshot(db) == before
    listed = await client.query(LIST_TYPES, {"all": False}, as_user=rep)
    assert "DEMO" not in {t["code"] for t in listed["activityTypes"]}

    back = ok(await run(client, REACTIVATE_TYPE, admin, id=created["id"], expectedVersion=3),
              "activityType")
    assert (back["active"], back["version"]) == (True, 4)
    logged = ok(await run(client, LOG, rep, typeId=created["id"], subject="A demo"),
                "activity")
    assert logged["type"] == {"code": "DEMO"}

    fields = {"code": "DEMO", "name": "Demo", "active": True}
    assert await audit_of(db, "ActivityType", key) == [
        {"action": "activity_type.created", "actor": admin.id, "before": None,
         "after": {**fields, "points": 2}},
        {"action": "activity_type.updated", "actor": admin.id,
         "before": {**fields, "points": 2}, "after": {**fields, "points": 4}},
        {"action": "activity_type.deactivated", "actor": admin.id,
         "before": {**fields, "points": 4}, "after": {**fields, "points": 4, "active": False}},
        {"action": "activity_type.reactivated", "actor": admin.id,
         "before": {**fields, "points": 4, "active": False}, "after": {**fields, "points": 4}},
    ]


async def test_a_duplicate_activity_type_code_in_other_case_is_a_conflict(
    client: GraphQLClient, db: Database, world: World
) -> None:
    await make_activity_type(db, "CALL", 1)
    before = await snapshot(db)
    payload = await run(client, CREATE_TYPE, world.org.admin, code="call", name="Call",
                        points=1)
    assert codes(payload) == {("code", "CONFLICT")}
    assert await snapshot(db) == before


# --- who may ------------------------------------------------------------------------------


def _operations(world: World, kind: ActivityType) -> list[tuple[str, dict[str, Any]]]:
    version = {"expectedVersion": 1}
    return [
        (CREATE_AREA, {"code": "NEW", "name": "New"}),
        (UPDATE_AREA, {"id": gid(world.sw), **version, "name": "Mine"}),
        (DEACTIVATE_AREA, {"id": gid(world.sw), **version}),
        (REACTIVATE_AREA, {"id": gid(world.sw), **version}),
        (CREATE_PRODUCT, {**VALID_PRODUCT, "offeringAreaId": gid(world.sw)}),
        (UPDATE_PRODUCT, {"id": gid(world.lic), **version, "listPrice": "0"}),
        (DEACTIVATE_PRODUCT, {"id": gid(world.lic), **version}),
        (REACTIVATE_PRODUCT, {"id": gid(world.lic), **version}),
        (CREATE_TYPE, {"code": "NEW", "name": "New", "points": 1}),
        (UPDATE_TYPE, {"id": gid(kind), **version, "points": 9}),
        (DEACTIVATE_TYPE, {"id": gid(kind), **version}),
        (REACTIVATE_TYPE, {"id": gid(kind), **version}),
    ]


@pytest.mark.parametrize("who", ["manager_a", "rep_a1", "partner"])
async def test_only_admins_keep_the_catalogue(
    client: GraphQLClient, db: Database, world: World, who: str
) -> None:
    kind = await make_activity_type(db, "CALL", 1)
    # Inactive records too, so that reactivations are refused for the role, not the state.
    retired_area = await make_offering_area(db, "OLD")
    retired_product = await make_product(db, world.sw, code="OLDP")
    retired_kind = await make_activity_type(db, "FAX", 1, active=False)
    async with db.transaction() as session:
        for model, key in ((OfferingArea, retired_area.id), (Product, retired_product.id)):
            record = await session.get(model, key)
            assert record is not None
            record.active = False  # version 2
    reactivations = {REACTIVATE_AREA: retired_area, REACTIVATE_PRODUCT: retired_product,
                     REACTIVATE_TYPE: retired_kind}
    user = getattr(world.org, who)
    before = await snapshot(db)
    operations = _operations(world, kind)
    for document, input in operations:
        if document in reactivations:
            input = {**input, "id": gid(reactivations[document]),
                     "expectedVersion": 2 if document is not REACTIVATE_TYPE else 1}
        payload = await run(client, document, user, **input)
        [field] = [k for k in payload if k != "userErrors"]
        assert payload[field] is None, document
        assert codes(payload) == {(None, "FORBIDDEN")}, document
    assert len(operations) == 12
    assert await snapshot(db) == before
