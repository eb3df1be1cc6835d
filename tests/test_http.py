"""GraphQL over HTTP: the GraphQL-over-HTTP specification, authentication, masked errors.

Every request goes through the real ASGI app, as a client's would.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from sqlalchemy import text

from loaders.container import Loaders
from models.db import Database
from models.users import Role
from resolvers import users as users_resolvers
from server import auth as server_auth
from server.app import create_app
from tests.conftest import TEST_SECRET
from tests.factories import Org, gid, make_account, make_org, make_user
from tests.graphql_client import GraphQLClient, without_cost

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ACCEPT_GRAPHQL_RESPONSE = {"Accept": GRAPHQL_RESPONSE}
ACCEPT_JSON = {"Accept": JSON}

# Whatever goes wrong, none of these may reach a client.
LEAKS = re.compile(
    r"Traceback|sqlalchemy|SELECT|asyncpg|aiosqlite|/work/|\.py\b|File \"", re.IGNORECASE
)


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


def assert_masked(response: httpx.Response) -> dict[str, Any]:
    """The body of an error response: every error coded, nothing internal in it."""
    assert not LEAKS.search(response.text), response.text
    body = response.json()
    assert body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["message"], str), error
        assert error["message"], error
        assert error["extensions"]["code"], error
    return body


def auth(client: GraphQLClient, user: Any) -> dict[str, str]:
    """Credentials, and the preflight header that GET requests need (CSRF)."""
    return {"Authorization": f"Bearer {client.token(user)}", "Apollo-Require-Preflight": "true"}


def mint(
    secret: str = TEST_SECRET, *, user_id: int, issued: datetime, expires: datetime, **claims: Any
) -> str:
    payload = {
        "sub": str(user_id),
        "iat": issued,
        "exp": expires,
        "iss": "crmgraph",
        "aud": "crmgraph",
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


# --- POST, content negotiation and status codes ----------------------------------------


async def test_post_json_answers_with_data(client: GraphQLClient, org: Org) -> None:
    response = await client.post("{ viewer { name role } }", as_user=org.rep_a1)
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert without_cost(response.json()) == {"data": {"viewer": {"name": "Rep A1", "role": "REP"}}}


async def test_post_with_variables_and_operation_name(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
) -> None:
    account = await make_account(client.db, org.rep_a1, name="Acme")
    document = """
        query Other { viewer { name } }
        query One($id: ID!) { account(id: $id) { name } }
    """
    response = await http.post(
        "/graphql",
        json={
            "query": document,
            "variables": {"id": gid(account)},
            "operationName": "One",
        },
        headers=auth(client, org.rep_a1),
    )
    assert response.status_code == 200
    assert without_cost(response.json()) == {"data": {"account": {"name": "Acme"}}}


async def test_graphql_response_media_type_when_accepted(client: GraphQLClient, org: Org) -> None:
    response = await client.post(
        "{ viewer { name } }", as_user=org.admin, headers=ACCEPT_GRAPHQL_RESPONSE
    )
    assert response.status_code == 200
    assert media_type(response) == GRAPHQL_RESPONSE
    assert without_cost(response.json()) == {"data": {"viewer": {"name": "Admin"}}}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE};q=0.5", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (f"text/html, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
    ],
)
async def test_accept_header_is_negotiated(
    client: GraphQLClient, org: Org, accept: str, expected: str
) -> None:
    response = await client.post(
        "{ viewer { name } }", as_user=org.admin, headers={"Accept": accept}
    )
    assert response.status_code == 200
    assert media_type(response) == expected


async def test_no_accept_header_gets_json(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
) -> None:
    request = http.build_request(
        "POST", "/graphql", json={"query": "{ viewer { name } }"}, headers=auth(client, org.admin)
    )
    del request.headers["Accept"]
    response = await http.send(request)
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert without_cost(response.json()) == {"data": {"viewer": {"name": "Admin"}}}


@pytest.mark.parametrize("accept", ["text/plain", "text/html", f"{GRAPHQL_RESPONSE};q=0"])
async def test_unacceptable_media_type_is_406(client: GraphQLClient, org: Org, accept: str) -> None:
    response = await client.post(
        "{ viewer { name } }", as_user=org.admin, headers={"Accept": accept}
    )
    assert response.status_code == 406
    body = assert_masked(response)
    assert codes(body) == ["NOT_ACCEPTABLE"]
    assert "data" not in body


REQUEST_ERRORS = [
    pytest.param("{ viewer { name ", None, "GRAPHQL_PARSE_FAILED", id="parse-error"),
    pytest.param("{ noSuchField }", None, "GRAPHQL_VALIDATION_FAILED", id="validation-error"),
    pytest.param(
        "query ($n: Int) { accounts(first: $n) { totalCount } }",
        {"n": "ten"},
        "BAD_USER_INPUT",
        id="variable-coercion",
    ),
    pytest.param(
        "query ($id: ID!) { account(id: $id) { name } }",
        {},
        "BAD_USER_INPUT",
        id="missing-variable",
    ),
    pytest.param(
        "query ($t: DateTime) { accounts(filter: {createdAt: {gt: $t}}) { totalCount } }",
        {"t": "yesterday"},
        "BAD_USER_INPUT",
        id="scalar-coercion",
    ),
]


@pytest.mark.parametrize(("query", "variables", "code"), REQUEST_ERRORS)
async def test_request_error_is_400_under_graphql_response_json(
    client: GraphQLClient, org: Org, query: str, variables: dict[str, Any] | None, code: str
) -> None:
    response = await client.post(
        query, variables, as_user=org.admin, headers=ACCEPT_GRAPHQL_RESPONSE
    )
    assert response.status_code == 400
    assert media_type(response) == GRAPHQL_RESPONSE
    body = assert_masked(response)
    assert "data" not in body
    assert codes(body) == [code]


@pytest.mark.parametrize(("query", "variables", "code"), REQUEST_ERRORS)
async def test_request_error_is_200_under_json(
    client: GraphQLClient, org: Org, query: str, variables: dict[str, Any] | None, code: str
) -> None:
    response = await client.post(query, variables, as_user=org.admin, headers=ACCEPT_JSON)
    assert response.status_code == 200
    assert media_type(response) == JSON
    body = assert_masked(response)
    assert "data" not in body
    assert codes(body) == [code]


async def test_unknown_operation_name_is_a_request_error(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
) -> None:
    response = await http.post(
        "/graphql",
        json={
            "query": "query A { viewer { name } } query B { viewer { email } }",
            "operationName": "C",
        },
        headers={**auth(client, org.admin), **ACCEPT_GRAPHQL_RESPONSE},
    )
    assert response.status_code == 400
    body = assert_masked(response)
    assert "data" not in body
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_field_error_keeps_data_and_200_under_graphql_response_json(
    client: GraphQLClient, org: Org
) -> None:
    response = await client.post(
        '{ viewer { name } account(id: "garbage") { name } }',
        as_user=org.admin,
        headers=ACCEPT_GRAPHQL_RESPONSE,
    )
    assert response.status_code == 200
    body = assert_masked(response)
    assert body["data"] == {"viewer": {"name": "Admin"}, "account": None}
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["path"] == ["account"]


# --- GET --------------------------------------------------------------------------------


async def test_get_runs_a_query_with_json_variables(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
) -> None:
    account = await make_account(client.db, org.rep_a1, name="Get Corp")
    response = await http.get(
        "/graphql",
        params={
            "query": "query ($id: ID!) { account(id: $id) { name } }",
            "variables": json.dumps({"id": gid(account)}),
        },
        headers=auth(client, org.rep_a1),
    )
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert without_cost(response.json()) == {"data": {"account": {"name": "Get Corp"}}}


async def test_get_with_malformed_variables_is_400(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
) -> None:
    response = await http.get(
        "/graphql",
        params={
            "query": "query ($id: ID!) { account(id: $id) { name } }",
            "variables": "{not json",
        },
        headers=auth(client, org.admin),
    )
    assert response.status_code == 400
    assert codes(assert_masked(response)) == ["BAD_REQUEST"]


async def test_get_with_a_mutation_is_405_allow_post(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
) -> None:
    response = await http.get(
        "/graphql",
        params={
            "query": 'mutation { createAccount(input: {name: "Via GET"}) { account { id } } }',
        },
        headers=auth(client, org.admin),
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert codes(assert_masked(response)) == ["METHOD_NOT_ALLOWED"]
    names = await client.query("{ accounts { edges { node { name } } } }", as_user=org.admin)
    assert names == {"accounts": {"edges": []}}


async def test_post_runs_a_mutation(client: GraphQLClient, org: Org) -> None:
    data = await client.query(
        'mutation { createAccount(input: {name: "Via POST"}) { account { name } '
        "userErrors { code } } }",
        as_user=org.admin,
    )
    assert data == {"createAccount": {"account": {"name": "Via POST"}, "userErrors": []}}


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE"])
async def test_other_methods_are_405(http: httpx.AsyncClient, method: str) -> None:
    response = await http.request(method, "/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert codes(assert_masked(response)) == ["METHOD_NOT_ALLOWED"]


async def test_a_bug_in_the_endpoint_is_a_coded_500(
        http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """An exception escaping the endpoint (a bug) is answered as one: JSON with a code
    and the request id, logged with that id; never a plain-text 500 or a trace."""
    from server.http import GraphQLHTTP

    async def broken(*_args: object) -> None:
        raise RuntimeError("a bug in the endpoint")

    monkeypatch.setattr(GraphQLHTTP, "run", broken)
    with caplog.at_level(logging.ERROR, logger="crmgraph"):
        response = await http.post("/graphql", json={"query": "{ __typename }"},
                                   headers={"X-Request-Id": "bug-1"})
    assert response.status_code == 500
    assert media_type(response) == "application/json"
    body = assert_masked(response)
    assert codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert body["errors"][0]["extensions"]["requestId"] == "bug-1"
    assert response.headers["x-request-id"] == "bug-1"
    assert "a bug in the endpoint" not in response.text
    assert any("bug-1" in record.getMessage() for record in caplog.records)


async def test_graphiql_page_for_a_browser(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 200
    assert media_type(response) == "text/html"
    assert "graphiql" in response.text.lower()


async def test_get_without_query_and_without_html_is_400(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers=ACCEPT_JSON)
    assert response.status_code == 400
    assert codes(assert_masked(response)) == ["BAD_REQUEST"]


# --- malformed requests ---------------------------------------------------------------


async def test_text_plain_body_is_415(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert codes(assert_masked(response)) == ["UNSUPPORTED_MEDIA_TYPE"]


async def test_json_with_charset_is_accepted(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert without_cost(response.json()) == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"query": "{ __typename }"', id="malformed-json"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b'[{"query": "{ __typename }"}]', id="array"),
        pytest.param(b'"{ __typename }"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"{}", id="missing-query"),
        pytest.param(b'{"query": ""}', id="empty-query"),
        pytest.param(b'{"query": 42}', id="query-not-a-string"),
        pytest.param(b'{"query": "{ __typename }", "variables": [1, 2]}', id="variables-array"),
        pytest.param(b'{"query": "{ __typename }", "variables": []}', id="variables-empty-array"),
        pytest.param(b'{"query": "{ __typename }", "variables": "{}"}', id="variables-string"),
        pytest.param(b'{"query": "{ __typename }", "variables": 0}', id="variables-zero"),
        pytest.param(b'{"query": "{ __typename }", "operationName": 7}', id="operation-name"),
        pytest.param(b'{"query": "{ __typename }", "extensions": [1]}', id="extensions-array"),
    ],
)
async def test_malformed_request_is_400_bad_request(
    http: httpx.AsyncClient, body: bytes, accept: str
) -> None:
    response = await http.post(
        "/graphql", content=body, headers={"Content-Type": JSON, "Accept": accept}
    )
    assert response.status_code == 400
    assert media_type(response) == accept
    body_json = assert_masked(response)
    assert codes(body_json) == ["BAD_REQUEST"]
    assert "data" not in body_json


async def test_null_variables_and_operation_name_are_absent(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        json={
            "query": "{ __typename }",
            "variables": None,
            "operationName": None,
            "extensions": None,
        },
    )
    assert response.status_code == 200
    assert without_cost(response.json()) == {"data": {"__typename": "Query"}}


# --- request ids ------------------------------------------------------------------------


async def test_request_id_is_echoed(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "edge-7f3a.1_B"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "edge-7f3a.1_B"


async def test_request_id_is_generated(http: httpx.AsyncClient) -> None:
    first = await http.post("/graphql", json={"query": "{ __typename }"})
    second = await http.post("/graphql", json={"query": "{ __typename }"})
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("given", ["has space", "x" * 65, "new\\nline", "<script>"])
async def test_unsafe_request_id_is_replaced(http: httpx.AsyncClient, given: str) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": given}
    )
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("method", "kwargs", "status"),
    [
        ("PUT", {"json": {"query": "{ __typename }"}}, 405),
        ("POST", {"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415),
        ("POST", {"content": b"{", "headers": {"Content-Type": JSON}}, 400),
        ("POST", {"json": {"query": "{ __typename }"}, "headers": {"Accept": "text/plain"}}, 406),
        (
            "POST",
            {"json": {"query": "{ __typename }"}, "headers": {"Authorization": "Bearer nope"}},
            401,
        ),
    ],
)
async def test_error_responses_carry_the_request_id(
    http: httpx.AsyncClient, method: str, kwargs: dict[str, Any], status: int
) -> None:
    options = dict(kwargs)  # the parameters are shared by every backend's run
    headers = {"X-Request-Id": "req-42", **options.pop("headers", {})}
    response = await http.request(method, "/graphql", headers=headers, **options)
    assert response.status_code == status
    assert response.headers["x-request-id"] == "req-42"


# --- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_no_token_is_unauthenticated_on_the_root_field(
    client: GraphQLClient, accept: str
) -> None:
    response = await client.post("{ viewer { name } }", headers={"Accept": accept})
    assert response.status_code == 200
    assert media_type(response) == accept
    body = assert_masked(response)
    assert body["data"] is None
    assert codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["path"] == ["viewer"]


async def test_typename_needs_no_token(client: GraphQLClient) -> None:
    response = await client.post("{ __typename }")
    assert response.status_code == 200
    assert without_cost(response.json()) == {"data": {"__typename": "Query"}}


async def test_valid_token_signs_in(client: GraphQLClient, org: Org) -> None:
    now = datetime.now(UTC)
    token = mint(user_id=org.manager_b.id, issued=now, expires=now + timedelta(minutes=5))
    data = await client.query("{ viewer { name role } }", token=token)
    assert data == {"viewer": {"name": "Manager B", "role": "MANAGER"}}


def _bad_tokens(org: Org) -> dict[str, str]:
    now = datetime.now(UTC)
    user = org.rep_a1.id
    return {
        "garbage": "Bearer not-a-jwt",
        "expired": "Bearer "
        + mint(user_id=user, issued=now - timedelta(hours=2), expires=now - timedelta(hours=1)),
        "other-secret": "Bearer "
        + mint(
            "another-secret-that-is-long-enough-for-hs256-xyz",
            user_id=user,
            issued=now,
            expires=now + timedelta(hours=1),
        ),
        "wrong-audience": "Bearer "
        + mint(user_id=user, issued=now, expires=now + timedelta(hours=1), aud="other"),
        "wrong-issuer": "Bearer "
        + mint(user_id=user, issued=now, expires=now + timedelta(hours=1), iss="other"),
        "unknown-user": "Bearer "
        + mint(user_id=987_654, issued=now, expires=now + timedelta(hours=1)),
        "non-numeric-subject": "Bearer "
        + jwt.encode(
            {
                "sub": "admin",
                "iat": now,
                "exp": now + timedelta(hours=1),
                "iss": "crmgraph",
                "aud": "crmgraph",
            },
            TEST_SECRET,
            algorithm="HS256",
        ),
        "alg-none": "Bearer "
        + jwt.encode(
            {
                "sub": str(user),
                "iat": now,
                "exp": now + timedelta(hours=1),
                "iss": "crmgraph",
                "aud": "crmgraph",
            },
            None,
            algorithm="none",
        ),
        "basic-scheme": "Basic dXNlcjpwYXNz",
        "token-scheme": f"Token {mint(user_id=user, issued=now, expires=now + timedelta(1))}",
        "bearer-without-token": "Bearer ",
    }


@pytest.mark.parametrize(
    "case",
    [
        "garbage",
        "expired",
        "other-secret",
        "wrong-audience",
        "wrong-issuer",
        "unknown-user",
        "non-numeric-subject",
        "alg-none",
        "basic-scheme",
        "token-scheme",
        "bearer-without-token",
    ],
)
async def test_bad_credentials_are_401(http: httpx.AsyncClient, org: Org, case: str) -> None:
    header = _bad_tokens(org)[case]
    response = await http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert media_type(response) == JSON
    body = assert_masked(response)
    assert codes(body) == ["UNAUTHENTICATED"]
    assert "data" not in body


async def test_expired_token_says_so(http: httpx.AsyncClient, org: Org) -> None:
    response = await http.post(
        "/graphql",
        json={"query": "{ viewer { name } }"},
        headers={"Authorization": _bad_tokens(org)["expired"]},
    )
    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]


async def test_deactivated_user_is_401(client: GraphQLClient, org: Org) -> None:
    former = await make_user(client.db, Role.REP, team=org.team_a, active=False)
    response = await client.post("{ viewer { name } }", as_user=former)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert codes(assert_masked(response)) == ["UNAUTHENTICATED"]


async def test_bad_token_is_401_also_under_graphql_response_json(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        json={"query": "{ viewer { name } }"},
        headers={"Authorization": "Bearer x.y.z", **ACCEPT_GRAPHQL_RESPONSE},
    )
    assert response.status_code == 401
    assert media_type(response) == GRAPHQL_RESPONSE
    assert codes(assert_masked(response)) == ["UNAUTHENTICATED"]


# --- errors are coded and masked --------------------------------------------------------


async def test_invalid_global_id_is_bad_user_input(client: GraphQLClient, org: Org) -> None:
    response = await client.post('{ account(id: "garbage") { id } }', as_user=org.admin)
    assert response.status_code == 200
    body = assert_masked(response)
    assert body["data"] == {"account": None}
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_global_id_of_another_type_is_bad_user_input(client: GraphQLClient, org: Org) -> None:
    response = await client.post(
        "query ($id: ID!) { account(id: $id) { id } }", {"id": gid(org.rep_a1)}, as_user=org.admin
    )
    body = assert_masked(response)
    assert body["data"] == {"account": None}
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_unexpected_error_is_masked_and_logged(
    client: GraphQLClient,
    org: Org,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken_list_teams(*, loaders: Loaders) -> list[Any]:
        async with loaders.db.read() as connection:
            await connection.execute(text("SELECT secret FROM no_such_table"))
        return []  # pragma: no cover

    monkeypatch.setattr(users_resolvers, "list_teams", broken_list_teams)
    caplog.set_level(logging.ERROR, logger="crmgraph.errors")
    response = await client.post(
        "{ teams { name } }",
        as_user=org.admin,
        headers={"X-Request-Id": "trace-broken-1"},
    )
    assert response.status_code == 200
    body = assert_masked(response)
    assert body["data"] is None  # teams is non-null, so the whole result is null
    [error] = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["path"] == ["teams"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "trace-broken-1"}
    # The server keeps what the client may not see, under the same request id.
    logged = [r for r in caplog.records if "trace-broken-1" in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None
    assert "no_such_table" in caplog.text


async def test_an_error_escaping_before_execution_is_masked_and_logged(
    client: GraphQLClient,
    org: Org,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception out of an extension's hook (here reading the viewer), which is no
    database fault, ends the operation before it runs: the client gets a coded, masked
    error, never the exception's text; a fault there is told as one."""

    async def broken_viewer(_db: Database, _user_id: int) -> None:
        raise RuntimeError("secret detail of a bug")

    monkeypatch.setattr(server_auth, "load_viewer", broken_viewer)
    caplog.set_level(logging.ERROR, logger="crmgraph.errors")
    response = await client.post("{ viewer { name } }", as_user=org.admin,
                                 headers={"X-Request-Id": "trace-broken-2"})
    body = assert_masked(response)
    assert "secret detail" not in response.text
    [error] = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "trace-broken-2"}
    assert "secret detail of a bug" in caplog.text

    async def lost_viewer(_db: Database, _user_id: int) -> None:
        raise asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress")

    monkeypatch.setattr(server_auth, "load_viewer", lost_viewer)
    response = await client.post("{ viewer { name } }", as_user=org.admin)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "another operation" not in response.text


async def test_every_error_response_is_coded_and_masked(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
) -> None:
    headers = auth(client, org.admin)
    requests = [
        {"query": "{ viewer { name "},
        {"query": "{ noSuchField }"},
        {
            "query": "query ($n: Int) { accounts(first: $n) { totalCount } }",
            "variables": {"n": 1.5},
        },
        {"query": '{ account(id: "garbage") { id } }'},
        {"query": '{ node(id: "QWNjb3VudDp4") { id } }'},
        {"query": '{ nodes(ids: ["", "%%%", "VXNlcjp4"]) { id } }'},
        {"query": "{ accounts(first: 100000) { totalCount } }"},
        {"query": '{ accounts(after: "AAAA") { totalCount } }'},
        {"query": '{ accounts(filter: {id: {eq: "garbage"}}) { totalCount } }'},
        {"query": "{ accounts(first: 1, last: 1) { totalCount } }"},
        {"query": "subscription { viewer { name } }"},
        {"query": "{ viewer { name } }", "operationName": "Missing"},
    ]
    for accept in (JSON, GRAPHQL_RESPONSE):
        for request in requests:
            response = await http.post(
                "/graphql", json=request, headers={**headers, "Accept": accept}
            )
            assert response.status_code in (200, 400), (request, response.text)
            assert_masked(response)


async def test_cors_preflight_and_response_headers_for_allowed_origins(settings, db):
    allowed = dataclasses.replace(settings, cors_origins="https://app.example, https://b.example")
    application = create_app(allowed)
    async with application.router.lifespan_context(application), httpx.AsyncClient(
        transport=httpx.ASGITransport(application), base_url="http://testserver"
    ) as http:
        preflight = await http.options("/graphql", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        refused = await http.options("/graphql", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in refused.headers
        response = await http.post("/graphql", json={"query": "{ __typename }"},
                                   headers={"Origin": "https://b.example"})
        assert response.headers["access-control-allow-origin"] == "https://b.example"
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
