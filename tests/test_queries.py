"""Reading the graph: connections, filters, ordering, nodes, and statement counts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from loaders.ids import encode_id
from loaders.query import _page_row
from models.accounts import AccountType
from models.users import Role
from tests.factories import (
    gid,
    make_account,
    make_contact,
    make_offering_area,
    make_org,
    make_product,
    make_user,
    share,
)

ACCOUNT_PAGE = """
query($first: Int, $after: String, $last: Int, $before: String, $orderBy: [AccountOrder!],
      $filter: AccountFilter) {
  accounts(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy,
           filter: $filter) {
    edges { cursor node { name industry } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _names(client, user, filter: dict) -> list[str]:
    data = await client.query(
        "query($f: AccountFilter) { accounts(filter: $f, first: 500) { nodes { name } } }",
        {"f": filter}, as_user=user)
    return [n["name"] for n in data["accounts"]["nodes"]]


async def test_dashboard_query_makes_the_same_statements_for_10_and_100_accounts(client, db):
    org = await make_org(db)
    parent = await make_account(db, org.rep_a1, name="Parent Group")
    for i in range(100):
        account = await make_account(db, org.rep_a1 if i % 2 else org.rep_b1,
                                     name=f"Account {i:03}", parent=parent)
        for j in range(6):
            await make_contact(db, account, last_name=f"Person {j}")
    query = """query($n: Int) { accounts(first: $n, filter: {parentId: {isNull: false}}) {
        edges { node { id name owner { name } parent { name }
                       contacts(first: 5) { edges { node { name email } } } } } } }"""
    small, small_count = await client.counted(query, {"n": 10}, as_user=org.admin)
    large, large_count = await client.counted(query, {"n": 100}, as_user=org.admin)

    assert len(small["accounts"]["edges"]) == 10
    assert len(large["accounts"]["edges"]) == 100
    first = large["accounts"]["edges"][0]["node"]
    assert first["parent"] == {"name": "Parent Group"}
    assert len(first["contacts"]["edges"]) == 5
    # viewer, accounts, owners, parents, contacts: the shape decides, never the rows.
    assert small_count == large_count
    assert large_count <= 6


async def test_paging_forward_and_backward_visits_every_account_once(client, db):
    org = await make_org(db)
    names = [f"Company {c}" for c in "QWERTYUIOPASDFGHJKLZ"]
    for name in names:
        await make_account(db, org.rep_a1, name=name)

    seen, after = [], None
    while True:
        page = (await client.query(ACCOUNT_PAGE, {"first": 3, "after": after},
                                   as_user=org.rep_a1))["accounts"]
        seen += [e["node"]["name"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(names)

    backwards, before = [], None
    while True:
        page = (await client.query(ACCOUNT_PAGE, {"last": 4, "before": before},
                                   as_user=org.rep_a1))["accounts"]
        backwards = [e["node"]["name"] for e in page["edges"]] + backwards
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert backwards == sorted(names)


async def test_ordering_by_a_nullable_field_in_both_directions(client, db):
    org = await make_org(db)
    industries = ["Retail", None, "Energy", None, "Banking", "Retail", None, "Agriculture"]
    for i, industry in enumerate(industries):
        await make_account(db, org.admin, name=f"A{i}", industry=industry)

    # NULLs are the greatest value: last ascending, first descending; the second key
    # still ascends within one industry.
    expectations = {
        "ASC": ["A7", "A4", "A2", "A0", "A5", "A1", "A3", "A6"],
        "DESC": ["A1", "A3", "A6", "A0", "A5", "A2", "A4", "A7"],
    }
    for direction, expected in expectations.items():
        order = [{"field": "INDUSTRY", "direction": direction}, {"field": "NAME"}]
        whole = (await client.query(ACCOUNT_PAGE, {"first": 50, "orderBy": order},
                                    as_user=org.admin))["accounts"]["edges"]
        assert [e["node"]["name"] for e in whole] == expected

        paged, after = [], None
        while True:
            page = (await client.query(ACCOUNT_PAGE, {"first": 3, "after": after,
                                                      "orderBy": order},
                                       as_user=org.admin))["accounts"]
            paged += [e["node"]["name"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert paged == [e["node"]["name"] for e in whole]


async def test_a_cursor_only_fits_its_own_ordering(client, db):
    org = await make_org(db)
    for i in range(3):
        await make_account(db, org.admin, name=f"A{i}")
    page = (await client.query(ACCOUNT_PAGE, {"first": 1}, as_user=org.admin))["accounts"]
    errors = await client.errors(ACCOUNT_PAGE, {
        "first": 1, "after": page["pageInfo"]["endCursor"],
        "orderBy": [{"field": "CREATED_AT"}]}, as_user=org.admin)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_string_enum_id_and_logical_filters(client, db):
    org = await make_org(db)
    await make_account(db, org.rep_a1, name="Nordic Steel Oy", industry="Manufacturing",
                       city="Tampere")
    await make_account(db, org.rep_a1, name="Steelworks AB", industry="Manufacturing",
                       type=AccountType.PROSPECT)
    await make_account(db, org.rep_b1, name="Green Energy 100%", industry="Energy")
    await make_account(db, org.rep_b1, name="Under_score Ltd")

    assert await _names(client, org.admin, {"name": {"contains": "STEEL"}}) == [
        "Nordic Steel Oy", "Steelworks AB"]
    assert await _names(client, org.admin, {"name": {"startsWith": "steel"}}) == [
        "Steelworks AB"]
    # LIKE wildcards in the input are matched literally.
    assert await _names(client, org.admin, {"name": {"contains": "100%"}}) == [
        "Green Energy 100%"]
    assert await _names(client, org.admin, {"name": {"contains": "_"}}) == ["Under_score Ltd"]
    assert await _names(client, org.admin, {"type": {"eq": "PROSPECT"}}) == ["Steelworks AB"]
    assert await _names(client, org.admin, {"industry": {"isNull": True}}) == [
        "Under_score Ltd"]
    assert await _names(client, org.admin, {"ownerId": {"eq": gid(org.rep_b1)}}) == [
        "Green Energy 100%", "Under_score Ltd"]
    assert await _names(client, org.admin, {
        "or": [{"city": {"eq": "Tampere"}}, {"industry": {"eq": "Energy"}}]}) == [
        "Green Energy 100%", "Nordic Steel Oy"]
    assert await _names(client, org.admin, {
        "industry": {"in": ["Manufacturing", "Energy"]},
        "not": {"name": {"contains": "steel"}}}) == ["Green Energy 100%"]
    assert await _names(client, org.admin, {
        "and": [{"industry": {"eq": "Manufacturing"}}, {"type": {"ne": "PROSPECT"}}]}) == [
        "Nordic Steel Oy"]


async def test_filters_on_related_records(client, db):
    org = await make_org(db)
    with_ceo = await make_account(db, org.rep_a1, name="Has CEO")
    await make_contact(db, with_ceo, last_name="Boss", title="CEO", email_consent=True)
    await make_contact(db, with_ceo, last_name="Clerk", title="Clerk", email_consent=True)
    no_consent = await make_account(db, org.rep_b1, name="No consent")
    await make_contact(db, no_consent, last_name="Quiet", title="CTO", email_consent=False)
    await make_account(db, org.rep_b1, name="Empty")

    assert await _names(client, org.admin, {"contacts": {"some": {"title": {"eq": "CEO"}}}}
                        ) == ["Has CEO"]
    assert await _names(client, org.admin, {"contacts": {"none": {"title": {"eq": "CEO"}}}}
                        ) == ["Empty", "No consent"]
    assert await _names(client, org.admin, {
        "contacts": {"every": {"emailConsent": {"eq": True}}}}) == ["Empty", "Has CEO"]
    assert await _names(client, org.admin, {"owner": {"team": {"name": {"eq": "Team B"}}}}
                        ) == ["Empty", "No consent"]
    data = await client.query("""{ contacts(filter: {account: {name: {eq: "Has CEO"}}},
        orderBy: [{field: LAST_NAME, direction: DESC}]) { totalCount nodes { lastName } } }""",
                              as_user=org.admin)
    assert data["contacts"] == {"totalCount": 2,
                                "nodes": [{"lastName": "Clerk"}, {"lastName": "Boss"}]}


async def test_total_counts_and_nested_connections(client, db):
    org = await make_org(db)
    group = await make_account(db, org.admin, name="Group")
    for i in range(3):
        child = await make_account(db, org.admin, name=f"Sub {i}", parent=group)
        for j in range(i + 1):
            await make_contact(db, child, last_name=f"C{j}", title="Buyer" if j else "CEO")
    data = await client.query("""{
      accounts(filter: {name: {startsWith: "Sub"}}, first: 2) {
        totalCount
        nodes { name contacts(first: 1, filter: {title: {eq: "Buyer"}}) {
          totalCount nodes { lastName } pageInfo { hasNextPage } } }
      }
      group: accounts(filter: {name: {eq: "Group"}}) { nodes { children(first: 2) {
        totalCount nodes { name } pageInfo { hasNextPage } } } }
      teams { name manager { name } members(orderBy: [{field: NAME, direction: DESC}]) {
        totalCount nodes { name } } }
    }""", as_user=org.admin)
    assert data["accounts"]["totalCount"] == 3
    assert data["accounts"]["nodes"] == [
        {"name": "Sub 0", "contacts": {"totalCount": 0, "nodes": [],
                                       "pageInfo": {"hasNextPage": False}}},
        {"name": "Sub 1", "contacts": {"totalCount": 1, "nodes": [{"lastName": "C1"}],
                                       "pageInfo": {"hasNextPage": False}}},
    ]
    assert data["group"]["nodes"][0]["children"] == {
        "totalCount": 3, "nodes": [{"name": "Sub 0"}, {"name": "Sub 1"}],
        "pageInfo": {"hasNextPage": True}}
    assert data["teams"][0] == {
        "name": "Team A", "manager": {"name": "Manager A"},
        "members": {"totalCount": 3, "nodes": [{"name": "Rep A2"}, {"name": "Rep A1"},
                                               {"name": "Manager A"}]}}


async def test_node_and_nodes_resolve_every_type_in_order(client, db):
    org = await make_org(db)
    account = await make_account(db, org.rep_a1, name="Acme")
    contact = await make_contact(db, account, last_name="Doe", first_name="Jane")
    area = await make_offering_area(db, "SW")
    product = await make_product(db, area, code="LIC", list_price=Decimal("1234.5"))
    ids = [gid(account), gid(contact), gid(org.rep_a1), gid(org.team_a), gid(product),
           gid(area), gid(org.partner_org)]
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
        ... on Account { name } ... on Contact { name } ... on User { name }
        ... on Team { name } ... on Product { code listPrice currency createdAt }
        ... on OfferingArea { code } ... on PartnerOrg { name } } }"""
    data = await client.query(query, {"ids": ids}, as_user=org.admin)
    nodes = data["nodes"]
    assert [n["__typename"] for n in nodes] == [
        "Account", "Contact", "User", "Team", "Product", "OfferingArea", "PartnerOrg"]
    assert [n["id"] for n in nodes] == ids
    assert nodes[1]["name"] == "Jane Doe"
    assert nodes[4]["listPrice"] == "1234.50"
    assert datetime.fromisoformat(nodes[4]["createdAt"]).utcoffset() is not None

    missing = encode_id("Account", 999_999)
    data = await client.query("query($id: ID!) { node(id: $id) { id } }", {"id": missing},
                              as_user=org.admin)
    assert data["node"] is None
    errors = await client.errors('{ node(id: "not-an-id") { id } }', as_user=org.admin)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_partner_reads_only_what_is_shared_by_every_path(client, db):
    org = await make_org(db)
    parent = await make_account(db, org.rep_b1, name="Hidden Parent")
    shared = await make_account(db, org.rep_a1, name="Shared", parent=parent)
    hidden = await make_account(db, org.rep_b1, name="Hidden")
    hidden_child = await make_account(db, org.rep_b1, name="Hidden Child", parent=shared)
    shared_contact = await make_contact(db, shared, last_name="Visible")
    hidden_contact = await make_contact(db, hidden, last_name="Secret")
    await share(db, shared, org.partner_org)
    assert hidden_child.id

    data = await client.query("""{ accounts { totalCount nodes { name owner { name }
        parent { name } children { totalCount } contacts { nodes { lastName } } } }
        contacts { totalCount nodes { lastName account { name } } }
        users { nodes { name } } teams { name } viewer { name team { name } } }""",
                              as_user=org.partner)
    assert data["accounts"] == {"totalCount": 1, "nodes": [{
        "name": "Shared", "owner": {"name": "Rep A1"}, "parent": None,
        "children": {"totalCount": 0}, "contacts": {"nodes": [{"lastName": "Visible"}]}}]}
    assert data["contacts"] == {"totalCount": 1, "nodes": [
        {"lastName": "Visible", "account": {"name": "Shared"}}]}
    assert sorted(u["name"] for u in data["users"]["nodes"]) == ["Partner", "Rep A1"]
    assert data["teams"] == []
    assert data["viewer"] == {"name": "Partner", "team": None}

    by_id = await client.query("""query($a: ID!, $c: ID!, $ids: [ID!]!) {
        account(id: $a) { name } contact(id: $c) { lastName } node(id: $a) { id }
        nodes(ids: $ids) { id } }""", {"a": gid(hidden), "c": gid(hidden_contact),
                                      "ids": [gid(hidden), gid(shared_contact), gid(org.team_a)]},
                               as_user=org.partner)
    assert by_id == {"account": None, "contact": None, "node": None,
                     "nodes": [None, {"id": gid(shared_contact)}, None]}

    # A filter on related records cannot reveal what the partner cannot read.
    assert await _names(client, org.partner, {"name": {"contains": "hidden"}}) == []
    assert await _names(client, org.partner, {
        "owner": {"name": {"eq": "Rep B1"}}}) == []


@pytest.mark.parametrize("role", [Role.REP, Role.MANAGER])
async def test_staff_read_every_account_and_contact(client, db, role):
    org = await make_org(db)
    viewer = await make_user(db, role, team=org.team_b)
    await make_contact(db, await make_account(db, org.rep_a1, name="Other team's"))
    data = await client.query("{ accounts { totalCount } contacts { totalCount } }",
                              as_user=viewer)
    assert data == {"accounts": {"totalCount": 1}, "contacts": {"totalCount": 1}}


async def test_products_and_offering_areas(client, db):
    org = await make_org(db)
    software = await make_offering_area(db, "SW")
    services = await make_offering_area(db, "SVC")
    await make_product(db, software, code="B", list_price=Decimal("99.90"))
    await make_product(db, software, code="A", list_price=Decimal("1500"))
    await make_product(db, services, code="C", list_price=Decimal("120.125"), active=False)
    data = await client.query("""{
      offeringAreas { code }
      cheap: products(filter: {listPrice: {lt: "1000"}}, orderBy: [{field: LIST_PRICE,
                      direction: DESC}]) { nodes { code listPrice active offeringArea { code } } }
      sw: products(filter: {offeringArea: {code: {eq: "SW"}}}) { nodes { code } }
    }""", as_user=org.partner)
    assert data["offeringAreas"] == [{"code": "SVC"}, {"code": "SW"}]
    assert data["cheap"]["nodes"] == [
        {"code": "C", "listPrice": "120.125", "active": False, "offeringArea": {"code": "SVC"}},
        {"code": "B", "listPrice": "99.90", "active": True, "offeringArea": {"code": "SW"}},
    ]
    assert data["sw"]["nodes"] == [{"code": "A"}, {"code": "B"}]


def test_child_page_rows_read_as_rows_do() -> None:
    """Rows of nested pages are named tuples (fast to read by name): by name, by
    index and unpacked as a Row is; columns a named tuple cannot name keep the Row."""
    page_row = _page_row(("id", "account_id", "name"))
    assert page_row is not None
    row = tuple.__new__(page_row, (7, 3, "Acme"))
    assert (row.id, row[1], *row) == (7, 3, 7, 3, "Acme")
    assert _page_row(("id", "_secret")) is None
    assert _page_row(("id", "class")) is None
