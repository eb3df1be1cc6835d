"""Pipelines and their phases, configured by admins."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import UNSET

from loaders.ids import decode_id
from resolvers import pipeline_admin as resolve
from schema.context import Info, viewer_of
from schema.errors import UserError, payload, user_errors
from schema.inputs import sent_changes
from schema.opportunities import ForecastCategory, Phase, PhaseOutcome, Pipeline, PipelineKind


@strawberry.input(description="A phase of a new pipeline; the order given is the order "
                  "of the phases.")
class NewPhaseInput:
    name: str
    probability: int = strawberry.field(
        description="Percent, 0 to 100, that a deal entering the phase gets by default.")
    outcome: PhaseOutcome  # type: ignore[valid-type]
    forecast_category: ForecastCategory | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="By default PIPELINE for an OPEN phase, CLOSED for a WON "
        "one and OMITTED for a LOST one.")


@strawberry.input(description="A SALES pipeline needs an OPEN, a WON and a LOST phase; a "
                  "MARKETING pipeline an OPEN one.")
class CreatePipelineInput:
    name: str
    kind: PipelineKind  # type: ignore[valid-type]
    phases: list[NewPhaseInput]


@strawberry.input(description="Only the fields sent are changed. The kind never changes.")
class UpdatePipelineInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    active: bool | None = strawberry.field(
        default=UNSET, description="Off: clients hide the pipeline; its deals stay as they "
        "are.")


@strawberry.input
class AddPhaseInput:
    pipeline_id: strawberry.ID
    name: str
    probability: int = strawberry.field(description="Percent, 0 to 100.")
    outcome: PhaseOutcome  # type: ignore[valid-type]
    forecast_category: ForecastCategory | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="By default from the outcome, as in NewPhaseInput.")
    position: int | None = strawberry.field(
        default=None, description="1 is first; by default the last. The phases from "
        "there on move one down.")


@strawberry.input(description="Only the fields sent are changed. The outcome never changes: "
                  "the deals closed in the phase depend on it.")
class UpdatePhaseInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    probability: int | None = strawberry.field(
        default=UNSET, description="For deals entering the phase from now on; the deals in "
        "it keep theirs.")
    forecast_category: ForecastCategory | None = UNSET  # type: ignore[valid-type]


@strawberry.input
class ReorderPhasesInput:
    pipeline_id: strawberry.ID
    phase_ids: list[strawberry.ID] = strawberry.field(
        description="Every phase of the pipeline, once, in the new order.")


@strawberry.input
class RemovePhaseInput:
    id: strawberry.ID
    move_to_phase_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required while opportunities or leads stand in the phase: "
        "a phase of the same pipeline with the same outcome. Each of them moves there, an "
        "opportunity with its phase-history entry and its phase-change event.")


@strawberry.type
class PipelinePayload:
    pipeline: Pipeline | None
    user_errors: list[UserError]


@strawberry.type
class PhasePayload:
    phase: Phase | None
    user_errors: list[UserError]


@strawberry.type
class RemovePhasePayload:
    phase: Phase | None = strawberry.field(description="The removed phase, with removedAt.")
    pipeline: Pipeline | None = strawberry.field(description="Its pipeline, as it is now.")
    moved_opportunity_count: int
    moved_lead_count: int
    user_errors: list[UserError]


def _pipeline_payload(outcome: Any) -> PipelinePayload:
    return payload(PipelinePayload, "pipeline", Pipeline.from_row, outcome)


def _phase_payload(outcome: Any) -> PhasePayload:
    return payload(PhasePayload, "phase", Phase.from_row, outcome)


def _removal_payload(outcome: Any) -> RemovePhasePayload:
    removal = outcome.value
    return RemovePhasePayload(
        phase=Phase.from_row(removal.phase) if removal else None,
        pipeline=Pipeline.from_row(removal.pipeline) if removal else None,
        moved_opportunity_count=removal.moved_opportunities if removal else 0,
        moved_lead_count=removal.moved_leads if removal else 0,
        user_errors=user_errors(outcome.errors))


@strawberry.type
class PipelineAdminQueries:
    @strawberry.field(description="The phases removed from a pipeline, which its phase "
                      "history may still refer to.")
    async def removed_phases(self, info: Info, pipeline_id: strawberry.ID) -> list[Phase]:
        viewer_of(info)
        rows = await resolve.list_removed_phases(
            loaders=info.context.loaders, pipeline_id=decode_id(pipeline_id, "Pipeline"))
        return [Phase.from_row(row) for row in rows]


@strawberry.type
class PipelineAdminMutations:
    @strawberry.mutation(description="Admins: a new pipeline with its phases.")
    async def create_pipeline(self, info: Info, input: CreatePipelineInput) -> PipelinePayload:
        return _pipeline_payload(await resolve.create_pipeline(
            viewer=viewer_of(info), db=info.context.db, name=input.name, kind=input.kind,
            phases=[resolve.PhaseSpec(name=p.name, probability=p.probability,
                                      outcome=p.outcome, forecast_category=p.forecast_category)
                    for p in input.phases]))

    @strawberry.mutation(description="Admins: rename a pipeline or switch it off.")
    async def update_pipeline(self, info: Info, input: UpdatePipelineInput) -> PipelinePayload:
        return _pipeline_payload(await resolve.update_pipeline(
            viewer=viewer_of(info), db=info.context.db, pipeline_id=input.id,
            expected_version=input.expected_version, changes=sent_changes(input)))

    @strawberry.mutation(description="Admins: a new phase in a pipeline.")
    async def add_phase(self, info: Info, input: AddPhaseInput) -> PhasePayload:
        return _phase_payload(await resolve.add_phase(
            viewer=viewer_of(info), db=info.context.db, pipeline_id=input.pipeline_id,
            name=input.name, probability=input.probability, outcome=input.outcome,
            forecast_category=input.forecast_category, position=input.position))

    @strawberry.mutation(description="Admins: rename a phase, or change its default "
                         "probability or forecast category.")
    async def update_phase(self, info: Info, input: UpdatePhaseInput) -> PhasePayload:
        return _phase_payload(await resolve.update_phase(
            viewer=viewer_of(info), db=info.context.db, phase_id=input.id,
            expected_version=input.expected_version, changes=sent_changes(input)))

    @strawberry.mutation(description="Admins: put a pipeline's phases in a new order.")
    async def reorder_phases(self, info: Info, input: ReorderPhasesInput) -> PipelinePayload:
        return _pipeline_payload(await resolve.reorder_phases(
            viewer=viewer_of(info), db=info.context.db, pipeline_id=input.pipeline_id,
            phase_ids=list(input.phase_ids)))

    @strawberry.mutation(description="Admins: remove a phase, moving the opportunities and "
                         "leads in it to moveToPhaseId in the same transaction. The phase "
                         "stays readable for the phase history.")
    async def remove_phase(self, info: Info, input: RemovePhaseInput) -> RemovePhasePayload:
        return _removal_payload(await resolve.remove_phase(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            phase_id=input.id, move_to_phase_id=input.move_to_phase_id))
