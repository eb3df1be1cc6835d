"""SQLAlchemy models per domain area, the declarative base, engine and sessions.

Importing this package registers every table on ``Base.metadata``.
"""

from models import (
    accounts,
    activities,
    audit,
    billing,
    campaigns,
    events,
    leads,
    opportunities,
    partner_keys,
    planning,
    pricing,
    target_groups,
    users,
)
from models.base import Base

__all__ = ["Base", "accounts", "activities", "audit", "billing", "campaigns", "events", "leads",
           "opportunities", "partner_keys", "planning", "pricing", "target_groups", "users"]
