"""SQLAlchemy models per domain area, the declarative base, engine and sessions.

Importing this package registers every table on ``Base.metadata``.
"""

from models import accounts, events, leads, opportunities, pricing, users
from models.base import Base

__all__ = ["Base", "accounts", "events", "leads", "opportunities", "pricing", "users"]
