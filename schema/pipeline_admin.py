"""Pipelines and their phases, configured by admins."""

from __future__ import annotations

import strawberry


@strawberry.type
class PipelineAdminQueries:
    pass


@strawberry.type
class PipelineAdminMutations:
    pass
