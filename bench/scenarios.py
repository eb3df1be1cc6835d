"""The request bodies the benchmark sends: one GraphQL document per read scenario, and
the documents of the mutation mix. bench/floor.py answers the same bodies by their
exact text, so both servers are driven with identical requests."""

from __future__ import annotations

from typing import Any

from loaders.ids import encode_id

SMALL = """query Small($id: ID!) { account(id: $id) { id name owner { name } } }"""

# A sales dashboard: 100 accounts, each with its owner, ten deals and a year of budgets
# (Account.plan is where an account's budgets are read: one row per month and area).
DASHBOARD = """query Dashboard { accounts(first: 100) { nodes { id name owner { name }
  opportunities(first: 10) { nodes { name amount phase { name } } }
  plan(from: "2026-01-01", to: "2026-12-31") { rows { period budget } } } } }"""

LARGE = """query Large { accounts(first: 1000) { nodes { id name
  opportunities(first: 10) { nodes { id name amount } } } } }"""

PIPELINE = """query Pipeline($pipeline: ID!) { pipelineSummary(pipelineId: $pipeline) {
  phases { phase { name } count amount weightedAmount }
  totals { count amount weightedAmount } open { count amount weightedAmount } } }"""

PLAN = """query Plan { planSummary(groupBy: TEAM, from: "2025-01-01", to: "2026-12-31",
  granularity: QUARTER) {
  rows { period budget forecast billed won openPipeline weightedPipeline budgetVariance }
  totals { budget forecast billed won openPipeline weightedPipeline } } }"""

# The same three requests to the reference server (bench/reference.py: PostGraphile v4,
# which compiles each request into one SQL statement), in its schema: the same rows in
# the same order. Its ids are its own node ids; its amounts come as PostgreSQL prints
# NUMERIC(18, 4). The dashboard's year of budgets is the page of an account's budget rows
# that holds 2026 (the seeded 24 months start in January 2025): Account.plan reads those
# rows, month by month and area by area.
REFERENCE: dict[str, dict[str, Any]] = {
    "small": {"query": """query Small($id: Int!) { account(id: $id) { nodeId name
  owner { name } } }""", "variables": {"id": 1}},
    "dashboard": {"query": """query Dashboard { accounts(first: 100, orderBy: [NAME_ASC, ID_ASC]) {
  nodes { nodeId name owner { name }
  opportunities(first: 10, orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { name amount
  phase { name } } }
  budgets(first: 60, offset: 60, condition: {currency: "EUR"},
          orderBy: [PERIOD_ASC, OFFERING_AREA_ID_ASC]) { nodes { period amount } } } } }"""},
    "large": {"query": """query Large { accounts(first: 1000, orderBy: [NAME_ASC, ID_ASC]) {
  nodes { nodeId name opportunities(first: 10, orderBy: [CREATED_AT_ASC, ID_ASC]) {
  nodes { nodeId name amount } } } } }"""},
}

# The mutation mix, sent in turn by the Lua script bench/__main__.py writes: a deal's
# probability, a deal's move to the next open phase (both with the deal's version, which
# the script keeps per deal), a completed call logged on an account.
UPDATE_OPPORTUNITY = """mutation Update($input: UpdateOpportunityInput!) {
  updateOpportunity(input: $input) { opportunity { id version probability }
  userErrors { code } } }"""

MOVE_PHASE = """mutation Move($input: MoveOpportunityPhaseInput!) {
  moveOpportunityPhase(input: $input) { opportunity { id version phase { name } }
  userErrors { code } } }"""

LOG_ACTIVITY = """mutation Log($input: LogActivityInput!) { logActivity(input: $input) {
  activity { id pointsEarned } userErrors { code } } }"""

READS: dict[str, str] = {"small": SMALL, "dashboard": DASHBOARD, "large": LARGE,
                         "pipeline": PIPELINE, "plan": PLAN}
# The scenarios bench/floor.py answers with one hand-written statement.
FLOORED = ("small", "dashboard", "large")


def body(name: str) -> dict[str, Any]:
    """The POST /graphql body of a read scenario."""
    variables: dict[str, Any] = {}
    if name == "small":
        variables = {"id": encode_id("Account", 1)}
    elif name == "pipeline":
        variables = {"pipeline": encode_id("Pipeline", 1)}
    return {"query": READS[name], "variables": variables}
