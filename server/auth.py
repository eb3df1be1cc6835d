"""Bearer JWTs to a Viewer: minting (for the CLI) and verifying (for requests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from models.db import Database
from models.users import Viewer
from resolvers.users import load_viewer
from server.settings import Settings, SettingsError


class AuthError(Exception):
    """The credentials were sent but are not acceptable: 401, never anonymous."""


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

    async def viewer_for_token(self, token: str) -> Viewer:
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
        viewer = await load_viewer(self.db, int(subject))
        if viewer is None:
            raise AuthError("the token's user does not exist or is deactivated")
        return viewer

    async def viewer_for_header(self, authorization: str | None) -> Viewer | None:
        """None for no credentials at all (anonymous); AuthError for bad ones."""
        if authorization is None or not authorization.strip():
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("send credentials as 'Authorization: Bearer <token>'")
        return await self.viewer_for_token(token.strip())
