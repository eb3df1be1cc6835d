"""Input the databases cannot take is refused at the edge with a code, never a 500."""

from __future__ import annotations

import pytest

from tests.factories import gid, make_account, make_org

QUERY_ACCOUNTS = "query($f: AccountFilter) { accounts(filter: $f) { totalCount } }"
QUERY_PRODUCTS = "query($f: ProductFilter) { products(filter: $f) { totalCount } }"


@pytest.mark.parametrize(("query", "filter"), [
    (QUERY_ACCOUNTS, {"name": {"contains": "a\u0000b"}}),
    (QUERY_ACCOUNTS, {"name": {"eq": "\u0000"}}),
    (QUERY_ACCOUNTS, {"createdAt": {"gt": "2026-01-01T00:00:00"}}),
    (QUERY_ACCOUNTS, {"createdAt": {"gt": "yesterday"}}),
    (QUERY_PRODUCTS, {"listPrice": {"gt": "1e1000000"}}),
    (QUERY_PRODUCTS, {"listPrice": {"gt": "NaN"}}),
    (QUERY_PRODUCTS, {"listPrice": {"lt": "-Infinity"}}),
])
async def test_filters_refuse_what_no_database_stores(client, db, query, filter):
    org = await make_org(db)
    response = await client.post(query, {"f": filter}, as_user=org.admin)
    body = response.json()
    assert response.status_code == 200
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_an_offset_datetime_filter_works(client, db):
    org = await make_org(db)
    await make_account(db, org.admin, name="Now")
    data = await client.query(QUERY_ACCOUNTS, {"f": {"createdAt": {
        "gt": "2000-01-01T00:00:00+02:00"}}}, as_user=org.admin)
    assert data["accounts"]["totalCount"] == 1


async def test_a_nul_character_in_a_mutation_is_a_validation_error(client, db):
    org = await make_org(db)
    response = await client.post(
        """mutation($name: String!) { createAccount(input: {name: $name}) {
            account { id } userErrors { field code } } }""",
        {"name": "Acme\u0000Corp"}, as_user=org.admin)
    payload = response.json()["data"]["createAccount"]
    assert payload == {"account": None, "userErrors": [{"field": "name", "code": "VALIDATION"}]}


async def test_nodes_with_one_bad_id_fails_before_loading(client, db):
    org = await make_org(db)
    account = await make_account(db, org.admin)
    errors = await client.errors("query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                                 {"ids": [gid(account), "%%%"]}, as_user=org.admin)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
