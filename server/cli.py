"""The `crmgraph` command: serve, migrate, seed-demo, token, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from models.db import Database
from models.users import Role
from server.migrate import upgrade_head
from server.settings import Settings, SettingsError


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
    uvicorn.run(
        "server.app:create_app", factory=True, host=args.host, port=args.port,
        workers=args.workers, loop="auto", http="auto", log_level=settings.log_level.lower(),
        access_log=False,
    )
    return 0


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


def cmd_export_schema(_args: argparse.Namespace) -> int:
    from schema.root import export_sdl

    sys.stdout.write(export_sdl())
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

    commands.add_parser("export-schema", help="print the GraphQL SDL"
                        ).set_defaults(run=cmd_export_schema)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command != "migrate":
        # Start-up output is for the tokens and the URL; `crmgraph migrate` reports steps.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
