"""The `crmgraph` command, run as a user runs it: a real process and real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.databases import BACKENDS, scratch_database
from tests.processes import run as _run
from tests.processes import server_env as _env
from tests.processes import serving as _serving


def _tokens(lines: list[str]) -> dict[str, str]:
    tokens = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("ADMIN", "MANAGER", "REP", "PARTNER"):
            tokens[parts[0]] = parts[2]
    return tokens


def _query(url: str, token: str, query: str) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    return body["data"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_demo_seeds_prints_tokens_and_answers(backend: str, tmp_path: Path) -> None:
    with scratch_database(backend, "crmgraph_cli_demo", tmp_path, migrate=False) as db_url:
        env = _env(DATABASE_URL=db_url)
        if backend == "postgresql":
            env["JWT_SECRET"] = "cli-test-secret-long-enough-0123456789abcdef"
            assert _run("migrate", env=env, cwd=tmp_path).returncode == 0
        with _serving(env, tmp_path, "--demo") as (url, lines):
            tokens = _tokens(lines)
            assert set(tokens) == {"ADMIN", "MANAGER", "REP", "PARTNER"}, lines
            data = _query(url, tokens["ADMIN"],
                          "{ accounts(first: 5) { edges { node { id name owner { name } } } } }")
            edges = data["accounts"]["edges"]
            assert len(edges) == 5
            assert all(e["node"]["owner"]["name"] for e in edges)
            partner = _query(url, tokens["PARTNER"], "{ accounts { totalCount } }")
            admin = _query(url, tokens["ADMIN"], "{ accounts { totalCount } }")
            assert 0 < partner["accounts"]["totalCount"] < admin["accounts"]["totalCount"] == 200

        # A second --demo start finds data and leaves it alone, and tokens minted by
        # the CLI keep working: the embedded secret was kept beside the database.
        again = _run("seed-demo", env=env, cwd=tmp_path)
        assert again.returncode == 0
        assert "nothing seeded" in again.stdout
        minted = _run("token", "--email", "ADA.LINDQVIST@demo.crmgraph.dev", env=env,
                      cwd=tmp_path)
        assert minted.returncode == 0, minted.stderr
        with _serving(env, tmp_path) as (url, _lines):
            viewer = _query(url, minted.stdout.strip(), "{ viewer { email role } }")
            assert viewer == {"viewer": {"email": "ada.lindqvist@demo.crmgraph.dev",
                                         "role": "ADMIN"}}
    if backend == "sqlite":
        assert (tmp_path / "crmgraph_cli_demo.db.jwt-secret").is_file()


def test_token_for_an_unknown_email_fails(tmp_path: Path) -> None:
    env = _env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert _run("migrate", env=env, cwd=tmp_path).returncode == 0
    result = _run("token", "--email", "nobody@example.com", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "no user with email" in result.stderr


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="needs TEST_DATABASE_URL")
def test_serve_on_postgresql_refuses_without_secret_or_migrations(tmp_path: Path) -> None:
    with scratch_database("postgresql", "crmgraph_cli_refuse", tmp_path, migrate=False) as url:
        no_secret = _run("serve", env=_env(DATABASE_URL=url), cwd=tmp_path)
        assert no_secret.returncode == 2
        assert "JWT_SECRET is not set" in no_secret.stderr

        behind = _run("serve", env=_env(DATABASE_URL=url, JWT_SECRET="s" * 40), cwd=tmp_path)
        assert behind.returncode == 2
        assert "run `crmgraph migrate` first" in behind.stderr


def test_export_schema_prints_sdl(tmp_path: Path) -> None:
    result = _run("export-schema", env=_env(), cwd=tmp_path)
    assert result.returncode == 0
    assert "type Query" in result.stdout
    assert "interface Node" in result.stdout
