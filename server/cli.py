"""The `crmgraph` command: serve, migrate, seed-demo, token, export-schema, and the
operator's partner-key, partner-org and trust-documents."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from models.db import Database
from models.users import Role
from server.migrate import upgrade_head
from server.settings import Settings, SettingsError

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"crmgraph: {exc}") from None


async def _check_ready(settings: Settings) -> None:
    from server.app import ensure_migrated

    settings.signing_key()  # a missing JWT secret stops start-up here, with its message
    db = Database(settings.database_url)
    try:
        await ensure_migrated(settings, db)
    finally:
        await db.dispose()


async def _seed(settings: Settings) -> bool:
    from server.demo import seed_demo

    db = Database(settings.database_url)
    try:
        return await seed_demo(db, timezone=settings.org_timezone)
    finally:
        await db.dispose()


async def _demo_tokens(settings: Settings) -> list[tuple[Role, str, str]]:
    from resolvers.users import find_user_id_by_email
    from server.auth import Authenticator
    from server.demo import DEMO_EMAILS

    db = Database(settings.database_url)
    try:
        authenticator = Authenticator(settings, db)
        tokens = []
        for role in (Role.ADMIN, Role.MANAGER, Role.REP, Role.PARTNER):
            user_id = await find_user_id_by_email(db, DEMO_EMAILS[role])
            if user_id is not None:
                tokens.append((role, DEMO_EMAILS[role],
                               authenticator.mint(user_id, ttl_seconds=7 * 86_400)))
        return tokens
    finally:
        await db.dispose()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    try:
        if settings.is_embedded:
            upgrade_head(settings.database_url)
        asyncio.run(_check_ready(settings))
        if args.demo:
            seeded = asyncio.run(_seed(settings))
            print("Seeded the demo data set." if seeded else
                  "The database already has data: demo data not seeded.")
            print('Demo tokens (send as "Authorization: Bearer <token>"), valid 7 days:')
            for role, email, token in asyncio.run(_demo_tokens(settings)):
                print(f"{role.value} {email} {token}")
    except SettingsError as exc:
        print(f"crmgraph: {exc}", file=sys.stderr)
        return 2
    print(f"GraphiQL at http://{args.host}:{args.port}/graphql", flush=True)
    # uvicorn raises the signal it stopped on again once it has shut down, so that the
    # process ends as that signal's handler says. SIGTERM is how orchestrators stop a
    # server on purpose: once shut down cleanly, the process exits 0.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: None)
    uvicorn.run(
        "server.app:create_app", factory=True, host=args.host, port=args.port,
        workers=args.workers, loop="auto", http="auto", log_level=settings.log_level.lower(),
        access_log=False, log_config=_log_config(settings),
        # No permessage-deflate: a compressor per socket is ~50 KB held by every idle
        # subscriber, and compressing per socket undoes subscriptions/fanout.py's one
        # serialization per event. Our frames are small JSON.
        ws_per_message_deflate=False,
        # websockets-sansio with less held per idle socket and a direct way out for
        # fan-out frames (server/websocket.py).
        ws="server.websocket:LeanWebSocketProtocol",
        # SIGTERM: stop accepting, close WebSockets with 1012 (clients reconnect to
        # another process), let requests in flight finish for SHUTDOWN_GRACE_SECONDS,
        # then cancel what is left (with its database work) and exit 0.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds or None,
    )
    return 0


def _log_config(settings: Settings) -> dict[str, object]:
    """Logging for uvicorn and its worker processes, which set theirs up from this:
    every line, ours and uvicorn's, in LOG_FORMAT."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": "server.logs.formatter_for",
                                   "log_format": settings.log_format}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["default"], "level": settings.log_level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def cmd_migrate(_args: argparse.Namespace) -> int:
    settings = _settings()
    upgrade_head(settings.database_url)
    print("The database is at the latest migration.")
    return 0


def cmd_seed_demo(_args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.is_embedded:
        upgrade_head(settings.database_url)
    try:
        asyncio.run(_check_ready(settings))
    except SettingsError as exc:
        print(f"crmgraph: {exc}", file=sys.stderr)
        return 2
    seeded = asyncio.run(_seed(settings))
    print("Seeded the demo data set." if seeded else
          "The database already has data: nothing seeded.")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from resolvers.users import find_user_id_by_email
    from server.auth import Authenticator

    settings = _settings()

    async def mint() -> str | None:
        db = Database(settings.database_url)
        try:
            user_id = await find_user_id_by_email(db, args.email)
            if user_id is None:
                return None
            return Authenticator(settings, db).mint(user_id, ttl_seconds=args.ttl)
        finally:
            await db.dispose()

    try:
        token = asyncio.run(mint())
    except SettingsError as exc:
        print(f"crmgraph: {exc}", file=sys.stderr)
        return 2
    if token is None:
        print(f"crmgraph: no user with email {args.email!r}", file=sys.stderr)
        return 1
    print(token)
    return 0


async def _admin(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    """Runs one operator action against the database, which must be migrated."""
    db = Database(settings.database_url)
    try:
        return await action(db)
    finally:
        await db.dispose()


def _operate(action: Callable[[Database], Awaitable[T]]) -> T | None:
    """An operator command's action; a refusal is printed and the command fails."""
    from loaders.errors import ApiError

    settings = _settings()
    if settings.is_embedded:
        upgrade_head(settings.database_url)
    try:
        return asyncio.run(_admin(settings, action))
    except ApiError as exc:
        print(f"crmgraph: {exc.message}", file=sys.stderr)
        return None


def cmd_partner_key(args: argparse.Namespace) -> int:
    from resolvers import partner_keys
    from subscriptions.hub import announce_elsewhere

    if args.action == "create":
        try:
            scopes = partner_keys.parse_scopes(args.scopes)
        except Exception as exc:  # BadUserInput: the scopes named are not ours
            print(f"crmgraph: {exc}", file=sys.stderr)
            return 2
        created = _operate(lambda db: partner_keys.create_key(
            db, org_name=args.org, scopes=scopes, name=args.name or "API key"))
        if created is None:
            return 1
        info, key = created
        print(f"Created API key {info.prefix} for {info.org} with scopes "
              f"{' '.join(sorted(info.scopes))}.")
        print("Store it now: it is shown only this once.", file=sys.stderr)
        print(key)
        return 0
    if args.action == "list":
        keys = _operate(lambda db: partner_keys.list_keys(db, org_name=args.org))
        if keys is None:
            return 1
        for info in keys:
            state = f"revoked {info.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if info.revoked_at \
                else "active"
            print(f"{info.prefix}\t{info.org}\t{info.name}\t{' '.join(sorted(info.scopes))}"
                  f"\tcreated {info.created_at:%Y-%m-%dT%H:%M:%SZ}\t{state}")
        return 0

    async def revoke(db: Database) -> partner_keys.KeyInfo:
        info, event = await partner_keys.revoke_key(db, args.prefix)
        if event is not None:
            # Servers close the key's WebSockets when they hear of it: at once
            # through the broker, else at their next poll of the outbox.
            await announce_elsewhere(_settings().broadcast_url, event)
        return info

    revoked = _operate(revoke)
    if revoked is None:
        return 1
    print(f"Revoked API key {revoked.prefix} of {revoked.org}.")
    return 0


def cmd_partner_org(args: argparse.Namespace) -> int:
    from resolvers.documents import set_org_options

    org = _operate(lambda db: set_org_options(
        db, org_name=args.org, introspection=args.introspection,
        trusted_documents_only=args.trusted_documents_only))
    if org is None:
        return 1
    print(f"{org.name}: introspection {'on' if org.allow_introspection else 'off'}, "
          f"trusted documents only {'on' if org.trusted_documents_only else 'off'}.")
    return 0


def cmd_trust_documents(args: argparse.Namespace) -> int:
    from resolvers.documents import trust_documents

    trusted = _operate(lambda db: trust_documents(
        db, org_name=args.org, paths=[Path(p) for p in args.files]))
    if trusted is None:
        return 1
    for sha256, name in trusted:
        print(f"{sha256}\t{name}")
    return 0


def cmd_export_schema(args: argparse.Namespace) -> int:
    from schema.root import export_sdl, export_subgraph_sdl

    sys.stdout.write(export_subgraph_sdl() if args.subgraph else export_sdl())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="crmgraph", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the GraphQL server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true",
                       help="seed demo data into an empty database and print tokens")
    serve.set_defaults(run=cmd_serve)

    commands.add_parser("migrate", help="upgrade the database to the latest migration"
                        ).set_defaults(run=cmd_migrate)
    commands.add_parser("seed-demo", help="seed the demo data set into an empty database"
                        ).set_defaults(run=cmd_seed_demo)

    token = commands.add_parser("token", help="print a signed token for a user")
    token.add_argument("--email", required=True)
    token.add_argument("--ttl", type=int, default=None, help="seconds (default JWT_TTL_SECONDS)")
    token.set_defaults(run=cmd_token)

    key = commands.add_parser("partner-key", help="partner API keys: create, list, revoke")
    key_actions = key.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="make a key for a partner org; it is "
                                    "printed once and stored only as a hash")
    create.add_argument("--org", required=True, help="the partner org's name")
    create.add_argument("--scopes", required=True, nargs="+",
                        help="read, or read write:opportunities")
    create.add_argument("--name", help="what the key is for, shown in listings")
    listing = key_actions.add_parser("list", help="the keys, without their secrets")
    listing.add_argument("--org", help="only this partner org's keys")
    revoke = key_actions.add_parser("revoke", help="refuse a key from now on, also on open "
                                    "WebSockets")
    revoke.add_argument("prefix", help="the key's prefix as listed (or the whole key)")
    key.set_defaults(run=cmd_partner_key)

    org = commands.add_parser("partner-org", help="a partner org's API switches")
    org.add_argument("org", help="the partner org's name")
    org.add_argument("--introspection", action=argparse.BooleanOptionalAction, default=None,
                     help="may the org's clients introspect the schema (default off)")
    org.add_argument("--trusted-documents-only", action=argparse.BooleanOptionalAction,
                     default=None, help="may the org's clients run only trusted documents")
    org.set_defaults(run=cmd_partner_org)

    trust = commands.add_parser("trust-documents", help="register GraphQL documents a "
                                "partner org may run in trusted-documents mode")
    trust.add_argument("--org", required=True, help="the partner org's name")
    trust.add_argument("files", nargs="+", help="files holding one GraphQL document each")
    trust.set_defaults(run=cmd_trust_documents)

    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--subgraph", action="store_true",
                        help="print the Apollo Federation subgraph SDL (with @link and @key)")
    export.set_defaults(run=cmd_export_schema)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from server.logs import configure_logging

    configure_logging()  # LOG_FORMAT (json or text) and LOG_LEVEL from the settings
    if args.command != "migrate":
        # Start-up output is for the tokens and the URL; `crmgraph migrate` reports steps.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
