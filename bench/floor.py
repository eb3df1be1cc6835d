"""The floor: the benchmark's read scenarios answered with ONE hand-written PostgreSQL
statement each, which builds the whole `{"data": ...}` body in SQL (json_build_object,
json_agg); Python only picks the statement by the request's query text and passes the
text PostgreSQL returns through. What a GraphQL server could at best do per request.

    DATABASE_URL=postgresql://... uvicorn bench.floor:create_app --factory --workers 1

It answers POST /graphql for the bodies of bench/scenarios.py (FLOORED) as an admin
sees them: the same rows, order and value formats as our server's `data` (ids base64
of "Type:key", money with two decimals unless it has more, dates ISO); PostgreSQL's
json text has spaces ours does not, so the bytes differ a little, the data not at all.
tests/test_bench.py proves it against our server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.scenarios import DASHBOARD, LARGE, SMALL
from loaders.ids import decode_id


def _gid(type_name: str, key: str) -> str:
    return f"encode(convert_to('{type_name}:' || {key}, 'UTF8'), 'base64')"


def _money(column: str) -> str:
    """models.base._present in SQL: two decimals unless the amount has more."""
    return (f"CASE WHEN {column} = round({column}, 2) THEN round({column}, 2)::text "
            f"ELSE trim_scale({column})::text END")


STATEMENTS: dict[str, tuple[str, Callable[[dict[str, Any]], list[Any]]]] = {
    SMALL: (f"""
SELECT json_build_object('data', json_build_object('account', (
  SELECT json_build_object('id', {_gid('Account', 'a.id')}, 'name', a.name,
                           'owner', json_build_object('name', u.name))
  FROM accounts a JOIN users u ON u.id = a.owner_id WHERE a.id = $1)))::text""",
            lambda variables: [decode_id(variables["id"], "Account")]),
    DASHBOARD: (f"""
SELECT json_build_object('data', json_build_object('accounts', json_build_object('nodes',
  coalesce(json_agg(json_build_object(
    'id', {_gid('Account', 'a.id')}, 'name', a.name,
    'owner', json_build_object('name', u.name),
    'opportunities', json_build_object('nodes', (
      SELECT coalesce(json_agg(json_build_object('name', o.name, 'amount',
                               {_money('o.amount')}, 'phase', json_build_object('name', p.name))
                      ORDER BY o.created_at, o.id), '[]')
      FROM (SELECT * FROM opportunities WHERE account_id = a.id
            ORDER BY created_at, id LIMIT 10) o
      JOIN phases p ON p.id = o.phase_id)),
    'plan', json_build_object('rows', (
      SELECT json_agg(json_build_object('period', m.period::date, 'budget',
                                        round(b.amount, 2)::text)
                      ORDER BY m.period, ar.code)
      FROM generate_series(date '2026-01-01', date '2026-12-01', interval '1 month') m(period)
      CROSS JOIN offering_areas ar
      LEFT JOIN budgets b ON b.account_id = a.id AND b.offering_area_id = ar.id
                         AND b.period = m.period::date AND b.currency = 'EUR'
      WHERE ar.active)))
  ORDER BY a.name, a.id), '[]'))))::text
FROM (SELECT * FROM accounts ORDER BY name, id LIMIT 100) a
JOIN users u ON u.id = a.owner_id""", lambda variables: []),
    LARGE: (f"""
SELECT json_build_object('data', json_build_object('accounts', json_build_object('nodes',
  coalesce(json_agg(json_build_object(
    'id', {_gid('Account', 'a.id')}, 'name', a.name,
    'opportunities', json_build_object('nodes', (
      SELECT coalesce(json_agg(json_build_object('id', {_gid('Opportunity', 'o.id')},
                               'name', o.name, 'amount', {_money('o.amount')})
                      ORDER BY o.created_at, o.id), '[]')
      FROM (SELECT * FROM opportunities WHERE account_id = a.id
            ORDER BY created_at, id LIMIT 10) o)))
  ORDER BY a.name, a.id), '[]'))))::text
FROM (SELECT * FROM accounts ORDER BY name, id LIMIT 1000) a""", lambda variables: []),
}


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def create_app() -> Starlette:
    dsn = _asyncpg_dsn(os.environ["DATABASE_URL"])
    pool: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pool["pg"] = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        try:
            yield
        finally:
            await pool["pg"].close()

    async def graphql(request: Request) -> Response:
        try:
            payload = orjson.loads(await request.body())
            sql, arguments = STATEMENTS[payload["query"]]
            values = arguments(payload.get("variables") or {})
        except Exception as exc:  # a body that is none of ours, or a bad id
            # Anything but our scenarios' bodies is not the floor's business.
            message = {"errors": [{"message": f"the floor answers only the bench scenarios "
                                   f"({type(exc).__name__})",
                                   "extensions": {"code": "BAD_USER_INPUT"}}]}
            return Response(orjson.dumps(message), status_code=400,
                            media_type="application/json")
        async with pool["pg"].acquire() as connection:
            text = await connection.fetchval(sql, *values)
        return Response(text, media_type="application/json")

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)
