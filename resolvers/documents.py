"""Persisted documents: Apollo's automatic persisted queries, and the documents an
org trusts, which are all a partner in trusted-documents mode may run.

A document is named by the SHA-256 of its text (lower-case hex), as Apollo's
clients compute it. Automatic ones are stored without an org; trusted ones with
the org that may run them. Both are read through a per-process cache: a document's
text never changes under its hash.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from loaders.errors import BadUserInput
from models.db import Database
from models.partner_keys import PersistedDocument
from models.users import PartnerOrg

DOCUMENTS = PersistedDocument.__table__
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CACHE_SIZE = 5_000
MAX_DOCUMENT_CHARS = 100_000


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class DocumentStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._trusted: OrderedDict[tuple[int, str], bool] = OrderedDict()

    async def text(self, sha256: str) -> str | None:
        """The document with this hash, automatic or trusted, or None."""
        if (cached := self._texts.get(sha256)) is not None:
            self._texts.move_to_end(sha256)
            return cached
        async with self.db.read() as connection:
            document = (await connection.execute(
                select(DOCUMENTS.c.document).where(DOCUMENTS.c.sha256 == sha256).limit(1)
            )).scalar_one_or_none()
        if document is not None:
            self._remember(sha256, document)
        return document

    async def persist(self, sha256: str, document: str) -> None:
        """Keeps an automatic persisted query; a concurrent twin is no error."""
        if sha256 in self._texts:
            return
        try:
            async with self.db.transaction() as session:
                exists = (await session.execute(select(DOCUMENTS.c.id).where(
                    DOCUMENTS.c.sha256 == sha256, DOCUMENTS.c.partner_org_id.is_(None)
                ))).first()
                if exists is None:
                    session.add(PersistedDocument(sha256=sha256, document=document))
        except IntegrityError:
            pass  # another request stored it first: the same text under the same hash
        self._remember(sha256, document)

    async def is_trusted(self, org_id: int, sha256: str) -> bool:
        key = (org_id, sha256)
        if key in self._trusted:
            return True
        async with self.db.read() as connection:
            found = (await connection.execute(select(DOCUMENTS.c.id).where(
                DOCUMENTS.c.sha256 == sha256, DOCUMENTS.c.partner_org_id == org_id))).first()
        if found is not None:
            # Only a yes is kept: a document trusted later is found at once.
            self._trusted[key] = True
            if len(self._trusted) > CACHE_SIZE:
                self._trusted.popitem(last=False)
        return found is not None

    def _remember(self, sha256: str, document: str) -> None:
        self._texts[sha256] = document
        if len(self._texts) > CACHE_SIZE:
            self._texts.popitem(last=False)


async def trust_documents(db: Database, *, org_name: str, paths: list[Path]
                          ) -> list[tuple[str, str]]:
    """Registers documents (files of GraphQL text) as trusted for the org; returns
    (hash, file name) per document. Registering one again changes nothing."""
    from graphql import GraphQLError, parse  # the check only; execution parses again

    documents: list[tuple[str, str, str]] = []
    for path in paths:
        text = path.read_text()
        if len(text) > MAX_DOCUMENT_CHARS:
            raise BadUserInput(f"{path}: longer than {MAX_DOCUMENT_CHARS} characters")
        try:
            parse(text)
        except GraphQLError as exc:
            raise BadUserInput(f"{path}: {exc.message}") from None
        documents.append((document_hash(text), path.name, text))
    async with db.transaction() as session:
        org = (await session.execute(select(PartnerOrg).where(
            PartnerOrg.name == org_name.strip()))).scalar_one_or_none()
        if org is None:
            raise BadUserInput(f"no partner org named {org_name!r}")
        known = set((await session.execute(select(DOCUMENTS.c.sha256).where(
            DOCUMENTS.c.partner_org_id == org.id))).scalars())
        for sha256, name, text in documents:
            if sha256 not in known:
                session.add(PersistedDocument(sha256=sha256, partner_org_id=org.id,
                                              name=name[:200], document=text))
                known.add(sha256)
    return [(sha256, name) for sha256, name, _ in documents]


async def set_org_options(db: Database, *, org_name: str, introspection: bool | None,
                          trusted_documents_only: bool | None) -> PartnerOrg:
    async with db.transaction() as session:
        org = (await session.execute(select(PartnerOrg).where(
            PartnerOrg.name == org_name.strip()))).scalar_one_or_none()
        if org is None:
            raise BadUserInput(f"no partner org named {org_name!r}")
        if introspection is not None:
            org.allow_introspection = introspection
        if trusted_documents_only is not None:
            org.trusted_documents_only = trusted_documents_only
    return org
