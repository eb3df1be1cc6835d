"""SQLAlchemy models per domain area, the declarative base, engine and sessions.

Importing this package registers every table on ``Base.metadata``.
"""

from models import (
    accounts,
    activities,
    billing,
    events,
    leads,
    opportunities,
    planning,
    pricing,
    users,
)
from models.base import Base

__all__ = ["Base", "accounts", "activities", "billing", "events", "leads", "opportunities",
           "planning", "pricing", "users"]
