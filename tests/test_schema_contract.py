"""schema/schema.graphql is the API contract: it must be what the code serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graphql import build_schema as parse_sdl

from schema.root import export_sdl

ROOT = Path(__file__).resolve().parent.parent
CHECKED_IN = ROOT / "schema" / "schema.graphql"


def test_checked_in_schema_matches_the_code():
    assert CHECKED_IN.read_text() == export_sdl(), (
        "schema/schema.graphql is stale: run `crmgraph export-schema > schema/schema.graphql`"
        " and commit it with the API change"
    )


def test_export_schema_command_prints_the_contract():
    printed = subprocess.run(
        [sys.executable, "-m", "server.cli", "export-schema"], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout
    assert printed == CHECKED_IN.read_text()


def test_contract_names_that_clients_rely_on():
    schema = parse_sdl(CHECKED_IN.read_text())
    query = schema.query_type.fields
    for name in ("viewer", "node", "nodes", "account", "accounts", "contacts", "users",
                 "products", "teams", "offeringAreas"):
        assert name in query, name
    accounts_args = set(query["accounts"].args)
    assert accounts_args == {"first", "after", "last", "before", "filter", "orderBy"}
    assert str(query["accounts"].type) == "AccountConnection!"
    assert str(query["nodes"].type) == "[Node]!"
    account = schema.type_map["Account"]
    assert {"owner", "parent", "children", "contacts", "version"} <= set(account.fields)
    assert str(schema.type_map["Contact"].fields["emailConsent"].type) == "Boolean!"
    assert str(schema.type_map["Contact"].fields["phoneConsent"].type) == "Boolean!"
    mutation = schema.mutation_type.fields
    for name in ("createAccount", "updateAccount", "archiveAccount", "createContact",
                 "updateContact", "deleteContact"):
        payload = schema.type_map[mutation[name].type.of_type.name]
        assert "userErrors" in payload.fields, name
        assert set(mutation[name].args) == {"input"}
    user_error = schema.type_map["UserError"].fields
    assert set(user_error) == {"field", "code", "message"}
