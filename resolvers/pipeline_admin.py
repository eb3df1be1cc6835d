"""Pipelines and their phases, configured by admins: create and change them, order the
phases, and remove a phase, moving what stands in it to another phase of the pipeline.

A removed phase is kept (``removed_at``): the phase history refers to it by key. It
leaves its pipeline's phases, takes no entries, and its name may be used again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.container import Loaders
from loaders.opportunities import PHASES, PIPELINES
from models.base import utcnow
from models.db import Database
from models.leads import Lead
from models.opportunities import (
    ForecastCategory,
    Opportunity,
    Phase,
    PhaseOutcome,
    Pipeline,
    PipelineKind,
)
from models.users import Viewer
from resolvers.audit import fields_of, record_audit
from resolvers.errors import UserErrorCode
from resolvers.mutations import (
    Checks,
    Outcome,
    forbidden,
    lock_row,
    mutate,
    not_found,
    require_version,
)

# The phase entry of moveOpportunityPhase: a removal's moves are recorded the same way.
from resolvers.opportunities import ChangeKind, _enter_phase, _last_amount
from subscriptions.hub import EventHub
from subscriptions.outbox import EventRecord

PIPELINE_FIELDS = ("name", "kind", "active")
PHASE_FIELDS = ("pipeline_id", "name", "position", "probability", "outcome",
                "forecast_category")
# What a new phase forecasts unless told: open deals are pipeline, closed ones are not.
DEFAULT_CATEGORY = {PhaseOutcome.OPEN: ForecastCategory.PIPELINE,
                    PhaseOutcome.WON: ForecastCategory.CLOSED,
                    PhaseOutcome.LOST: ForecastCategory.OMITTED}
# The outcomes a pipeline of each kind must always have a phase for: opportunities
# start in an open phase and close won or lost; leads start in an open phase.
REQUIRED_OUTCOMES = {
    PipelineKind.SALES: (PhaseOutcome.OPEN, PhaseOutcome.WON, PhaseOutcome.LOST),
    PipelineKind.MARKETING: (PhaseOutcome.OPEN,),
}


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    probability: int
    outcome: PhaseOutcome
    forecast_category: ForecastCategory | None = None


@dataclass(frozen=True)
class Removal:
    phase: Phase
    pipeline: Pipeline
    moved_opportunities: int
    moved_leads: int


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise forbidden("only admins configure pipelines")


def _probability(checks: Checks, field_name: str, value: int | None) -> int | None:
    if value is None:
        checks.fail(field_name, "probability is required")
        return None
    if not 0 <= value <= 100:
        checks.fail(field_name, "probability is a percent from 0 to 100")
        return None
    return value


def _phase_audit(phase: Phase) -> dict[str, Any]:
    return fields_of(phase, *PHASE_FIELDS)


async def _pipeline(session: AsyncSession, checks: Checks, field_name: str, gid: str
                    ) -> Pipeline:
    """The pipeline, held to the end of the transaction: changes to one pipeline's
    phases take turns, so positions and the required outcomes stay consistent."""
    key = checks.global_id(field_name, gid, "Pipeline")
    checks.raise_if_any()
    assert key is not None
    await lock_row(session, PIPELINES, key)
    pipeline = await session.get(Pipeline, key)
    if pipeline is None:
        raise not_found(field_name, "pipeline")
    return pipeline


async def _phases_in_use(session: AsyncSession, pipeline_id: int) -> list[Phase]:
    return list((await session.execute(
        select(Phase).where(Phase.pipeline_id == pipeline_id, Phase.removed_at.is_(None))
        .order_by(Phase.position, Phase.id))).scalars().all())


def _renumber(phases: list[Phase]) -> None:
    for position, phase in enumerate(phases, 1):
        if phase.position != position:
            phase.position = position


def _name_taken(phases: list[Phase], name: str, but: Phase | None = None) -> bool:
    folded = name.casefold()
    return any(p.name.casefold() == folded for p in phases if p is not but)


async def _pipeline_name_taken(session: AsyncSession, name: str, but: int | None = None
                               ) -> bool:
    statement = select(Pipeline.id).where(func.lower(Pipeline.name) == name.lower())
    if but is not None:
        statement = statement.where(Pipeline.id != but)
    return (await session.execute(statement)).first() is not None


async def list_removed_phases(*, loaders: Loaders, pipeline_id: int) -> list[Any]:
    """Readable as pipeline configuration is (by everyone): the history names them."""
    statement = (select(PHASES).where(PHASES.c.pipeline_id == pipeline_id,
                                      PHASES.c.removed_at.is_not(None))
                 .order_by(PHASES.c.removed_at, PHASES.c.id))
    async with loaders.db.read() as connection:
        return list((await connection.execute(statement)).all())


# --- pipelines ----------------------------------------------------------------------------


async def create_pipeline(*, viewer: Viewer, db: Database, name: str, kind: PipelineKind,
                          phases: list[PhaseSpec]) -> Outcome[Pipeline]:
    async def action() -> Pipeline:
        _require_admin(viewer)
        async with db.transaction() as session:
            checks = Checks()
            name_ = checks.text("name", name, max_length=200, required=True)
            if name_ is not None and await _pipeline_name_taken(session, name_):
                checks.fail("name", f"a pipeline named {name_!r} exists already",
                            UserErrorCode.CONFLICT)
            records: list[Phase] = []
            seen: set[str] = set()
            for index, spec in enumerate(phases):
                field = f"phases.{index}"
                phase_name = checks.text(f"{field}.name", spec.name, max_length=100,
                                         required=True)
                if phase_name is not None:
                    if phase_name.casefold() in seen:
                        checks.fail(f"{field}.name", f"two phases are named {phase_name!r}")
                    seen.add(phase_name.casefold())
                records.append(Phase(
                    name=phase_name, position=index + 1,
                    probability=_probability(checks, f"{field}.probability",
                                             spec.probability),
                    outcome=spec.outcome,
                    forecast_category=spec.forecast_category
                    or DEFAULT_CATEGORY[spec.outcome]))
            for outcome in REQUIRED_OUTCOMES[kind]:
                if not any(spec.outcome is outcome for spec in phases):
                    checks.fail("phases", f"a {kind.value} pipeline needs a phase with "
                                f"outcome {outcome.value}")
            checks.raise_if_any()
            pipeline = Pipeline(name=name_, kind=kind, active=True)
            session.add(pipeline)
            await session.flush()
            for record in records:
                record.pipeline_id = pipeline.id
            session.add_all(records)
            await session.flush()
            await record_audit(
                session, viewer, action="pipeline.created", entity_type="Pipeline",
                entity_id=pipeline.id,
                after={**fields_of(pipeline, *PIPELINE_FIELDS),
                       "phases": [{"id": r.id, **_phase_audit(r)} for r in records]})
        return pipeline

    return await mutate(action, on_duplicate="a pipeline of that name was just created")


async def update_pipeline(*, viewer: Viewer, db: Database, pipeline_id: str,
                          expected_version: int, changes: dict[str, Any]
                          ) -> Outcome[Pipeline]:
    """Rename a pipeline, or switch it off (``active``: a flag for clients to hide it by;
    its deals and phases stay as they are). Its kind never changes: its deals or leads
    depend on it."""
    async def action() -> Pipeline:
        _require_admin(viewer)
        async with db.transaction() as session:
            checks = Checks()
            pipeline = await _pipeline(session, checks, "id", pipeline_id)
            require_version(pipeline.version, expected_version)
            before = fields_of(pipeline, *PIPELINE_FIELDS)
            if "name" in changes:
                name = checks.text("name", changes["name"], max_length=200, required=True)
                if name is not None and await _pipeline_name_taken(session, name,
                                                                   but=pipeline.id):
                    checks.fail("name", f"a pipeline named {name!r} exists already",
                                UserErrorCode.CONFLICT)
                elif name is not None:
                    pipeline.name = name
            if "active" in changes:
                if changes["active"] is None:
                    checks.fail("active", "active cannot be null")
                else:
                    pipeline.active = changes["active"]
            checks.raise_if_any()
            await session.flush()
            await record_audit(session, viewer, action="pipeline.updated",
                               entity_type="Pipeline", entity_id=pipeline.id, before=before,
                               after=fields_of(pipeline, *PIPELINE_FIELDS))
        return pipeline

    return await mutate(action, on_duplicate="a pipeline of that name was just created")


# --- phases -------------------------------------------------------------------------------


async def add_phase(*, viewer: Viewer, db: Database, pipeline_id: str, name: str,
                    probability: int, outcome: PhaseOutcome,
                    forecast_category: ForecastCategory | None, position: int | None
                    ) -> Outcome[Phase]:
    """A new phase at ``position`` (1 is first; by default the last); the phases from
    there on move one down."""
    async def action() -> Phase:
        _require_admin(viewer)
        async with db.transaction() as session:
            checks = Checks()
            pipeline = await _pipeline(session, checks, "pipelineId", pipeline_id)
            phases = await _phases_in_use(session, pipeline.id)
            name_ = checks.text("name", name, max_length=100, required=True)
            if name_ is not None and _name_taken(phases, name_):
                checks.fail("name", f"the pipeline has a phase named {name_!r} already",
                            UserErrorCode.CONFLICT)
            if position is not None and not 1 <= position <= len(phases) + 1:
                checks.fail("position", f"position is from 1 to {len(phases) + 1}")
            phase = Phase(pipeline_id=pipeline.id, name=name_, position=0,
                          probability=_probability(checks, "probability", probability),
                          outcome=outcome,
                          forecast_category=forecast_category or DEFAULT_CATEGORY[outcome])
            checks.raise_if_any()
            phases.insert(len(phases) if position is None else position - 1, phase)
            _renumber(phases)
            session.add(phase)
            await session.flush()
            await record_audit(session, viewer, action="phase.added", entity_type="Phase",
                               entity_id=phase.id, after=_phase_audit(phase))
        return phase

    return await mutate(action, on_duplicate="a phase of that name was just added")


async def update_phase(*, viewer: Viewer, db: Database, phase_id: str, expected_version: int,
                       changes: dict[str, Any]) -> Outcome[Phase]:
    """Rename a phase, or change its default probability or forecast category. The
    probability is what deals entering the phase from now on get; deals in it keep
    theirs. The outcome stays: the deals closed in the phase depend on it."""
    async def action() -> Phase:
        _require_admin(viewer)
        async with db.transaction() as session:
            checks = Checks()
            phase = await _phase_in_use(session, checks, "id", phase_id)
            require_version(phase.version, expected_version)
            before = _phase_audit(phase)
            if "name" in changes:
                name = checks.text("name", changes["name"], max_length=100, required=True)
                if name is not None and _name_taken(
                        await _phases_in_use(session, phase.pipeline_id), name, but=phase):
                    checks.fail("name", f"the pipeline has a phase named {name!r} already",
                                UserErrorCode.CONFLICT)
                elif name is not None:
                    phase.name = name
            if "probability" in changes and (probability := _probability(
                    checks, "probability", changes["probability"])) is not None:
                phase.probability = probability
            if "forecast_category" in changes:
                if changes["forecast_category"] is None:
                    checks.fail("forecastCategory", "forecastCategory cannot be null")
                else:
                    phase.forecast_category = changes["forecast_category"]
            checks.raise_if_any()
            await session.flush()
            await record_audit(session, viewer, action="phase.updated", entity_type="Phase",
                               entity_id=phase.id, before=before, after=_phase_audit(phase))
        return phase

    return await mutate(action, on_duplicate="a phase of that name was just added")


async def _phase_in_use(session: AsyncSession, checks: Checks, field_name: str, gid: str
                        ) -> Phase:
    """The phase (not a removed one), its pipeline held as by ``_pipeline``."""
    key = checks.global_id(field_name, gid, "Phase")
    checks.raise_if_any()
    phase = await session.get(Phase, key)
    if phase is not None:
        await lock_row(session, PIPELINES, phase.pipeline_id)
        await session.refresh(phase)  # as it is now that we hold the pipeline
    if phase is None or phase.removed_at is not None:
        raise not_found(field_name, "phase")
    return phase


async def reorder_phases(*, viewer: Viewer, db: Database, pipeline_id: str,
                         phase_ids: list[str]) -> Outcome[Pipeline]:
    """Put the pipeline's phases in the order given: every phase in use, once."""
    async def action() -> Pipeline:
        _require_admin(viewer)
        async with db.transaction() as session:
            checks = Checks()
            pipeline = await _pipeline(session, checks, "pipelineId", pipeline_id)
            phases = {p.id: p for p in await _phases_in_use(session, pipeline.id)}
            order: list[Phase] = []
            for index, gid in enumerate(phase_ids):
                key = checks.global_id(f"phaseIds.{index}", gid, "Phase")
                if key is None:
                    continue
                if key not in phases:
                    checks.fail(f"phaseIds.{index}", "not a phase of this pipeline",
                                UserErrorCode.NOT_FOUND)
                elif phases[key] in order:
                    checks.fail(f"phaseIds.{index}", "the phase is listed twice")
                else:
                    order.append(phases[key])
            missing = [p.name for p in phases.values() if p not in order]
            if missing:
                checks.fail("phaseIds", "every phase of the pipeline must be listed; "
                            f"missing: {', '.join(missing)}")
            checks.raise_if_any()
            before = [p.id for p in sorted(phases.values(), key=lambda p: (p.position, p.id))]
            _renumber(order)
            await session.flush()
            await record_audit(session, viewer, action="pipeline.phases_reordered",
                               entity_type="Pipeline", entity_id=pipeline.id,
                               before={"phaseIds": before},
                               after={"phaseIds": [p.id for p in order]})
        return pipeline

    return await mutate(action)


async def remove_phase(*, viewer: Viewer, db: Database, events: EventHub, phase_id: str,
                       move_to_phase_id: str | None) -> Outcome[Removal]:
    """Remove a phase. While opportunities or leads stand in it this is refused, unless
    ``move_to_phase_id`` names a phase of the same pipeline with the same outcome: then
    each of them moves there first, in this transaction, an opportunity with its
    phase-history entry and its event as moveOpportunityPhase records them."""
    async def action() -> Removal:
        _require_admin(viewer)
        last: EventRecord | None = None
        async with db.transaction() as session:
            checks = Checks()
            phase = await _phase_in_use(session, checks, "id", phase_id)
            pipeline = await session.get(Pipeline, phase.pipeline_id)
            assert pipeline is not None
            phases = await _phases_in_use(session, pipeline.id)
            target = _target(checks, phase, phases, move_to_phase_id)
            outcome = phase.outcome
            if outcome in REQUIRED_OUTCOMES[pipeline.kind] and not any(
                    p.outcome is outcome for p in phases if p is not phase):
                checks.fail("id", f"the last {outcome.value} phase of a "
                            f"{pipeline.kind.value} pipeline cannot be removed")
            checks.raise_if_any()
            opportunities = list((await session.execute(
                select(Opportunity).where(Opportunity.phase_id == phase.id)
                .order_by(Opportunity.id))).scalars().all())
            leads = list((await session.execute(
                select(Lead).where(Lead.phase_id == phase.id).order_by(Lead.id)
            )).scalars().all())
            if (opportunities or leads) and target is None:
                checks.fail("moveToPhaseId",
                            f"{len(opportunities)} opportunities and {len(leads)} leads stand "
                            "in the phase: name a phase to move them to")
            checks.raise_if_any()
            now = utcnow()
            if target is not None:
                for opportunity in opportunities:
                    last = await _move_opportunity(session, viewer, opportunity, target, now)
                for lead in leads:
                    # As moveLeadPhase moves a lead: its phase and since when.
                    lead.phase_id = target.id
                    lead.phase_entered_at = now
            before = _phase_audit(phase)
            phase.removed_at = now
            phases.remove(phase)
            _renumber(phases)
            await session.flush()
            await record_audit(
                session, viewer, action="phase.removed", entity_type="Phase",
                entity_id=phase.id, before=before,
                after={"removedAt": now,
                       "movedToPhaseId": target.id if target is not None else None,
                       "opportunityIds": [o.id for o in opportunities],
                       "leadIds": [lead.id for lead in leads]})
        if last is not None:
            # The hubs read the outbox in order from where they stopped: waking them
            # for the last event delivers every one before it too.
            await events.announce(last)
        return Removal(phase, pipeline, len(opportunities), len(leads))

    return await mutate(action)


def _target(checks: Checks, phase: Phase, phases: list[Phase], gid: str | None
            ) -> Phase | None:
    if gid is None:
        return None
    key = checks.global_id("moveToPhaseId", gid, "Phase")
    if key is None:
        return None
    target = next((p for p in phases if p.id == key), None)
    if target is None:
        checks.fail("moveToPhaseId", "not a phase of the same pipeline",
                    UserErrorCode.NOT_FOUND)
    elif target is phase:
        checks.fail("moveToPhaseId", "the phase cannot take what stands in itself")
    elif target.outcome is not phase.outcome:
        # Open deals stay open and closed ones closed, as they were.
        checks.fail("moveToPhaseId", f"move to another {phase.outcome.value} phase, not "
                    f"a {target.outcome.value} one")
    else:
        return target
    return None


async def _move_opportunity(session: AsyncSession, viewer: Viewer, opportunity: Opportunity,
                            target: Phase, now: datetime) -> EventRecord:
    # As moveOpportunityPhase: the phase's probability, the history row and the event.
    # Closed deals keep their close date and reason (the target has the same outcome).
    previous_amount = await _last_amount(session, opportunity.id)
    opportunity.probability = target.probability
    return await _enter_phase(session, viewer=viewer, opportunity=opportunity, phase=target,
                              kind=ChangeKind.MOVED, previous_amount=previous_amount, now=now)
