"""The catalogue: offering areas, products and activity types, kept by admins."""

from __future__ import annotations

import strawberry


@strawberry.type
class CatalogueQueries:
    pass


@strawberry.type
class CatalogueMutations:
    pass
