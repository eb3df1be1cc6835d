"""Pipelines, phases, opportunities, phase history and leads: read policy, filters,
ordering and loaders."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, false, select, true

from loaders.base import ChildCountLoader, ChildPageLoader, Loader, RowByIdLoader
from loaders.query import FilterSpec, Related, Scalar, Sortable
from loaders.users import ACCOUNTS, USER_FILTER, USERS, shared_account_ids
from models.leads import Lead
from models.opportunities import Opportunity, Phase, PhaseChange, Pipeline
from models.users import Role, Viewer

PIPELINES = Pipeline.__table__
PHASES = Phase.__table__
OPPORTUNITIES = Opportunity.__table__
PHASE_CHANGES = PhaseChange.__table__
LEADS = Lead.__table__


def visible_pipelines(_viewer: Viewer) -> ColumnElement[bool]:
    """Pipeline configuration is readable by everyone who may read an opportunity."""
    return true()


def visible_opportunities(viewer: Viewer) -> ColumnElement[bool]:
    if viewer.role is Role.PARTNER:
        return OPPORTUNITIES.c.account_id.in_(shared_account_ids(viewer))
    return true()


def visible_leads(viewer: Viewer) -> ColumnElement[bool]:
    """Leads are the organisation's own prospects: partners see none."""
    return false() if viewer.role is Role.PARTNER else true()


def _phase_of(column: ColumnElement[Any], attribute: str) -> ColumnElement[Any]:
    """A phase attribute of the record's current phase, as a filterable column."""
    return select(PHASES.c[attribute]).where(PHASES.c.id == column).scalar_subquery()


PHASE_FILTER = FilterSpec(
    fields={
        "id": Scalar(PHASES.c.id, id_type="Phase"),
        "name": Scalar(PHASES.c.name),
        "outcome": Scalar(PHASES.c.outcome),
        "forecast_category": Scalar(PHASES.c.forecast_category),
    },
    visibility=visible_pipelines,
)


def _account_filter() -> FilterSpec:
    from loaders.accounts import ACCOUNT_FILTER  # accounts' filter refers back to ours

    return ACCOUNT_FILTER


OPPORTUNITY_FILTER = FilterSpec(
    fields={
        "id": Scalar(OPPORTUNITIES.c.id, id_type="Opportunity"),
        "name": Scalar(OPPORTUNITIES.c.name),
        "amount": Scalar(OPPORTUNITIES.c.amount),
        "currency": Scalar(OPPORTUNITIES.c.currency),
        "probability": Scalar(OPPORTUNITIES.c.probability),
        "pipeline_id": Scalar(OPPORTUNITIES.c.pipeline_id, id_type="Pipeline"),
        "phase_id": Scalar(OPPORTUNITIES.c.phase_id, id_type="Phase"),
        "outcome": Scalar(_phase_of(OPPORTUNITIES.c.phase_id, "outcome")),
        "forecast_category": Scalar(_phase_of(OPPORTUNITIES.c.phase_id, "forecast_category")),
        "owner_id": Scalar(OPPORTUNITIES.c.owner_id, id_type="User"),
        "team_id": Scalar(
            select(USERS.c.team_id).where(USERS.c.id == OPPORTUNITIES.c.owner_id)
            .scalar_subquery(), id_type="Team"),
        "account_id": Scalar(OPPORTUNITIES.c.account_id, id_type="Account"),
        "offering_area_id": Scalar(OPPORTUNITIES.c.offering_area_id, id_type="OfferingArea"),
        "expected_close_date": Scalar(OPPORTUNITIES.c.expected_close_date),
        "closed_at": Scalar(OPPORTUNITIES.c.closed_at),
        "created_at": Scalar(OPPORTUNITIES.c.created_at),
        "updated_at": Scalar(OPPORTUNITIES.c.updated_at),
        "phase": Related(lambda: PHASE_FILTER, lambda: PHASES.c.id == OPPORTUNITIES.c.phase_id,
                         False),
        "account": Related(_account_filter, lambda: ACCOUNTS.c.id == OPPORTUNITIES.c.account_id,
                           False),
        "owner": Related(lambda: USER_FILTER, lambda: USERS.c.id == OPPORTUNITIES.c.owner_id,
                         False),
    },
    visibility=visible_opportunities,
)

OPPORTUNITY_ORDER = {
    "NAME": Sortable(OPPORTUNITIES.c.name),
    "AMOUNT": Sortable(OPPORTUNITIES.c.amount),
    "PROBABILITY": Sortable(OPPORTUNITIES.c.probability),
    "EXPECTED_CLOSE_DATE": Sortable(OPPORTUNITIES.c.expected_close_date, nullable=True),
    "CREATED_AT": Sortable(OPPORTUNITIES.c.created_at),
    "UPDATED_AT": Sortable(OPPORTUNITIES.c.updated_at),
}

LEAD_FILTER = FilterSpec(
    fields={
        "id": Scalar(LEADS.c.id, id_type="Lead"),
        "company": Scalar(LEADS.c.company),
        "first_name": Scalar(LEADS.c.first_name),
        "last_name": Scalar(LEADS.c.last_name),
        "email": Scalar(LEADS.c.email),
        "source": Scalar(LEADS.c.source),
        "owner_id": Scalar(LEADS.c.owner_id, id_type="User"),
        "pipeline_id": Scalar(LEADS.c.pipeline_id, id_type="Pipeline"),
        "phase_id": Scalar(LEADS.c.phase_id, id_type="Phase"),
        "outcome": Scalar(_phase_of(LEADS.c.phase_id, "outcome")),
        "converted_at": Scalar(LEADS.c.converted_at),
        "created_at": Scalar(LEADS.c.created_at),
        "owner": Related(lambda: USER_FILTER, lambda: USERS.c.id == LEADS.c.owner_id, False),
    },
    visibility=visible_leads,
)

LEAD_ORDER = {
    "COMPANY": Sortable(LEADS.c.company),
    "LAST_NAME": Sortable(LEADS.c.last_name),
    "CREATED_AT": Sortable(LEADS.c.created_at),
    "UPDATED_AT": Sortable(LEADS.c.updated_at),
}


def opportunities_statement(viewer: Viewer) -> Select[Any]:
    return select(OPPORTUNITIES).where(visible_opportunities(viewer))


def leads_statement(viewer: Viewer) -> Select[Any]:
    return select(LEADS).where(visible_leads(viewer))


class PipelineByIdLoader(RowByIdLoader):
    table = PIPELINES
    visibility = staticmethod(visible_pipelines)


class PhaseByIdLoader(RowByIdLoader):
    table = PHASES
    visibility = staticmethod(visible_pipelines)


class OpportunityByIdLoader(RowByIdLoader):
    table = OPPORTUNITIES
    visibility = staticmethod(visible_opportunities)


class PhaseChangeByIdLoader(RowByIdLoader):
    table = PHASE_CHANGES
    visibility = staticmethod(
        lambda viewer: PHASE_CHANGES.c.opportunity_id.in_(
            select(OPPORTUNITIES.c.id).where(visible_opportunities(viewer))))


class LeadByIdLoader(RowByIdLoader):
    table = LEADS
    visibility = staticmethod(visible_leads)


class PhasesByPipelineLoader(Loader):
    """The phases in use of each pipeline (not the removed ones), by position."""

    async def batch_load_fn(self, keys: list[int]) -> list[list[Any]]:
        statement = (select(PHASES).where(PHASES.c.pipeline_id.in_(keys),
                                          PHASES.c.removed_at.is_(None))
                     .order_by(PHASES.c.pipeline_id, PHASES.c.position, PHASES.c.id))
        grouped: dict[int, list[Any]] = {}
        async with self.db.read() as connection:
            for row in await connection.execute(statement):
                grouped.setdefault(row.pipeline_id, []).append(row)
        return [grouped.get(key, []) for key in keys]


class PhaseChangesByOpportunityLoader(Loader):
    """Each opportunity's phase history, oldest first."""

    async def batch_load_fn(self, keys: list[int]) -> list[list[Any]]:
        statement = (select(PHASE_CHANGES).where(PHASE_CHANGES.c.opportunity_id.in_(keys))
                     .order_by(PHASE_CHANGES.c.opportunity_id, PHASE_CHANGES.c.changed_at,
                               PHASE_CHANGES.c.id))
        grouped: dict[int, list[Any]] = {}
        async with self.db.read() as connection:
            for row in await connection.execute(statement):
                grouped.setdefault(row.opportunity_id, []).append(row)
        return [grouped.get(key, []) for key in keys]


class OpportunitiesByAccountLoader(ChildPageLoader):
    parent_column = OPPORTUNITIES.c.account_id
    filter_spec = OPPORTUNITY_FILTER
    orderable = OPPORTUNITY_ORDER
    default_order = ("CREATED_AT",)

    def base_statement(self) -> Select[Any]:
        return opportunities_statement(self.viewer)


class OpportunityCountByAccountLoader(ChildCountLoader):
    parent_column = OPPORTUNITIES.c.account_id
    filter_spec = OPPORTUNITY_FILTER

    def base_statement(self) -> Select[Any]:
        return opportunities_statement(self.viewer)
