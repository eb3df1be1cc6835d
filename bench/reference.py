"""The reference server: a mature SQL-compiling GraphQL server for PostgreSQL, up beside
ours on the same database, so that the issue's "at least as fast as the SQL-compiling
server" is measured in the same minutes as our own runs, not against figures taken on
another day (this machine's speed drifts by up to 2x).

It is PostGraphile v4 (Node.js), pinned in bench/reference/package.json and installed
from the npm registry into bench/reference/node_modules on first use (`npm ci`). It
serves the bench database's tables as its own schema, with the simplify-inflector
plugin (`account.owner`, `account.opportunities`), no authentication and no query log,
in one Node.js process with its default pool of 10 connections, `NODE_ENV=production`.
It compiles each GraphQL request into one SQL statement that builds the rows as JSON.

bench/scenarios.py REFERENCE holds its requests; ``differences`` checks, before the
timing, that it answers the same rows as ours (names, amounts, phases, budget cells).
"""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

DIRECTORY = Path(__file__).resolve().parent / "reference"
EXECUTABLE = DIRECTORY / "node_modules" / ".bin" / "postgraphile"


class Unavailable(RuntimeError):
    """The reference server cannot be installed or started here."""


def install() -> Path:
    """The reference server's executable, installed with npm if it is not yet."""
    if EXECUTABLE.exists():
        return EXECUTABLE
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed (the reference server is a Node.js package)")
    completed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DIRECTORY,
        capture_output=True, text=True, timeout=600, check=False)
    if completed.returncode != 0 or not EXECUTABLE.exists():
        raise Unavailable(f"npm ci in {DIRECTORY} failed: "
                          f"{(completed.stderr or completed.stdout)[-1000:]}")
    return EXECUTABLE


def command(database_url: str, port: int) -> tuple[list[str], dict[str, str]]:
    """How to start it on ``port`` against ``database_url``: the command and its
    environment (added to the bench's)."""
    url = make_url(database_url).set(drivername="postgres")
    connection = url.render_as_string(hide_password=False)
    return ([str(install()), "--connection", connection, "--schema", "public",
             "--host", "127.0.0.1", "--port", str(port), "--disable-query-log",
             "--disable-graphiql", "--append-plugins",
             "@graphile-contrib/pg-simplify-inflector"],
            {"NODE_ENV": "production"})


def _money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _small(data: dict[str, Any]) -> Any:
    account = data["account"]
    return account and (account["name"], account["owner"]["name"])


def _account(node: dict[str, Any], reference: bool) -> Any:
    deals = tuple((d["name"], _money(d["amount"]), (d.get("phase") or {}).get("name"))
                  for d in node["opportunities"]["nodes"])
    owner = node["owner"]["name"] if "owner" in node else None
    cells = None
    if reference and "budgets" in node:
        cells = sorted((b["period"], _money(b["amount"])) for b in node["budgets"]["nodes"])
    elif "plan" in node:
        cells = sorted((r["period"], _money(r["budget"])) for r in node["plan"]["rows"])
    return node["name"], owner, deals, cells


def rows(name: str, data: dict[str, Any], reference: bool) -> Any:
    """What a scenario's answer says, in a form both servers' answers share: ids and
    number formats aside."""
    if name == "small":
        return _small(data)
    return [_account(node, reference) for node in data["accounts"]["nodes"]]


def differences(name: str, ours: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """None when both answers hold the same rows; else what differs first."""
    mine, other = rows(name, ours, False), rows(name, theirs, True)
    if mine == other:
        return None
    if isinstance(mine, list) and isinstance(other, list):
        if len(mine) != len(other):
            return f"{len(mine)} accounts against the reference's {len(other)}"
        for index, (a, b) in enumerate(zip(mine, other, strict=True)):
            if a != b:
                return f"account {index}: {a!r:.300} against the reference's {b!r:.300}"
    return f"{mine!r:.300} against the reference's {other!r:.300}"
