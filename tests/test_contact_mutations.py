"""createContact, updateContact and deleteContact through the HTTP endpoint.

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
from models.accounts import Account, Contact
from models.db import Database
from models.users import Role
from resolvers import accounts as account_resolvers
from tests.factories import Org, gid, make_account, make_contact, make_org, make_user, share
from tests.graphql_client import GraphQLClient

CONTACT = """
  id firstName lastName name email phone title emailConsent phoneConsent version
  createdAt updatedAt
  account { id }
  owner { id }
"""
ERRORS = "userErrors { field code message }"

CREATE = f"""
mutation Create($input: CreateContactInput!) {{
  createContact(input: $input) {{ contact {{ {CONTACT} }} {ERRORS} }}
}}"""
UPDATE = f"""
mutation Update($input: UpdateContactInput!) {{
  updateContact(input: $input) {{ contact {{ {CONTACT} }} {ERRORS} }}
}}"""
DELETE = f"""
mutation Delete($input: DeleteContactInput!) {{
  deleteContact(input: $input) {{ deletedContactId {ERRORS} }}
}}"""
ARCHIVE = """
mutation Archive($input: ArchiveAccountInput!) {
  archiveAccount(input: $input) { userErrors { code } }
}"""
READ = f"query Read($id: ID!) {{ contact(id: $id) {{ {CONTACT} }} }}"


# --- helpers ------------------------------------------------------------------------------


async def create(client: GraphQLClient, user: Any, account_id: str, **input: Any) -> dict[str, Any]:
    input.setdefault("lastName", "Virtanen")
    data = await client.query(CREATE, {"input": {"accountId": account_id, **input}}, as_user=user)
    return data["createContact"]


async def update(
    client: GraphQLClient, user: Any, contact_id: str, version: int, **changes: Any
) -> dict[str, Any]:
    input = {"id": contact_id, "expectedVersion": version, **changes}
    data = await client.query(UPDATE, {"input": input}, as_user=user)
    return data["updateContact"]


async def delete(
    client: GraphQLClient, user: Any, contact_id: str, version: int | None = None
) -> dict[str, Any]:
    input: dict[str, Any] = {"id": contact_id}
    if version is not None:
        input["expectedVersion"] = version
    data = await client.query(DELETE, {"input": input}, as_user=user)
    return data["deleteContact"]


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(error["field"], error["code"]) for error in payload["userErrors"]}


async def stored(db: Database, key: int) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (
            (await conn.execute(select(Contact.__table__).where(Contact.__table__.c.id == key)))
            .mappings()
            .one_or_none()
        )
    return dict(row) if row is not None else None


async def contact_count(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(Contact))).scalar_one()


async def account_version(db: Database, account: Account) -> int:
    async with db.read() as conn:
        return (
            await conn.execute(select(Account.version).where(Account.id == account.id))
        ).scalar_one()


def at(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return moment


@pytest.fixture
async def org(db: Database) -> Org:
    return await make_org(db)


@pytest.fixture
async def account(db: Database, org: Org) -> Account:
    """An account of rep A1's."""
    return await make_account(db, org.rep_a1, name="Acme")


async def archived_account(client: GraphQLClient, db: Database, org: Org) -> Account:
    account = await make_account(db, org.rep_a1, name="Closed")
    data = await client.query(
        ARCHIVE, {"input": {"id": gid(account), "expectedVersion": 1}}, as_user=org.admin
    )
    assert data["archiveAccount"]["userErrors"] == []
    return account


# --- createContact ------------------------------------------------------------------------


async def test_create_contact_stores_every_field_and_defaults_owner_to_viewer(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    payload = await create(
        client,
        org.rep_a1,
        gid(account),
        firstName=" Aino ",
        lastName=" Virtanen ",
        email=" aino@acme.example ",
        phone="+358 50 1",
        title="CFO",
        emailConsent=True,
    )

    assert payload["userErrors"] == []
    contact = payload["contact"]
    assert (contact["firstName"], contact["lastName"], contact["name"]) == (
        "Aino",
        "Virtanen",
        "Aino Virtanen",
    )
    assert (contact["email"], contact["phone"], contact["title"]) == (
        "aino@acme.example",
        "+358 50 1",
        "CFO",
    )
    assert (contact["emailConsent"], contact["phoneConsent"]) == (True, False)
    assert contact["account"] == {"id": gid(account)}
    assert contact["owner"] == {"id": gid(org.rep_a1)}
    assert contact["version"] == 1
    assert at(contact["createdAt"]) <= at(contact["updatedAt"])

    row = await stored(db, decode_id(contact["id"], "Contact"))
    assert row is not None
    assert (row["first_name"], row["last_name"], row["email"], row["phone"], row["title"]) == (
        "Aino",
        "Virtanen",
        "aino@acme.example",
        "+358 50 1",
        "CFO",
    )
    assert (row["email_consent"], row["phone_consent"]) == (True, False)
    assert (row["account_id"], row["owner_id"], row["version"]) == (account.id, org.rep_a1.id, 1)

    read = await client.query(READ, {"id": contact["id"]}, as_user=org.rep_b1)
    assert read["contact"] == contact


async def test_create_contact_on_another_reps_account_is_owned_by_the_viewer(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    payload = await create(client, org.rep_b1, gid(account), lastName="Korhonen")

    assert payload["userErrors"] == []
    row = await stored(db, decode_id(payload["contact"]["id"], "Contact"))
    assert row is not None
    assert (row["owner_id"], row["account_id"]) == (org.rep_b1.id, account.id)


@pytest.mark.parametrize(
    "email", ["no-at-sign", "two@@example.com", "a@b", "a b@c.example", "@example.com"]
)
async def test_create_contact_refuses_an_invalid_email(
    client: GraphQLClient, db: Database, org: Org, account: Account, email: str
) -> None:
    payload = await create(client, org.rep_a1, gid(account), email=email)

    assert payload["contact"] is None
    assert codes(payload) == {("email", "VALIDATION")}
    assert await contact_count(db) == 0


@pytest.mark.parametrize("last_name", ["", "   ", "n" * 101])
async def test_create_contact_refuses_a_bad_last_name(
    client: GraphQLClient, db: Database, org: Org, account: Account, last_name: str
) -> None:
    payload = await create(client, org.rep_a1, gid(account), lastName=last_name)

    assert codes(payload) == {("lastName", "VALIDATION")}
    assert await contact_count(db) == 0


async def test_create_contact_on_an_archived_account_is_refused(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    closed = await archived_account(client, db, org)

    payload = await create(client, org.rep_a1, gid(closed))

    assert payload["contact"] is None
    assert codes(payload) == {("accountId", "VALIDATION")}
    assert await contact_count(db) == 0


async def test_create_contact_on_an_unknown_or_malformed_account(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    unknown = await create(client, org.rep_a1, encode_id("Account", account.id + 100))
    malformed = await create(client, org.rep_a1, "%%%")
    wrong_type = await create(client, org.rep_a1, gid(org.rep_a1))
    huge = await create(client, org.rep_a1, encode_id("Account", 10**15))

    assert codes(unknown) == {("accountId", "NOT_FOUND")}
    assert codes(malformed) == {("accountId", "VALIDATION")}
    assert codes(wrong_type) == {("accountId", "VALIDATION")}
    assert codes(huge) == {("accountId", "VALIDATION")}
    assert await contact_count(db) == 0


async def test_create_contact_reports_every_problem_at_once(
    client: GraphQLClient, db: Database, org: Org
) -> None:
    closed = await archived_account(client, db, org)

    payload = await create(
        client,
        org.rep_a1,
        gid(closed),
        lastName=" ",
        email="nope",
        title="t" * 201,
        ownerId="bad id",
    )

    assert payload["contact"] is None
    assert codes(payload) == {
        ("accountId", "VALIDATION"),
        ("lastName", "VALIDATION"),
        ("email", "VALIDATION"),
        ("title", "VALIDATION"),
        ("ownerId", "VALIDATION"),
    }
    assert await contact_count(db) == 0


async def test_contact_owners_follow_the_assignment_rules(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    retired = await make_user(db, Role.REP, team=org.team_a, active=False)

    by_manager = await create(client, org.manager_a, gid(account), ownerId=gid(org.rep_a2))
    assert by_manager["userErrors"] == []
    row = await stored(db, decode_id(by_manager["contact"]["id"], "Contact"))
    assert row is not None
    assert row["owner_id"] == org.rep_a2.id

    refused = [
        (org.rep_a1, org.rep_a2, "FORBIDDEN"),
        (org.manager_a, org.rep_b1, "FORBIDDEN"),
        (org.admin, retired, None),
        (org.admin, org.partner, None),
        (org.admin, encode_id("User", 99999), "NOT_FOUND"),
    ]
    for viewer, owner, code in refused:
        owner_id = owner if isinstance(owner, str) else gid(owner)
        payload = await create(client, viewer, gid(account), ownerId=owner_id)
        assert payload["contact"] is None
        assert [e["field"] for e in payload["userErrors"]] == ["ownerId"]
        if code is not None:
            assert [e["code"] for e in payload["userErrors"]] == [code]
    assert await contact_count(db) == 1


# --- updateContact ------------------------------------------------------------------------


async def test_update_changes_only_the_fields_sent_and_null_clears(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(
        db,
        account,
        first_name="Aino",
        last_name="Virtanen",
        email="aino@acme.example",
        title="CFO",
        phone="123",
    )
    before = await stored(db, contact.id)
    assert before is not None

    first = await update(
        client, org.rep_a1, gid(contact), 1, title="CEO", email=None, phoneConsent=True
    )

    assert first["userErrors"] == []
    assert (first["contact"]["title"], first["contact"]["email"]) == ("CEO", None)
    assert first["contact"]["version"] == 2
    after = await stored(db, contact.id)
    assert after is not None
    assert after == {
        **before,
        "title": "CEO",
        "email": None,
        "phone_consent": True,
        "version": 2,
        "updated_at": after["updated_at"],
    }
    assert after["updated_at"] > before["updated_at"]

    second = await update(client, org.rep_a1, gid(contact), 2, firstName=None, lastName="Korhonen")

    assert second["userErrors"] == []
    assert (second["contact"]["name"], second["contact"]["version"]) == ("Korhonen", 3)
    assert at(second["contact"]["updatedAt"]) > at(first["contact"]["updatedAt"])
    final = await stored(db, contact.id)
    assert final is not None
    assert (final["first_name"], final["last_name"], final["title"], final["phone"]) == (
        None,
        "Korhonen",
        "CEO",
        "123",
    )
    assert final["version"] == 3


async def test_update_moves_a_contact_to_another_open_account(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(db, account)
    other = await make_account(db, org.rep_b1, name="Elsewhere")
    closed = await archived_account(client, db, org)

    moved = await update(client, org.rep_a1, gid(contact), 1, accountId=gid(other))
    assert moved["userErrors"] == []
    assert moved["contact"]["account"] == {"id": gid(other)}
    before = await stored(db, contact.id)
    assert before is not None
    assert before["account_id"] == other.id

    for account_id, code in (
        (gid(closed), "VALIDATION"),
        (None, "VALIDATION"),
        (encode_id("Account", 4040), "NOT_FOUND"),
    ):
        payload = await update(client, org.rep_a1, gid(contact), 2, accountId=account_id)
        assert codes(payload) == {("accountId", code)}
    assert await stored(db, contact.id) == before


async def test_update_refuses_invalid_values_and_reports_them_all(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(db, account, email="ok@acme.example")
    before = await stored(db, contact.id)

    invalid_email = await update(client, org.rep_a1, gid(contact), 1, email="not an email")
    assert codes(invalid_email) == {("email", "VALIDATION")}

    several = await update(
        client,
        org.rep_a1,
        gid(contact),
        1,
        lastName=None,
        email="x@",
        firstName="f" * 101,
        emailConsent=None,
        ownerId=gid(org.rep_b1),
        accountId="nonsense",
    )
    assert several["contact"] is None
    assert codes(several) == {
        ("lastName", "VALIDATION"),
        ("email", "VALIDATION"),
        ("firstName", "VALIDATION"),
        ("emailConsent", "VALIDATION"),
        ("ownerId", "FORBIDDEN"),
        ("accountId", "VALIDATION"),
    }
    assert await stored(db, contact.id) == before


async def test_rep_updates_its_own_contacts_only(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    own = await make_contact(db, account, org.rep_a1)
    colleagues = await make_contact(db, account, org.rep_a2)
    before = await stored(db, colleagues.id)

    mine = await update(client, org.rep_a1, gid(own), 1, title="Buyer")
    assert mine["userErrors"] == []
    row = await stored(db, own.id)
    assert row is not None
    assert row["title"] == "Buyer"

    # Owning the account does not make another rep's contact writable.
    refused = await update(client, org.rep_a1, gid(colleagues), 1, title="Hijacked")
    assert refused["contact"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    assert await stored(db, colleagues.id) == before


async def test_managers_write_their_teams_contacts_and_admins_all(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    team_a = await make_contact(db, account, org.rep_a2)
    team_b = await make_contact(db, account, org.rep_b1)
    before_b = await stored(db, team_b.id)

    allowed = await update(client, org.manager_a, gid(team_a), 1, title="By manager")
    assert allowed["userErrors"] == []
    refused = await update(client, org.manager_a, gid(team_b), 1, title="By manager")
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    assert await stored(db, team_b.id) == before_b

    by_admin = await update(client, org.admin, gid(team_b), 1, title="By admin")
    assert by_admin["userErrors"] == []
    row = await stored(db, team_b.id)
    assert row is not None
    assert (row["title"], row["version"]) == ("By admin", 2)


async def test_reassigning_a_contact_follows_the_owner_rules(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(db, account, org.rep_a1)
    before = await stored(db, contact.id)

    by_rep = await update(client, org.rep_a1, gid(contact), 1, ownerId=gid(org.rep_a2))
    assert codes(by_rep) == {("ownerId", "FORBIDDEN")}
    cleared = await update(client, org.rep_a1, gid(contact), 1, ownerId=None)
    assert codes(cleared) == {("ownerId", "VALIDATION")}
    assert await stored(db, contact.id) == before

    by_manager = await update(client, org.manager_a, gid(contact), 1, ownerId=gid(org.rep_a2))
    assert by_manager["contact"]["owner"] == {"id": gid(org.rep_a2)}
    row = await stored(db, contact.id)
    assert row is not None
    assert row["owner_id"] == org.rep_a2.id


async def test_stale_version_is_a_conflict_and_changes_nothing(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(db, account)
    await update(client, org.rep_a1, gid(contact), 1, title="First")
    before = await stored(db, contact.id)
    assert before is not None
    assert before["version"] == 2

    for version in (1, 5):
        payload = await update(client, org.rep_a1, gid(contact), version, title="Late")
        assert payload["contact"] is None
        assert codes(payload) == {("expectedVersion", "CONFLICT")}
    assert await stored(db, contact.id) == before


async def test_concurrent_updates_with_one_version_let_exactly_one_win(
    client: GraphQLClient, db: Database, org: Org, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold each request after its read until the other has read too: both pass the
    # expectedVersion check, and only the version guard on the UPDATE can stop one.
    barrier = asyncio.Barrier(2)
    check_may_write = account_resolvers._check_may_write

    async def in_step(*args: Any, **kwargs: Any) -> None:
        await check_may_write(*args, **kwargs)
        await asyncio.wait_for(barrier.wait(), timeout=10)

    monkeypatch.setattr(account_resolvers, "_check_may_write", in_step)
    contact = await make_contact(db, account)

    results = await asyncio.gather(
        *(update(client, org.rep_a1, gid(contact), 1, title=f"Writer {n}") for n in (1, 2))
    )

    winners = [r for r in results if not r["userErrors"]]
    losers = [r for r in results if r["userErrors"]]
    assert len(winners) == len(losers) == 1
    assert codes(losers[0]) == {("expectedVersion", "CONFLICT")}
    row = await stored(db, contact.id)
    assert row is not None
    assert (row["title"], row["version"]) == (winners[0]["contact"]["title"], 2)


async def test_contact_changes_leave_the_account_alone(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    created = await create(client, org.rep_a1, gid(account))
    contact_id = created["contact"]["id"]
    await update(client, org.rep_a1, contact_id, 1, title="Buyer")
    await delete(client, org.rep_a1, contact_id)

    assert await account_version(db, account) == 1


# --- deleteContact ------------------------------------------------------------------------


async def test_delete_contact_removes_the_row(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(db, account)
    kept = await make_contact(db, account)

    payload = await delete(client, org.rep_a1, gid(contact), 1)

    assert payload == {"deletedContactId": gid(contact), "userErrors": []}
    assert await stored(db, contact.id) is None
    assert await stored(db, kept.id) is not None
    read = await client.query(READ, {"id": gid(contact)}, as_user=org.rep_a1)
    assert read["contact"] is None

    again = await delete(client, org.rep_a1, gid(contact))
    assert again["deletedContactId"] is None
    assert codes(again) == {("id", "NOT_FOUND")}


async def test_delete_contact_without_a_version_deletes_whatever_version(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(db, account)
    await update(client, org.rep_a1, gid(contact), 1, title="Changed")

    payload = await delete(client, org.rep_a1, gid(contact))

    assert payload["deletedContactId"] == gid(contact)
    assert await contact_count(db) == 0


async def test_delete_contact_with_a_stale_version_keeps_the_row(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(db, account)
    await update(client, org.rep_a1, gid(contact), 1, title="Changed")
    before = await stored(db, contact.id)

    payload = await delete(client, org.rep_a1, gid(contact), 1)

    assert payload["deletedContactId"] is None
    assert codes(payload) == {("expectedVersion", "CONFLICT")}
    assert await stored(db, contact.id) == before


async def test_only_writers_of_a_contact_may_delete_it(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(db, account, org.rep_a2)
    before = await stored(db, contact.id)

    for viewer in (org.rep_a1, org.rep_b1, org.manager_b):
        payload = await delete(client, viewer, gid(contact), 1)
        assert payload["deletedContactId"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    assert await stored(db, contact.id) == before

    by_manager = await delete(client, org.manager_a, gid(contact), 1)
    assert by_manager["deletedContactId"] == gid(contact)
    assert await contact_count(db) == 0


async def test_delete_contact_with_a_malformed_id(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    await make_contact(db, account)

    malformed = await delete(client, org.admin, "???")
    wrong_type = await delete(client, org.admin, gid(account))

    assert codes(malformed) == {("id", "VALIDATION")}
    assert codes(wrong_type) == {("id", "VALIDATION")}
    assert await contact_count(db) == 1


async def test_concurrent_deletes_delete_once(
    client: GraphQLClient, db: Database, org: Org, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    barrier = asyncio.Barrier(2)
    check_may_write = account_resolvers._check_may_write

    async def in_step(*args: Any, **kwargs: Any) -> None:
        await check_may_write(*args, **kwargs)
        await asyncio.wait_for(barrier.wait(), timeout=10)

    monkeypatch.setattr(account_resolvers, "_check_may_write", in_step)
    contact = await make_contact(db, account)

    results = await asyncio.gather(
        delete(client, org.rep_a1, gid(contact), 1), delete(client, org.admin, gid(contact), 1)
    )

    assert sorted(r["deletedContactId"] is None for r in results) == [False, True]
    loser = next(r for r in results if r["deletedContactId"] is None)
    assert codes(loser) == {("expectedVersion", "CONFLICT")}
    assert await contact_count(db) == 0


# --- partners and anonymous callers -------------------------------------------------------


async def test_partner_is_refused_every_contact_mutation(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    await share(db, account, org.partner_org)
    contact = await make_contact(db, account)
    before = await stored(db, contact.id)

    created = await create(client, org.partner, gid(account), lastName="Partner made")
    updated = await update(client, org.partner, gid(contact), 1, title="Partner changed")
    deleted = await delete(client, org.partner, gid(contact), 1)

    for payload in (created, updated, deleted):
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    assert created["contact"] is None
    assert updated["contact"] is None
    assert deleted["deletedContactId"] is None
    assert await contact_count(db) == 1
    assert await stored(db, contact.id) == before


async def test_partner_cannot_learn_that_unshared_records_exist(
    client: GraphQLClient, db: Database, org: Org, account: Account
) -> None:
    contact = await make_contact(db, account)
    before = await stored(db, contact.id)
    missing_account = encode_id("Account", account.id + 1000)
    missing_contact = encode_id("Contact", contact.id + 1000)

    # Unshared records answer exactly like records that do not exist.
    assert (
        codes(await create(client, org.partner, gid(account)))
        == codes(await create(client, org.partner, missing_account))
        == {("accountId", "NOT_FOUND")}
    )
    assert (
        codes(await update(client, org.partner, gid(contact), 1, title="x"))
        == codes(await update(client, org.partner, missing_contact, 1, title="x"))
        == {("id", "NOT_FOUND")}
    )
    assert (
        codes(await delete(client, org.partner, gid(contact), 1))
        == codes(await delete(client, org.partner, missing_contact, 1))
        == {("id", "NOT_FOUND")}
    )
    assert await contact_count(db) == 1
    assert await stored(db, contact.id) == before


async def test_unauthenticated_mutations_are_refused_and_write_nothing(
    client: GraphQLClient, db: Database, account: Account
) -> None:
    contact = await make_contact(db, account)
    before = await stored(db, contact.id)

    requests = [
        (CREATE, {"input": {"accountId": gid(account), "lastName": "Anonymous"}}),
        (UPDATE, {"input": {"id": gid(contact), "expectedVersion": 1, "title": "Anonymous"}}),
        (DELETE, {"input": {"id": gid(contact)}}),
    ]
    for document, variables in requests:
        response = await client.post(document, variables)
        body = response.json()
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
        assert body.get("data") is None

    assert await contact_count(db) == 1
    assert await stored(db, contact.id) == before
