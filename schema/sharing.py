"""Partner organisations and the accounts shared with them."""

from __future__ import annotations

import strawberry


@strawberry.type
class SharingQueries:
    pass


@strawberry.type
class SharingMutations:
    pass
