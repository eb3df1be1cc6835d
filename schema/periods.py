"""Periods of figures (billing now, planning next): the granularity enum."""

from __future__ import annotations

import strawberry

from loaders.billing import Granularity as GranularityEnum

Granularity = strawberry.enum(GranularityEnum, name="Granularity",
                              description="The length of a period in figures over time.")
