"""The root Query and Mutation, merged from the areas, and the assembled schema."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig

from loaders.accounts import AccountByIdLoader, ContactByIdLoader
from loaders.activities import (
    ActivityByIdLoader,
    ActivityTargetByIdLoader,
    ActivityTypeByIdLoader,
)
from loaders.base import RowByIdLoader
from loaders.billing import InvoiceByIdLoader, InvoiceLineByIdLoader
from loaders.campaigns import CampaignByIdLoader, CampaignMemberByIdLoader
from loaders.errors import BadUserInput
from loaders.ids import decode_any_id
from loaders.opportunities import (
    LeadByIdLoader,
    OpportunityByIdLoader,
    PhaseByIdLoader,
    PhaseChangeByIdLoader,
    PipelineByIdLoader,
)
from loaders.planning import BudgetByIdLoader, ForecastByIdLoader
from loaders.pricing import (
    OfferingAreaByIdLoader,
    PriceAgreementByIdLoader,
    PriceBookByIdLoader,
    PriceBookEntryByIdLoader,
    ProductByIdLoader,
)
from loaders.target_groups import TargetGroupByIdLoader
from loaders.users import PartnerOrgByIdLoader, TeamByIdLoader, UserByIdLoader
from schema.accounts import Account, AccountMutations, AccountQueries, Contact
from schema.activities import (
    Activity,
    ActivityMutations,
    ActivityQueries,
    ActivitySubscriptions,
    ActivityTarget,
    ActivityType,
)
from schema.billing import BillingMutations, BillingQueries, Invoice, InvoiceLine
from schema.campaigns import Campaign, CampaignMember, CampaignMutations, CampaignQueries
from schema.context import Info, viewer_of
from schema.opportunities import (
    Lead,
    Opportunity,
    OpportunityMutations,
    OpportunityQueries,
    OpportunitySubscriptions,
    Phase,
    PhaseChange,
    Pipeline,
)
from schema.planning import Budget, Forecast, PlanningMutations, PlanningQueries
from schema.pricing import (
    OfferingArea,
    PriceAgreement,
    PriceBook,
    PriceBookEntry,
    PriceMutations,
    PriceQueries,
    PricingQueries,
    Product,
)
from schema.relay import Node
from schema.scalars import SCALAR_MAP
from schema.target_groups import TargetGroup, TargetGroupMutations, TargetGroupQueries
from schema.users import PartnerOrg, Team, User, UserQueries

# Every Node type: how to load it by key and how to build it from its row.
NODE_TYPES: dict[str, tuple[type[RowByIdLoader], Callable[[Any], Node]]] = {
    "Account": (AccountByIdLoader, Account.from_row),
    "Contact": (ContactByIdLoader, Contact.from_row),
    "User": (UserByIdLoader, User.from_row),
    "Team": (TeamByIdLoader, Team.from_row),
    "PartnerOrg": (PartnerOrgByIdLoader, PartnerOrg.from_row),
    "Product": (ProductByIdLoader, Product.from_row),
    "OfferingArea": (OfferingAreaByIdLoader, OfferingArea.from_row),
    "Pipeline": (PipelineByIdLoader, Pipeline.from_row),
    "Phase": (PhaseByIdLoader, Phase.from_row),
    "Opportunity": (OpportunityByIdLoader, Opportunity.from_row),
    "PhaseChange": (PhaseChangeByIdLoader, PhaseChange.from_row),
    "Lead": (LeadByIdLoader, Lead.from_row),
    "Activity": (ActivityByIdLoader, Activity.from_row),
    "ActivityType": (ActivityTypeByIdLoader, ActivityType.from_row),
    "ActivityTarget": (ActivityTargetByIdLoader, ActivityTarget.from_row),
    "PriceBook": (PriceBookByIdLoader, PriceBook.from_row),
    "PriceBookEntry": (PriceBookEntryByIdLoader, PriceBookEntry.from_row),
    "PriceAgreement": (PriceAgreementByIdLoader, PriceAgreement.from_row),
    "Invoice": (InvoiceByIdLoader, Invoice.from_row),
    "InvoiceLine": (InvoiceLineByIdLoader, InvoiceLine.from_row),
    "Budget": (BudgetByIdLoader, Budget.from_row),
    "Forecast": (ForecastByIdLoader, Forecast.from_row),
    "Campaign": (CampaignByIdLoader, Campaign.from_row),
    "CampaignMember": (CampaignMemberByIdLoader, CampaignMember.from_row),
    "TargetGroup": (TargetGroupByIdLoader, TargetGroup.from_row),
}

MAX_NODES = 500


async def _node(info: Info, global_id: str) -> Node | None:
    return await _load_node(info, *decode_any_id(global_id))


async def _load_node(info: Info, type_name: str, key: int) -> Node | None:
    entry = NODE_TYPES.get(type_name)
    if entry is None:
        return None  # a well-formed id of a type that is not a node here names nothing
    loader_class, build = entry
    row = await info.context.loaders.get(loader_class).load(key)
    return build(row) if row is not None else None


@strawberry.type
class Query(UserQueries, AccountQueries, OpportunityQueries, PricingQueries, ActivityQueries,
            PriceQueries, BillingQueries, PlanningQueries, CampaignQueries,
            TargetGroupQueries):
    @strawberry.field(description="Any object by its global ID; null when it does not exist "
                      "or the viewer may not see it.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        viewer_of(info)
        return await _node(info, id)

    @strawberry.field(description="Objects by global ID, in the order asked; null where one "
                      "does not exist or is not visible.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        viewer_of(info)
        if len(ids) > MAX_NODES:
            raise BadUserInput(f"nodes takes at most {MAX_NODES} ids")
        # Every id is checked before any load starts, so a bad one leaves no load running.
        keys = [decode_any_id(i) for i in ids]
        return list(await asyncio.gather(*(_load_node(info, *key) for key in keys)))


@strawberry.type
class Mutation(AccountMutations, OpportunityMutations, ActivityMutations, PriceMutations,
               BillingMutations, PlanningMutations, CampaignMutations,
               TargetGroupMutations):
    pass


@strawberry.type
class Subscription(OpportunitySubscriptions, ActivitySubscriptions):
    pass


NODE_CLASSES = [Account, Contact, User, Team, PartnerOrg, Product, OfferingArea, Pipeline,
                Phase, Opportunity, PhaseChange, Lead, Activity, ActivityType, ActivityTarget,
                PriceBook, PriceBookEntry, PriceAgreement, Invoice, InvoiceLine, Budget, Forecast,
                Campaign, CampaignMember, TargetGroup]


def build_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
    schema_class: type[strawberry.Schema] = strawberry.Schema,
    **options: Any,
) -> strawberry.Schema:
    return schema_class(
        query=Query, mutation=Mutation, subscription=Subscription, types=NODE_CLASSES,
        extensions=list(extensions),
        config=StrawberryConfig(scalar_map=SCALAR_MAP), **options,
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
