"""Hypothesis strategies for bad input, built from the checked-in schema (tests/test_fuzz.py).

Documents are operations on one root field of the real schema, with arguments (inline
or as variables) of the right type most of the time and of wrong types, huge numbers,
long strings, NUL characters, unknown enum values and ids that are not ours otherwise,
and random sub-selections. Beside them: documents past the limits, raw HTTP requests
that are not GraphQL requests, and graphql-transport-ws message sequences.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from hypothesis import strategies as st

from loaders.ids import decode_any_id, encode_id

SCHEMA: GraphQLSchema = build_schema(
    (Path(__file__).parent.parent / "schema" / "schema.graphql").read_text())
NODE_TYPES = sorted(t.name for t in SCHEMA.get_possible_types(
    SCHEMA.get_type("Node")))  # type: ignore[arg-type]

LONG = 100_000
HUGE_INTS = [2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**400]
WEIRD_STRINGS = ["", " ", "\u0000", "a\u0000b", "ä😀\u202e", "%", "_", "\\",
                 "' OR 1=1 --", "2026-W13", "2026-W54", "2026-W00", "1999-W01", "EUR", "XXX",
                 "eur", "NaN", "-0", "null", "9" * 400]
WEIRD_IDS = [
    "", "%%%", "QWNjb3VudDox=", "====", "Account:1",  # not base64, or not padded
    base64.b64encode(b"\xff\xfe:1").decode(),  # not UTF-8
    encode_id("Account", 0).replace("=", ""), encode_id("Nope", 1),
    base64.b64encode(b"Account:-1").decode(), base64.b64encode(b"Account:1.5").decode(),
    base64.b64encode(b"Account:").decode(), base64.b64encode(b":1").decode(),
    base64.b64encode(b"Account:99999999999").decode(),
    base64.b64encode(f"Account:{2**31}".encode()).decode(),
    base64.b64encode(f"Account:{10**400}".encode()).decode(),
    base64.b64encode(b"Account:\xd9\xa1").decode(),  # an Arabic-Indic digit: isdigit()
    base64.b64encode(b"Account:1\x00").decode(),
]


def _long(char: str, length: int = LONG) -> st.SearchStrategy[str]:
    # Built when drawn: a 100k-character constant in a strategy makes Hypothesis's
    # reprs of it (and of every strategy holding it) as long.
    return st.builds(str.__mul__, st.just(char), st.just(length))
DECIMALS = ["0", "-0", "1234.50", "0.000000001", "1e3", "-1E-3", "1e1000000", "-1e-1000000",
            "NaN", "sNaN", "Infinity", "-Infinity", "abc", "1,5", "9" * 400,
            "1" + "0" * 40 + ".5", " 12 ", "0x10"]
DATES = ["2026-03-28", "2026-02-30", "0001-01-01", "9999-12-31", "10000-01-01", "2026-13-01",
         "26-1-1", "2026-W13", "yesterday", "2026-03-28T10:00:00+02:00"]
DATETIMES = ["2026-03-28T10:00:00+02:00", "2026-03-28T10:00:00Z", "2026-03-28T10:00:00",
             "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+14:00",
             "9999-12-31T23:59:59-14:00", "2026-03-28", "2026-03-28T25:00:00+00:00",
             "yesterday", "2026-03-28T10:00:00+99:00"]


# Id arguments named after a role rather than their type.
ID_NAMES = {"owner": "User", "manager": "User", "agent": "User", "changedBy": "User",
            "assignee": "User", "parentAccount": "Account", "parent": "Account",
            "fromPhase": "Phase", "toPhase": "Phase", "priceBook": "PriceBook",
            "offeringArea": "OfferingArea", "area": "OfferingArea", "partner": "PartnerOrg",
            "partnerOrg": "PartnerOrg", "targetGroup": "TargetGroup", "activityType":
            "ActivityType", "type": "ActivityType"}


def id_type(name: str) -> str:
    """The type an id argument of this name refers to, by its name."""
    stem = name.removesuffix("s").removesuffix("Id").removesuffix("ID")
    return ID_NAMES.get(stem, stem[:1].upper() + stem[1:])


class EnumName(str):
    """An enum value: a bare name in a GraphQL literal, a string in JSON variables."""


@dataclass
class Case:
    """One GraphQL request: the document, its variables, and who sends it."""

    document: str
    variables: dict[str, Any] | None = None
    role: str = "ADMIN"  # set as the case is sent

    def body(self) -> bytes:
        # The standard library's encoder: orjson refuses integers beyond 64 bits, and
        # 10**400 in a variable is one of the inputs wanted here.
        payload: dict[str, Any] = {"query": self.document}
        if self.variables is not None:
            payload["variables"] = self.variables
        return json.dumps(payload).encode()

    def __repr__(self) -> str:  # failures print the input that found them, shortened
        text = json.dumps({"role": self.role, "query": self.document,
                           "variables": self.variables})
        return text if len(text) < 4_000 else text[:4_000] + f"... ({len(text)} chars)"


@dataclass
class Known:
    """Ids of rows that exist, so that generated ids also reach real records."""

    ids: list[str] = field(default_factory=list)

    def of_argument(self, name: str) -> list[str]:
        """The ids an argument or input field of this name most likely wants:
        `accountId` an Account's, `ownerId` a User's; all of them when unsure."""
        type_name = id_type(name)
        wanted = [i for i in self.ids if decode_any_id(i)[0] == type_name]
        return wanted or self.ids

    def __repr__(self) -> str:
        return f"Known({len(self.ids)} ids)"


# Scalars -------------------------------------------------------------------------------


def _text() -> st.SearchStrategy[str]:
    # One in ten is a long string: more would push many documents past MAX_BODY_BYTES.
    return st.integers(0, 9).flatmap(
        lambda n: _long("x") if n == 9 else st.sampled_from(WEIRD_STRINGS) if n >= 6
        else st.text(max_size=12))


def _ids(known: Known) -> st.SearchStrategy[str]:
    generated = st.builds(encode_id, st.sampled_from(NODE_TYPES),
                          st.integers(min_value=0, max_value=2**31 - 1)
                          | st.integers(min_value=0, max_value=20))
    pools = [generated, st.sampled_from(WEIRD_IDS), _long("A")]
    if known.ids:
        pools.insert(0, st.sampled_from(known.ids))
    return st.one_of(pools)


def _ints(hostile: bool) -> st.SearchStrategy[int]:
    valid = st.integers(min_value=-3, max_value=600) | st.integers(min_value=-(2**31),
                                                                    max_value=2**31 - 1)
    return valid | st.sampled_from(HUGE_INTS) if hostile else valid


def _json_values() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                   allow_infinity=False) | _text()
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


def _scalar(scalar: GraphQLScalarType, mode: Mode, name: str) -> st.SearchStrategy[Any]:
    """Values a scalar accepts; edge cases of them (which the server may refuse) in an
    ``edge`` mode; and past its range in a hostile one."""
    edge = mode.edge
    argument, name = name, scalar.name
    if name == "Int":
        # Clean: small, as page sizes and counts are; else the whole 32-bit range.
        return _ints(hostile=bool(mode.wrong)) if edge else st.integers(0, 50)
    if name == "Float":
        return st.floats(allow_nan=False, allow_infinity=bool(mode.wrong)) | st.just(1e308)
    if name == "Boolean":
        return st.booleans()
    if name == "ID":
        return _ids(mode.known) if edge or not mode.known.ids else \
            st.sampled_from(mode.known.of_argument(argument))
    if name == "Decimal":
        valid = st.decimals(allow_nan=False, allow_infinity=False, places=2,
                            min_value=-10**12, max_value=10**12).map(str)
        return st.sampled_from(DECIMALS) | valid if edge else valid
    if name == "Date":
        valid = st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 12, 31)).map(
            date.isoformat)
        return st.sampled_from(DATES) | valid if edge else valid
    if name == "DateTime":
        return st.sampled_from(DATETIMES if edge else DATETIMES[:2])
    if name == "JSON":
        return _json_values()
    # String, and any scalar added later
    return _text() if edge else st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                                        max_size=12)


def _wrong_value() -> st.SearchStrategy[Any]:
    """A value of some other JSON type than the one asked for."""
    return st.one_of(st.sampled_from([True, 1.5, -7, 10**400, "12", "", [], {}, [1, "a"],
                                      {"eq": 1}]), st.none(), _long("x"))


# Input values --------------------------------------------------------------------------


@dataclass
class Mode:
    """How a document's values are drawn. Clean: valid values of existing rows, so the
    document reaches the resolvers and the filter compiler. Edge: the right shapes with
    edge values (ids that are not ours, impossible dates, NaN decimals, NUL characters,
    long strings). Hostile: besides, with probability ``wrong`` at each level, a value
    of the wrong type, an unknown field or enum value, a huge number."""

    known: Known
    edge: bool = False
    wrong: float = 0.0


MODES = {"clean": (False, 0.0), "edge": (True, 0.0), "hostile": (True, 0.03),
         "very hostile": (True, 0.15)}


@st.composite
def input_value(draw: st.DrawFn, type_: GraphQLInputType, mode: Mode, depth: int = 3,
                name: str = "") -> Any:
    """A value for an input type: of the type's shape with probability 1 - ``wrong`` at
    each level (which is not to say valid: ids, decimals, dates and weeks are drawn from
    edge cases too)."""
    wrong = mode.wrong
    if wrong and draw(st.floats(0, 1)) < wrong:
        return draw(_wrong_value())
    if isinstance(type_, GraphQLNonNull):
        return draw(input_value(type_.of_type, mode, depth, name))
    if isinstance(type_, GraphQLList):
        if draw(st.booleans()):  # a single value stands for a list of one
            return [draw(input_value(type_.of_type, mode, depth, name))
                    for _ in range(draw(st.integers(0, 3)))]
        return draw(input_value(type_.of_type, mode, depth, name))
    if isinstance(type_, GraphQLEnumType):
        values = list(type_.values)
        unknown = ["NOT_A_VALUE", values[0].lower(), "null", "true"]
        return EnumName(draw(st.sampled_from(values) | st.sampled_from(unknown) if wrong
                             else st.sampled_from(values)))
    if isinstance(type_, GraphQLInputObjectType):
        return draw(_input_object(type_, mode, depth))
    assert isinstance(type_, GraphQLScalarType), type_
    return draw(_scalar(type_, mode, name))


@st.composite
def _input_object(draw: st.DrawFn, type_: GraphQLInputObjectType, mode: Mode, depth: int
                  ) -> dict[str, Any]:
    wrong = mode.wrong
    value: dict[str, Any] = {}
    for name, input_field in type_.fields.items():
        required = isinstance(input_field.type, GraphQLNonNull) and \
            input_field.default_value is Undefined
        nested = isinstance(get_named_type(input_field.type), GraphQLInputObjectType)
        if required and (not wrong or draw(st.floats(0, 1)) < 0.95):
            wanted = True
        elif nested and depth <= 0:
            wanted = False  # and/or/not/some...: recursive inputs end somewhere
        else:
            wanted = draw(st.floats(0, 1)) < 0.3
        if wanted:
            value[name] = draw(input_value(input_field.type, mode, depth - 1, name))
    if wrong and draw(st.floats(0, 1)) < 0.03:
        value["noSuchField"] = 1
    return value


def literal(value: Any) -> str:
    """A value as a GraphQL literal."""
    if value is None:
        return "null"
    if isinstance(value, EnumName):
        return str(value) if value.isidentifier() else json.dumps(str(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "1e400"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"


# Documents -----------------------------------------------------------------------------


@dataclass
class _Builder:
    """Collects the variables of one document while its arguments are drawn."""

    mode: Mode
    definitions: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)

    def argument(self, draw: st.DrawFn, name: str, type_: GraphQLInputType) -> str:
        value = draw(input_value(type_, self.mode, name=name))
        if draw(st.booleans()):
            return f"{name}: {literal(value)}"
        variable = f"v{len(self.definitions)}"
        declared = str(type_)
        if self.mode.wrong and draw(st.floats(0, 1)) < 0.05:  # declared with another type
            declared = draw(st.sampled_from(["Int", "String!", "[ID!]!", "Boolean",
                                             "AccountFilter", "NoSuchType"]))
        self.definitions.append(f"${variable}: {declared}")
        if not self.mode.wrong or draw(st.floats(0, 1)) > 0.05:  # else: declared, not sent
            self.variables[variable] = value
        return f"{name}: ${variable}"

    def arguments(self, draw: st.DrawFn, field_: Any) -> str:
        parts = []
        for name, arg in field_.args.items():
            required = isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
            if required or draw(st.floats(0, 1)) < 0.4:
                parts.append(self.argument(draw, name, arg.type))
        if self.mode.wrong and draw(st.floats(0, 1)) < 0.03:
            parts.append("noSuchArgument: 1")
        return f"({', '.join(parts)})" if parts else ""

    def selection(self, draw: st.DrawFn, type_: Any, depth: int) -> str:
        if isinstance(type_, (GraphQLInterfaceType, GraphQLUnionType)):
            parts = ["__typename"]
            possible = sorted(SCHEMA.get_possible_types(type_), key=lambda t: t.name)
            for chosen in draw(st.lists(st.sampled_from(possible), max_size=2,
                                                  unique_by=lambda t: t.name)):
                parts.append(f"... on {chosen.name} {{ "
                             f"{self.selection(draw, chosen, depth - 1)} }}")
            if isinstance(type_, GraphQLInterfaceType):
                parts.append(self.selection(draw, GraphQLObjectType(type_.name, type_.fields),
                                            depth - 1))
            return " ".join(parts)
        fields = sorted((name, f) for name, f in type_.fields.items() if not name.startswith("_"))
        leaves = [f for f in fields if is_leaf_type(get_named_type(f[1].type))]
        objects = [f for f in fields if not is_leaf_type(get_named_type(f[1].type))]
        chosen = draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=3,
                                      unique_by=lambda f: f[0])) \
            if leaves else []
        if depth > 0 and objects:
            chosen += draw(st.lists(st.sampled_from(objects), max_size=2,
                                   unique_by=lambda f: f[0]))
        parts = ["__typename"]
        for index, (name, field_) in enumerate(chosen):
            alias = f"a{index}: " if draw(st.floats(0, 1)) < 0.1 else ""
            text = alias + name + self.arguments(draw, field_)
            named = get_named_type(field_.type)
            if not is_leaf_type(named):
                text += " { " + self.selection(draw, named, depth - 1) + " }"
            parts.append(text)
        return " ".join(parts)


@st.composite
def operations(draw: st.DrawFn, kind: str, known: Known) -> Case:
    """A query, mutation or subscription on one root field of the schema, of random
    arguments."""
    root = {"query": SCHEMA.query_type, "mutation": SCHEMA.mutation_type,
            "subscription": SCHEMA.subscription_type}[kind]
    assert root is not None
    name = draw(st.sampled_from(sorted(root.fields)))
    field_ = root.fields[name]
    edge, wrong = MODES[draw(st.sampled_from(["clean", "clean", "edge", "hostile",
                                              "very hostile"]))]
    builder = _Builder(Mode(known, edge, wrong))
    arguments = builder.arguments(draw, field_)
    named = get_named_type(field_.type)
    selection = "" if is_leaf_type(named) else \
        " { " + builder.selection(draw, named, draw(st.integers(0, 3))) + " }"
    header = f"({', '.join(builder.definitions)})" if builder.definitions else ""
    document = f"{kind} Fuzz{header} {{ {name}{arguments}{selection} }}"
    variables = builder.variables if builder.definitions or draw(st.booleans()) else None
    return Case(document, variables)


# Documents past the limits -------------------------------------------------------------


def _nested(depth: int) -> str:
    """accounts > nodes > contacts > nodes > account > parent > ...: ``depth`` levels,
    each of which counts towards MAX_DEPTH, every one ending on an Account."""
    text, closing, level = "accounts(first: 1) { nodes { id ", "} }", 2
    while level < depth:
        step = "contacts(first: 1) { nodes { account {" if depth - level >= 3 else "parent {"
        text += step + " id "
        closing = "}" * step.count("{") + " " + closing
        level += step.count("{")
    return text + closing


@st.composite
def limit_documents(draw: st.DrawFn) -> Case:
    """Documents built to pass the depth, alias, token or cost limits, or the parser's."""
    kind = draw(st.sampled_from(["depth", "aliases", "tokens", "page", "fragments",
                                 "brackets", "directives"]))
    if kind == "depth":
        document = "{ " + _nested(draw(st.integers(10, 40))) + " }"
    elif kind == "aliases":
        count = draw(st.integers(45, 400))
        document = "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(count)) + " }"
    elif kind == "tokens":
        document = "{ viewer { " + "id " * draw(st.integers(4_900, 20_000)) + "} }"
    elif kind == "page":
        size = draw(st.sampled_from([500, 501, 2**31, 10**20]))
        document = (f"{{ accounts(first: {size}) {{ nodes {{ contacts(first: {size}) "
                    f"{{ nodes {{ activities(first: {size}) {{ nodes {{ id }} }} }} }} }} }} }}")
    elif kind == "fragments":  # a fragment cycle, and a fragment of itself
        document = ("{ viewer { ...A } } fragment A on User { team { members { nodes "
                    "{ ...B } } } } fragment B on User { ...A }")
    elif kind == "brackets":  # deep enough for a recursive parser's stack
        count = draw(st.integers(100, 5_000))
        document = ("{ accounts(filter: " + "{and: [" * count + "{}" + "]}" * count
                    + ") { totalCount } }")
    else:
        count = draw(st.integers(10, 3_000))
        document = "{ viewer " + "@include(if: true) " * count + "{ id } }"
    return Case(document)


# Raw HTTP requests ---------------------------------------------------------------------


@dataclass
class RawRequest:
    method: str
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"RawRequest({self.method}, content={self.content[:300]!r} "
                f"({len(self.content)} bytes), headers={self.headers}, params={self.params})")

CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain",
                 "application/graphql", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "", "application/json; charset=latin-1",
                 "APPLICATION/JSON", "application/graphql-response+json"]
ACCEPTS = ["application/json", "application/graphql-response+json", "*/*", "text/html",
           "application/xml", "", "application/json;q=0", "application/json;q=abc"]


def _json_shapes() -> st.SearchStrategy[Any]:
    """Request bodies of JSON that is not a GraphQL request, or is one with wrong types."""
    wrong = _json_values()
    return st.one_of(
        wrong,
        st.fixed_dictionaries({"query": wrong}),
        st.fixed_dictionaries({"query": st.just("{ viewer { id } }"), "variables": wrong}),
        st.fixed_dictionaries({"query": st.just("query($n: Int) { accounts(first: $n) "
                                                "{ totalCount } }"),
                               "variables": st.fixed_dictionaries({"n": wrong})}),
        st.fixed_dictionaries({"query": st.just("{ viewer { id } }"), "operationName": wrong}),
        st.fixed_dictionaries({"query": st.just("{ viewer { id } }"), "extensions": wrong}),
        st.fixed_dictionaries({"extensions": st.fixed_dictionaries(
            {"persistedQuery": st.fixed_dictionaries({"version": wrong, "sha256Hash": wrong})})}),
        st.fixed_dictionaries({"query": st.just("subscription { opportunityPhaseChanged "
                                                "{ eventId } }")}),
        st.fixed_dictionaries({"query": st.just("query A { viewer { id } } query B "
                                                "{ viewer { id } }"), "operationName": wrong}),
    )


@st.composite
def raw_requests(draw: st.DrawFn) -> RawRequest:
    kind = draw(st.sampled_from(["bytes", "json", "content-type", "get", "method", "big"]))
    # Mostly an acceptable Accept, so that the rest of the request is looked at.
    headers = {"accept": draw(st.sampled_from(ACCEPTS[:3]) | st.sampled_from(ACCEPTS))}
    if kind == "bytes":
        return RawRequest("POST", draw(st.binary(max_size=200)),
                          headers | {"content-type": "application/json"})
    if kind == "json":
        return RawRequest("POST", json.dumps(draw(_json_shapes())).encode(),
                          headers | {"content-type": "application/json"})
    if kind == "content-type":
        body = json.dumps({"query": "{ viewer { id } }"}).encode()
        return RawRequest("POST", draw(st.sampled_from([body, b"{ viewer { id } }",
                                                        b"query=%7B+viewer+%7B+id+%7D+%7D"])),
                          headers | {"content-type": draw(st.sampled_from(CONTENT_TYPES))})
    if kind == "get":
        keys = st.sampled_from(["query", "variables", "operationName", "extensions", "x"])
        values = st.one_of(st.text(max_size=12), st.sampled_from(WEIRD_STRINGS[:-2]),
                           st.sampled_from(["{ viewer { id } }", "mutation { x }",
                                                     "{", "null", "[]", "{\"a\": 1}"]))
        params = draw(st.dictionaries(keys, values, max_size=4))
        extra = {"apollo-require-preflight": "true"} if draw(st.booleans()) else {}
        return RawRequest("GET", b"", headers | extra, params)
    if kind == "method":
        return RawRequest(draw(st.sampled_from(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])),
                          b"{}", headers | {"content-type": "application/json"})
    size = draw(st.sampled_from([1_048_577, 3_000_000]))  # past MAX_BODY_BYTES
    return RawRequest("POST", b'{"query": "' + b" " * size + b'{ viewer { id } }"}',
                      headers | {"content-type": "application/json"})


# graphql-transport-ws message sequences ------------------------------------------------

FRAME_TOO_BIG = 2_000_000


@st.composite
def ws_messages(draw: st.DrawFn, token: str, known: Known) -> list[str | bytes]:
    """A sequence of frames for one connection: valid messages out of order or
    repeated, generated subscriptions, JSON of the wrong shape, text that is not JSON,
    binary and oversized."""
    query = {"query": "{ viewer { id } }"}
    subscription = {"query": "subscription { opportunityPhaseChanged { eventId } }"}
    generated = operations("subscription", known).map(
        lambda case: {"query": case.document, "variables": case.variables})
    ids = st.sampled_from(["1", "2", "", 1, None, "x" * 1_000])
    message = st.one_of(
        st.just({"type": "connection_init", "payload": {"token": token}}),
        st.fixed_dictionaries({"type": st.just("connection_init"), "payload": _json_values()}),
        st.just({"type": "ping"}), st.just({"type": "pong"}),
        st.fixed_dictionaries({"type": st.just("ping"), "payload": _json_values()}),
        st.fixed_dictionaries({"type": st.just("subscribe"), "id": ids,
                               "payload": st.sampled_from([query, subscription]) | generated}),
        st.fixed_dictionaries({"type": st.just("subscribe"), "id": ids,
                               "payload": _json_values()}),
        st.fixed_dictionaries({"type": st.just("complete"), "id": ids}),
        st.fixed_dictionaries({"type": st.sampled_from(["next", "error", "connection_ack",
                                                        "start", "stop", "ka", ""]),
                               "id": ids}),
        _json_values(),
    )
    frame = st.one_of(
        message.map(json.dumps),
        st.sampled_from(["", "{", "not json", "[1, 2", "\u0000", "{\"type\": \"ping\"}}"]),
        st.binary(max_size=40),
        _long(" ", FRAME_TOO_BIG).map(lambda padding: json.dumps({
            "type": "subscribe", "id": "big",
            "payload": {"query": "{ viewer { id } }" + padding}})),
    )
    start = [json.dumps({"type": "connection_init", "payload": {"token": token}})] \
        if draw(st.booleans()) else []
    return start + draw(st.lists(frame, min_size=1, max_size=6))


# Every field and operator of every filter ------------------------------------------------

def _is_operator_input(type_: GraphQLInputObjectType) -> bool:
    """StringFilter, IDFilter, RoleFilter ...: operators on one value (schema/filters.py)."""
    return all(is_leaf_type(get_named_type(f.type)) for f in type_.fields.values())


def _filters() -> list[GraphQLInputObjectType]:
    """The filters of entities (AccountFilter, ...) and of relations ({some none every})."""
    return sorted((t for name, t in SCHEMA.type_map.items()
                   if isinstance(t, GraphQLInputObjectType) and name.endswith("Filter")
                   and not _is_operator_input(t)), key=lambda t: t.name)


def _operand(type_: Any, field_name: str, known: Known) -> Any:
    """A valid value for one operator, as a variable's JSON."""
    if isinstance(type_, GraphQLNonNull):
        return _operand(type_.of_type, field_name, known)
    if isinstance(type_, GraphQLList):
        return [_operand(type_.of_type, field_name, known)] * 2
    if isinstance(type_, GraphQLEnumType):
        return EnumName(next(iter(type_.values)))
    if isinstance(type_, GraphQLInputObjectType):
        return {name: _operand(f.type, name, known) for name, f in type_.fields.items()
                if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined}
    return {"String": "a", "Int": 1, "Float": 1.5, "Boolean": False, "Decimal": "10.00",
            "Date": "2026-01-01", "DateTime": "2026-01-01T00:00:00Z", "JSON": {},
            # An id of the type the field names; one that exists when there is one.
            "ID": next((i for i in known.of_argument(field_name)
                        if decode_any_id(i)[0] == id_type(field_name)),
                       encode_id(id_type(field_name), 999)),
            }[type_.name]


def _every_operator(type_: GraphQLInputObjectType, field_name: str, known: Known
                    ) -> dict[str, Any]:
    return {op: _operand(f.type, field_name, known) for op, f in type_.fields.items()}


def _entity(filter_type: GraphQLInputObjectType) -> str:
    """AccountFilter's ids are Account ids: `id` is named `accountId` for Known."""
    entity = filter_type.name.removesuffix("Filter")
    return entity[:1].lower() + entity[1:] + "Id"


def _sample(type_: GraphQLInputObjectType, known: Known, depth: int = 2) -> dict[str, Any]:
    """A small filter of this type: its first operator field, with every operator (a
    relation filter: each of some, none and every so)."""
    for name, input_field in type_.fields.items():
        named = get_named_type(input_field.type)
        if isinstance(named, GraphQLInputObjectType) and _is_operator_input(named):
            return {name: _every_operator(named, _entity(type_) if name == "id" else name,
                                          known)}
    if depth <= 0:
        return {}
    return {name: _sample(get_named_type(f.type), known, depth - 1)  # type: ignore[arg-type]
            for name, f in type_.fields.items()
            if isinstance(get_named_type(f.type), GraphQLInputObjectType)}


def _field_value(input_field: Any, name: str, known: Known) -> Any:
    named = get_named_type(input_field.type)
    if _is_operator_input(named):
        return _every_operator(named, name, known)
    sample = _sample(named, known)
    return [sample, sample] if isinstance(input_field.type, GraphQLList) or isinstance(
        getattr(input_field.type, "of_type", None), GraphQLList) else sample


def _where(filter_type: GraphQLInputObjectType, seen: frozenset[str] = frozenset()
           ) -> tuple[str, Any] | None:
    """A document taking this filter as $f, and how to place a filter value in $f:
    on a root field, on a field of a root connection's nodes, or inside a filter that
    has such a place."""
    query = SCHEMA.query_type
    assert query is not None

    def no_required(field_: Any) -> bool:
        return not any(isinstance(a.type, GraphQLNonNull) and a.default_value is Undefined
                       for a in field_.args.values())

    for name, root in sorted(query.fields.items()):
        arg = root.args.get("filter")
        if arg and get_named_type(arg.type) is filter_type and no_required(root):
            return (f"query($f: {filter_type.name}) {{ {name}(filter: $f) "
                    f"{{ totalCount }} }}", lambda v: v)
    for name, root in sorted(query.fields.items()):
        node = getattr(get_named_type(root.type), "fields", {}).get("nodes")
        if node is None or not no_required(root):
            continue
        for child, field_ in sorted(get_named_type(node.type).fields.items()):  # type: ignore[union-attr]
            arg = field_.args.get("filter")
            if arg and get_named_type(arg.type) is filter_type and no_required(field_):
                return (f"query($f: {filter_type.name}) {{ {name}(first: 2) {{ nodes {{ "
                        f"{child}(filter: $f) {{ totalCount }} }} }} }}", lambda v: v)
    for parent in _filters():
        if parent.name in seen:
            continue
        for name, input_field in parent.fields.items():
            if get_named_type(input_field.type) is filter_type and name not in (
                    "and", "or", "not"):
                found = _where(parent, seen | {filter_type.name})
                if found:
                    document, place = found
                    return document, (lambda v, place=place, name=name: place({name: v}))
    return None


def filter_cases(known: Known) -> list[tuple[str, str, dict[str, Any]]]:
    """(filter.field, document, variables): every field of every filter with each of
    its operators set, so each one is compiled into SQL at least once."""
    cases = []
    for filter_type in _filters():
        found = _where(filter_type)
        assert found, f"no query takes a {filter_type.name}"
        document, place = found
        for name, input_field in filter_type.fields.items():
            value = _field_value(input_field, _entity(filter_type) if name == "id" else name,
                                 known)
            cases.append((f"{filter_type.name}.{name}", document, {"f": place({name: value})}))
    return cases


# A NUL character in every text argument ----------------------------------------------------

def _arguments(field_: Any, known: Known, text: str) -> tuple[str, list[str]]:
    """The field's required arguments with valid values, and every String one (required
    or not) set to ``text``: (the argument list, the String arguments' names)."""
    parts, strings = [], []
    for name, arg in field_.args.items():
        named = get_named_type(arg.type)
        if named.name == "String" and not isinstance(arg.type, GraphQLList) and not \
                isinstance(getattr(arg.type, "of_type", None), GraphQLList):
            parts.append(f"{name}: {literal(text)}")
            strings.append(name)
        elif isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined:
            value = _operand(arg.type, name, known)
            if name in ("from", "to", "week"):  # a period the resolvers accept
                value = {"from": "2026-01-01", "to": "2026-03-31"}.get(name, "2026-W13")
            parts.append(f"{name}: {literal(value)}")
    return (f"({', '.join(parts)})" if parts else ""), strings


def _selection_of(field_: Any) -> str:
    named = get_named_type(field_.type)
    return "" if is_leaf_type(named) else " { __typename }"


def text_argument_cases(known: Known, text: str = "a\u0000b") -> list[tuple[str, str]]:
    """(field.argument, document): every String argument of a root query field or of an
    Account's field, set to ``text`` (the other arguments valid)."""
    query = SCHEMA.query_type
    account = SCHEMA.get_type("Account")
    assert query is not None
    assert isinstance(account, GraphQLObjectType)
    cases = []
    for owner, fields, wrap in (
            ("Query", query.fields, "{{ {} }}"),
            ("Account", account.fields, "{{ accounts(first: 1) {{ nodes {{ {} }} }} }}")):
        for name, field_ in sorted(fields.items()):
            arguments, strings = _arguments(field_, known, text)
            if strings:
                document = wrap.format(f"{name}{arguments}{_selection_of(field_)}")
                cases.append((f"{owner}.{name}({', '.join(strings)})", document))
    return cases
