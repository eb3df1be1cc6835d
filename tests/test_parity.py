"""Same data, same answers: the demo data set queried on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from models.users import Role
from resolvers.users import find_user_id_by_email
from server.app import create_app
from server.demo import DEMO_EMAILS, seed_demo
from server.settings import Settings
from tests.conftest import TEST_SECRET
from tests.databases import BACKENDS, scratch_database

QUERIES = [
    """{ accounts(first: 40, orderBy: [{field: INDUSTRY, direction: DESC}, {field: CITY}]) {
        totalCount pageInfo { endCursor hasNextPage }
        edges { cursor node { id name industry address { city } type archived version createdAt
          owner { name team { name } } parent { name }
          contacts(first: 3, orderBy: [{field: EMAIL, direction: DESC}]) {
            totalCount nodes { name email phone emailConsent phoneConsent } } } } } }""",
    """{ accounts(first: 100, filter: {or: [{name: {contains: "oy"}},
          {contacts: {some: {title: {startsWith: "chief"}}}}], archived: {eq: false}}) {
        totalCount nodes { name } } }""",
    """{ contacts(last: 25, filter: {emailConsent: {eq: true}, account: {type: {in:
          [CUSTOMER, PARTNER]}}}, orderBy: [{field: FIRST_NAME}]) {
        totalCount pageInfo { startCursor hasPreviousPage }
        nodes { id name account { name } } } }""",
    """{ products(orderBy: [{field: LIST_PRICE, direction: DESC}]) { totalCount
        nodes { code listPrice currency unit active offeringArea { code name } } }
        offeringAreas { code name } teams { name manager { email } members { totalCount } }
        users(filter: {role: {in: [REP, MANAGER]}}) { nodes { email role } } }""",
]


async def _answers(url: str, role: Role) -> list[dict]:
    app = create_app(Settings(database_url=url, jwt_secret=TEST_SECRET))
    async with app.router.lifespan_context(app):
        await seed_demo(app.state.db)
        user_id = await find_user_id_by_email(app.state.db, DEMO_EMAILS[role])
        token = app.state.authenticator.mint(user_id)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                     base_url="http://testserver") as http:
            answers = []
            for query in QUERIES:
                response = await http.post("/graphql", json={"query": query},
                                           headers={"Authorization": f"Bearer {token}"})
                body = response.json()
                assert "errors" not in body, body
                answers.append(body["data"])
            return answers


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs TEST_DATABASE_URL for PostgreSQL")
@pytest.mark.parametrize("role", [Role.ADMIN, Role.PARTNER])
def test_sqlite_and_postgresql_answer_alike(tmp_path: Path, role: Role) -> None:
    answers = {}
    for backend in BACKENDS:
        with scratch_database(backend, "crmgraph_parity", tmp_path) as url:
            answers[backend] = asyncio.run(_answers(url, role))
    assert answers["sqlite"] == answers["postgresql"]
    assert answers["sqlite"][0]["accounts"]["edges"], "the queries must return data"
