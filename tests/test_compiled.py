"""The compiled execution path (server/compiled.py) answers as graphql-core does.

Every query of the other tests already runs through both (tests/conftest.py sets
COMPILED_EXECUTION=verify and fails a test whose answers differ). Here: randomly
generated queries over the whole schema, on the demo data, as an admin, a rep and a
partner (whose refusals are field errors, so null propagation is exercised), through a
server that compiles and one that does not, compared byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from operator import attrgetter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    GraphQLUnionType,
    build_schema,
    get_named_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.pyutils import Undefined
from sqlalchemy import select
from starlette.applications import Starlette

import schema.relay as relay
from loaders.container import Loaders
from loaders.errors import Forbidden
from loaders.ids import encode_id
from loaders.opportunities import PHASES, PhaseByIdLoader
from models.db import Database
from models.users import Role
from resolvers.users import find_user_id_by_email, load_viewer
from schema.rows import FromRow, Related, RowBacked, RowList, reads
from server import compiled as plans
from server.app import create_app
from server.demo import DEMO_EMAILS, seed_demo
from server.settings import Settings

SCHEMA = build_schema((Path(__file__).parent.parent / "schema" / "schema.graphql").read_text())
PAGE_ARGUMENTS = ("first", "last")
QUERIES_PER_ROLE = 60
ROLES = (Role.ADMIN, Role.REP, Role.PARTNER)

HANDWRITTEN = [
    # Aliases of one field with different arguments, fragments, __typename at every level.
    """query Q($n: Int) { a: accounts(first: $n) { ...page } b: accounts(last: 2) { ...page }
       __typename }
       fragment page on AccountConnection { __typename totalCount pageInfo { hasNextPage
         endCursor } edges { cursor node { id name owner { name team { name } } } } }""",
    # @skip/@include on variables: a plan that depends on the variables.
    """query Q($n: Int, $yes: Boolean!, $no: Boolean!) { accounts(first: $n) { nodes {
         id name @include(if: $yes) industry @skip(if: $yes) owner @include(if: $no) { name }
         contacts(first: 2) @skip(if: $no) { nodes { name email } } } } }""",
    # The Node interface: abstract completion with inline fragments.
    """query Q($n: Int) { accounts(first: $n) { nodes { id ... on Node { id } } }
       viewer { ... on User { id name role } } }""",
]


def generate(rng: random.Random, schema: GraphQLSchema, depth: int = 4) -> str:
    """A query of root fields without required arguments, random sub-selections,
    aliases, page sizes, enum arguments and inline fragments on abstract types."""
    return "{ " + _selection(rng, schema, schema.query_type, depth) + " }"


def _selection(rng: random.Random, schema: GraphQLSchema, type_: object, depth: int) -> str:
    if isinstance(type_, (GraphQLInterfaceType, GraphQLUnionType)):
        parts = ["__typename"]
        for possible in rng.sample(list(schema.get_possible_types(type_)),
                                   k=min(2, len(schema.get_possible_types(type_)))):
            parts.append(f"... on {possible.name} {{ "
                         f"{_selection(rng, schema, possible, depth - 1)} }}")
        if isinstance(type_, GraphQLInterfaceType):
            parts.append(_selection(rng, schema, GraphQLObjectType(
                type_.name, type_.fields), depth - 1))
        return " ".join(parts)
    fields = [(name, field) for name, field in type_.fields.items()  # type: ignore[attr-defined]
              if not any(is_non_null_type(arg.type) and arg.default_value is Undefined
                         for arg in field.args.values())
              and not name.startswith("_")]
    leaves = [f for f in fields if is_leaf_type(get_named_type(f[1].type))]
    objects = [f for f in fields if not is_leaf_type(get_named_type(f[1].type))]
    chosen = rng.sample(leaves, k=min(len(leaves), rng.randint(1, 4)))
    if depth > 0 and objects:
        chosen += rng.sample(objects, k=min(len(objects), rng.randint(0, 3)))
    if not chosen:
        return "__typename"
    parts = []
    for index, (name, field) in enumerate(chosen):
        arguments = []
        for arg_name, arg in field.args.items():
            named = get_named_type(arg.type)
            if arg_name in PAGE_ARGUMENTS and rng.random() < 0.5:
                arguments.append(f"{arg_name}: {rng.randint(0, 4)}")
                break
            if isinstance(named, GraphQLEnumType) and rng.random() < 0.3:
                arguments.append(f"{arg_name}: {rng.choice(list(named.values))}")
        alias = f"a{index}: " if rng.random() < 0.2 else ""
        text = f"{alias}{name}" + (f"({', '.join(arguments)})" if arguments else "")
        named = get_named_type(field.type)
        if not is_leaf_type(named):
            text += " { " + _selection(rng, schema, named, depth - 1) + " }"
        parts.append(text)
    if rng.random() < 0.3:
        parts.append("__typename")
    return " ".join(parts)


@pytest.fixture
async def apps(settings: Settings, db: Database) -> AsyncIterator[dict[str, Starlette]]:
    await seed_demo(db)
    compiled = create_app(replace(settings, compiled_execution="on"))
    reference = create_app(replace(settings, compiled_execution="off"))
    async with compiled.router.lifespan_context(compiled), \
            reference.router.lifespan_context(reference):
        yield {"compiled": compiled, "graphql-core": reference}


async def _answer(app: Starlette, query: str, variables: dict, token: str) -> bytes:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="http://testserver") as http:
        response = await http.post("/graphql", json={"query": query, "variables": variables},
                                   headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    body.pop("extensions", None)  # each server's own cost budget
    if "errors" in body:
        # The order of errors is the order fields failed in, which the specification
        # leaves open (graphql-core's follows its task scheduling): the same set.
        body["errors"].sort(key=lambda error: orjson.dumps(error, option=orjson.OPT_SORT_KEYS))
    return orjson.dumps({"status": response.status_code, **body})


@pytest.mark.parametrize("role", ROLES)
async def test_random_queries_answer_as_graphql_core(apps: dict[str, Starlette], db: Database,
                                                     role: Role) -> None:
    rng = random.Random(f"compiled-{role.value}")
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[role])
    token = apps["compiled"].state.authenticator.mint(user_id)
    queries = [(q, {"n": 3, "yes": True, "no": False}) for q in HANDWRITTEN]
    queries += [(q, {"n": 2, "yes": False, "no": True}) for q in HANDWRITTEN]
    queries += [(generate(rng, SCHEMA), {}) for _ in range(QUERIES_PER_ROLE)]
    with_errors = with_data = 0
    for query, variables in queries:
        variables = {k: v for k, v in variables.items() if f"${k}" in query}
        compiled = await _answer(apps["compiled"], query, variables, token)
        reference = await _answer(apps["graphql-core"], query, variables, token)
        assert compiled == reference, query
        body = orjson.loads(compiled)
        with_errors += "errors" in body
        with_data += bool(body.get("data"))
    assert with_data >= len(queries) // 2, "most generated queries must return data"
    if role is Role.PARTNER:
        assert with_errors, "the partner's refusals must be among the answers"


async def test_null_propagation_and_errors_match(apps: dict[str, Starlette], db: Database
                                                 ) -> None:
    """Refused fields: a nullable one is null beside its error; a non-null root field
    nulls the whole data. Both paths alike."""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[Role.PARTNER])
    token = apps["compiled"].state.authenticator.mint(user_id)
    rep = encode_id("User", await find_user_id_by_email(db, DEMO_EMAILS[Role.REP]))
    nullable = """{ accounts(first: 2) { nodes { name } }
                    users(first: 2) { nodes { name attainment { target } } } }"""
    root = nullable[:-1] + f'attainment(userId: "{rep}", week: "2026-W44") {{ target }} }}'
    for query, data in ((nullable, True), (root, False)):
        compiled = await _answer(apps["compiled"], query, {}, token)
        assert compiled == await _answer(apps["graphql-core"], query, {}, token)
        body = orjson.loads(compiled)
        assert body["errors"], body
        assert bool(body["data"]) is data, body


async def test_the_compiled_path_runs(apps: dict[str, Starlette], db: Database) -> None:
    """The plans are made and reused: the comparison above compares two paths."""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN])
    token = apps["compiled"].state.authenticator.mint(user_id)
    compiler = apps["compiled"].state.compiler
    assert compiler is not None
    assert apps["graphql-core"].state.compiler is None
    query = "{ accounts(first: 2) { nodes { name } } }"
    await _answer(apps["compiled"], query, {}, token)
    await _answer(apps["compiled"], query, {}, token)
    assert compiler.plans == 1


BATCHED = """query Q($after: String) { accounts(first: 4) { nodes { name owner { name }
  parent { name } children(first: 1) { totalCount nodes { name } }
  contacts(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { name account { name } owner { name } } } }
  opportunities(first: 2) { nodes { name owner { name } account { name }
    pipeline { name } phase { name } } } } } }"""


def _batched_fields(plan: object, seen: set[int] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    names: set[str] = set()
    if id(plan) in seen:
        return names
    seen.add(id(plan))
    for field in plan.fields:  # type: ignore[attr-defined]
        if field.batch is not None:
            names.add(field.field_name)
        completion = field.completion
        while completion.inner is not None:
            completion = completion.inner
        for subplan in completion.plans.values():
            names |= _batched_fields(subplan, seen)
    return names


@pytest.mark.parametrize("role", ROLES)
async def test_batched_fields_answer_as_graphql_core(apps: dict[str, Starlette], db: Database,
                                                     role: Role) -> None:
    """To-one rows and nested connections are loaded for a whole level at once
    (schema/rows.py ``batched``), without a resolver call per object: the same answers,
    refusals and errors (a bad cursor fails the field on every account) as resolvers."""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[role])
    token = apps["compiled"].state.authenticator.mint(user_id)
    for variables in ({}, {"after": "not-a-cursor"}):
        compiled = await _answer(apps["compiled"], BATCHED, variables, token)
        assert compiled == await _answer(apps["graphql-core"], BATCHED, variables, token)
        body = orjson.loads(compiled)
        if "after" in variables:  # a non-null connection's error nulls up to the root
            assert body["data"] is None, body
            assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}
        else:
            assert body["data"]["accounts"]["nodes"], body
    (_operation, plan), = apps["compiled"].state.compiler._plans.values()
    assert _batched_fields(plan) == {"owner", "parent", "children", "contacts", "account",
                                     "opportunities", "pipeline", "phase"}


PRUNED = """query Q($after: String) { accounts(first: 4) { nodes { name
  opportunities(first: 2, after: $after, orderBy: [{field: EXPECTED_CLOSE_DATE}]) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name amount weightedAmount owner { name } } } }
  contacts(first: 2) { nodes { name account { name } } } } } }"""

WHOLE_ROWS = """{ accounts(first: 4) { nodes { name
  opportunities(first: 2) { nodes { name offeringArea { name } } } } } }"""


def _page_statements(app: Starlette, table: str) -> list[str]:
    """The statements ``app`` sends from now on that page ``table``'s rows per parent."""
    sent: list[str] = []

    def keep(statement: str) -> None:
        if "row_number()" in statement and f"FROM {table}" in statement:
            sent.append(statement)

    app.state.db.watchers.append(keep)
    return sent


async def test_nested_pages_fetch_only_the_columns_their_nodes_read(
        apps: dict[str, Starlette], db: Database) -> None:
    """A page of deals whose nodes read a few declared columns fetches those, the keys
    and the sort keys, not every column: the same answers and cursors (a cursor from a
    pruned page pages on as one from a whole row does). A node field the plan cannot
    see into (a resolver) fetches whole rows."""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN])
    token = apps["compiled"].state.authenticator.mint(user_id)
    opportunities = _page_statements(apps["compiled"], "opportunities")
    contacts = _page_statements(apps["compiled"], "contacts")
    compiled = await _answer(apps["compiled"], PRUNED, {}, token)
    assert compiled == await _answer(apps["graphql-core"], PRUNED, {}, token)
    [statement] = opportunities
    for column in ("id", "account_id", "name", "amount", "probability", "owner_id",
                   "expected_close_date"):
        assert f"opportunities.{column}" in statement, column
    for column in ("lost_reason", "phase_id", "currency", "created_at", "version"):
        assert f"opportunities.{column}" not in statement, column
    [statement] = contacts
    assert "contacts.last_name" in statement
    assert "contacts.email" not in statement
    body = orjson.loads(compiled)
    account = next(node for node in body["data"]["accounts"]["nodes"]
                   if node["opportunities"]["pageInfo"]["hasNextPage"])
    after = {"after": account["opportunities"]["pageInfo"]["endCursor"]}
    assert await _answer(apps["compiled"], PRUNED, after, token) == await _answer(
        apps["graphql-core"], PRUNED, after, token)

    opportunities.clear()
    assert await _answer(apps["compiled"], WHOLE_ROWS, {}, token) == await _answer(
        apps["graphql-core"], WHOLE_ROWS, {}, token)
    [statement] = opportunities
    assert "opportunities.lost_reason" in statement


async def test_nested_pages_fetch_their_sort_keys_only_for_cursors(
        apps: dict[str, Starlette], db: Database) -> None:
    """Pages whose cursors nobody reads (no page info, no edge's cursor) fetch rows
    without the sort keys: they order the window in the statement, not the rows out of
    it. Asked for a cursor or a page's info, the rows carry them again."""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN])
    token = apps["compiled"].state.authenticator.mint(user_id)
    opportunities = _page_statements(apps["compiled"], "opportunities")
    nodes = "nodes { id name amount }"
    for selection, cursors in ((nodes, False), (f"pageInfo {{ hasNextPage }} {nodes}", True),
                               (f"edges {{ cursor node {{ id }} }} {nodes}", True)):
        query = (f"{{ accounts(first: 4) {{ nodes {{ name opportunities(first: 2, orderBy: "
                 f"[{{field: EXPECTED_CLOSE_DATE}}]) {{ {selection} }} }} }} }}")
        opportunities.clear()
        assert await _answer(apps["compiled"], query, {}, token) == await _answer(
            apps["graphql-core"], query, {}, token)
        [statement] = opportunities
        outer = statement.split("FROM (", 1)[0]  # the columns the rows come with
        assert "amount" in outer, statement
        assert ("expected_close_date" in outer) is cursors, statement


async def test_root_pages_fetch_only_the_columns_their_nodes_read(
        apps: dict[str, Starlette], db: Database) -> None:
    """A root connection whose nodes the plan can see into fetches their columns and
    its keys (the sort keys only for cursors), with the same answers and cursors as
    graphql-core's execution, which fetches whole rows; one it cannot, whole rows."""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN])
    token = apps["compiled"].state.authenticator.mint(user_id)
    sent: list[str] = []
    apps["compiled"].state.db.watchers.append(sent.append)

    def columns(table: str) -> str:
        [statement] = [s for s in sent if f"FROM {table}" in s and "row_number" not in s
                       and "count(" not in s]
        return statement.split("FROM", 1)[0]

    root = """query Q($after: String) { accounts(first: 3, after: $after,
      orderBy: [{field: CITY}]) { %s } }"""
    for selection, cursors in (("nodes { name }", False),
                               ("pageInfo { endCursor } nodes { name }", True)):
        sent.clear()
        query = root % selection
        assert await _answer(apps["compiled"], query, {}, token) == await _answer(
            apps["graphql-core"], query, {}, token)
        selected = columns("accounts")
        assert "accounts.name" in selected, selected
        assert "accounts.id" in selected, selected
        assert "accounts.website" not in selected, selected
        assert ("accounts.city" in selected) is cursors, selected
    body = orjson.loads(await _answer(apps["compiled"], root % "pageInfo { endCursor }", {},
                                      token))
    after = {"after": body["data"]["accounts"]["pageInfo"]["endCursor"]}
    query = root % "pageInfo { endCursor } nodes { name owner { name } }"
    assert await _answer(apps["compiled"], query, after, token) == await _answer(
        apps["graphql-core"], query, after, token)

    deals = """{ opportunities(first: 3, orderBy: [{field: EXPECTED_CLOSE_DATE}]) {
      nodes { name amount } } }"""
    sent.clear()
    assert await _answer(apps["compiled"], deals, {}, token) == await _answer(
        apps["graphql-core"], deals, {}, token)
    selected = columns("opportunities")
    assert "opportunities.amount" in selected, selected
    for column in ("expected_close_date", "lost_reason", "created_at"):
        assert f"opportunities.{column}" not in selected, selected

    # A resolver field (sharedWith) reads what the plan cannot tell: whole rows.
    resolver = "{ accounts(first: 3) { nodes { name sharedWith { nodes { name } } } } }"
    sent.clear()
    assert await _answer(apps["compiled"], resolver, {}, token) == await _answer(
        apps["graphql-core"], resolver, {}, token)
    assert "accounts.website" in columns("accounts")


async def test_nodes_of_leaves_are_completed_from_their_rows(
        apps: dict[str, Starlette], db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested pages whose nodes read only leaves of their rows are completed from the
    rows: no node object is made (the connection's nodes stay unmade), and the answer is
    graphql-core's. Nodes with fields of their own to resolve are made, as before; so
    are those of a page whose nodes a resolver reads (edges)."""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN])
    token = apps["compiled"].state.authenticator.mint(user_id)
    made: list[relay.Connection] = []
    connection = relay.connection

    def keep(*args: object) -> relay.Connection:
        made.append(connection(*args))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(relay, "connection", keep)
    leaves = """{ accounts(first: 5) { nodes { name
      opportunities(first: 3) { nodes { id name amount } } } } }"""
    compiled = await _answer(apps["compiled"], leaves, {}, token)
    deals = [c for c in made if c.__dict__["_page"].rows and
             "account_id" in c.__dict__["_page"].rows[0]._fields]
    assert deals, made
    assert not any("nodes" in c.__dict__ for c in deals)
    assert compiled == await _answer(apps["graphql-core"], leaves, {}, token)
    made.clear()
    edges = """{ accounts(first: 5) { nodes { name opportunities(first: 3) {
      nodes { id } edges { cursor node { name } } } } } }"""
    compiled = await _answer(apps["compiled"], edges, {}, token)
    assert made
    assert all("nodes" in c.__dict__ for c in made if c.__dict__["_page"].rows)
    assert compiled == await _answer(apps["graphql-core"], edges, {}, token)


async def test_plan_rows_of_leaves_are_completed_from_their_lines(
        apps: dict[str, Starlette], db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page of accounts' plans, whose rows read only leaves, is completed from the
    plans' lines: no row object is made. Rows with a field to resolve are made, as
    before; both answer as graphql-core does."""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN])
    token = apps["compiled"].state.authenticator.mint(user_id)
    made = 0
    rows_of = RowList.__iter__

    def counted(self: RowList) -> Any:
        nonlocal made
        made += 1
        return rows_of(self)

    monkeypatch.setattr(RowList, "__iter__", counted)
    plan = 'plan(from: "2026-01-01", to: "2026-06-30", granularity: QUARTER)'
    leaves = f"""{{ accounts(first: 4) {{ nodes {{ name {plan} {{
      rows {{ period budget forecast forecastKind billed won budgetVariance }} }} }} }} }}"""
    compiled = await _answer(apps["compiled"], leaves, {}, token)
    assert b'"budget":"' in compiled  # rows with figures, not only nulls
    assert made == 0
    assert compiled == await _answer(apps["graphql-core"], leaves, {}, token)
    assert made == 4  # graphql-core makes the rows of each plan
    made = 0
    areas = f"""{{ accounts(first: 4) {{ nodes {{ {plan} {{
      rows {{ period budget offeringArea {{ name }} }} }} }} }} }}"""
    compiled = await _answer(apps["compiled"], areas, {}, token)
    assert made == 4
    assert compiled == await _answer(apps["graphql-core"], areas, {}, token)


async def test_a_to_one_field_makes_one_object_per_distinct_key(
        apps: dict[str, Starlette], db: Database) -> None:
    """A level's to-one field (each deal's phase) loads and makes each distinct key's
    object once, shared by the sources with that key; in the keys' order, a missing
    row null; and the answer is graphql-core's."""
    viewer = await load_viewer(db, await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN]))
    assert viewer is not None
    made: list[object] = []
    related = Related(PhaseByIdLoader, "phase_id", lambda row: made.append(row) or row)
    async with db.read() as connection:
        phases = list((await connection.execute(select(PHASES.c.id).limit(2))).scalars())
    keys = [phases[0], phases[1], phases[0], 0, phases[0], phases[1]]
    loaded = await related.load(Loaders(db, viewer), keys, {})
    assert [row.id if row else None for row in loaded] == [
        phases[0], phases[1], phases[0], None, phases[0], phases[1]]
    assert len(made) == 2
    assert loaded[0] is loaded[2] is loaded[4]
    token = apps["compiled"].state.authenticator.mint(viewer.user_id)
    shared = "{ opportunities(first: 40) { nodes { name phase { name position } } } }"
    assert await _answer(apps["compiled"], shared, {}, token) == await _answer(
        apps["graphql-core"], shared, {}, token)


async def test_a_to_one_object_of_leaves_is_completed_where_it_is_met(
        apps: dict[str, Starlette], db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each deal's phase and owner, of leaves only, are completed at the deals' level:
    no level of phases or users follows. The answer is graphql-core's."""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN])
    token = apps["compiled"].state.authenticator.mint(user_id)
    levels: list[list[str]] = []
    run_level = plans.Run.run_level

    async def counted(self: plans.Run, level: list[Any]) -> Any:
        levels.append([plan.type.name for plan, _entries in level])
        return await run_level(self, level)

    monkeypatch.setattr(plans.Run, "run_level", counted)
    query = """{ opportunities(first: 40) { nodes { name phase { name position }
      owner { name } account { name owner { name } } } } }"""
    compiled = await _answer(apps["compiled"], query, {}, token)
    assert levels
    assert not any({"Phase", "User"} & set(names) for names in levels), levels
    assert any("Account" in names for names in levels)  # not leaves only: a level
    assert compiled == await _answer(apps["graphql-core"], query, {}, token)


async def test_a_page_with_a_row_that_fails_is_completed_row_by_row(
        apps: dict[str, Starlette], db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page of leaves whose middle row fails to coerce (here a Decimal that cannot be
    serialized) leaves the rows' shortcut: that row is made a node and completed the
    general way, its error placed at its own index, and the rows around it keep their
    results. The answer is graphql-core's. (The compiled plan takes each leaf's coercion
    when it is made: the scalar is patched before the query first runs there.)"""
    user_id = await find_user_id_by_email(db, DEMO_EMAILS[Role.ADMIN])
    token = apps["compiled"].state.authenticator.mint(user_id)
    query = """{ accounts(first: 2) { nodes { name
      opportunities(first: 3) { nodes { id name amount } } } } }"""
    before = orjson.loads(await _answer(apps["graphql-core"], query, {}, token))
    deals = before["data"]["accounts"]["nodes"][0]["opportunities"]["nodes"]
    assert len(deals) == 3, deals
    failing = deals[1]["amount"]
    for app in apps.values():
        decimal = app.state.schema._schema.type_map["Decimal"]
        coerce = decimal.coerce_output_value

        def refuse(value: object, coerce: Callable[[object], object] = coerce) -> object:
            result = coerce(value)
            if result == failing:
                raise Forbidden("this amount is not to be shown")  # coded: no request id
            return result

        monkeypatch.setattr(decimal, "coerce_output_value", refuse)
    compiled = await _answer(apps["compiled"], query, {}, token)
    answer = orjson.loads(compiled)
    paths = [error["path"] for error in answer["errors"]]
    assert ["accounts", "nodes", 0, "opportunities", "nodes", 1, "amount"] in paths, paths
    assert compiled == await _answer(apps["graphql-core"], query, {}, token)


def test_connections_make_their_nodes_when_first_read() -> None:
    class Deal(RowBacked):
        _reads = reads(name="name")

    page = SimpleNamespace(rows=[SimpleNamespace(name="a"), SimpleNamespace(name="b")])
    made = relay.connection(page, Deal.from_row, lambda: None)  # type: ignore[arg-type]
    unmade = relay._nodes_or_rows(made)
    assert isinstance(unmade, relay.RowNodes)
    assert unmade.rows == page.rows
    assert [node.name for node in unmade] == ["a", "b"]  # iterated: made
    assert relay._nodes_or_rows(made) is made.nodes
    assert plans._makes_from_row(Deal.from_row, _object_type(Deal))
    assert plans._makes_from_row(FromRow(lambda: Deal), _object_type(Deal))
    assert not plans._makes_from_row(lambda row: Deal.from_row(row), _object_type(Deal))


def _object_type(origin: type) -> GraphQLObjectType:
    return GraphQLObjectType("T", {"name": GraphQLField(GraphQLString)}, extensions={
        "strawberry-definition": SimpleNamespace(origin=origin)})


def test_a_selection_of_leaves_is_completed_by_code_written_for_it() -> None:
    """The function written for a selection of attribute leaves gives the object's
    result, or None where the general path must place an error or a null: a null
    where none may be, an error as a value, a value that does not coerce, a getter
    that raises. An object holding only its row is read from the row."""
    class Deal(RowBacked):
        _reads = reads(name="name", amount="amount")

    def getter(name: str) -> object:
        return plans._row_getter(name, Deal._reads[name])

    def leaves(*, name_nullable: bool) -> list[plans.Leaf]:
        return [("name", getter("name"), str.upper, name_nullable),
                ("amount", getter("amount"), lambda value: None if value < 0 else value,
                 True)]

    complete = plans._leaves_function(leaves(name_nullable=False))
    row = SimpleNamespace(name="acme", amount=3)
    assert complete(Deal.from_row(row)) == {"name": "ACME", "amount": 3}
    read = Deal.from_row(row)
    read.__dict__["name"] = "kept"  # read before: the object's value, not the row's
    assert complete(read) == {"name": "KEPT", "amount": 3}
    made = Deal()
    made.__dict__.update(name="made", amount=None)  # not from a row: its attributes
    assert complete(made) == {"name": "MADE", "amount": None}
    assert complete(Deal.from_row(SimpleNamespace(name=None, amount=1))) is None
    assert complete(Deal.from_row(SimpleNamespace(name=ValueError(), amount=1))) is None
    assert complete(Deal.from_row(SimpleNamespace(name="acme", amount=-1))) is None
    assert complete(Deal.from_row(SimpleNamespace(name=5, amount=1))) is None  # raises
    nullable = plans._leaves_function(leaves(name_nullable=True))
    assert nullable(Deal.from_row(SimpleNamespace(name=None, amount=1))) == {
        "name": None, "amount": 1}
    plain = plans._leaves_function([("name", attrgetter("name"), str.upper, False)])
    assert plain(SimpleNamespace(name="x")) == {"name": "X"}
