"""Credentials to a Viewer: bearer JWTs for people, API keys for partners' machines.

Two steps. ``identify`` reads the credential without the database (a JWT's signature
and claims, a key's form) and names the client whose budget the request spends, so
a client over its budget is refused before the database is asked anything.
``viewer_for`` then reads who the credential acts as, from the database, on every
request: a deactivated user or a revoked key is refused at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from models.db import Database
from models.users import Viewer
from resolvers.partner_keys import (
    key_hash,
    looks_like_key,
    viewer_for_key,
    viewer_for_key_id,
)
from resolvers.users import load_viewer
from server.settings import Settings, SettingsError

# Seconds of clock skew allowed on a token's iat, nbf and exp.
LEEWAY = 30
# Tokens whose signature and claims were verified, kept per Authenticator.
TOKEN_CACHE_SIZE = 1_000
# Staff viewers last read, kept per Authenticator (server/access.py Confirmation).
RECENT_VIEWERS = 10_000


class AuthError(Exception):
    """The credentials were sent but are not acceptable: 401, never anonymous."""


@dataclass(frozen=True, slots=True)
class Credential:
    client_id: str  # "user:<id>" or "key:<hash prefix>": whose budget it spends
    user_id: int | None = None  # a verified token's subject
    key: str | None = None  # a partner API key, checked against the database


class Authenticator:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.verify_key = settings.signing_key()
        # token -> (subject, valid from, expires at): a client sends the same token with
        # every request, and checking its signature again cost more than the rest of
        # reading it. Only the clock can change the answer, so only the clock is read.
        self._verified: dict[str, tuple[int, float, float]] = {}
        # user id -> the staff viewer its last read found: a query of theirs runs as it
        # while the viewer is read again beside it, and is answered only if the two
        # agree (server/access.py Confirmation). Dropped once a read finds nobody.
        self._recent: dict[int, Viewer] = {}

    def mint(self, user_id: int, ttl_seconds: int | None = None) -> str:
        settings = self.settings
        if settings.jwt_algorithm == "RS256":
            if not settings.jwt_private_key:
                raise SettingsError("minting RS256 tokens needs JWT_PRIVATE_KEY (PEM)")
            key = settings.jwt_private_key
        else:
            key = self.verify_key
        now = datetime.now(UTC)
        ttl = ttl_seconds if ttl_seconds is not None else settings.jwt_ttl_seconds
        claims = {
            "sub": str(user_id), "iat": now, "exp": now + timedelta(seconds=ttl),
            "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
        }
        return jwt.encode(claims, key, algorithm=settings.jwt_algorithm)

    def identify(self, authorization: str | None, api_key: str | None = None
                 ) -> Credential | None:
        """The credential sent, checked as far as it can be without the database;
        None when none was sent (anonymous); AuthError when it is not acceptable."""
        if api_key is not None and api_key.strip():
            if authorization is not None and authorization.strip():
                raise AuthError("send one credential: Authorization or X-Api-Key, not both")
            return self._key(api_key.strip())
        if authorization is None or not authorization.strip():
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("send credentials as 'Authorization: Bearer <token>'")
        if looks_like_key(token):
            return self._key(token)
        subject = self._subject(token)
        return Credential(client_id=f"user:{subject}", user_id=subject)

    def _key(self, key: str) -> Credential:
        if not looks_like_key(key):
            raise AuthError("the API key is not valid")
        # The hash, not the public prefix, names the client: a forged key that
        # copies a partner's prefix spends a budget of its own.
        return Credential(client_id=f"key:{key_hash(key)[:16]}", key=key)

    def _subject(self, token: str) -> int:
        verified = self._verified.get(token)
        if verified is not None:
            subject, valid_from, expires_at = verified
            # PyJWT's checks, in its order: iat and nbf not ahead, then exp not past.
            now = time.time()
            if now < valid_from:
                raise AuthError("the token is not valid")
            if now >= expires_at:
                raise AuthError("the token has expired")
            return subject
        try:
            claims = jwt.decode(
                token, self.verify_key, algorithms=[self.settings.jwt_algorithm],
                audience=self.settings.jwt_audience, issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "sub", "iat"]}, leeway=LEEWAY,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.InvalidTokenError:
            raise AuthError("the token is not valid") from None
        subject = str(claims["sub"])
        if not subject.isdigit():
            raise AuthError("the token is not valid")
        # As PyJWT reads them (it has just accepted them): whole seconds.
        valid_from = max(int(claims["iat"]), int(claims.get("nbf", claims["iat"]))) - LEEWAY
        if len(self._verified) >= TOKEN_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (int(subject), valid_from, int(claims["exp"]) + LEEWAY)
        return int(subject)

    async def viewer_for(self, credential: Credential) -> Viewer:
        if credential.key is not None:
            viewer = await viewer_for_key(self.db, credential.key)
            if viewer is None:
                raise AuthError("the API key is not valid or has been revoked")
            return viewer
        user_id = credential.user_id
        assert user_id is not None
        viewer = await load_viewer(self.db, user_id)
        recent = self._recent
        recent.pop(user_id, None)  # kept last in the order of reads
        if viewer is None:
            raise AuthError("the token's user does not exist or is deactivated")
        if not viewer.is_partner:
            if len(recent) >= RECENT_VIEWERS:
                del recent[next(iter(recent))]
            recent[user_id] = viewer
        return viewer

    def recent(self, credential: Credential) -> Viewer | None:
        """The staff viewer a user token's last read found, if any: never one of a
        partner or an API key, whose rules are applied before anything runs."""
        if credential.user_id is None:
            return None
        return self._recent.get(credential.user_id)

    async def viewer_for_token(self, token: str) -> Viewer:
        subject = self._subject(token)
        return await self.viewer_for(Credential(client_id=f"user:{subject}", user_id=subject))

    async def viewer_for_header(self, authorization: str | None, api_key: str | None = None
                                ) -> Viewer | None:
        """Both steps at once: None for no credentials at all, AuthError for bad ones."""
        credential = self.identify(authorization, api_key)
        return None if credential is None else await self.viewer_for(credential)

    async def refresh(self, viewer: Viewer) -> Viewer | None:
        """The viewer as it is now, or None when it is no longer let in (a user
        deactivated, a key revoked): long-lived connections ask this again."""
        if viewer.key_id is not None:
            return await viewer_for_key_id(self.db, viewer.key_id)
        return await load_viewer(self.db, viewer.user_id)

