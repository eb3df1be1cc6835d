"""pipelineSummary: per-phase count, amount and weighted amount computed in SQL, now
and as of a past day (replayed from phase_changes), with exact figures on SQLite and
PostgreSQL alike, and a number of statements that does not grow with the data."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from loaders.ids import encode_id
from models.accounts import Account
from models.db import Database
from models.opportunities import Opportunity, Phase, PhaseChange, PipelineKind
from tests.factories import (
    Org,
    gid,
    make_account,
    make_opportunity,
    make_org,
    make_pipeline,
    share,
)
from tests.graphql_client import GraphQLClient

HELSINKI = ZoneInfo("Europe/Helsinki")
CENT = Decimal("0.01")
OPPORTUNITIES = Opportunity.__table__
PHASE_CHANGES = PhaseChange.__table__

FIGURES = "count amount weightedAmount"
SUMMARY = f"""
query Summary($pipeline: ID!, $filter: OpportunityFilter, $asOf: Date, $currency: String!) {{
  pipelineSummary(pipelineId: $pipeline, filter: $filter, asOf: $asOf, currency: $currency) {{
    pipeline {{ name }} currency asOf
    phases {{ phase {{ name }} {FIGURES} }}
    totals {{ {FIGURES} }}
    open {{ {FIGURES} }}
  }}
}}"""


async def summary(client: GraphQLClient, user: Any, pipeline: Any, *, currency: str = "EUR",
                  filter: dict[str, Any] | None = None, as_of: date | None = None
                  ) -> dict[str, Any]:
    variables = {"pipeline": gid(pipeline), "currency": currency, "filter": filter,
                 "asOf": as_of.isoformat() if as_of else None}
    return (await client.query(SUMMARY, variables, as_user=user))["pipelineSummary"]


def per_phase(result: dict[str, Any]) -> dict[str, tuple[int, str, str]]:
    return {p["phase"]["name"]: (p["count"], p["amount"], p["weightedAmount"])
            for p in result["phases"]}


def figures(count: int, amount: str, weighted: str) -> dict[str, Any]:
    return {"count": count, "amount": amount, "weightedAmount": weighted}


@dataclass
class Board:
    org: Org
    pipeline: Any
    phases: dict[str, Phase]
    other: Any
    acme: Account
    globex: Account


@pytest.fixture
async def board(db: Database) -> Board:
    org = await make_org(db)
    pipeline, phases = await make_pipeline(db, PipelineKind.SALES, name="New business")
    other, other_phases = await make_pipeline(db, PipelineKind.SALES, name="Renewals")
    acme = await make_account(db, org.rep_a1, name="Acme Oy")
    globex = await make_account(db, org.rep_b1, name="Globex Inc")
    by_name = {p.name: p for p in phases}
    deals = [
        (acme, "Qualify", org.rep_a1, "1000.00", None),
        (acme, "Qualify", org.rep_a2, "333.33", None),
        (globex, "Propose", org.rep_b1, "2500.50", None),
        (globex, "Propose", org.rep_b1, "0.05", 50),
        (acme, "Negotiate", org.rep_a1, "10000.00", None),
        (globex, "Won", org.rep_b1, "750.00", None),
        (acme, "Lost", org.rep_a2, "50.00", None),
    ]
    for account, phase, owner, amount, probability in deals:
        await make_opportunity(db, account, by_name[phase], owner, amount=amount,
                               probability=probability)
    # Neither counts in EUR for "New business": another currency, another pipeline.
    await make_opportunity(db, acme, by_name["Qualify"], amount="99999.00", currency="USD")
    await make_opportunity(db, acme, other_phases[0], amount="123456.00")
    return Board(org, pipeline, by_name, other, acme, globex)


# --- now ----------------------------------------------------------------------------------


async def test_summary_per_phase_with_totals_and_open_totals(
    client: GraphQLClient, board: Board
) -> None:
    result = await summary(client, board.org.manager_b, board.pipeline)

    assert result["pipeline"] == {"name": "New business"}
    assert (result["currency"], result["asOf"]) == ("EUR", None)
    # Positions order the phases; weighted = sum(amount x percent) / 100, in cents.
    assert [(p["phase"]["name"], p["count"], p["amount"], p["weightedAmount"])
            for p in result["phases"]] == [
        ("Qualify", 2, "1333.33", "133.33"),  # 133.333
        ("Propose", 2, "2500.55", "1000.23"),  # 1000.20 + 0.025
        ("Negotiate", 1, "10000.00", "7500.00"),
        ("Won", 1, "750.00", "750.00"),
        ("Lost", 1, "50.00", "0.00"),
    ]
    assert result["totals"] == figures(7, "14633.88", "9383.56")
    assert result["open"] == figures(5, "13833.88", "8633.56")


async def test_only_the_requested_currency_counts(client: GraphQLClient, board: Board) -> None:
    usd = await summary(client, board.org.rep_a1, board.pipeline, currency="USD")
    sek = await summary(client, board.org.rep_a1, board.pipeline, currency="SEK")

    assert usd["currency"] == "USD"
    assert per_phase(usd)["Qualify"] == (1, "99999.00", "9999.90")
    assert usd["totals"] == figures(1, "99999.00", "9999.90")
    # A phase with nothing in it is still listed, with zeros.
    assert per_phase(sek) == dict.fromkeys(
        ("Qualify", "Propose", "Negotiate", "Won", "Lost"), (0, "0.00", "0.00"))
    assert sek["totals"] == sek["open"] == figures(0, "0.00", "0.00")


@pytest.mark.parametrize(("make_filter", "expected_totals", "expected_open"), [
    pytest.param(lambda b: {"ownerId": {"eq": gid(b.org.rep_a2)}},
                 figures(2, "383.33", "33.33"), figures(1, "333.33", "33.33"), id="owner"),
    pytest.param(lambda b: {"teamId": {"eq": gid(b.org.team_b)}},
                 figures(3, "3250.55", "1750.23"), figures(2, "2500.55", "1000.23"),
                 id="team"),
    pytest.param(lambda b: {"account": {"name": {"startsWith": "acme"}}},
                 figures(4, "11383.33", "7633.33"), figures(3, "11333.33", "7633.33"),
                 id="account-name"),
    pytest.param(lambda b: {"amount": {"gte": "1000"}, "outcome": {"eq": "OPEN"}},
                 figures(3, "13500.50", "8600.20"), figures(3, "13500.50", "8600.20"),
                 id="amount-and-outcome"),
    pytest.param(lambda b: {"pipelineId": {"eq": gid(b.other)}},
                 figures(0, "0.00", "0.00"), figures(0, "0.00", "0.00"), id="other-pipeline"),
])
async def test_the_filter_applies(
    client: GraphQLClient, board: Board, make_filter: Any, expected_totals: dict[str, Any],
    expected_open: dict[str, Any]
) -> None:
    result = await summary(client, board.org.rep_a1, board.pipeline,
                           filter=make_filter(board))

    assert result["totals"] == expected_totals
    assert result["open"] == expected_open


async def test_partner_counts_only_shared_accounts(
    client: GraphQLClient, db: Database, board: Board
) -> None:
    nothing = await summary(client, board.org.partner, board.pipeline)
    await share(db, board.globex, board.org.partner_org)
    shared = await summary(client, board.org.partner, board.pipeline)
    # Asking for the other account by filter reveals nothing more.
    asked = await summary(client, board.org.partner, board.pipeline,
                          filter={"accountId": {"eq": gid(board.acme)}})

    assert nothing["totals"] == figures(0, "0.00", "0.00")
    assert per_phase(shared) == {
        "Qualify": (0, "0.00", "0.00"), "Propose": (2, "2500.55", "1000.23"),
        "Negotiate": (0, "0.00", "0.00"), "Won": (1, "750.00", "750.00"),
        "Lost": (0, "0.00", "0.00")}
    assert shared["totals"] == figures(3, "3250.55", "1750.23")
    assert asked["totals"] == figures(0, "0.00", "0.00")


async def test_an_unknown_pipeline_has_no_summary(client: GraphQLClient, board: Board) -> None:
    data = await client.query(SUMMARY, {"pipeline": encode_id("Pipeline", 9999),
                                        "currency": "EUR"}, as_user=board.org.admin)

    assert data["pipelineSummary"] is None


# --- statement counts ---------------------------------------------------------------------


def expected_figures(rows: list[dict[str, Any]], phases: list[Phase]
                     ) -> dict[str, tuple[int, str, str]]:
    """The summary computed in Python from the rows: sums per phase, weighted as
    sum(amount x percent) / 100 rounded half up to cents."""
    found: dict[int, list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for row in rows:
        entry = found[row["phase_id"]]
        entry[0] += 1
        entry[1] += row["amount"]
        entry[2] += row["amount"] * row["probability"]
    result = {}
    for phase in phases:
        n, amount, weighted = found[phase.id]
        result[phase.name] = (n, str(amount.quantize(CENT)), str(
            (weighted / 100).quantize(CENT, rounding=ROUND_HALF_UP)))
    return result


async def bulk_insert(db: Database, board: Board, first: int, last: int) -> list[dict[str, Any]]:
    """Opportunities ``first`` to ``last - 1``, with their creation entries, through
    SQLAlchemy Core in two statements."""
    phases = list(board.phases.values())
    owners = [board.org.rep_a1, board.org.rep_a2, board.org.rep_b1, board.org.manager_a]
    accounts = [board.acme, board.globex]
    start = datetime(2025, 1, 1, 8, tzinfo=UTC)
    rows = []
    for n in range(first, last):
        phase = phases[n % len(phases)]
        moment = start + timedelta(hours=n * 7)
        rows.append({
            "account_id": accounts[n % 2].id, "name": f"Bulk {n:04}",
            "amount": Decimal(n * 137 % 100_000) / 100 + Decimal("0.01"),
            "currency": "EUR", "pipeline_id": board.pipeline.id, "phase_id": phase.id,
            "probability": (phase.probability + n) % 101, "owner_id": owners[n % 4].id,
            "phase_entered_at": moment, "created_at": moment, "updated_at": moment,
            "version": 1,
        })
    async with db.transaction() as session:
        await session.execute(OPPORTUNITIES.insert(), rows)
        keys = (await session.execute(
            select(OPPORTUNITIES.c.id, OPPORTUNITIES.c.name)
            .where(OPPORTUNITIES.c.name.in_([r["name"] for r in rows])))).all()
        by_name = {name: key for key, name in keys}
        await session.execute(PHASE_CHANGES.insert(), [
            {"opportunity_id": by_name[r["name"]], "from_phase_id": None,
             "to_phase_id": r["phase_id"], "changed_by_id": r["owner_id"],
             "changed_at": r["created_at"], "amount": r["amount"],
             "probability": r["probability"], "created_at": r["created_at"],
             "updated_at": r["created_at"]}
            for r in rows])
    return rows


async def test_statements_stay_the_same_for_ten_and_a_thousand_opportunities(
    client: GraphQLClient, db: Database, board: Board
) -> None:
    # Its own pipeline, so only the bulk rows count.
    pipeline, phases = await make_pipeline(db, PipelineKind.SALES, name="Bulk")
    board = Board(board.org, pipeline, {p.name: p for p in phases}, board.other, board.acme,
                  board.globex)
    variables = {"pipeline": gid(pipeline), "currency": "EUR"}
    past = {**variables, "asOf": "2026-01-01"}
    query = SUMMARY.replace("pipeline { name }", "pipeline { name phases { name } }")

    rows = await bulk_insert(db, board, 0, 10)
    small, small_count = await client.counted(query, variables, as_user=board.org.admin)
    small_past, small_past_count = await client.counted(query, past, as_user=board.org.admin)
    rows += await bulk_insert(db, board, 10, 1000)
    large, large_count = await client.counted(query, variables, as_user=board.org.admin)
    large_past, large_past_count = await client.counted(query, past, as_user=board.org.admin)

    assert small_count == large_count
    assert small_past_count == large_past_count
    # The viewer, the pipeline, its phases, the figures, and Pipeline.phases.
    assert large_count <= 5
    assert large_past_count <= 5
    assert per_phase(small["pipelineSummary"]) == expected_figures(rows[:10], phases)
    assert per_phase(large["pipelineSummary"]) == expected_figures(rows, phases)
    assert large["pipelineSummary"]["totals"]["count"] == 1000
    # Every bulk row entered its phase before 2026 and never moved: the past is the present.
    assert small_past["pipelineSummary"]["phases"] == small["pipelineSummary"]["phases"]
    assert large_past["pipelineSummary"]["phases"] == large["pipelineSummary"]["phases"]


# --- as of a past day ---------------------------------------------------------------------


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A moment on the org's wall clock (Europe/Helsinki), in UTC."""
    return datetime.combine(day, time(hour, minute), tzinfo=HELSINKI).astimezone(UTC)


def replay(changes: list[dict[str, Any]], opportunities: dict[int, dict[str, Any]],
           phases: list[Phase], as_of: date, *, currency: str = "EUR"
           ) -> dict[str, tuple[int, str, str]]:
    """The pipeline as it stood at the end of ``as_of`` in Helsinki, by hand: each
    opportunity's latest change up to then, with that change's amount and percent."""
    cutoff = datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=HELSINKI)
    latest: dict[int, dict[str, Any]] = {}
    for change in changes:
        if change["changed_at"] >= cutoff:
            continue
        if opportunities[change["opportunity_id"]]["currency"] != currency:
            continue
        held = latest.get(change["opportunity_id"])
        if held is None or (change["changed_at"], change["id"]) > (held["changed_at"],
                                                                   held["id"]):
            latest[change["opportunity_id"]] = change
    return expected_figures(
        [{"phase_id": c["to_phase_id"], "amount": c["amount"],
          "probability": c["probability"]} for c in latest.values()], phases)


async def write_history(db: Database, board: Board, deals: list[dict[str, Any]]) -> None:
    """Opportunities standing where their last entry left them, with every entry."""
    async with db.transaction() as session:
        for deal in deals:
            last = deal["entries"][-1]
            opportunity = Opportunity(
                account_id=board.acme.id, name=deal["name"], amount=Decimal(last[2]),
                currency=deal.get("currency", "EUR"), pipeline_id=board.pipeline.id,
                phase_id=board.phases[last[1]].id, probability=last[3],
                owner_id=deal.get("owner", board.org.rep_a1).id, phase_entered_at=last[0],
                created_at=deal["entries"][0][0])
            session.add(opportunity)
            await session.flush()
            previous = None
            for at, phase, amount, probability in deal["entries"]:
                session.add(PhaseChange(
                    opportunity_id=opportunity.id, from_phase_id=previous,
                    to_phase_id=board.phases[phase].id, changed_by_id=board.org.rep_a1.id,
                    changed_at=at, amount=Decimal(amount), probability=probability))
                previous = board.phases[phase].id
                await session.flush()


async def test_as_of_matches_a_replay_of_the_phase_history(
    client: GraphQLClient, db: Database, board: Board
) -> None:
    pipeline, phases = await make_pipeline(db, PipelineKind.SALES, name="History")
    board = Board(board.org, pipeline, {p.name: p for p in phases}, board.other, board.acme,
                  board.globex)
    march_10, june_30 = date(2025, 3, 10), date(2025, 6, 30)
    await write_history(db, board, [
        {"name": "A", "entries": [
            (local(date(2025, 3, 1), 12), "Qualify", "1000.00", 10),
            (local(march_10, 23, 30), "Propose", "1200.00", 40),  # 21:30 UTC, still the 10th
            (local(date(2025, 3, 11), 0, 30), "Negotiate", "1300.00", 75),  # 22:30 UTC on the 10th
            (local(june_30, 23, 59), "Won", "1300.00", 100),  # 20:59 UTC in summer time
        ]},
        {"name": "B", "entries": [
            (local(date(2025, 3, 5), 9), "Qualify", "500.00", 10),
            (local(date(2025, 4, 1), 9), "Lost", "500.00", 0),
        ]},
        {"name": "C", "entries": [
            (local(date(2025, 7, 1), 0, 30), "Qualify", "800.00", 20),  # 21:30 UTC June 30
        ]},
        {"name": "D", "currency": "USD", "entries": [
            (local(date(2025, 3, 2), 9), "Propose", "9000.00", 40),
        ]},
        {"name": "E", "owner": board.org.rep_b1, "entries": [
            (local(date(2025, 3, 3), 9), "Qualify", "250.25", 10),
            # Two entries at one moment: the later one (by id) stands.
            (local(march_10, 12), "Propose", "250.25", 40),
            (local(march_10, 12), "Negotiate", "260.25", 70),
        ]},
    ])
    async with db.read() as conn:
        changes = [dict(r) for r in (await conn.execute(
            select(PHASE_CHANGES).where(PHASE_CHANGES.c.opportunity_id.in_(
                select(OPPORTUNITIES.c.id).where(OPPORTUNITIES.c.pipeline_id == pipeline.id)))
        )).mappings()]
        opportunities = {r.id: dict(r._mapping) for r in (await conn.execute(
            select(OPPORTUNITIES).where(OPPORTUNITIES.c.pipeline_id == pipeline.id))).all()}
    assert len(changes) == 11

    days = [date(2025, 2, 28), date(2025, 3, 1), date(2025, 3, 9), march_10,
            date(2025, 3, 11), date(2025, 3, 31), date(2025, 4, 1), date(2025, 6, 29),
            june_30, date(2025, 7, 1), date(2026, 1, 1)]
    for day in days:
        result = await summary(client, board.org.admin, pipeline, as_of=day)
        assert result["asOf"] == day.isoformat()
        assert per_phase(result) == replay(changes, opportunities, phases, day), day
    usd = await summary(client, board.org.admin, pipeline, as_of=march_10, currency="USD")
    assert per_phase(usd) == replay(changes, opportunities, phases, march_10, currency="USD")

    # The same, by hand, for the days whose edges matter.
    assert per_phase(await summary(client, board.org.admin, pipeline, as_of=march_10)) == {
        "Qualify": (1, "500.00", "50.00"),  # B
        "Propose": (1, "1200.00", "480.00"),  # A, moved at 23:30 local
        "Negotiate": (1, "260.25", "182.18"),  # E: 182.175 rounds up
        "Won": (0, "0.00", "0.00"), "Lost": (0, "0.00", "0.00")}
    assert per_phase(await summary(client, board.org.admin, pipeline, as_of=june_30)) == {
        "Qualify": (0, "0.00", "0.00"),  # C entered at 00:30 on July 1st, local time
        "Propose": (0, "0.00", "0.00"),
        "Negotiate": (1, "260.25", "182.18"),
        "Won": (1, "1300.00", "1300.00"),  # A, won at 23:59 local
        "Lost": (1, "500.00", "0.00")}
    march_11 = await summary(client, board.org.admin, pipeline, as_of=date(2025, 3, 11))
    assert march_11["totals"] == figures(3, "2060.25", "1207.18")
    assert march_11["open"] == figures(3, "2060.25", "1207.18")
    before = await summary(client, board.org.admin, pipeline, as_of=date(2025, 2, 28))
    assert before["totals"] == figures(0, "0.00", "0.00")

    # The filter applies as of then as well (to the opportunity as it is now).
    owned = await summary(client, board.org.admin, pipeline, as_of=march_10,
                          filter={"ownerId": {"eq": gid(board.org.rep_b1)}})
    assert owned["totals"] == figures(1, "260.25", "182.18")


async def test_as_of_today_after_mutations_is_the_live_summary(
    client: GraphQLClient, db: Database, board: Board
) -> None:
    pipeline, phases = await make_pipeline(db, PipelineKind.SALES, name="Live")
    names = [p.name for p in phases]
    create = """mutation($input: CreateOpportunityInput!) {
      createOpportunity(input: $input) { opportunity { id version } userErrors { code } } }"""
    move = """mutation($input: MoveOpportunityPhaseInput!) {
      moveOpportunityPhase(input: $input) { opportunity { id version } userErrors { code } } }"""
    won = """mutation($input: CloseOpportunityWonInput!) {
      closeOpportunityWon(input: $input) { opportunity { id version } userErrors { code } } }"""
    user = board.org.rep_a1
    made = []
    for n, amount in enumerate(["100.00", "200.50", "300.25"]):
        data = await client.query(create, {"input": {
            "accountId": gid(board.acme), "name": f"Live {n}", "amount": amount,
            "pipelineId": gid(pipeline)}}, as_user=user)
        assert data["createOpportunity"]["userErrors"] == []
        made.append(data["createOpportunity"]["opportunity"])
    first, second, _ = made
    data = await client.query(move, {"input": {"id": first["id"], "expectedVersion": 1,
                                               "phaseId": gid(phases[2])}}, as_user=user)
    assert data["moveOpportunityPhase"]["userErrors"] == []
    data = await client.query(won, {"input": {"id": second["id"], "expectedVersion": 1}},
                              as_user=user)
    assert data["closeOpportunityWon"]["userErrors"] == []

    today = datetime.now(HELSINKI).date()
    live = await summary(client, user, pipeline)
    then = await summary(client, user, pipeline, as_of=today)
    yesterday = await summary(client, user, pipeline, as_of=today - timedelta(days=1))

    assert per_phase(live) == {
        names[0]: (1, "300.25", "30.03"),  # 30.025 rounds up
        names[1]: (0, "0.00", "0.00"),
        names[2]: (1, "100.00", "75.00"),
        names[3]: (1, "200.50", "200.50"),
        names[4]: (0, "0.00", "0.00")}
    assert then["phases"] == live["phases"]
    assert then["totals"] == live["totals"] == figures(3, "600.75", "305.53")
    assert yesterday["totals"] == figures(0, "0.00", "0.00")
