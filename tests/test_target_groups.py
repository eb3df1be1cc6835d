"""Target groups: saved filters that mean what the same filter means in a query, static
members and exclusions, paging of members, visibility, saving and changing a group, and
the statements a members page costs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from loaders.ids import decode_id, encode_id
from models.db import Database
from models.target_groups import TargetGroup, TargetGroupEntry
from tests.factories import (
    gid,
    make_account,
    make_contact,
    make_opportunity,
    make_org,
    make_pipeline,
    make_target_group,
    share,
)

PAYLOAD = """targetGroup { id version name kind visibility description filter memberCount
                         owner { name } }
             userErrors { field code message }"""

CREATE = f"""mutation($input: CreateTargetGroupInput!) {{
  createTargetGroup(input: $input) {{ {PAYLOAD} }} }}"""
UPDATE = f"""mutation($input: UpdateTargetGroupInput!) {{
  updateTargetGroup(input: $input) {{ {PAYLOAD} }} }}"""
DELETE = """mutation($input: DeleteTargetGroupInput!) {
  deleteTargetGroup(input: $input) { deletedTargetGroupId userErrors { field code message } } }"""
ENTRY_MUTATIONS = ("addTargetGroupMembers", "excludeTargetGroupMembers",
                   "removeTargetGroupMembers")

GROUP = """query($id: ID!) { targetGroup(id: $id) {
  id version name kind visibility filter memberCount contactCount
  members(first: 500) {
    nodes { id ... on Account { name } ... on Contact { lastName } }
    totalCount } } }"""

MEMBER_PAGE = """query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  targetGroup(id: $id) {
    members(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { id ... on Account { name } ... on Contact { lastName } } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      totalCount } } }"""

ACCOUNTS = """query($f: AccountFilter) { accounts(filter: $f, first: 500) {
  nodes { name } } }"""
CONTACTS = """query($f: ContactFilter) { contacts(filter: $f, first: 500) {
  nodes { lastName } } }"""

OPEN_OVER_10K_IN_SOFTWARE = {
    "industry": {"eq": "Software"},
    "opportunities": {"some": {"outcome": {"eq": "OPEN"}, "amount": {"gt": "10000"}}},
}


# --- helpers ------------------------------------------------------------------------------


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


async def create(client, user, **fields: Any) -> dict[str, Any]:
    """The createTargetGroup payload."""
    data = await client.query(CREATE, {"input": fields}, as_user=user)
    return data["createTargetGroup"]


async def created(client, user, **fields: Any) -> dict[str, Any]:
    """A new group, made through the API; it must have been accepted."""
    payload = await create(client, user, **fields)
    assert payload["userErrors"] == [], payload
    return payload["targetGroup"]


async def update(client, user, **fields: Any) -> dict[str, Any]:
    data = await client.query(UPDATE, {"input": fields}, as_user=user)
    return data["updateTargetGroup"]


async def entries(client, user, mutation: str, group_id: str, records: list[Any]
                  ) -> dict[str, Any]:
    """The payload of add/exclude/removeTargetGroupMembers with these records."""
    query = f"""mutation($input: TargetGroupMembersInput!) {{
      {mutation}(input: $input) {{ {PAYLOAD} }} }}"""
    ids = [r if isinstance(r, str) else gid(r) for r in records]
    data = await client.query(query, {"input": {"id": group_id, "memberIds": ids}},
                              as_user=user)
    return data[mutation]


async def changed(client, user, mutation: str, group_id: str, records: list[Any]
                  ) -> dict[str, Any]:
    payload = await entries(client, user, mutation, group_id, records)
    assert payload["userErrors"] == [], payload
    return payload["targetGroup"]


async def group(client, user, group_id: str) -> dict[str, Any] | None:
    return (await client.query(GROUP, {"id": group_id}, as_user=user))["targetGroup"]


def names(found: dict[str, Any]) -> list[str]:
    return [n.get("name") or n["lastName"] for n in found["members"]["nodes"]]


async def member_names(client, user, group_id: str) -> list[str]:
    found = await group(client, user, group_id)
    assert found is not None
    return names(found)


async def account_names(client, user, filter: Any) -> list[str]:
    data = await client.query(ACCOUNTS, {"f": filter}, as_user=user)
    return [n["name"] for n in data["accounts"]["nodes"]]


async def contact_names(client, user, filter: Any) -> list[str]:
    data = await client.query(CONTACTS, {"f": filter}, as_user=user)
    return [n["lastName"] for n in data["contacts"]["nodes"]]


def key(group_id: str) -> int:
    """The database key behind a TargetGroup global id."""
    return decode_id(group_id, "TargetGroup")


async def stored_group(db: Database, group_id: str) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (await conn.execute(select(TargetGroup.__table__).where(
            TargetGroup.__table__.c.id == key(group_id)))).mappings().one_or_none()
    return dict(row) if row is not None else None


async def stored_entries(db: Database, group_key: int) -> set[tuple[int | None, int | None, bool]]:
    """(account id, contact id, excluded) of a group's entries, straight from the table."""
    table = TargetGroupEntry.__table__
    async with db.read() as conn:
        rows = await conn.execute(select(table.c.account_id, table.c.contact_id,
                                         table.c.excluded)
                                  .where(table.c.target_group_id == group_key))
    return {(r.account_id, r.contact_id, bool(r.excluded)) for r in rows}


async def group_rows(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(TargetGroup))).scalar_one()


async def entry_rows(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(
            select(func.count()).select_from(TargetGroupEntry))).scalar_one()


# --- 1. a dynamic ACCOUNT group -------------------------------------------------------------


async def _industry_world(db, org) -> dict[str, Any]:
    """Fifteen accounts across industries, with open, won and lost opportunities on both
    sides of 10,000 (and at exactly 10,000)."""
    _, (qualify, propose, negotiate, won, lost) = await make_pipeline(db)
    reps = [org.rep_a1, org.rep_a2, org.rep_b1]
    plan: list[tuple[str, str | None, list[tuple[Any, str]]]] = [
        ("Alpha Soft", "Software", [(qualify, "10000.01")]),
        ("Beta Soft", "Software", [(propose, "25000")]),
        ("Gamma Soft", "Software", [(negotiate, "10000")]),  # exactly 10,000: not over
        ("Delta Soft", "Software", [(won, "50000")]),  # over, but won
        ("Epsilon Soft", "Software", [(lost, "40000")]),  # over, but lost
        # open and over, but never the same opportunity
        ("Zeta Soft", "Software", [(qualify, "5000"), (won, "20000")]),
        ("Eta Soft", "Software", [(qualify, "9000"), (negotiate, "12000")]),
        ("Theta Soft", "Software", []),
        ("Iota Retail", "Retail", [(qualify, "30000")]),
        ("Kappa Retail", "Retail", [(won, "30000")]),
        ("Lambda Metal", "Manufacturing", [(propose, "11000")]),
        ("Mu Soft", "Software", [(propose, "100000")]),
        ("Nu Unknown", None, [(qualify, "50000")]),
        ("Xi Soft", "Software", [(lost, "15000"), (qualify, "10000")]),
        ("Omicron Soft", "Software", [(qualify, "10000.00"), (won, "10000.01")]),
    ]
    accounts = {}
    for n, (name, industry, deals) in enumerate(plan):
        account = await make_account(db, reps[n % 3], name=name, industry=industry)
        for phase, amount in deals:
            await make_opportunity(db, account, phase, amount=amount)
        accounts[name] = account
    return {"accounts": accounts, "qualify": qualify}


async def test_a_saved_filter_picks_the_accounts_the_same_filter_picks_in_a_query(client, db):
    org = await make_org(db)
    world = await _industry_world(db, org)
    accounts = world["accounts"]
    expected = ["Alpha Soft", "Beta Soft", "Eta Soft", "Mu Soft"]
    assert await account_names(client, org.rep_a1, OPEN_OVER_10K_IN_SOFTWARE) == expected

    made = await created(client, org.rep_a1, name="Big open software deals", kind="ACCOUNT",
                         visibility="SHARED", accountFilter=OPEN_OVER_10K_IN_SOFTWARE)
    for viewer in (org.rep_a1, org.rep_b1, org.admin):
        found = await group(client, viewer, made["id"])
        assert found is not None
        assert names(found) == expected
        assert found["memberCount"] == found["members"]["totalCount"] == 4
    # Nothing but the group row: the filter's matches are not copied into entries.
    assert await stored_entries(db, key(made["id"])) == set()

    # The filter runs when read: a new matching opportunity makes a new member.
    await make_opportunity(db, accounts["Theta Soft"], world["qualify"], amount="20000")
    expected = ["Alpha Soft", "Beta Soft", "Eta Soft", "Mu Soft", "Theta Soft"]
    assert await account_names(client, org.rep_a1, OPEN_OVER_10K_IN_SOFTWARE) == expected
    assert await member_names(client, org.rep_a2, made["id"]) == expected


async def test_static_members_and_exclusions_change_a_dynamic_group(client, db):
    org = await make_org(db)
    accounts = (await _industry_world(db, org))["accounts"]
    made = await created(client, org.rep_a1, name="Big open software deals", kind="ACCOUNT",
                         accountFilter=OPEN_OVER_10K_IN_SOFTWARE)
    group_id = made["id"]
    iota, beta, alpha = accounts["Iota Retail"], accounts["Beta Soft"], accounts["Alpha Soft"]

    # A static member outside the filter is in.
    after = await changed(client, org.rep_a1, "addTargetGroupMembers", group_id, [iota])
    assert after["memberCount"] == 5
    assert await member_names(client, org.rep_a1, group_id) == [
        "Alpha Soft", "Beta Soft", "Eta Soft", "Iota Retail", "Mu Soft"]

    # An excluded account the filter matches is out.
    after = await changed(client, org.rep_a1, "excludeTargetGroupMembers", group_id, [beta])
    assert after["memberCount"] == 4
    assert await member_names(client, org.rep_a1, group_id) == [
        "Alpha Soft", "Eta Soft", "Iota Retail", "Mu Soft"]
    assert await stored_entries(db, key(group_id)) == {(iota.id, None, False),
                                                       (beta.id, None, True)}

    # Removing the exclusion brings it back.
    after = await changed(client, org.rep_a1, "removeTargetGroupMembers", group_id, [beta])
    assert after["memberCount"] == 5
    assert "Beta Soft" in await member_names(client, org.rep_a1, group_id)
    assert await stored_entries(db, key(group_id)) == {(iota.id, None, False)}

    # An exclusion beats static membership and the filter together.
    await changed(client, org.rep_a1, "addTargetGroupMembers", group_id, [alpha])
    after = await changed(client, org.rep_a1, "excludeTargetGroupMembers", group_id,
                          [alpha, iota])
    assert after["memberCount"] == 3
    assert await member_names(client, org.rep_a1, group_id) == [
        "Beta Soft", "Eta Soft", "Mu Soft"]
    assert await stored_entries(db, key(group_id)) == {(iota.id, None, True),
                                                       (alpha.id, None, True)}

    # Adding an excluded account again lifts its exclusion.
    await changed(client, org.rep_a1, "addTargetGroupMembers", group_id, [iota])
    assert await member_names(client, org.rep_a1, group_id) == [
        "Beta Soft", "Eta Soft", "Iota Retail", "Mu Soft"]


async def test_member_ids_are_checked_and_a_refused_change_writes_nothing(client, db):
    org = await make_org(db)
    account = await make_account(db, org.rep_a1, name="Kept")
    contact = await make_contact(db, account, last_name="Person")
    made = await created(client, org.rep_a1, name="Accounts", kind="ACCOUNT")
    await changed(client, org.rep_a1, "addTargetGroupMembers", made["id"], [account])

    missing = encode_id("Account", account.id + 1000)
    payload = await entries(client, org.rep_a1, "addTargetGroupMembers", made["id"],
                            [account, missing])
    assert codes(payload) == {("memberIds.1", "NOT_FOUND")}
    payload = await entries(client, org.rep_a1, "excludeTargetGroupMembers", made["id"],
                            [account, contact])  # a contact in an ACCOUNT group
    assert codes(payload) == {("memberIds.1", "VALIDATION")}
    payload = await entries(client, org.rep_a1, "addTargetGroupMembers", made["id"],
                            ["not-an-id"])
    assert codes(payload) == {("memberIds.0", "VALIDATION")}

    assert await stored_entries(db, key(made["id"])) == {(account.id, None, False)}
    assert await member_names(client, org.rep_a1, made["id"]) == ["Kept"]


# --- 2. CONTACT groups, and the contacts an ACCOUNT group stands for ------------------------


async def test_a_contact_group_follows_its_contact_filter_members_and_exclusions(client, db):
    org = await make_org(db)
    soft = await make_account(db, org.rep_a1, name="Soft Oy", industry="Software")
    shop = await make_account(db, org.rep_b1, name="Shop Oy", industry="Retail")
    people = {}
    for account, last_name, title, consent in [
        (soft, "Aho", "Sales Director", True),
        (soft, "Berg", "IT Director", False),  # a director without consent
        (soft, "Carlsson", "Engineer", True),  # consent, not a director
        (shop, "Dahl", "Director of Operations", True),
        (shop, "Ek", None, True),
        (shop, "Forss", "Purchasing Director", True),
    ]:
        people[last_name] = await make_contact(db, account, last_name=last_name, title=title,
                                               email=f"{last_name.lower()}@example.com",
                                               email_consent=consent)
    directors = {"title": {"contains": "Director"}, "emailConsent": {"eq": True}}
    assert await contact_names(client, org.rep_a1, directors) == ["Aho", "Dahl", "Forss"]

    made = await created(client, org.rep_a2, name="Directors to mail", kind="CONTACT",
                         visibility="SHARED", contactFilter=directors)
    found = await group(client, org.rep_b1, made["id"])
    assert found is not None
    assert found["filter"] == directors
    assert names(found) == ["Aho", "Dahl", "Forss"]
    assert found["memberCount"] == found["contactCount"] == 3

    await changed(client, org.rep_a2, "addTargetGroupMembers", made["id"],
                  [people["Carlsson"]])
    await changed(client, org.rep_a2, "excludeTargetGroupMembers", made["id"],
                  [people["Dahl"]])
    found = await group(client, org.rep_a1, made["id"])
    assert found is not None
    assert names(found) == ["Aho", "Carlsson", "Forss"]
    assert found["memberCount"] == found["contactCount"] == 3
    assert await stored_entries(db, key(made["id"])) == {
        (None, people["Carlsson"].id, False), (None, people["Dahl"].id, True)}

    # Accounts are not contacts.
    payload = await entries(client, org.rep_a2, "addTargetGroupMembers", made["id"], [soft])
    assert codes(payload) == {("memberIds.0", "VALIDATION")}


async def test_an_account_groups_contact_count_is_its_member_accounts_contacts(client, db):
    org = await make_org(db)
    contacts_of = {"Alpha": 3, "Beta": 2, "Gamma": 0, "Delta": 4, "Retail One": 5,
                   "Retail Two": 1}
    accounts = {}
    for name, n in contacts_of.items():
        industry = "Retail" if name.startswith("Retail") else "Software"
        accounts[name] = account = await make_account(db, org.rep_a1, name=name,
                                                      industry=industry)
        for i in range(n):
            await make_contact(db, account, last_name=f"{name} {i}")

    made = await created(client, org.rep_a1, name="Software", kind="ACCOUNT",
                         accountFilter={"industry": {"eq": "Software"}})
    found = await group(client, org.rep_a1, made["id"])
    assert found is not None
    assert found["memberCount"] == 4
    assert found["contactCount"] == 3 + 2 + 0 + 4

    await changed(client, org.rep_a1, "addTargetGroupMembers", made["id"],
                  [accounts["Retail One"]])
    await changed(client, org.rep_a1, "excludeTargetGroupMembers", made["id"],
                  [accounts["Delta"]])
    found = await group(client, org.rep_a1, made["id"])
    assert found is not None
    assert names(found) == ["Alpha", "Beta", "Gamma", "Retail One"]
    assert found["contactCount"] == 3 + 2 + 0 + 5


# --- 3. paging members ----------------------------------------------------------------------


async def _pages_forward(client, user, group_id: str, size: int) -> list[tuple[str, str]]:
    """(id, name) of every member, page by page, checking each page's pageInfo."""
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        page = (await client.query(MEMBER_PAGE, {"id": group_id, "first": size,
                                                 "after": after},
                                   as_user=user))["targetGroup"]["members"]
        edges = page["edges"]
        info = page["pageInfo"]
        assert 0 < len(edges) <= size
        assert info["hasPreviousPage"] is (after is not None)
        assert info["startCursor"] == edges[0]["cursor"]
        assert info["endCursor"] == edges[-1]["cursor"]
        seen += [(e["node"]["id"], e["node"].get("name") or e["node"]["lastName"])
                 for e in edges]
        if not info["hasNextPage"]:
            assert page["totalCount"] == len(seen)
            return seen
        assert len(edges) == size
        after = info["endCursor"]


async def test_account_members_page_forward_and_back_once_each_by_name(client, db):
    org = await make_org(db)
    letters = "QWERTYUIOPASD"
    for n, letter in enumerate(letters):
        await make_account(db, [org.rep_a1, org.rep_b1][n % 2], name=f"Paged {letter}",
                           industry="Paging")
    twin_a = await make_account(db, org.rep_a1, name="Static Twin", industry="Other")
    twin_b = await make_account(db, org.rep_b1, name="Static Twin", industry="Other")
    dropped = await make_account(db, org.rep_a1, name="Paged Z", industry="Paging")
    await make_account(db, org.rep_a1, name="Outsider", industry="Other")
    made = await created(client, org.rep_a1, name="Paging", kind="ACCOUNT",
                         accountFilter={"industry": {"eq": "Paging"}})
    await changed(client, org.rep_a1, "addTargetGroupMembers", made["id"], [twin_a, twin_b])
    await changed(client, org.rep_a1, "excludeTargetGroupMembers", made["id"], [dropped])

    expected = sorted([f"Paged {letter}" for letter in letters] + ["Static Twin"] * 2)
    seen = await _pages_forward(client, org.rep_a1, made["id"], 4)
    assert [name for _, name in seen] == expected
    assert len({member_id for member_id, _ in seen}) == len(expected) == 15
    assert {gid(twin_a), gid(twin_b)} <= {member_id for member_id, _ in seen}

    # Backward from the end, the same members in the same order.
    back: list[tuple[str, str]] = []
    before = None
    while True:
        page = (await client.query(MEMBER_PAGE, {"id": made["id"], "last": 4,
                                                 "before": before},
                                   as_user=org.rep_a1))["targetGroup"]["members"]
        back = [(e["node"]["id"], e["node"]["name"]) for e in page["edges"]] + back
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert back == seen


async def test_contact_members_page_once_each_by_last_name(client, db):
    org = await make_org(db)
    first = await make_account(db, org.rep_a1, name="First")
    second = await make_account(db, org.rep_b1, name="Second")
    last_names = ["Smith", "Aalto", "Smith", "Virtanen", "Brown", "Smith", "Korhonen",
                  "Brown", "Nieminen", "Lahti", "Mäkinen", "Heikkinen"]
    for n, last_name in enumerate(last_names):
        await make_contact(db, first if n % 2 else second, last_name=last_name,
                           first_name=f"P{n}", email_consent=True)
    static = await make_contact(db, first, last_name="Smith", first_name="Static")
    excluded = await make_contact(db, second, last_name="Brown", first_name="Gone",
                                  email_consent=True)
    made = await created(client, org.rep_a1, name="Consenting", kind="CONTACT",
                         contactFilter={"emailConsent": {"eq": True}})
    await changed(client, org.rep_a1, "addTargetGroupMembers", made["id"], [static])
    await changed(client, org.rep_a1, "excludeTargetGroupMembers", made["id"], [excluded])

    seen = await _pages_forward(client, org.rep_a1, made["id"], 5)
    assert [name for _, name in seen] == sorted([*last_names, "Smith"])
    assert len({member_id for member_id, _ in seen}) == 13
    assert gid(static) in {member_id for member_id, _ in seen}
    assert gid(excluded) not in {member_id for member_id, _ in seen}


# --- 4. visibility ----------------------------------------------------------------------------


LIST = """query { targetGroups(first: 100, orderBy: [{field: NAME}]) {
  nodes { id name } totalCount } }"""
NODE = """query($id: ID!) { node(id: $id) { id ... on TargetGroup { name } } }"""


async def listed(client, user) -> list[str]:
    data = await client.query(LIST, as_user=user)
    assert data["targetGroups"]["totalCount"] == len(data["targetGroups"]["nodes"])
    return [n["name"] for n in data["targetGroups"]["nodes"]]


async def test_a_personal_group_is_its_owners_alone(client, db):
    org = await make_org(db)
    account = await make_account(db, org.rep_a1, name="Mine")
    mine = await created(client, org.rep_a1, name="My picks", kind="ACCOUNT")
    await changed(client, org.rep_a1, "addTargetGroupMembers", mine["id"], [account])
    assert mine["visibility"] == "PERSONAL"  # the default

    assert await listed(client, org.rep_a1) == ["My picks"]
    assert await member_names(client, org.rep_a1, mine["id"]) == ["Mine"]
    node = (await client.query(NODE, {"id": mine["id"]}, as_user=org.rep_a1))["node"]
    assert node == {"id": mine["id"], "name": "My picks"}

    for other in (org.rep_a2, org.rep_b1, org.manager_a):
        assert await listed(client, other) == []
        assert await group(client, other, mine["id"]) is None
        assert (await client.query(NODE, {"id": mine["id"]}, as_user=other))["node"] is None
        payload = await update(client, other, id=mine["id"], expectedVersion=mine["version"],
                               name="Taken")
        assert codes(payload) == {("id", "NOT_FOUND")}
        assert payload["targetGroup"] is None
        for mutation in ENTRY_MUTATIONS:
            payload = await entries(client, other, mutation, mine["id"], [account])
            assert codes(payload) == {("id", "NOT_FOUND")}, mutation
        data = await client.query(DELETE, {"input": {"id": mine["id"],
                                                     "expectedVersion": mine["version"]}},
                                  as_user=other)
        assert codes(data["deleteTargetGroup"]) == {("id", "NOT_FOUND")}
        assert data["deleteTargetGroup"]["deletedTargetGroupId"] is None

    stored = await stored_group(db, mine["id"])
    assert stored is not None
    assert stored["name"] == "My picks"
    assert await stored_entries(db, key(mine["id"])) == {(account.id, None, False)}


async def test_a_shared_group_is_every_staff_members_and_no_partners(client, db):
    org = await make_org(db)
    accounts = [await make_account(db, owner, name=f"Shared {n}", industry="Shared")
                for n, owner in enumerate([org.rep_a1, org.rep_b1, org.manager_b])]
    await share(db, accounts[0], org.partner_org)
    shared = await created(client, org.rep_a1, name="Team picks", kind="ACCOUNT",
                           visibility="SHARED", accountFilter={"industry": {"eq": "Shared"}})
    await created(client, org.rep_a1, name="Private picks", kind="ACCOUNT")
    await created(client, org.rep_b1, name="B's picks", kind="CONTACT")

    assert await listed(client, org.rep_a1) == ["Private picks", "Team picks"]
    assert await listed(client, org.rep_b1) == ["B's picks", "Team picks"]
    for staff in (org.rep_a2, org.manager_a, org.manager_b, org.admin):
        assert await listed(client, staff) == ["Team picks"]
        found = await group(client, staff, shared["id"])
        assert found is not None
        # Staff read every account, whoever owns it.
        assert names(found) == ["Shared 0", "Shared 1", "Shared 2"]
        assert found["memberCount"] == 3
        node = (await client.query(NODE, {"id": shared["id"]}, as_user=staff))["node"]
        assert node == {"id": shared["id"], "name": "Team picks"}

    # A partner sees no group, not even one of accounts shared with it.
    assert await listed(client, org.partner) == []
    assert await group(client, org.partner, shared["id"]) is None
    node = (await client.query(NODE, {"id": shared["id"]}, as_user=org.partner))["node"]
    assert node is None
    payload = await entries(client, org.partner, "addTargetGroupMembers", shared["id"],
                            [accounts[0]])
    assert payload["targetGroup"] is None
    assert codes(payload) == {(None, "FORBIDDEN")}
    payload = await create(client, org.partner, name="Partner picks", kind="ACCOUNT")
    assert payload["targetGroup"] is None
    assert codes(payload) == {(None, "FORBIDDEN")}
    assert await group_rows(db) == 3


async def test_the_group_list_filters_and_orders(client, db):
    org = await make_org(db)
    for name, kind, visibility in [("Charlie", "ACCOUNT", "SHARED"),
                                   ("Alpha", "CONTACT", "SHARED"),
                                   ("Bravo", "ACCOUNT", "PERSONAL")]:
        await make_target_group(db, org.rep_a1, name=name, kind=kind, visibility=visibility)
    await make_target_group(db, org.rep_a2, name="Delta", kind="ACCOUNT",
                            visibility="PERSONAL")
    query = """query($f: TargetGroupFilter, $o: [TargetGroupOrder!]) {
      targetGroups(filter: $f, orderBy: $o) { nodes { name } } }"""

    async def picked(filter: Any, order: Any = None) -> list[str]:
        data = await client.query(query, {"f": filter, "o": order}, as_user=org.rep_a1)
        return [n["name"] for n in data["targetGroups"]["nodes"]]

    assert await picked(None) == ["Alpha", "Bravo", "Charlie"]
    assert await picked({"kind": {"eq": "ACCOUNT"}}) == ["Bravo", "Charlie"]
    assert await picked({"visibility": {"eq": "SHARED"}},
                        [{"field": "NAME", "direction": "DESC"}]) == ["Charlie", "Alpha"]
    # Another rep's PERSONAL group stays hidden, even filtered by its owner.
    assert await picked({"ownerId": {"eq": gid(org.rep_a2)}}) == []


# --- 5. saving and changing a group -------------------------------------------------------


async def test_a_filter_that_cannot_run_is_refused_by_field_and_nothing_is_written(client, db):
    org = await make_org(db)
    cases: list[tuple[dict[str, Any], set[tuple[str | None, str]]]] = [
        ({"kind": "ACCOUNT", "accountFilter": {"ownerId": {"eq": "not-an-id"}}},
         {("accountFilter.ownerId", "VALIDATION")}),
        # An ID of another type is as bad as no ID.
        ({"kind": "ACCOUNT", "accountFilter": {"industry": {"eq": "Software"},
                                               "parentId": {"in": [gid(org.rep_a1)]}}},
         {("accountFilter.parentId", "VALIDATION")}),
        ({"kind": "ACCOUNT",
          "accountFilter": {"or": [{"name": {"eq": f"N{n}"}} for n in range(201)]}},
         {("accountFilter.or", "VALIDATION")}),
        ({"kind": "CONTACT", "contactFilter": {"accountId": {"eq": "nope"}}},
         {("contactFilter.accountId", "VALIDATION")}),
        # The other kind's filter.
        ({"kind": "ACCOUNT", "contactFilter": {"title": {"eq": "CEO"}}},
         {("contactFilter", "VALIDATION")}),
        ({"kind": "CONTACT", "accountFilter": {"industry": {"eq": "Software"}}},
         {("accountFilter", "VALIDATION")}),
        ({"kind": "ACCOUNT", "accountFilter": {"industry": {"eq": "Software"}},
          "contactFilter": {"title": {"eq": "CEO"}}},
         {("contactFilter", "VALIDATION")}),
    ]
    for fields, expected in cases:
        payload = await create(client, org.rep_a1, name="Refused", **fields)
        assert codes(payload) == expected, fields
        assert payload["targetGroup"] is None
    assert await group_rows(db) == 0


async def test_the_saved_filter_reads_back_as_sent_and_means_the_same(client, db):
    org = await make_org(db)
    _, (qualify, _, _, won, _) = await make_pipeline(db)
    for name, owner, industry, city, amount, phase in [
        ("Helsinki Soft", org.rep_a1, "Software", "Helsinki", "12000.50", qualify),
        ("Oulu Soft", org.rep_a1, "Software", "Oulu", "30000", qualify),
        ("Oulu Shop", org.rep_a1, "Retail", "Oulu", "12000.49", qualify),
        ("Tampere Soft", org.rep_b1, "Software", "Tampere", "90000", qualify),
        ("Turku Soft", org.rep_a1, "Software", "Turku", "90000", won),
        ("Oulu Blocked", org.rep_a1, "Software", "Oulu", "30000", qualify),
    ]:
        account = await make_account(db, owner, name=name, industry=industry, city=city)
        await make_opportunity(db, account, phase, amount=amount)
        await make_contact(db, account, last_name="Buyer", title="Buyer")
    await make_contact(db, account, last_name="Blocker", title="Do not call")
    saved = {
        "industry": {"in": ["Software", "Retail"]},
        "type": {"eq": "CUSTOMER"},
        "archived": {"eq": False},
        "ownerId": {"eq": gid(org.rep_a1)},
        "opportunities": {"some": {"amount": {"gte": "12000.50"},
                                   "outcome": {"in": ["OPEN"]}}},
        "or": [{"city": {"eq": "Oulu"}}, {"city": {"startsWith": "Hel"}}],
        "not": {"contacts": {"some": {"title": {"eq": "Do not call"}}}},
    }
    made = await created(client, org.rep_a1, name="Round trip", kind="ACCOUNT",
                         accountFilter=saved, description="Read back as sent")
    assert made["filter"] == saved
    found = await group(client, org.rep_a1, made["id"])
    assert found is not None
    assert found["filter"] == saved
    assert (await stored_group(db, made["id"]))["filter"] == saved

    # Sent back as a query filter, it picks what the group holds.
    assert names(found) == ["Helsinki Soft", "Oulu Soft"]
    assert await account_names(client, org.rep_a1, found["filter"]) == names(found)


async def test_update_renames_shares_and_changes_or_clears_the_filter(client, db):
    org = await make_org(db)
    await make_account(db, org.rep_a1, name="Soft", industry="Software")
    await make_account(db, org.rep_a1, name="Shop", industry="Retail")
    static = await make_account(db, org.rep_b1, name="Static", industry="Metal")
    made = await created(client, org.rep_a1, name="Software", kind="ACCOUNT",
                         accountFilter={"industry": {"eq": "Software"}})
    after = await changed(client, org.rep_a1, "addTargetGroupMembers", made["id"], [static])
    version = after["version"]
    assert version > made["version"]  # entries changed: the group moved on

    payload = await update(client, org.rep_a1, id=made["id"], expectedVersion=version,
                           name="Retail", visibility="SHARED", description="Shops",
                           accountFilter={"industry": {"eq": "Retail"}})
    assert payload["userErrors"] == []
    result = payload["targetGroup"]
    assert (result["name"], result["visibility"], result["description"]) == (
        "Retail", "SHARED", "Shops")
    assert result["filter"] == {"industry": {"eq": "Retail"}}
    assert result["version"] == version + 1
    assert await member_names(client, org.rep_b1, made["id"]) == ["Shop", "Static"]
    stored = await stored_group(db, made["id"])
    assert stored is not None
    assert (stored["name"], stored["filter"], stored["version"]) == (
        "Retail", {"industry": {"eq": "Retail"}}, version + 1)

    # A field not sent is kept; a null filter clears it, leaving the static members.
    payload = await update(client, org.rep_a1, id=made["id"], expectedVersion=version + 1,
                           accountFilter=None)
    assert payload["userErrors"] == []
    assert payload["targetGroup"]["filter"] is None
    assert payload["targetGroup"]["name"] == "Retail"
    assert payload["targetGroup"]["description"] == "Shops"
    assert await member_names(client, org.rep_a1, made["id"]) == ["Static"]
    assert (await stored_group(db, made["id"]))["filter"] is None

    # Back to personal: the other rep loses it.
    payload = await update(client, org.rep_a1, id=made["id"], expectedVersion=version + 2,
                           visibility="PERSONAL")
    assert payload["userErrors"] == []
    assert await group(client, org.rep_b1, made["id"]) is None


async def test_a_refused_update_leaves_the_group_as_it_was(client, db):
    org = await make_org(db)
    made = await created(client, org.rep_a1, name="Software", kind="ACCOUNT",
                         visibility="SHARED", accountFilter={"industry": {"eq": "Software"}})
    before = await stored_group(db, made["id"])
    version = made["version"]

    payload = await update(client, org.rep_a1, id=made["id"], expectedVersion=version + 1,
                           name="Stale")
    assert codes(payload) == {("expectedVersion", "CONFLICT")}
    payload = await update(client, org.rep_a1, id=made["id"], expectedVersion=version,
                           name="Bad filter", accountFilter={"ownerId": {"eq": "bad"}})
    assert codes(payload) == {("accountFilter.ownerId", "VALIDATION")}
    payload = await update(client, org.rep_a1, id=made["id"], expectedVersion=version,
                           name="Wrong kind", contactFilter={"title": {"eq": "CEO"}})
    assert codes(payload) == {("contactFilter", "VALIDATION")}
    payload = await update(client, org.rep_a1, id=made["id"], expectedVersion=version,
                           name="   ")
    assert codes(payload) == {("name", "VALIDATION")}
    payload = await update(client, org.rep_a1, id=made["id"], expectedVersion=version,
                           visibility=None)
    assert codes(payload) == {("visibility", "VALIDATION")}

    assert await stored_group(db, made["id"]) == before


async def test_only_the_owner_its_manager_or_an_admin_changes_a_shared_group(client, db):
    org = await make_org(db)
    account = await make_account(db, org.rep_b1, name="Target")
    made = await created(client, org.rep_a1, name="Shared", kind="ACCOUNT",
                         visibility="SHARED")
    version = made["version"]

    for other in (org.rep_a2, org.rep_b1, org.manager_b):
        payload = await update(client, other, id=made["id"], expectedVersion=version,
                               name="Taken")
        assert codes(payload) == {(None, "FORBIDDEN")}
        for mutation in ENTRY_MUTATIONS:
            payload = await entries(client, other, mutation, made["id"], [account])
            assert codes(payload) == {(None, "FORBIDDEN")}, mutation
        data = await client.query(DELETE, {"input": {"id": made["id"],
                                                     "expectedVersion": version}},
                                  as_user=other)
        assert codes(data["deleteTargetGroup"]) == {(None, "FORBIDDEN")}
    stored = await stored_group(db, made["id"])
    assert stored is not None
    assert (stored["name"], stored["version"]) == ("Shared", version)
    assert await stored_entries(db, key(made["id"])) == set()

    for n, allowed in enumerate((org.rep_a1, org.manager_a, org.admin)):
        payload = await update(client, allowed, id=made["id"], expectedVersion=version + n,
                               name=f"Renamed by {n}")
        assert payload["userErrors"] == [], allowed.name
        assert payload["targetGroup"]["owner"] == {"name": "Rep A1"}  # the owner stays
    after = await changed(client, org.manager_a, "addTargetGroupMembers", made["id"],
                          [account])
    assert after["memberCount"] == 1


async def test_delete_removes_the_group_and_its_entries(client, db):
    org = await make_org(db)
    accounts = [await make_account(db, org.rep_a1, name=f"A{n}") for n in range(3)]
    made = await created(client, org.rep_a1, name="Doomed", kind="ACCOUNT")
    keep = await created(client, org.rep_a1, name="Kept", kind="ACCOUNT")
    await changed(client, org.rep_a1, "addTargetGroupMembers", made["id"], accounts[:2])
    after = await changed(client, org.rep_a1, "excludeTargetGroupMembers", made["id"],
                          accounts[2:])
    await changed(client, org.rep_a1, "addTargetGroupMembers", keep["id"], accounts[:1])
    assert await entry_rows(db) == 4

    stale = await client.query(DELETE, {"input": {"id": made["id"],
                                                  "expectedVersion": made["version"]}},
                               as_user=org.rep_a1)
    assert codes(stale["deleteTargetGroup"]) == {("expectedVersion", "CONFLICT")}
    assert await entry_rows(db) == 4

    data = await client.query(DELETE, {"input": {"id": made["id"],
                                                 "expectedVersion": after["version"]}},
                              as_user=org.rep_a1)
    assert data["deleteTargetGroup"] == {"deletedTargetGroupId": made["id"],
                                         "userErrors": []}
    assert await stored_group(db, made["id"]) is None
    assert await stored_entries(db, key(made["id"])) == set()
    assert await stored_entries(db, key(keep["id"])) == {(accounts[0].id, None, False)}
    assert await group(client, org.rep_a1, made["id"]) is None
    assert await listed(client, org.rep_a1) == ["Kept"]
    # The accounts themselves stay.
    assert await account_names(client, org.rep_a1, None) == ["A0", "A1", "A2"]


# --- 6. statements ----------------------------------------------------------------------------


MEMBERS_WITH_OWNERS = """query($id: ID!) { targetGroup(id: $id) {
  memberCount
  members(first: 20) { nodes { ... on Account { name owner { name } } } } } }"""


async def test_a_members_page_costs_the_same_statements_for_3_and_40_members(client, db):
    org = await make_org(db)
    reps = [org.rep_a1, org.rep_a2, org.rep_b1, org.manager_a]
    small = [await make_account(db, reps[n % 4], name=f"Small {n:02}") for n in range(3)]
    large = [await make_account(db, reps[n % 4], name=f"Large {n:02}", industry="Big")
             for n in range(39)]
    await make_account(db, org.rep_a1, name="Large static", industry="Other")
    excluded = await make_account(db, org.rep_a1, name="Large excluded", industry="Big")
    static = await make_account(db, org.rep_b1, name="Large static 2", industry="Other")
    small_group = await make_target_group(db, org.rep_a1, members=small)
    large_group = await make_target_group(
        db, org.rep_a1, visibility="SHARED", filter={"industry": {"eq": "Big"}},
        members=[static, *large[:5]], excluded=[excluded])

    small_data, small_count = await client.counted(
        MEMBERS_WITH_OWNERS, {"id": gid(small_group)}, as_user=org.rep_a1)
    large_data, large_count = await client.counted(
        MEMBERS_WITH_OWNERS, {"id": gid(large_group)}, as_user=org.rep_a1)

    assert small_data["targetGroup"]["memberCount"] == 3
    assert large_data["targetGroup"]["memberCount"] == 40
    assert len(large_data["targetGroup"]["members"]["nodes"]) == 20
    assert large_data["targetGroup"]["members"]["nodes"][0] == {
        "name": "Large 00", "owner": {"name": "Rep A1"}}
    assert {n["owner"]["name"] for n in large_data["targetGroup"]["members"]["nodes"]} == {
        "Rep A1", "Rep A2", "Rep B1", "Manager A"}
    assert small_count == large_count
    # viewer, group, member count, members page, owners: the shape decides, never the rows.
    assert large_count <= 5, large_count


# --- production bugs these tests pin ----------------------------------------------------------


async def test_a_filter_over_the_condition_limit_across_fields_is_refused_when_saved(
        client, db):
    """Each field alone is within the 200 conditions a filter may have, together they are
    not: a query refuses the filter, so saving it must be refused too, or the group holds
    a filter that can never run."""
    org = await make_org(db)
    await make_account(db, org.rep_a1, name="Anything", industry="Software")
    too_big = {"or": [{"name": {"eq": f"N{n}"}} for n in range(120)],
               "and": [{"industry": {"ne": f"I{n}"}} for n in range(120)]}
    errors = await client.errors(ACCOUNTS, {"f": too_big}, as_user=org.rep_a1)
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]

    response = await client.post(
        """mutation($input: CreateTargetGroupInput!) { createTargetGroup(input: $input) {
             targetGroup { id } userErrors { field code } } }""",
        {"input": {"name": "Too big", "kind": "ACCOUNT", "accountFilter": too_big}},
        as_user=org.rep_a1)
    payload = response.json()["data"]["createTargetGroup"]
    assert payload["targetGroup"] is None, "saved a filter no query can run"
    assert [e["code"] for e in payload["userErrors"]] == ["VALIDATION"]
    assert payload["userErrors"][0]["field"].startswith("accountFilter")
    assert await group_rows(db) == 0


async def test_a_contact_groups_filter_is_the_contact_filter_sent_beside_a_null_account_one(
        client, db):
    """A form that sends both filter fields (the unused one null) must save the filter of
    the group's kind, not clear it."""
    org = await make_org(db)
    account = await make_account(db, org.rep_a1, name="Firm")
    await make_contact(db, account, last_name="Boss", title="CEO")
    await make_contact(db, account, last_name="Coder", title="Developer")
    made = await created(client, org.rep_a1, name="People", kind="CONTACT",
                         contactFilter={"title": {"eq": "Developer"}})
    assert await member_names(client, org.rep_a1, made["id"]) == ["Coder"]

    payload = await update(client, org.rep_a1, id=made["id"],
                           expectedVersion=made["version"], accountFilter=None,
                           contactFilter={"title": {"eq": "CEO"}})
    assert payload["userErrors"] == []
    assert payload["targetGroup"]["filter"] == {"title": {"eq": "CEO"}}
    assert (await stored_group(db, made["id"]))["filter"] == {"title": {"eq": "CEO"}}
    assert await member_names(client, org.rep_a1, made["id"]) == ["Boss"]


async def test_a_null_contact_filter_leaves_an_account_groups_filter_alone(client, db):
    """contactFilter does not apply to an ACCOUNT group: null there is not the group's
    filter, and must not clear its accountFilter."""
    org = await make_org(db)
    await make_account(db, org.rep_a1, name="Soft", industry="Software")
    made = await created(client, org.rep_a1, name="Software", kind="ACCOUNT",
                         accountFilter={"industry": {"eq": "Software"}})

    payload = await update(client, org.rep_a1, id=made["id"],
                           expectedVersion=made["version"], name="Still software",
                           contactFilter=None)
    assert payload["userErrors"] == []
    assert payload["targetGroup"]["filter"] == {"industry": {"eq": "Software"}}
    assert await member_names(client, org.rep_a1, made["id"]) == ["Soft"]


async def test_deleting_a_contact_that_a_group_names_is_not_an_internal_error(client, db):
    """A static member or an exclusion must not make deleteContact fail with a masked
    internal error: either the contact goes and its entries with it, or the client hears
    why in userErrors."""
    org = await make_org(db)
    account = await make_account(db, org.rep_a1, name="Firm")
    member = await make_contact(db, account, last_name="Member")
    excluded = await make_contact(db, account, last_name="Excluded", title="CEO")
    made = await created(client, org.rep_a1, name="People", kind="CONTACT",
                         contactFilter={"title": {"eq": "CEO"}})
    await changed(client, org.rep_a1, "addTargetGroupMembers", made["id"], [member])
    await changed(client, org.rep_a1, "excludeTargetGroupMembers", made["id"], [excluded])
    delete_contact = """mutation($input: DeleteContactInput!) { deleteContact(input: $input) {
      deletedContactId userErrors { field code message } } }"""

    for contact in (member, excluded):
        response = await client.post(delete_contact, {"input": {"id": gid(contact)}},
                                     as_user=org.rep_a1)
        body = response.json()
        assert "errors" not in body, body["errors"]
        payload = body["data"]["deleteContact"]
        if payload["deletedContactId"] is not None:
            assert contact.id not in {c for _, c, _ in
                                      await stored_entries(db, key(made["id"]))}
        else:
            assert payload["userErrors"], payload
    assert await member_names(client, org.rep_a1, made["id"]) == []
