"""What one request may ask: depth, aliases, tokens, nesting, page sizes, filters, cursors
and body size. A hostile document gets a coded error, never a 500 and never a hang."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from models.db import Database
from server.settings import Settings
from tests.factories import Org, gid, make_account, make_contact, make_org
from tests.graphql_client import GraphQLClient, without_cost

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
LEAKS = re.compile(r"Traceback|sqlalchemy|SELECT|/work/|\.py\b", re.IGNORECASE)


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


def parents(levels: int, leaf: str = "id") -> str:
    """``accounts { edges { node { parent { ... parent { id } } } } } }``: 4 + levels deep."""
    inner = leaf
    for _ in range(levels):
        inner = f"parent {{ {inner} }}"
    return f"{{ accounts {{ edges {{ node {{ {inner} }} }} }} }}"


async def refused(
    client: GraphQLClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    as_user: Any,
    code: str,
    accept: str = JSON,
) -> dict[str, Any]:
    """The body of a request refused before it ran: 200 under application/json and
    400 under application/graphql-response+json, no data, one coded error."""
    response = await client.post(query, variables, as_user=as_user, headers={"Accept": accept})
    assert response.status_code == (400 if accept == GRAPHQL_RESPONSE else 200), response.text
    assert not LEAKS.search(response.text), response.text
    body = response.json()
    assert "data" not in body, body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    return body


async def field_error(
    client: GraphQLClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    as_user: Any,
    code: str,
) -> dict[str, Any]:
    """The body of a request whose root field failed with one coded error."""
    response = await client.post(query, variables, as_user=as_user)
    assert response.status_code == 200, response.text
    assert not LEAKS.search(response.text), response.text
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    return body


# --- depth ------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_depth_50_is_too_complex(client: GraphQLClient, org: Org, accept: str) -> None:
    body = await refused(
        client, parents(50), as_user=org.admin, code="QUERY_TOO_COMPLEX", accept=accept
    )
    assert "15" in body["errors"][0]["message"]


async def test_depth_limit_boundary(client: GraphQLClient, org: Org, settings: Settings) -> None:
    parent = await make_account(client.db, org.admin, name="Parent")
    await make_account(client.db, org.admin, name="Child", parent=parent)
    # accounts, edges, node and the leaf make 4 levels; the rest are parents.
    deepest = settings.max_depth - 4
    data = await client.query(parents(deepest, "name"), as_user=org.admin)
    names = [edge["node"] for edge in data["accounts"]["edges"]]
    assert {"parent": None} in names
    await refused(client, parents(deepest + 1, "name"), as_user=org.admin, code="QUERY_TOO_COMPLEX")


async def test_depth_counts_through_fragments(client: GraphQLClient, org: Org) -> None:
    fragments = (
        "\n".join(f"fragment P{i} on Account {{ parent {{ ...P{i + 1} }} }}" for i in range(30))
        + "\nfragment P30 on Account { id }"
    )
    query = "{ accounts { edges { node { ...P0 } } } }\n" + fragments
    await refused(client, query, as_user=org.admin, code="QUERY_TOO_COMPLEX")


async def test_depth_counts_through_inline_fragments(client: GraphQLClient, org: Org) -> None:
    inner = "id"
    for _ in range(30):
        inner = f"... on Account {{ parent {{ {inner} }} }}"
    query = f"{{ accounts {{ edges {{ node {{ {inner} }} }} }} }}"
    await refused(client, query, as_user=org.admin, code="QUERY_TOO_COMPLEX")


async def test_fragment_cycle_is_a_validation_error(client: GraphQLClient, org: Org) -> None:
    query = """
        { accounts { edges { node { ...A } } } }
        fragment A on Account { parent { ...B } }
        fragment B on Account { parent { ...A } }
    """
    await refused(client, query, as_user=org.admin, code="GRAPHQL_VALIDATION_FAILED")


async def test_depth_200_documents_are_refused_not_crashed(client: GraphQLClient, org: Org) -> None:
    for levels in (150, 199, 200, 250, 1000):
        body = await refused(client, parents(levels), as_user=org.admin, code="QUERY_TOO_COMPLEX")
        assert body["errors"][0]["message"]


# --- aliases and tokens ------------------------------------------------------------------


async def test_1000_aliases_are_too_complex(client: GraphQLClient, org: Org) -> None:
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }"
    await refused(
        client, query, as_user=org.admin, code="QUERY_TOO_COMPLEX", accept=GRAPHQL_RESPONSE
    )


async def test_alias_limit_boundary(client: GraphQLClient, org: Org, settings: Settings) -> None:
    limit = settings.max_aliases
    allowed = "{ viewer { " + " ".join(f"n{i}: name" for i in range(limit)) + " } }"
    data = await client.query(allowed, as_user=org.admin)
    assert len(data["viewer"]) == limit
    assert set(data["viewer"].values()) == {"Admin"}
    over = "{ viewer { " + " ".join(f"n{i}: name" for i in range(limit + 1)) + " } }"
    await refused(client, over, as_user=org.admin, code="QUERY_TOO_COMPLEX")


async def test_aliases_count_across_fragments(
    client: GraphQLClient, org: Org, settings: Settings
) -> None:
    half = settings.max_aliases // 2 + 1
    query = (
        "{ viewer { ...A ...B } }\n"
        "fragment A on User { " + " ".join(f"a{i}: name" for i in range(half)) + " }\n"
        "fragment B on User { " + " ".join(f"b{i}: name" for i in range(half)) + " }"
    )
    await refused(client, query, as_user=org.admin, code="QUERY_TOO_COMPLEX")


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_too_many_tokens_is_too_complex(
    client: GraphQLClient, org: Org, settings: Settings, accept: str
) -> None:
    query = "{ viewer { " + " name" * (settings.max_tokens + 10) + " } }"
    await refused(client, query, as_user=org.admin, code="QUERY_TOO_COMPLEX", accept=accept)


def _ids_document(count: int) -> str:
    """A document of 31 tokens besides ``count`` strings in a default value; operation B
    runs, and A (which uses the variable, as validation requires) does not."""
    ids = " ".join(f'"{i}"' for i in range(count))
    return (
        f"query A($ids: [ID!] = [{ids}]) {{ nodes(ids: $ids) {{ id }} }} query B {{ __typename }}"
    )


async def test_token_limit_boundary(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org, settings: Settings
) -> None:
    headers = {"Authorization": f"Bearer {client.token(org.admin)}"}
    response = await http.post(
        "/graphql",
        headers=headers,
        json={"query": _ids_document(settings.max_tokens - 31), "operationName": "B"},
    )
    assert response.status_code == 200
    assert without_cost(response.json()) == {"data": {"__typename": "Query"}}
    response = await http.post(
        "/graphql",
        headers=headers,
        json={"query": _ids_document(settings.max_tokens - 30), "operationName": "B"},
    )
    assert response.status_code == 200
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
@pytest.mark.parametrize(
    "document",
    [
        pytest.param("{a" * 5_000 + "}" * 5_000, id="open-braces"),
        pytest.param("{" + "a {" * 5_000 + "a" + "}" * 5_001, id="selection-sets"),
        pytest.param(
            "{ accounts(filter: " + "{not: " * 5_000 + "{}" + "}" * 5_000 + ") { totalCount } }",
            id="input-objects",
        ),
        pytest.param("{ nodes(ids: " + "[" * 5_000 + "]" * 5_000 + ") { id } }", id="lists"),
    ],
)
async def test_parser_recursion_bombs_are_coded_errors(
    client: GraphQLClient, org: Org, document: str, accept: str
) -> None:
    response = await client.post(document, as_user=org.admin, headers={"Accept": accept})
    assert response.status_code == (400 if accept == GRAPHQL_RESPONSE else 200)
    assert not LEAKS.search(response.text)
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] in ("QUERY_TOO_COMPLEX", "GRAPHQL_PARSE_FAILED")


def _nested_variables_body(levels: int) -> bytes:
    query = "query ($f: AccountFilter) { accounts(filter: $f) { totalCount } }"
    nested = b'{"not": ' * levels + b"{}" + b"}" * levels
    return b'{"query": "' + query.encode() + b'", "variables": {"f": ' + nested + b"}}"


async def test_deeply_nested_variables_are_bad_user_input(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
) -> None:
    response = await http.post(
        "/graphql",
        content=_nested_variables_body(500),
        headers={"Content-Type": JSON, "Authorization": f"Bearer {client.token(org.admin)}"},
    )
    assert response.status_code == 200
    assert not LEAKS.search(response.text)
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


async def test_json_nested_beyond_the_parser_is_bad_request(
    http: httpx.AsyncClient, client: GraphQLClient, org: Org
) -> None:
    response = await http.post(
        "/graphql",
        content=_nested_variables_body(5_000),
        headers={"Content-Type": JSON, "Authorization": f"Bearer {client.token(org.admin)}"},
    )
    assert response.status_code == 400
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_REQUEST"]


# --- introspection -----------------------------------------------------------------------


async def test_introspection_query_works_for_a_signed_in_user(
    client: GraphQLClient, org: Org
) -> None:
    data = await client.query(get_introspection_query(descriptions=True), as_user=org.rep_a1)
    schema = data["__schema"]
    assert schema["queryType"]["name"] == "Query"
    assert schema["mutationType"]["name"] == "Mutation"
    names = {t["name"] for t in schema["types"]}
    assert {"Account", "AccountFilter", "Node", "PageInfo"} <= names


async def test_circular_introspection_is_refused(client: GraphQLClient, org: Org) -> None:
    inner = "name"
    for _ in range(6):
        inner = f"fields {{ type {{ ofType {{ name {inner} }} }} }}"
    response = await client.post(f"{{ __schema {{ types {{ {inner} }} }} }}", as_user=org.admin)
    assert response.status_code == 200
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"]


# --- page sizes, filters, cursors ---------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        "first: 100000",
        "first: -1",
        "last: 100000",
        "last: -1",
        "first: 501",
        "first: 1, last: 1",
    ],
)
async def test_bad_page_sizes_are_bad_user_input(
    client: GraphQLClient, org: Org, arguments: str
) -> None:
    body = await field_error(
        client,
        f"{{ accounts({arguments}) {{ totalCount }} }}",
        as_user=org.admin,
        code="BAD_USER_INPUT",
    )
    assert body["data"] is None
    assert body["errors"][0]["path"] == ["accounts"]


async def test_bad_page_size_on_a_nested_connection(client: GraphQLClient, org: Org) -> None:
    account = await make_account(client.db, org.admin)
    body = await field_error(
        client,
        "query ($id: ID!) { account(id: $id) { name contacts(first: 100000) { totalCount } } }",
        {"id": gid(account)},
        as_user=org.admin,
        code="BAD_USER_INPUT",
    )
    assert body["errors"][0]["path"] == ["account", "contacts"]


async def test_largest_page_is_allowed(client: GraphQLClient, org: Org, settings: Settings) -> None:
    await make_account(client.db, org.admin, name="Only")
    data = await client.query(
        f"{{ accounts(first: {settings.max_page_size}) {{ edges {{ node {{ name }} }} }} }}",
        as_user=org.admin,
    )
    assert data == {"accounts": {"edges": [{"node": {"name": "Only"}}]}}


async def test_page_size_beyond_int_range_is_refused(client: GraphQLClient, org: Org) -> None:
    await refused(
        client,
        "{ accounts(first: 99999999999) { totalCount } }",
        as_user=org.admin,
        code="GRAPHQL_VALIDATION_FAILED",
    )
    await refused(
        client,
        "query ($n: Int) { accounts(first: $n) { totalCount } }",
        {"n": 99999999999},
        as_user=org.admin,
        code="BAD_USER_INPUT",
    )


def _not_nested(levels: int) -> str:
    inner = '{name: {eq: "x"}}'
    for _ in range(levels):
        inner = f"{{not: {inner}}}"
    return inner


async def test_filter_nested_20_levels_is_bad_user_input(client: GraphQLClient, org: Org) -> None:
    body = await field_error(
        client,
        f"{{ accounts(filter: {_not_nested(20)}) {{ totalCount }} }}",
        as_user=org.admin,
        code="BAD_USER_INPUT",
    )
    assert "nested" in body["errors"][0]["message"]


async def test_filter_nested_20_levels_in_variables_is_bad_user_input(
    client: GraphQLClient, org: Org
) -> None:
    value: dict[str, Any] = {"name": {"eq": "x"}}
    for _ in range(20):
        value = {"not": value}
    await field_error(
        client,
        "query ($f: AccountFilter) { accounts(filter: $f) { totalCount } }",
        {"f": value},
        as_user=org.admin,
        code="BAD_USER_INPUT",
    )


async def test_shallow_not_filter_works(client: GraphQLClient, org: Org) -> None:
    await make_account(client.db, org.admin, name="Keep")
    await make_account(client.db, org.admin, name="Drop")
    data = await client.query(
        '{ accounts(filter: {not: {not: {not: {name: {eq: "Drop"}}}}}) '
        "{ edges { node { name } } } }",
        as_user=org.admin,
    )
    assert data == {"accounts": {"edges": [{"node": {"name": "Keep"}}]}}


async def test_too_many_filter_conditions_is_bad_user_input(
    client: GraphQLClient, org: Org
) -> None:
    conditions = ", ".join('{name: {eq: "x"}}' for _ in range(300))
    await field_error(
        client,
        f"{{ accounts(filter: {{or: [{conditions}]}}) {{ totalCount }} }}",
        as_user=org.admin,
        code="BAD_USER_INPUT",
    )


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "",
        "AAAA",
        "W10",
        "bnVsbA",
        "eyJhIjoxfQ",
        "!!!!",
        "WyJ4Il0",
    ],
)
async def test_invalid_cursor_is_bad_user_input(
    client: GraphQLClient, org: Org, cursor: str
) -> None:
    await make_account(client.db, org.admin)
    for argument in ("after", "before"):
        await field_error(
            client,
            f"query ($c: String) {{ accounts({argument}: $c) {{ totalCount }} }}",
            {"c": cursor},
            as_user=org.admin,
            code="BAD_USER_INPUT",
        )


async def test_cursor_of_another_ordering_is_bad_user_input(
    client: GraphQLClient, org: Org
) -> None:
    account = await make_account(client.db, org.admin)
    await make_contact(client.db, account)
    data = await client.query(
        "{ accounts(first: 1) { pageInfo { endCursor } } }", as_user=org.admin
    )
    cursor = data["accounts"]["pageInfo"]["endCursor"]
    page = await client.query(
        "query ($c: String) { accounts(after: $c) { edges { node { name } } } }",
        {"c": cursor},
        as_user=org.admin,
    )
    assert page == {"accounts": {"edges": []}}
    await field_error(
        client,
        "query ($c: String) { accounts(after: $c, orderBy: [{field: CREATED_AT, "
        "direction: DESC}]) { totalCount } }",
        {"c": cursor},
        as_user=org.admin,
        code="BAD_USER_INPUT",
    )
    await field_error(
        client,
        "query ($c: String) { contacts(after: $c) { totalCount } }",
        {"c": cursor},
        as_user=org.admin,
        code="BAD_USER_INPUT",
    )


# --- request body size ---------------------------------------------------------------------


def _body_of(size: int) -> bytes:
    """A valid request body of exactly ``size`` bytes."""
    head = b'{"query": "{ __typename }", "variables": {"pad": "'
    tail = b'"}}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    json.loads(body)
    return body


def _assert_too_large(response: httpx.Response, settings: Settings) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(JSON)
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert str(settings.max_body_bytes) in error["message"]


async def test_body_at_the_limit_is_read(http: httpx.AsyncClient, settings: Settings) -> None:
    response = await http.post(
        "/graphql", content=_body_of(settings.max_body_bytes), headers={"Content-Type": JSON}
    )
    assert response.status_code == 200
    assert without_cost(response.json()) == {"data": {"__typename": "Query"}}


async def test_body_over_the_limit_is_413(http: httpx.AsyncClient, settings: Settings) -> None:
    response = await http.post(
        "/graphql",
        content=_body_of(settings.max_body_bytes + 1),
        headers={"Content-Type": JSON, "X-Request-Id": "big-1"},
    )
    _assert_too_large(response, settings)
    assert response.headers["x-request-id"] == "big-1"


async def test_chunked_body_over_the_limit_is_413(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    body = _body_of(settings.max_body_bytes * 2)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for start in range(0, len(body), 64 * 1024):
            sent += 1
            yield body[start : start + 64 * 1024]

    response = await http.post("/graphql", content=chunks(), headers={"Content-Type": JSON})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    _assert_too_large(response, settings)
    # Refused once the limit was passed, not after reading all of it.
    assert sent <= settings.max_body_bytes // (64 * 1024) + 2 < len(body) // (64 * 1024)


async def test_chunked_body_under_the_limit_is_read(http: httpx.AsyncClient) -> None:
    body = _body_of(200_000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 10_000):
            yield body[start : start + 10_000]

    response = await http.post("/graphql", content=chunks(), headers={"Content-Type": JSON})
    assert response.status_code == 200
    assert without_cost(response.json()) == {"data": {"__typename": "Query"}}


async def test_declared_length_over_the_limit_is_refused_unread(
    app: Any, settings: Settings
) -> None:
    """A Content-Length over the limit is refused before a byte of the body is read."""
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(settings.max_body_bytes + 1).encode()),
        ],
        "state": {},
    }
    await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 413
    assert read == 0
