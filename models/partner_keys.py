"""Partner API keys and trusted documents: what a partner's machine clients may send.

A key is shown once, when it is made; only its SHA-256 is stored. It acts as its
org's API user (a PARTNER user), so what it writes is attributed to that user, and
its scopes narrow what that user may do.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped, UTCDateTime


class PartnerApiKey(Timestamped, Base):
    __tablename__ = "partner_api_keys"

    partner_org_id: Mapped[int] = mapped_column(
        ForeignKey("partner_orgs.id"), nullable=False, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # The key's public part, shown in listings: "crm_<prefix>_<secret>".
    prefix: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # Space-separated, e.g. "read write:opportunities".
    scopes: Mapped[str] = mapped_column(String(200), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PersistedDocument(Timestamped, Base):
    """A document by its SHA-256: registered by automatic persisted queries, or
    trusted for an org (partner_org_id set), which then may run it in
    trusted-documents mode."""

    __tablename__ = "persisted_documents"
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("partner_orgs.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    document: Mapped[str] = mapped_column(Text, nullable=False)


# One row per document and org; the automatic ones (no org) are one key too, so
# the org takes part as COALESCE(org, 0): NULLs are distinct in a plain unique key.
Index("uq_persisted_documents_sha256_org", PersistedDocument.sha256,
      func.coalesce(PersistedDocument.partner_org_id, 0), unique=True)
