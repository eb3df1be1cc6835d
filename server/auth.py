"""Credentials to a Viewer: bearer JWTs for people, API keys for partners' machines.

Two steps. ``identify`` reads the credential without the database (a JWT's signature
and claims, a key's form) and names the client whose budget the request spends, so
a client over its budget is refused before the database is asked anything.
``viewer_for`` then reads who the credential acts as, from the database, on every
request: a deactivated user or a revoked key is refused at once.
"""

from __future__ import annotations

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
        try:
            claims = jwt.decode(
                token, self.verify_key, algorithms=[self.settings.jwt_algorithm],
                audience=self.settings.jwt_audience, issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "sub", "iat"]}, leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.InvalidTokenError:
            raise AuthError("the token is not valid") from None
        subject = str(claims["sub"])
        if not subject.isdigit():
            raise AuthError("the token is not valid")
        return int(subject)

    async def viewer_for(self, credential: Credential) -> Viewer:
        if credential.key is not None:
            viewer = await viewer_for_key(self.db, credential.key)
            if viewer is None:
                raise AuthError("the API key is not valid or has been revoked")
            return viewer
        assert credential.user_id is not None
        viewer = await load_viewer(self.db, credential.user_id)
        if viewer is None:
            raise AuthError("the token's user does not exist or is deactivated")
        return viewer

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

