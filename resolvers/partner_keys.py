"""Partner API keys: made, listed and revoked by operators (the CLI), read on every
request that sends one.

A key is ``crm_<prefix>_<secret>``. Only the SHA-256 of the whole key is stored, so
a leaked database holds no usable key; the prefix names the key in listings and
logs. A key acts as its org's API user, made with the first key: a PARTNER user,
who sees what the org is shared, and whose writes the history attributes to it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select

from loaders.errors import BadUserInput
from models.base import utcnow
from models.db import Database
from models.partner_keys import PartnerApiKey
from models.users import PartnerOrg, Role, User, Viewer
from resolvers.users import viewer_from_row, viewer_statement
from subscriptions.outbox import KEY_REVOKED_TOPIC, EventRecord, record_event

READ = "read"
WRITE_OPPORTUNITIES = "write:opportunities"
SCOPES = {
    READ: "read the accounts shared with the org, their contacts and opportunities",
    WRITE_OPPORTUNITIES: "also create opportunities on shared accounts, update them and "
                         "move them through their pipeline",
}

KEY_FORMAT = re.compile(r"^crm_([a-z0-9]{10})_([A-Za-z0-9_-]{40,64})$")
KEYS = PartnerApiKey.__table__
USERS = User.__table__
ORGS = PartnerOrg.__table__


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    return KEY_FORMAT.match(value) is not None


def parse_scopes(raw: str | list[str]) -> frozenset[str]:
    names = raw.replace(",", " ").split() if isinstance(raw, str) else raw
    scopes = frozenset(name.strip() for name in names if name.strip())
    unknown = sorted(scopes - SCOPES.keys())
    if unknown or not scopes:
        raise BadUserInput(f"scopes are {', '.join(sorted(SCOPES))}; "
                           f"got {', '.join(unknown) or 'none'}")
    # Writing includes reading: a key that writes must see what it writes to.
    return scopes | {READ}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    org: str
    name: str
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None


def _info(row: object) -> KeyInfo:
    return KeyInfo(row.id, row.org, row.name, row.prefix,  # type: ignore[attr-defined]
                   frozenset(row.scopes.split()), row.created_at,  # type: ignore[attr-defined]
                   row.revoked_at)  # type: ignore[attr-defined]


async def create_key(db: Database, *, org_name: str, scopes: frozenset[str], name: str
                     ) -> tuple[KeyInfo, str]:
    """A new key for the org, and the key itself: the only time it is seen."""
    prefix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
    key = f"crm_{prefix}_{secrets.token_urlsafe(36)}"
    async with db.transaction() as session:
        org = (await session.execute(select(PartnerOrg).where(
            PartnerOrg.name == org_name.strip()))).scalar_one_or_none()
        if org is None:
            raise BadUserInput(f"no partner org named {org_name!r}")
        if not org.active:
            raise BadUserInput(f"the partner org {org.name!r} is deactivated")
        api_email = f"api+org{org.id}@partners.crmgraph.invalid"
        user = (await session.execute(select(User).where(User.email == api_email))
                ).scalar_one_or_none()
        if user is None:
            user = User(email=api_email, name=f"{org.name} API", role=Role.PARTNER,
                        partner_org_id=org.id, active=True)
            session.add(user)
            await session.flush()
        row = PartnerApiKey(partner_org_id=org.id, user_id=user.id, name=name.strip()[:200],
                            prefix=prefix, secret_hash=key_hash(key),
                            scopes=" ".join(sorted(scopes)))
        session.add(row)
        await session.flush()
        info = KeyInfo(row.id, org.name, row.name, prefix, scopes, row.created_at, None)
    return info, key


def _listing() -> object:
    return select(KEYS.c.id, ORGS.c.name.label("org"), KEYS.c.name, KEYS.c.prefix,
                  KEYS.c.scopes, KEYS.c.created_at, KEYS.c.revoked_at
                  ).join(ORGS, ORGS.c.id == KEYS.c.partner_org_id)


async def list_keys(db: Database, *, org_name: str | None = None) -> list[KeyInfo]:
    statement = _listing().order_by(ORGS.c.name, KEYS.c.id)  # type: ignore[attr-defined]
    if org_name is not None:
        statement = statement.where(ORGS.c.name == org_name.strip())
    async with db.read() as connection:
        return [_info(row) for row in (await connection.execute(statement)).all()]


async def revoke_key(db: Database, prefix: str) -> tuple[KeyInfo, EventRecord | None]:
    """Revokes the key named by its prefix (or the whole key). The outbox event tells
    every server process to close the key's open WebSockets."""
    prefix = prefix.strip()
    if match := KEY_FORMAT.match(prefix):
        prefix = match.group(1)
    async with db.transaction() as session:
        row = (await session.execute(select(PartnerApiKey).where(
            PartnerApiKey.prefix == prefix).with_for_update())).scalar_one_or_none()
        if row is None:
            raise BadUserInput(f"no API key with prefix {prefix!r}")
        event = None
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            event = await record_event(session, topic=KEY_REVOKED_TOPIC,
                                       payload={"keyId": row.id})
        key_id = row.id
    async with db.read() as connection:
        info = _info((await connection.execute(
            _listing().where(KEYS.c.id == key_id))).one())  # type: ignore[attr-defined]
    return info, event


async def viewer_for_key(db: Database, key: str) -> Viewer | None:
    """The viewer a key acts as, or None: unknown, revoked, or its org or user gone."""
    return await _key_viewer(db, KEYS.c.secret_hash == key_hash(key))


async def viewer_for_key_id(db: Database, key_id: int) -> Viewer | None:
    """The same, again, for a key already accepted: is it still good?"""
    return await _key_viewer(db, KEYS.c.id == key_id)


async def _key_viewer(db: Database, which: ColumnElement[bool]) -> Viewer | None:
    statement = (
        viewer_statement().add_columns(KEYS.c.id.label("key_id"), KEYS.c.scopes)
        .join(KEYS, KEYS.c.user_id == USERS.c.id)
        .where(which, KEYS.c.revoked_at.is_(None), KEYS.c.partner_org_id == ORGS.c.id)
    )
    async with db.read() as connection:
        row = (await connection.execute(statement)).first()
    if row is None:
        return None
    return viewer_from_row(row, key_id=row.key_id, scopes=frozenset(row.scopes.split()))
