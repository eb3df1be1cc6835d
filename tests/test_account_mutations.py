"""createAccount, updateAccount and archiveAccount through the HTTP endpoint.

Every refusal is checked twice: in the payload's userErrors, and in the database,
which must hold exactly what it held before.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from loaders.ids import decode_id, encode_id
from models.accounts import Account, AccountType
from models.db import Database
from models.users import Role
from resolvers import accounts as account_resolvers
from tests.factories import Org, gid, make_account, make_org, make_user, share
from tests.graphql_client import GraphQLClient

ACCOUNT = """
  id name businessId industry type website phone archived archivedAt version
  createdAt updatedAt
  address { street postalCode city country }
  owner { id }
  parent { id }
"""
ERRORS = "userErrors { field code message }"

CREATE = f"""
mutation Create($input: CreateAccountInput!) {{
  createAccount(input: $input) {{ account {{ {ACCOUNT} }} {ERRORS} }}
}}"""
UPDATE = f"""
mutation Update($input: UpdateAccountInput!) {{
  updateAccount(input: $input) {{ account {{ {ACCOUNT} }} {ERRORS} }}
}}"""
ARCHIVE = f"""
mutation Archive($input: ArchiveAccountInput!) {{
  archiveAccount(input: $input) {{ account {{ {ACCOUNT} }} {ERRORS} }}
}}"""
READ = f"query Read($id: ID!) {{ account(id: $id) {{ {ACCOUNT} }} }}"

MALFORMED_IDS = ["not-an-id", "", encode_id("User", 1)[:-2], "QWNjb3VudDphYmM="]


# --- helpers ------------------------------------------------------------------------------


async def create(client: GraphQLClient, user: Any, **input: Any) -> dict[str, Any]:
    data = await client.query(CREATE, {"input": input}, as_user=user)
    return data["createAccount"]


async def update(
    client: GraphQLClient, user: Any, account_id: str, version: int, **changes: Any
) -> dict[str, Any]:
    input = {"id": account_id, "expectedVersion": version, **changes}
    data = await client.query(UPDATE, {"input": input}, as_user=user)
    return data["updateAccount"]


async def archive(
    client: GraphQLClient, user: Any, account_id: str, version: int
) -> dict[str, Any]:
    data = await client.query(
        ARCHIVE, {"input": {"id": account_id, "expectedVersion": version}}, as_user=user
    )
    return data["archiveAccount"]


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


async def stored(db: Database, key: int) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (
            (await conn.execute(select(Account.__table__).where(Account.__table__.c.id == key)))
            .mappings()
            .one_or_none()
        )
    return dict(row) if row is not None else None


async def account_count(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(Account))).scalar_one()


def at(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return moment


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


# --- createAccount ------------------------------------------------------------------------


async def test_create_account_stores_every_field_and_defaults_owner_to_viewer(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    payload = await create(
        client,
        org.rep_a1,
        name="  Acme Oy  ",
        businessId="FI1234567-8",
        industry="Retail",
        type="CUSTOMER",
        website="https://acme.example",
        phone="+358 40 123",
        address={"street": "Main St 1", "postalCode": "00100", "city": "Helsinki", "country": "FI"},
    )

    assert payload["userErrors"] == []
    account = payload["account"]
    assert account["name"] == "Acme Oy"
    assert account["businessId"] == "FI1234567-8"
    assert account["industry"] == "Retail"
    assert account["type"] == "CUSTOMER"
    assert account["website"] == "https://acme.example"
    assert account["phone"] == "+358 40 123"
    assert account["address"] == {
        "street": "Main St 1",
        "postalCode": "00100",
        "city": "Helsinki",
        "country": "FI",
    }
    assert account["owner"] == {"id": gid(org.rep_a1)}
    assert account["parent"] is None
    assert account["archived"] is False
    assert account["archivedAt"] is None
    assert account["version"] == 1
    assert at(account["createdAt"]) <= at(account["updatedAt"])

    row = await stored(db, decode_id(account["id"], "Account"))
    assert row is not None
    assert row["name"] == "Acme Oy"
    assert row["business_id"] == "FI1234567-8"
    assert row["industry"] == "Retail"
    assert row["type"] is AccountType.CUSTOMER
    assert row["owner_id"] == org.rep_a1.id
    assert row["parent_id"] is None
    assert (row["street"], row["postal_code"], row["city"], row["country"]) == (
        "Main St 1",
        "00100",
        "Helsinki",
        "FI",
    )
    assert row["archived"] is False
    assert row["version"] == 1

    # The stored account reads back the same through the query side.
    read = await client.query(READ, {"id": account["id"]}, as_user=org.rep_b1)
    assert read["account"] == account


async def test_create_account_with_only_a_name_gets_the_defaults(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    payload = await create(client, org.manager_b, name="Bare")

    assert payload["userErrors"] == []
    account = payload["account"]
    assert account["type"] == "PROSPECT"
    assert account["businessId"] is None
    assert account["industry"] is None
    assert account["address"] == {"street": None, "postalCode": None, "city": None, "country": None}
    assert account["owner"] == {"id": gid(org.manager_b)}
    row = await stored(db, decode_id(account["id"], "Account"))
    assert row is not None
    assert row["owner_id"] == org.manager_b.id
    assert row["type"] is AccountType.PROSPECT


async def test_create_account_under_a_parent(client: GraphQLClient, db: Database, org: Org) -> None:
    parent = await make_account(db, org.rep_b1, name="Group")

    payload = await create(client, org.rep_a1, name="Subsidiary", parentId=gid(parent))

    assert payload["userErrors"] == []
    assert payload["account"]["parent"] == {"id": gid(parent)}
    row = await stored(db, decode_id(payload["account"]["id"], "Account"))
    assert row is not None
    assert row["parent_id"] == parent.id


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_create_account_refuses_a_bad_name(
    client: GraphQLClient, db: Database, org: Org, name: str
) -> None:
    payload = await create(client, org.rep_a1, name=name)

    assert payload["account"] is None
    assert codes(payload) == {("name", "VALIDATION")}
    assert await account_count(db) == 0


async def test_create_account_accepts_a_name_of_the_maximum_length(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    payload = await create(client, org.rep_a1, name="x" * 200)

    assert payload["userErrors"] == []
    assert await account_count(db) == 1


async def test_create_account_refuses_a_business_id_already_used(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    await make_account(db, org.rep_b1, business_id="FI1")

    payload = await create(client, org.rep_a1, name="Copy", businessId=" FI1 ")

    assert payload["account"] is None
    assert codes(payload) == {("businessId", "CONFLICT")}
    assert await account_count(db) == 1


async def test_two_concurrent_creates_with_one_business_id_make_one_account(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    # Both pass the up-front check; the unique constraint decides, and the loser
    # still hears CONFLICT rather than an internal error.
    first, second = await asyncio.gather(
        create(client, org.rep_a1, name="One", businessId="RACE-1"),
        create(client, org.rep_a2, name="Two", businessId="RACE-1"),
    )

    outcomes = sorted([first, second], key=lambda p: p["account"] is None)
    assert outcomes[0]["userErrors"] == []
    assert codes(outcomes[1]) == {("businessId", "CONFLICT")}
    assert outcomes[1]["account"] is None
    assert await account_count(db) == 1


async def test_create_account_refuses_an_unknown_parent(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    payload = await create(client, org.rep_a1, name="Orphan", parentId=encode_id("Account", 4242))

    assert codes(payload) == {("parentId", "NOT_FOUND")}
    assert await account_count(db) == 0


async def test_an_id_beyond_any_key_is_a_validation_error_not_a_crash(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    # No id we issue has a key beyond 32 bits: such an id is not one of ours.
    huge = 10**17
    payload = await create(
        client,
        org.rep_a1,
        name="Orphan",
        parentId=encode_id("Account", huge),
        ownerId=encode_id("User", huge),
    )
    assert codes(payload) == {("parentId", "VALIDATION"), ("ownerId", "VALIDATION")}

    updated = await update(client, org.rep_a1, encode_id("Account", huge), 1, name="X")
    assert codes(updated) == {("id", "VALIDATION")}
    assert await account_count(db) == 0


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
@pytest.mark.parametrize("field", ["ownerId", "parentId"])
async def test_create_account_reports_a_malformed_id_as_validation(
    client: GraphQLClient, db: Database, org: Org, field: str, bad_id: str
) -> None:
    response = await client.post(
        CREATE, {"input": {"name": "Acme", field: bad_id}}, as_user=org.rep_a1
    )

    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    assert codes(body["data"]["createAccount"]) == {(field, "VALIDATION")}
    assert await account_count(db) == 0


async def test_create_account_refuses_an_id_of_another_type(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    payload = await create(
        client,
        org.admin,
        name="Acme",
        parentId=gid(org.rep_a1),
        ownerId=encode_id("Account", org.rep_a1.id),
    )

    assert codes(payload) == {("parentId", "VALIDATION"), ("ownerId", "VALIDATION")}
    assert await account_count(db) == 0


async def test_create_account_reports_every_problem_at_once(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    await make_account(db, org.rep_a1, business_id="TAKEN")

    payload = await create(
        client,
        org.rep_a1,
        name=" ",
        businessId="TAKEN",
        industry="i" * 101,
        ownerId="garbage",
        parentId=encode_id("Account", 999),
        address={"postalCode": "0" * 21},
    )

    assert payload["account"] is None
    assert codes(payload) == {
        ("name", "VALIDATION"),
        ("businessId", "CONFLICT"),
        ("industry", "VALIDATION"),
        ("ownerId", "VALIDATION"),
        ("parentId", "NOT_FOUND"),
        ("address.postalCode", "VALIDATION"),
    }
    assert all(error["message"] for error in payload["userErrors"])
    assert await account_count(db) == 1


# --- owners -------------------------------------------------------------------------------


async def test_rep_cannot_give_a_new_account_to_someone_else(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    payload = await create(client, org.rep_a1, name="Acme", ownerId=gid(org.rep_a2))

    assert payload["account"] is None
    assert codes(payload) == {("ownerId", "FORBIDDEN")}
    assert await account_count(db) == 0


async def test_rep_may_name_itself_as_owner(client: GraphQLClient, db: Database, org: Org) -> None:
    payload = await create(client, org.rep_a1, name="Acme", ownerId=gid(org.rep_a1))

    assert payload["userErrors"] == []
    assert payload["account"]["owner"] == {"id": gid(org.rep_a1)}


async def test_manager_assigns_to_its_team_but_not_to_the_other_team(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    mine = await create(client, org.manager_a, name="Team deal", ownerId=gid(org.rep_a2))
    assert mine["userErrors"] == []
    row = await stored(db, decode_id(mine["account"]["id"], "Account"))
    assert row is not None
    assert row["owner_id"] == org.rep_a2.id

    theirs = await create(client, org.manager_a, name="Poach", ownerId=gid(org.rep_b1))
    assert theirs["account"] is None
    assert codes(theirs) == {("ownerId", "FORBIDDEN")}
    assert await account_count(db) == 1


async def test_admin_assigns_to_anyone(client: GraphQLClient, db: Database, org: Org) -> None:
    payload = await create(client, org.admin, name="Anywhere", ownerId=gid(org.rep_b1))

    assert payload["userErrors"] == []
    row = await stored(db, decode_id(payload["account"]["id"], "Account"))
    assert row is not None
    assert row["owner_id"] == org.rep_b1.id


async def test_deactivated_and_partner_users_cannot_own_accounts(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    retired = await make_user(db, Role.REP, team=org.team_a, active=False)
    account = await make_account(db, org.rep_a1)
    before = await stored(db, account.id)

    for owner in (retired, org.partner):
        created = await create(client, org.admin, name="Acme", ownerId=gid(owner))
        assert created["account"] is None
        assert [e["field"] for e in created["userErrors"]] == ["ownerId"]

        updated = await update(client, org.admin, gid(account), 1, ownerId=gid(owner))
        assert updated["account"] is None
        assert [e["field"] for e in updated["userErrors"]] == ["ownerId"]

    assert await account_count(db) == 1
    assert await stored(db, account.id) == before


async def test_unknown_owner_is_not_found(client: GraphQLClient, db: Database, org: Org) -> None:
    payload = await create(client, org.admin, name="Acme", ownerId=encode_id("User", 9999))

    assert codes(payload) == {("ownerId", "NOT_FOUND")}
    assert await account_count(db) == 0


# --- updateAccount ------------------------------------------------------------------------


async def test_update_changes_only_the_fields_sent_and_bumps_the_version(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(
        db,
        org.rep_a1,
        name="Old",
        industry="Retail",
        website="https://old.example",
        city="Turku",
        business_id="B-1",
    )
    before = await stored(db, account.id)
    assert before is not None

    renamed = await update(client, org.rep_a1, gid(account), 1, name="New")

    assert renamed["userErrors"] == []
    assert renamed["account"]["name"] == "New"
    assert renamed["account"]["industry"] == "Retail"
    assert renamed["account"]["version"] == 2
    assert at(renamed["account"]["updatedAt"]) > before["updated_at"]
    after = await stored(db, account.id)
    assert after is not None
    assert after == {**before, "name": "New", "version": 2, "updated_at": after["updated_at"]}
    assert after["updated_at"] > before["updated_at"]
    assert after["created_at"] == before["created_at"]

    cleared = await update(client, org.rep_a1, gid(account), 2, industry=None, type="PARTNER")

    assert cleared["userErrors"] == []
    assert cleared["account"]["industry"] is None
    assert cleared["account"]["type"] == "PARTNER"
    assert cleared["account"]["name"] == "New"
    assert cleared["account"]["version"] == 3
    assert at(cleared["account"]["updatedAt"]) > at(renamed["account"]["updatedAt"])
    final = await stored(db, account.id)
    assert final is not None
    assert final["industry"] is None
    assert final["type"] is AccountType.PARTNER
    assert (final["name"], final["website"], final["city"], final["business_id"]) == (
        "New",
        "https://old.example",
        "Turku",
        "B-1",
    )
    assert final["version"] == 3


async def test_update_address_round_trips_and_null_clears_it(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)
    full = {
        "street": "Kauppatori 1",
        "postalCode": "00170",
        "city": "Helsinki",
        "country": "Finland",
    }

    first = await update(client, org.rep_a1, gid(account), 1, address=full)
    assert first["userErrors"] == []
    assert first["account"]["address"] == full
    read = await client.query(READ, {"id": gid(account)}, as_user=org.rep_a2)
    assert read["account"]["address"] == full

    # An address is replaced whole: the parts left out are cleared.
    second = await update(client, org.rep_a1, gid(account), 2, address={"city": "Espoo"})
    assert second["account"]["address"] == {
        "street": None,
        "postalCode": None,
        "city": "Espoo",
        "country": None,
    }
    row = await stored(db, account.id)
    assert row is not None
    assert (row["street"], row["postal_code"], row["city"], row["country"]) == (
        None,
        None,
        "Espoo",
        None,
    )

    third = await update(client, org.rep_a1, gid(account), 3, address=None)
    assert third["account"]["address"] == dict.fromkeys(full)
    row = await stored(db, account.id)
    assert row is not None
    assert row["city"] is None
    assert row["version"] == 4


async def test_update_sets_and_clears_the_parent(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    group = await make_account(db, org.rep_b1, name="Group")
    account = await make_account(db, org.rep_a1)

    linked = await update(client, org.rep_a1, gid(account), 1, parentId=gid(group))
    assert linked["account"]["parent"] == {"id": gid(group)}
    row = await stored(db, account.id)
    assert row is not None
    assert row["parent_id"] == group.id

    unlinked = await update(client, org.rep_a1, gid(account), 2, parentId=None)
    assert unlinked["userErrors"] == []
    assert unlinked["account"]["parent"] is None
    row = await stored(db, account.id)
    assert row is not None
    assert row["parent_id"] is None


@pytest.mark.parametrize("name", ["", " \t ", "y" * 201, None])
async def test_update_refuses_a_bad_name(
    client: GraphQLClient, db: Database, org: Org, name: str | None
) -> None:
    account = await make_account(db, org.rep_a1, name="Keep")
    before = await stored(db, account.id)

    payload = await update(client, org.rep_a1, gid(account), 1, name=name)

    assert payload["account"] is None
    assert codes(payload) == {("name", "VALIDATION")}
    assert await stored(db, account.id) == before


async def test_update_refuses_nulls_for_required_fields(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)
    before = await stored(db, account.id)

    payload = await update(client, org.rep_a1, gid(account), 1, type=None, ownerId=None)

    assert codes(payload) == {("type", "VALIDATION"), ("ownerId", "VALIDATION")}
    assert await stored(db, account.id) == before


async def test_update_refuses_a_business_id_used_by_another_account(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    await make_account(db, org.rep_b1, business_id="FI-9")
    account = await make_account(db, org.rep_a1, business_id="FI-1")
    before = await stored(db, account.id)

    clash = await update(client, org.rep_a1, gid(account), 1, businessId="FI-9")
    assert codes(clash) == {("businessId", "CONFLICT")}
    assert await stored(db, account.id) == before

    # Its own business id is no clash.
    same = await update(client, org.rep_a1, gid(account), 1, businessId="FI-1", name="Renamed")
    assert same["userErrors"] == []
    row = await stored(db, account.id)
    assert row is not None
    assert (row["business_id"], row["name"], row["version"]) == ("FI-1", "Renamed", 2)


async def test_update_refuses_a_parent_loop(client: GraphQLClient, db: Database, org: Org) -> None:
    top = await make_account(db, org.rep_a1, name="Top")
    middle = await make_account(db, org.rep_a1, name="Middle", parent=top)
    bottom = await make_account(db, org.rep_a1, name="Bottom", parent=middle)
    before = await stored(db, top.id)

    for parent in (top, middle, bottom):
        payload = await update(client, org.rep_a1, gid(top), 1, parentId=gid(parent))
        assert payload["account"] is None
        assert codes(payload) == {("parentId", "VALIDATION")}

    assert await stored(db, top.id) == before


async def test_update_refuses_an_unknown_parent(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)
    before = await stored(db, account.id)

    payload = await update(client, org.rep_a1, gid(account), 1, parentId=encode_id("Account", 777))

    assert codes(payload) == {("parentId", "NOT_FOUND")}
    assert await stored(db, account.id) == before


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
async def test_update_reports_malformed_ids_as_validation(
    client: GraphQLClient, db: Database, org: Org, bad_id: str
) -> None:
    account = await make_account(db, org.rep_a1)
    before = await stored(db, account.id)

    response = await client.post(
        UPDATE,
        {
            "input": {
                "id": gid(account),
                "expectedVersion": 1,
                "ownerId": bad_id,
                "parentId": bad_id,
            }
        },
        as_user=org.rep_a1,
    )
    body = response.json()
    assert response.status_code == 200
    assert "errors" not in body, body
    assert codes(body["data"]["updateAccount"]) == {
        ("ownerId", "VALIDATION"),
        ("parentId", "VALIDATION"),
    }

    unknown = await update(client, org.rep_a1, bad_id, 1, name="X")
    assert codes(unknown) == {("id", "VALIDATION")}
    assert await stored(db, account.id) == before


async def test_update_reports_every_problem_at_once(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    await make_account(db, org.rep_b1, business_id="TAKEN")
    account = await make_account(db, org.rep_a1)
    before = await stored(db, account.id)

    payload = await update(
        client,
        org.rep_a1,
        gid(account),
        1,
        name="",
        businessId="TAKEN",
        website="w" * 301,
        ownerId=gid(org.rep_a2),
        parentId=gid(account),
        address={"street": "s" * 201},
    )

    assert payload["account"] is None
    assert codes(payload) == {
        ("name", "VALIDATION"),
        ("businessId", "CONFLICT"),
        ("website", "VALIDATION"),
        ("ownerId", "FORBIDDEN"),
        ("parentId", "VALIDATION"),
        ("address.street", "VALIDATION"),
    }
    assert await stored(db, account.id) == before


async def test_update_of_an_unknown_account_is_not_found(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    payload = await update(client, org.admin, encode_id("Account", 31337), 1, name="X")

    assert payload["account"] is None
    assert codes(payload) == {("id", "NOT_FOUND")}
    assert await account_count(db) == 0


async def test_archived_accounts_take_no_changes(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)
    archived = await archive(client, org.rep_a1, gid(account), 1)
    assert archived["userErrors"] == []
    before = await stored(db, account.id)

    payload = await update(client, org.rep_a1, gid(account), 2, name="Revived")

    assert payload["account"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["VALIDATION"]
    assert await stored(db, account.id) == before


# --- permissions --------------------------------------------------------------------------


async def test_rep_updates_its_own_account_but_not_another_reps(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    own = await make_account(db, org.rep_a1)
    colleagues = await make_account(db, org.rep_a2, name="Theirs")
    before = await stored(db, colleagues.id)

    mine = await update(client, org.rep_a1, gid(own), 1, name="Mine")
    assert mine["userErrors"] == []
    row = await stored(db, own.id)
    assert row is not None
    assert row["name"] == "Mine"

    refused = await update(client, org.rep_a1, gid(colleagues), 1, name="Stolen")
    assert refused["account"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    assert await stored(db, colleagues.id) == before

    # The owner, not the team, decides: another rep's archive is refused too.
    not_archived = await archive(client, org.rep_a1, gid(colleagues), 1)
    assert [e["code"] for e in not_archived["userErrors"]] == ["FORBIDDEN"]
    assert await stored(db, colleagues.id) == before


@pytest.mark.parametrize(
    ("manager", "allowed", "refused"),
    [
        ("manager_a", ["rep_a1", "rep_a2", "manager_a"], ["rep_b1", "manager_b", "admin"]),
        ("manager_b", ["rep_b1", "manager_b"], ["rep_a1", "manager_a"]),
    ],
)
async def test_manager_writes_its_teams_accounts_only(
    client: GraphQLClient,
    db: Database,
    org: Org,
    manager: str,
    allowed: list[str],
    refused: list[str],
) -> None:
    viewer = getattr(org, manager)
    for owner in allowed:
        account = await make_account(db, getattr(org, owner))
        payload = await update(client, viewer, gid(account), 1, industry="Managed")
        assert payload["userErrors"] == [], owner
        row = await stored(db, account.id)
        assert row is not None
        assert (row["industry"], row["version"]) == ("Managed", 2)

    for owner in refused:
        account = await make_account(db, getattr(org, owner))
        before = await stored(db, account.id)
        payload = await update(client, viewer, gid(account), 1, industry="Managed")
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"], owner
        archived = await archive(client, viewer, gid(account), 1)
        assert [e["code"] for e in archived["userErrors"]] == ["FORBIDDEN"], owner
        assert await stored(db, account.id) == before


async def test_admin_updates_and_archives_any_account(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_b1)

    updated = await update(client, org.admin, gid(account), 1, name="By admin")
    archived = await archive(client, org.admin, gid(account), 2)

    assert updated["userErrors"] == archived["userErrors"] == []
    row = await stored(db, account.id)
    assert row is not None
    assert (row["name"], row["archived"], row["version"]) == ("By admin", True, 3)


async def test_rep_cannot_hand_its_account_to_another_user(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)
    before = await stored(db, account.id)

    payload = await update(
        client, org.rep_a1, gid(account), 1, ownerId=gid(org.rep_a2), name="Handed over"
    )

    assert payload["account"] is None
    assert codes(payload) == {("ownerId", "FORBIDDEN")}
    assert await stored(db, account.id) == before


async def test_manager_reassigns_within_its_team_only(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)

    moved = await update(client, org.manager_a, gid(account), 1, ownerId=gid(org.rep_a2))
    assert moved["userErrors"] == []
    assert moved["account"]["owner"] == {"id": gid(org.rep_a2)}
    before = await stored(db, account.id)
    assert before is not None
    assert before["owner_id"] == org.rep_a2.id

    poached = await update(client, org.manager_a, gid(account), 2, ownerId=gid(org.rep_b1))
    assert codes(poached) == {("ownerId", "FORBIDDEN")}
    assert await stored(db, account.id) == before


async def test_partner_is_refused_every_account_mutation(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    shared = await make_account(db, org.rep_a1, name="Shared")
    await share(db, shared, org.partner_org)
    before = await stored(db, shared.id)

    created = await create(client, org.partner, name="Partner made")
    updated = await update(client, org.partner, gid(shared), 1, name="Partner changed")
    archived = await archive(client, org.partner, gid(shared), 1)

    for payload in (created, updated, archived):
        assert payload["account"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    assert await account_count(db) == 1
    assert await stored(db, shared.id) == before


async def test_partner_cannot_learn_that_an_unshared_account_exists(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    hidden = await make_account(db, org.rep_a1, name="Hidden")
    before = await stored(db, hidden.id)
    missing = encode_id("Account", hidden.id + 1000)

    for mutation in (update, archive):
        payload = await mutation(client, org.partner, gid(hidden), 1)
        nothing = await mutation(client, org.partner, missing, 1)
        # An unshared account answers exactly like one that does not exist.
        assert codes(payload) == codes(nothing) == {("id", "NOT_FOUND")}
        assert payload["account"] is None
    assert await stored(db, hidden.id) == before


# --- optimistic concurrency ---------------------------------------------------------------


async def test_stale_version_is_a_conflict_and_changes_nothing(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1, name="Original")
    await update(client, org.rep_a1, gid(account), 1, industry="Energy")
    before = await stored(db, account.id)
    assert before is not None
    assert before["version"] == 2

    for version in (1, 3):
        payload = await update(client, org.rep_a1, gid(account), version, name="Late")
        assert payload["account"] is None
        assert codes(payload) == {("expectedVersion", "CONFLICT")}
        archived = await archive(client, org.rep_a1, gid(account), version)
        assert codes(archived) == {("expectedVersion", "CONFLICT")}

    assert await stored(db, account.id) == before


async def test_concurrent_updates_with_one_version_let_exactly_one_win(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1, name="Contested")

    results = await asyncio.gather(
        *(update(client, org.rep_a1, gid(account), 1, name=f"Writer {n}") for n in (1, 2))
    )

    winners = [r for r in results if not r["userErrors"]]
    losers = [r for r in results if r["userErrors"]]
    assert len(winners) == len(losers) == 1
    assert codes(losers[0]) == {("expectedVersion", "CONFLICT")}
    assert losers[0]["account"] is None
    assert winners[0]["account"]["version"] == 2
    row = await stored(db, account.id)
    assert row is not None
    assert (row["name"], row["version"]) == (winners[0]["account"]["name"], 2)


async def test_writers_that_both_passed_the_version_check_cannot_both_win(
    client: GraphQLClient, db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold each request after its read until the other has read too: both pass the
    # expectedVersion check, and only the version guard on the UPDATE can stop one.
    barrier = asyncio.Barrier(2)
    check_may_write = account_resolvers._check_may_write

    async def in_step(*args: Any, **kwargs: Any) -> None:
        await check_may_write(*args, **kwargs)
        await asyncio.wait_for(barrier.wait(), timeout=10)

    monkeypatch.setattr(account_resolvers, "_check_may_write", in_step)
    account = await make_account(db, org.rep_a1, name="Contested")

    results = await asyncio.gather(
        update(client, org.rep_a1, gid(account), 1, name="Writer 1"),
        update(client, org.rep_a1, gid(account), 1, name="Writer 2"),
    )

    assert sorted(bool(r["userErrors"]) for r in results) == [False, True]
    loser = next(r for r in results if r["userErrors"])
    winner = next(r for r in results if not r["userErrors"])
    assert codes(loser) == {("expectedVersion", "CONFLICT")}
    row = await stored(db, account.id)
    assert row is not None
    assert (row["name"], row["version"]) == (winner["account"]["name"], 2)


async def test_concurrent_update_and_archive_let_exactly_one_win(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1, name="Contested")

    updated, archived = await asyncio.gather(
        update(client, org.rep_a1, gid(account), 1, name="Changed"),
        archive(client, org.rep_a1, gid(account), 1),
    )

    assert sorted([bool(updated["userErrors"]), bool(archived["userErrors"])]) == [False, True]
    row = await stored(db, account.id)
    assert row is not None
    assert row["version"] == 2
    if archived["userErrors"]:
        assert codes(archived) == {("expectedVersion", "CONFLICT")}
        assert (row["name"], row["archived"]) == ("Changed", False)
    else:
        assert codes(updated) == {("expectedVersion", "CONFLICT")}
        assert (row["name"], row["archived"]) == ("Contested", True)


# --- archiveAccount -----------------------------------------------------------------------


async def test_archive_sets_archived_and_is_idempotent(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)
    before = await stored(db, account.id)
    assert before is not None

    first = await archive(client, org.rep_a1, gid(account), 1)

    assert first["userErrors"] == []
    assert first["account"]["archived"] is True
    assert first["account"]["version"] == 2
    archived_at = at(first["account"]["archivedAt"])
    row = await stored(db, account.id)
    assert row is not None
    assert row["archived"] is True
    assert row["archived_at"] == archived_at
    assert row["updated_at"] > before["updated_at"]
    assert row["version"] == 2

    # Repeating the request, or sending the current version, changes nothing more.
    for version in (1, 2):
        again = await archive(client, org.rep_a1, gid(account), version)
        assert again["userErrors"] == []
        assert again["account"]["archived"] is True
        assert at(again["account"]["archivedAt"]) == archived_at
        assert again["account"]["version"] == 2
    assert await stored(db, account.id) == row

    read = await client.query(READ, {"id": gid(account)}, as_user=org.rep_b1)
    assert read["account"]["archived"] is True


async def test_archive_of_an_unknown_or_malformed_id(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    missing = await archive(client, org.admin, encode_id("Account", 5), 1)
    malformed = await archive(client, org.admin, "nope", 1)

    assert codes(missing) == {("id", "NOT_FOUND")}
    assert codes(malformed) == {("id", "VALIDATION")}


# --- authentication -----------------------------------------------------------------------


async def test_unauthenticated_mutations_are_refused_and_write_nothing(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    account = await make_account(db, org.rep_a1)
    before = await stored(db, account.id)

    requests = [
        (CREATE, {"input": {"name": "Anonymous"}}),
        (UPDATE, {"input": {"id": gid(account), "expectedVersion": 1, "name": "Anonymous"}}),
        (ARCHIVE, {"input": {"id": gid(account), "expectedVersion": 1}}),
    ]
    for document, variables in requests:
        response = await client.post(document, variables)
        body = response.json()
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
        assert body.get("data") is None

    assert await account_count(db) == 1
    assert await stored(db, account.id) == before
