"""The catalogue: offering areas, products and activity types, kept by admins."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from strawberry import UNSET

from resolvers import catalogue as resolve
from schema.activities import ActivityType, ActivityTypePayload
from schema.context import Info, viewer_of
from schema.errors import UserError, payload
from schema.inputs import sent_changes
from schema.pricing import OfferingArea, Product

CODE_DESCRIPTION = ("Letters, digits, hyphens and underscores; kept in upper case, unique "
                    "whatever the case, and never changed once made.")


@strawberry.input(description="A new offering area.")
class CreateOfferingAreaInput:
    code: str = strawberry.field(description=CODE_DESCRIPTION)
    name: str


@strawberry.input(description="Only the fields sent are changed; the code stays.")
class UpdateOfferingAreaInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET


@strawberry.input(description="A new product, active from the start.")
class CreateProductInput:
    code: str = strawberry.field(description=CODE_DESCRIPTION)
    name: str
    offering_area_id: strawberry.ID = strawberry.field(
        description="An active offering area.")
    unit: str = strawberry.field(description="What one quantity is: license, hour, piece ...")
    list_price: Decimal = strawberry.field(description="From 0 up, at most four decimals.")
    currency: str = strawberry.field(description="ISO 4217 code of the list price.")
    description: str | None = None


@strawberry.input(description="Only the fields sent are changed; the code stays. Lines and "
                  "price book entries that have the product keep their prices.")
class UpdateProductInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    description: str | None = UNSET
    offering_area_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="An active offering area.")
    unit: str | None = UNSET
    list_price: Decimal | None = UNSET
    currency: str | None = UNSET


@strawberry.input(description="A catalogue record at the version the caller read.")
class CatalogueVersionInput:
    id: strawberry.ID
    expected_version: int


@strawberry.type
class OfferingAreaPayload:
    offering_area: OfferingArea | None
    user_errors: list[UserError]


@strawberry.type
class ProductPayload:
    product: Product | None
    user_errors: list[UserError]


def _area(outcome: Any) -> OfferingAreaPayload:
    return payload(OfferingAreaPayload, "offering_area", OfferingArea.from_row, outcome)


def _product(outcome: Any) -> ProductPayload:
    return payload(ProductPayload, "product", Product.from_row, outcome)


def _type(outcome: Any) -> ActivityTypePayload:
    return payload(ActivityTypePayload, "activity_type", ActivityType.from_row, outcome)


@strawberry.type
class CatalogueQueries:
    """The catalogue reads where clients already find them: `products` (filter on
    `active`), `offeringAreas(includeInactive:)`, `activityTypes(includeInactive:)`,
    `node`; this area adds none of its own."""


@strawberry.type
class CatalogueMutations:
    @strawberry.mutation(description="Admins: a new offering area.")
    async def create_offering_area(self, info: Info, input: CreateOfferingAreaInput
                                   ) -> OfferingAreaPayload:
        return _area(await resolve.create_offering_area(
            viewer=viewer_of(info), db=info.context.db, code=input.code, name=input.name))

    @strawberry.mutation(description="Admins: rename an offering area.")
    async def update_offering_area(self, info: Info, input: UpdateOfferingAreaInput
                                   ) -> OfferingAreaPayload:
        return _area(await resolve.update_offering_area(
            viewer=viewer_of(info), db=info.context.db, area_id=input.id,
            expected_version=input.expected_version, changes=sent_changes(input)))

    @strawberry.mutation(description="Admins: retire an offering area; refused while any of "
                         "its products is active. Plans and deals that name it keep it.")
    async def deactivate_offering_area(self, info: Info, input: CatalogueVersionInput
                                       ) -> OfferingAreaPayload:
        return _area(await resolve.deactivate_offering_area(
            viewer=viewer_of(info), db=info.context.db, area_id=input.id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="Admins: put an offering area back in use.")
    async def reactivate_offering_area(self, info: Info, input: CatalogueVersionInput
                                       ) -> OfferingAreaPayload:
        return _area(await resolve.reactivate_offering_area(
            viewer=viewer_of(info), db=info.context.db, area_id=input.id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="Admins: a new product in an active offering area.")
    async def create_product(self, info: Info, input: CreateProductInput) -> ProductPayload:
        return _product(await resolve.create_product(
            viewer=viewer_of(info), db=info.context.db, code=input.code, name=input.name,
            description=input.description, offering_area_id=input.offering_area_id,
            unit=input.unit, list_price=input.list_price, currency=input.currency))

    @strawberry.mutation(description="Admins: change a product's fields.")
    async def update_product(self, info: Info, input: UpdateProductInput) -> ProductPayload:
        return _product(await resolve.update_product(
            viewer=viewer_of(info), db=info.context.db, product_id=input.id,
            expected_version=input.expected_version, changes=sent_changes(input)))

    @strawberry.mutation(description="Admins: retire a product. It goes on no new invoice "
                         "line or price book entry; those that have it keep it.")
    async def deactivate_product(self, info: Info, input: CatalogueVersionInput
                                 ) -> ProductPayload:
        return _product(await resolve.deactivate_product(
            viewer=viewer_of(info), db=info.context.db, product_id=input.id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="Admins: put a product back on sale; refused while its "
                         "offering area is deactivated.")
    async def reactivate_product(self, info: Info, input: CatalogueVersionInput
                                 ) -> ProductPayload:
        return _product(await resolve.reactivate_product(
            viewer=viewer_of(info), db=info.context.db, product_id=input.id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="Admins: retire an activity type. It takes no new "
                         "activities; those logged keep it and the points they earned.")
    async def deactivate_activity_type(self, info: Info, input: CatalogueVersionInput
                                       ) -> ActivityTypePayload:
        return _type(await resolve.deactivate_activity_type(
            viewer=viewer_of(info), db=info.context.db, type_id=input.id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="Admins: put an activity type back in use.")
    async def reactivate_activity_type(self, info: Info, input: CatalogueVersionInput
                                       ) -> ActivityTypePayload:
        return _type(await resolve.reactivate_activity_type(
            viewer=viewer_of(info), db=info.context.db, type_id=input.id,
            expected_version=input.expected_version))
