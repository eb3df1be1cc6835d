"""Users, teams, ownership transfers and the audit log: administration through the API."""

from __future__ import annotations

import strawberry


@strawberry.type
class AdministrationQueries:
    pass


@strawberry.type
class AdministrationMutations:
    pass
