"""Periods of figures (billing now, planning next): the granularity enum."""

from __future__ import annotations

import strawberry

from loaders.billing import Granularity as GranularityEnum

# One name for every figure over time, billing and plans alike.
Granularity = strawberry.enum(GranularityEnum, name="PlanGranularity",
                              description="The length of a period: MONTH, QUARTER or YEAR.")
