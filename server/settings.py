"""Settings, read once at start-up from the environment and an optional .env file."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from starlette.config import Config

from models.db import is_sqlite, normalize_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./crmgraph.db"


class SettingsError(Exception):
    """A setting is missing or wrong: start-up stops with this message."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    broadcast_url: str = "memory://"
    jwt_secret: str | None = None
    jwt_algorithm: str = "HS256"
    jwt_public_key: str | None = None
    jwt_private_key: str | None = None
    jwt_issuer: str = "crmgraph"
    jwt_audience: str = "crmgraph"
    jwt_ttl_seconds: int = 86_400
    org_timezone: str = "Europe/Helsinki"
    max_depth: int = 15
    max_aliases: int = 50
    max_tokens: int = 5_000
    default_page_size: int = 50
    max_page_size: int = 500
    # Query cost (server/cost.py); 0 turns a limit off. A request may cost at most
    # max_query_cost; a client spends its budget per minute from a token bucket, in
    # Redis at rate_limit_url (else a redis:// broadcast_url; memory:// keeps it in
    # the process).
    max_query_cost: int = 25_000
    cost_budget_per_minute: int = 100_000
    partner_cost_budget_per_minute: int = 20_000
    rate_limit_url: str = ""
    max_body_bytes: int = 1_048_576
    ws_init_timeout_seconds: float = 10.0
    ws_ping_seconds: float = 20.0
    ws_max_subscriptions: int = 100
    event_poll_seconds: float = 2.0
    event_retention_days: int = 30
    subscription_queue_size: int = 1000
    db_pool_size: int = 10
    # A request still running after this many seconds is cancelled with its database
    # work (REQUEST_TIMEOUT); 0 turns the limit off.
    request_timeout: float = 30.0
    # On SIGTERM, how long requests in flight may take to finish (0: as long as they take).
    shutdown_grace_seconds: float = 30.0
    # COMPILED_EXECUTION: "on" runs queries through the compiled plans of
    # server/compiled.py, "off" through graphql-core, "verify" through both, comparing
    # the answers (the test suite runs so; it costs a second execution per query).
    compiled_execution: str = "on"
    graphiql: bool = True
    csrf_prevention: bool = True
    cors_origins: str = ""
    log_level: str = "INFO"
    log_format: str = "json"  # or "text" (server/logs.py)
    # When set, GET /metrics takes it as a bearer token; unset, /metrics is open.
    metrics_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, env_file: str | None = ".env") -> Settings:
        environ = os.environ if env is None else env
        file = env_file if env_file and Path(env_file).is_file() else None
        config = Config(env_file=file, environ=environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = config(f.name.upper(), default=None)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        try:
            ZoneInfo(self.org_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"ORG_TIMEZONE {self.org_timezone!r} is not a time zone") from exc
        if self.jwt_algorithm not in ("HS256", "RS256"):
            raise SettingsError("JWT_ALGORITHM must be HS256 or RS256")
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise SettingsError("DEFAULT_PAGE_SIZE must be between 1 and MAX_PAGE_SIZE")
        if self.compiled_execution not in ("on", "off", "verify"):
            raise SettingsError("COMPILED_EXECUTION must be on, off or verify")
        if self.log_format not in ("json", "text"):
            raise SettingsError("LOG_FORMAT must be json or text")
        for name in ("max_query_cost", "cost_budget_per_minute",
                     "partner_cost_budget_per_minute"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name.upper()} must be 0 (no limit) or more")
        if self.rate_limit_url and not self.rate_limit_url.startswith(
                ("memory://", "redis://", "rediss://", "unix://")):
            raise SettingsError("RATE_LIMIT_URL must be memory://, redis://, rediss:// "
                                "or unix://")

    @property
    def allowed_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def async_database_url(self) -> str:
        return normalize_url(self.database_url)

    @property
    def is_embedded(self) -> bool:
        return is_sqlite(self.database_url)

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_embedded:
            return None
        database = make_url(self.database_url).database
        if not database or database == ":memory:":
            return None
        return Path(database)

    def signing_key(self) -> str:
        """The key that verifies tokens (and signs them, for HS256)."""
        if self.jwt_algorithm == "RS256":
            if not self.jwt_public_key:
                raise SettingsError("JWT_ALGORITHM=RS256 needs JWT_PUBLIC_KEY (PEM)")
            return self.jwt_public_key
        if self.jwt_secret:
            return self.jwt_secret
        if not self.is_embedded:
            raise SettingsError(
                "JWT_SECRET is not set. On PostgreSQL crmgraph will not invent one: set "
                "JWT_SECRET to a long random string (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`)."
            )
        return _embedded_secret(self.sqlite_path)


_EPHEMERAL_SECRET = secrets.token_urlsafe(48)


def _embedded_secret(database: Path | None) -> str:
    """On the embedded default a secret is made once and kept beside the database file,
    so tokens minted by `crmgraph token` keep working across restarts."""
    if database is None:
        return _EPHEMERAL_SECRET
    path = database.with_name(database.name + ".jwt-secret")
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def _convert(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("bool"):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
    except ValueError as exc:
        raise SettingsError(f"{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
