"""The catalogue, kept by admins: offering areas and products created, changed,
deactivated and reactivated, and activity types deactivated and reactivated (created and
changed in resolvers/activities.py). Every change writes its audit entry in its own
transaction.

Codes are what other systems and imports name a record by (an invoice import's
productCode): they are stored in upper case, unique whatever the case they are typed in,
and never change once made. A deactivated record stays readable and keeps every reference
already made to it (invoice lines, price book entries, activities); it takes no new ones.
An offering area is deactivated only once none of its products is active: deactivating
products is a decision per product, never a side effect.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.pricing import OFFERING_AREAS, PRODUCTS
from models.activities import ActivityType
from models.db import Database
from models.pricing import OfferingArea, Product
from models.users import Viewer
from resolvers.activities import TYPE_FIELDS
from resolvers.audit import fields_of, record_audit
from resolvers.errors import UserErrorCode, UserInputError
from resolvers.mutations import (
    Checks,
    Outcome,
    forbidden,
    lock_row,
    mutate,
    not_found,
    require_version,
)

AREA_FIELDS = ("code", "name", "active")
PRODUCT_FIELDS = ("code", "name", "description", "offering_area_id", "unit", "list_price",
                  "currency", "active")

CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]*$")
MAX_LIST_PRICE = Decimal("1000000000")
_FOUR_PLACES = Decimal("0.0001")

# Two admins made the same code at once: the unique key stopped the second.
ON_DUPLICATE_CODE = "someone else made a record with this code at the same time; pick another"


def _admin_only(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise forbidden("only admins keep the catalogue")


# --- checks -------------------------------------------------------------------------------


def _code(checks: Checks, value: str | None, *, max_length: int) -> str | None:
    code = checks.text("code", value, max_length=max_length, required=True)
    if code is None:
        return None
    code = code.upper()
    if not CODE.match(code):
        checks.fail("code", "code is letters, digits, hyphens and underscores, e.g. SW-LIC")
        return None
    return code


async def _code_taken(session: AsyncSession, checks: Checks, table: Table, code: str | None,
                      what: str) -> None:
    """CONFLICT when the code is taken, in any case (rows made before codes were kept in
    upper case included)."""
    if code is None:
        return
    taken = (await session.execute(
        select(table.c.code).where(func.upper(table.c.code) == code))).scalar()
    if taken is not None:
        checks.fail("code", f"{what} {taken} exists already", UserErrorCode.CONFLICT)


def _list_price(checks: Checks, value: Decimal | None) -> Decimal | None:
    if value is None or not value.is_finite() or value < 0 or value >= MAX_LIST_PRICE:
        checks.fail("listPrice", f"listPrice is from 0 up to {MAX_LIST_PRICE}")
        return None
    if value != value.quantize(_FOUR_PLACES):
        checks.fail("listPrice", "listPrice has at most four decimals")
        return None
    return value


async def _active_area(session: AsyncSession, checks: Checks, gid: str | None, *,
                       current: int | None = None) -> OfferingArea | None:
    """The area a product goes in: it must exist and be active, unless it is the one the
    product is in already (``current``). Its row is held to the end of the transaction, so
    a deactivation of the area waits for the product (and then sees it) or comes first
    (and then the product is refused)."""
    if gid is None:
        checks.fail("offeringAreaId", "offeringAreaId cannot be null")
        return None
    key = checks.global_id("offeringAreaId", gid, "OfferingArea")
    if key is None:
        return None
    if key == current:
        return await session.get(OfferingArea, key)
    await lock_row(session, OFFERING_AREAS, key)
    area = await session.get(OfferingArea, key)
    if area is None:
        checks.fail("offeringAreaId", "offering area not found", UserErrorCode.NOT_FOUND)
        return None
    if not area.active:
        checks.fail("offeringAreaId", f"offering area {area.code} is deactivated: it takes "
                    "no new products")
        return None
    return area


@dataclass(frozen=True)
class _Kind:
    """A kind of catalogue record, as its ids, messages and audit entries name it."""

    model: type[Any]
    type_name: str  # its GraphQL type, as in its global id and audit entries
    noun: str
    action: str  # the audit action's prefix
    fields: tuple[str, ...]


AREA = _Kind(OfferingArea, "OfferingArea", "offering area", "offering_area", AREA_FIELDS)
PRODUCT = _Kind(Product, "Product", "product", "product", PRODUCT_FIELDS)
ACTIVITY_TYPE = _Kind(ActivityType, "ActivityType", "activity type", "activity_type",
                      TYPE_FIELDS)


async def _load(session: AsyncSession, kind: _Kind, gid: str) -> Any:
    checks = Checks()
    key = checks.global_id("id", gid, kind.type_name)
    checks.raise_if_any()
    record = await session.get(kind.model, key)
    if record is None:
        raise not_found("id", kind.noun)
    return record


async def _audit(session: AsyncSession, viewer: Viewer, kind: _Kind, verb: str, record: Any,
                 before: dict[str, Any] | None) -> None:
    await record_audit(session, viewer, action=f"{kind.action}.{verb}",
                       entity_type=kind.type_name, entity_id=record.id, before=before,
                       after=fields_of(record, *kind.fields))


Guard = Callable[[AsyncSession, Any], Awaitable[None]]


async def _switch(*, viewer: Viewer, db: Database, kind: _Kind, gid: str,
                  expected_version: int, active: bool, guard: Guard | None = None
                  ) -> Outcome[Any]:
    """Deactivate or reactivate a record. One already in that state is left as it is,
    whatever version the caller read: its intent is met, so a retry succeeds and writes
    nothing."""
    async def action() -> Any:
        _admin_only(viewer)
        async with db.transaction() as session:
            record = await _load(session, kind, gid)
            if record.active is active:
                return record
            require_version(record.version, expected_version)
            if guard is not None:
                await guard(session, record)
            before = fields_of(record, *kind.fields)
            record.active = active
            await session.flush()
            await _audit(session, viewer, kind, "reactivated" if active else "deactivated",
                         record, before)
        return record

    return await mutate(action)


# --- offering areas -----------------------------------------------------------------------


async def create_offering_area(*, viewer: Viewer, db: Database, code: str, name: str
                               ) -> Outcome[OfferingArea]:
    async def action() -> OfferingArea:
        _admin_only(viewer)
        async with db.transaction() as session:
            checks = Checks()
            code_ = _code(checks, code, max_length=50)
            name_ = checks.text("name", name, max_length=200, required=True)
            await _code_taken(session, checks, OFFERING_AREAS, code_, "offering area")
            checks.raise_if_any()
            area = OfferingArea(code=code_, name=name_, active=True)
            session.add(area)
            await session.flush()
            await _audit(session, viewer, AREA, "created", area, None)
        return area

    return await mutate(action, on_duplicate=ON_DUPLICATE_CODE)


async def update_offering_area(*, viewer: Viewer, db: Database, area_id: str,
                               expected_version: int, changes: dict[str, Any]
                               ) -> Outcome[OfferingArea]:
    async def action() -> OfferingArea:
        _admin_only(viewer)
        async with db.transaction() as session:
            area = await _load(session, AREA, area_id)
            require_version(area.version, expected_version)
            checks = Checks()
            before = fields_of(area, *AREA_FIELDS)
            if "name" in changes:
                name = checks.text("name", changes["name"], max_length=200, required=True)
                if name is not None:
                    area.name = name
            checks.raise_if_any()
            await session.flush()
            await _audit(session, viewer, AREA, "updated", area, before)
        return area

    return await mutate(action)


async def _no_active_products(session: AsyncSession, area: OfferingArea) -> None:
    # Held to the end: a product made in the area meanwhile is seen, or is refused.
    await lock_row(session, OFFERING_AREAS, area.id)
    count = (await session.execute(
        select(func.count()).select_from(PRODUCTS).where(
            PRODUCTS.c.offering_area_id == area.id, PRODUCTS.c.active.is_(True)))).scalar_one()
    if count:
        raise UserInputError.one(
            "id", UserErrorCode.CONFLICT,
            f"offering area {area.code} has {count} active product(s): deactivate them or "
            "move them to another area first")


async def deactivate_offering_area(*, viewer: Viewer, db: Database, area_id: str,
                                   expected_version: int) -> Outcome[OfferingArea]:
    """Refused while the area has active products."""
    return await _switch(viewer=viewer, db=db, kind=AREA, gid=area_id,
                         expected_version=expected_version, active=False,
                         guard=_no_active_products)


async def reactivate_offering_area(*, viewer: Viewer, db: Database, area_id: str,
                                   expected_version: int) -> Outcome[OfferingArea]:
    return await _switch(viewer=viewer, db=db, kind=AREA, gid=area_id,
                         expected_version=expected_version, active=True)


# --- products -----------------------------------------------------------------------------


async def create_product(*, viewer: Viewer, db: Database, code: str, name: str,
                         description: str | None, offering_area_id: str, unit: str,
                         list_price: Decimal, currency: str) -> Outcome[Product]:
    async def action() -> Product:
        _admin_only(viewer)
        async with db.transaction() as session:
            checks = Checks()
            code_ = _code(checks, code, max_length=50)
            values = {
                "name": checks.text("name", name, max_length=200, required=True),
                "description": checks.text("description", description, max_length=4000),
                "unit": checks.text("unit", unit, max_length=30, required=True),
                "list_price": _list_price(checks, list_price),
                "currency": checks.currency("currency", currency),
            }
            await _code_taken(session, checks, PRODUCTS, code_, "product")
            area = await _active_area(session, checks, offering_area_id)
            checks.raise_if_any()
            assert area is not None
            product = Product(code=code_, offering_area_id=area.id, active=True, **values)
            session.add(product)
            await session.flush()
            await _audit(session, viewer, PRODUCT, "created", product, None)
        return product

    return await mutate(action, on_duplicate=ON_DUPLICATE_CODE)


async def update_product(*, viewer: Viewer, db: Database, product_id: str,
                         expected_version: int, changes: dict[str, Any]) -> Outcome[Product]:
    """Change the fields sent; the code stays. Invoice lines and price book entries keep
    the product, so a new list price prices only what is priced from now on."""
    async def action() -> Product:
        _admin_only(viewer)
        async with db.transaction() as session:
            product = await _load(session, PRODUCT, product_id)
            require_version(product.version, expected_version)
            checks = Checks()
            before = fields_of(product, *PRODUCT_FIELDS)
            # Checks (and their queries) first, changes after: a query would flush a change
            # made before it, and one update would take two versions.
            values: dict[str, Any] = {}
            if "name" in changes:
                values["name"] = checks.text("name", changes["name"], max_length=200,
                                             required=True)
            if "description" in changes:
                values["description"] = checks.text("description", changes["description"],
                                                    max_length=4000)
            if "unit" in changes:
                values["unit"] = checks.text("unit", changes["unit"], max_length=30,
                                             required=True)
            if "list_price" in changes:
                values["list_price"] = _list_price(checks, changes["list_price"])
            if "currency" in changes:
                values["currency"] = checks.currency("currency", changes["currency"])
            if "offering_area_id" in changes:
                area = await _active_area(session, checks, changes["offering_area_id"],
                                          current=product.offering_area_id)
                if area is not None:
                    values["offering_area_id"] = area.id
            checks.raise_if_any()
            for name, value in values.items():
                setattr(product, name, value)
            await session.flush()
            await _audit(session, viewer, PRODUCT, "updated", product, before)
        return product

    return await mutate(action)


async def _area_active(session: AsyncSession, product: Product) -> None:
    await lock_row(session, OFFERING_AREAS, product.offering_area_id)
    area = await session.get(OfferingArea, product.offering_area_id)
    if area is not None and not area.active:
        raise UserInputError.one(
            "id", UserErrorCode.CONFLICT,
            f"the product's offering area {area.code} is deactivated: reactivate it, or move "
            "the product to an active area, first")


async def deactivate_product(*, viewer: Viewer, db: Database, product_id: str,
                             expected_version: int) -> Outcome[Product]:
    """It goes on no new invoice line or price book entry; those that have it keep it."""
    return await _switch(viewer=viewer, db=db, kind=PRODUCT, gid=product_id,
                         expected_version=expected_version, active=False)


async def reactivate_product(*, viewer: Viewer, db: Database, product_id: str,
                             expected_version: int) -> Outcome[Product]:
    """Refused while its offering area is deactivated."""
    return await _switch(viewer=viewer, db=db, kind=PRODUCT, gid=product_id,
                         expected_version=expected_version, active=True, guard=_area_active)


# --- activity types -----------------------------------------------------------------------


async def deactivate_activity_type(*, viewer: Viewer, db: Database, type_id: str,
                                   expected_version: int) -> Outcome[ActivityType]:
    """It takes no new activities; those logged keep it, and the points they earned."""
    return await _switch(viewer=viewer, db=db, kind=ACTIVITY_TYPE, gid=type_id,
                         expected_version=expected_version, active=False)


async def reactivate_activity_type(*, viewer: Viewer, db: Database, type_id: str,
                                   expected_version: int) -> Outcome[ActivityType]:
    return await _switch(viewer=viewer, db=db, kind=ACTIVITY_TYPE, gid=type_id,
                         expected_version=expected_version, active=True)
