"""The root Query and Mutation, merged from the areas, and the assembled schema."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import cache
from typing import Annotated, Any

import strawberry
from graphql import ObjectTypeDefinitionNode, parse, print_ast
from strawberry.extensions import SchemaExtension
from strawberry.federation import Schema as FederationSchema
from strawberry.federation.schema import FederationAny
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
from schema.administration import AdministrationMutations, AdministrationQueries
from schema.billing import BillingMutations, BillingQueries, Invoice, InvoiceLine
from schema.campaigns import Campaign, CampaignMember, CampaignMutations, CampaignQueries
from schema.catalogue import CatalogueMutations, CatalogueQueries
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
from schema.pipeline_admin import PipelineAdminMutations, PipelineAdminQueries
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
from schema.sharing import SharingMutations, SharingQueries
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
            TargetGroupQueries, AdministrationQueries, SharingQueries, PipelineAdminQueries,
            CatalogueQueries):
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
               TargetGroupMutations, AdministrationMutations, SharingMutations,
               PipelineAdminMutations, CatalogueMutations):
    pass


@strawberry.type
class Subscription(OpportunitySubscriptions, ActivitySubscriptions):
    pass


NODE_CLASSES = [Account, Contact, User, Team, PartnerOrg, Product, OfferingArea, Pipeline,
                Phase, Opportunity, PhaseChange, Lead, Activity, ActivityType, ActivityTarget,
                PriceBook, PriceBookEntry, PriceAgreement, Invoice, InvoiceLine, Budget, Forecast,
                Campaign, CampaignMember, TargetGroup]


# Apollo Federation v2: this server is a subgraph whose entities a gateway resolves by
# their global id. Only @key is used, which every version has; 2.3 composes with any
# Federation 2 gateway or router released since early 2023.
FEDERATION_VERSION = "2.3"
ENTITY_CLASSES = (Account, Contact, Opportunity, Product, User)
ENTITY_NAMES = frozenset(cls.__strawberry_definition__.name for cls in ENTITY_CLASSES)

Entity = Annotated[Account | Contact | Opportunity | Product | User,
                   strawberry.union("_Entity", description="An object a gateway may "
                                    "resolve by `@key(fields: \"id\")`.")]


def _entity_key(representation: object) -> tuple[str, int] | None:
    """The (type, key) a representation names; None when its id is not a global id of
    its __typename, which resolves to null like a missing or hidden object. A
    representation without the key fields is a gateway fault and fails the field."""
    if not (isinstance(representation, dict)
            and representation.get("__typename") in ENTITY_NAMES
            and isinstance(representation.get("id"), str)):
        raise BadUserInput("each representation is {__typename, id} of an entity: "
                           + ", ".join(sorted(ENTITY_NAMES)))
    try:
        type_name, key = decode_any_id(representation["id"])
    except BadUserInput:
        return None
    return (type_name, key) if type_name == representation["__typename"] else None


async def _load_entity(info: Info, key: tuple[str, int] | None) -> Node | None:
    return await _load_node(info, *key) if key is not None else None


@strawberry.type(name="_Service", description="This subgraph's schema, for federation "
                 "gateways.")
class SubgraphService:
    sdl: str = strawberry.field(description="The subgraph SDL: `crmgraph export-schema "
                                "--subgraph`.")


@strawberry.type(name="Query")
class SubgraphQuery(Query):
    """Query as a federation subgraph serves it: with `_service` and `_entities`."""

    @strawberry.field(name="_service", description="This subgraph's SDL, for gateways.")
    def federation_service(self) -> SubgraphService:
        """Needs no viewer: gateways read the SDL at start-up, before any user's request
        and without user credentials. It tells no data, only the API's shape, which is
        the checked-in schema.graphql plus @key; where even that must stay closed,
        block `_service` at the edge and give the gateway a supergraph composed from
        `crmgraph export-schema --subgraph` instead."""
        return SubgraphService(sdl=export_subgraph_sdl())

    @strawberry.field(name="_entities", description="Entities by representation, in the "
                      "order asked; null where one does not exist or is not visible.")
    async def federation_entities(self, info: Info, representations: list[FederationAny]
                                  ) -> list[Entity | None]:
        # The ById loaders apply the viewer's read policy, as for `node`, and batch:
        # any number of representations cost one statement per entity type.
        viewer_of(info)
        if len(representations) > MAX_NODES:
            raise BadUserInput(f"_entities takes at most {MAX_NODES} representations")
        keys = [_entity_key(representation) for representation in representations]
        return list(await asyncio.gather(*(_load_entity(info, key) for key in keys)))


def build_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
    schema_class: type[strawberry.Schema] = strawberry.Schema,
    **options: Any,
) -> strawberry.Schema:
    """The client contract's schema; a federation ``schema_class`` gets the subgraph's,
    the same types plus `_service` and `_entities`."""
    query: type = Query
    if issubclass(schema_class, FederationSchema):
        query = SubgraphQuery
        options.setdefault("federation_version", FEDERATION_VERSION)
    return schema_class(
        query=query, mutation=Mutation, subscription=Subscription, types=NODE_CLASSES,
        extensions=list(extensions),
        config=StrawberryConfig(scalar_map=SCALAR_MAP), **options,
    )


def export_sdl() -> str:
    """The client contract, schema/schema.graphql: no federation internals, so that
    graphql-core's build_schema and client tools read it."""
    return build_schema().as_str() + "\n"


@cache
def export_subgraph_sdl() -> str:
    """What `_service { sdl }` answers: the client contract with the federation @link
    and `@key(fields: "id")` on every entity, inserted where the parsed contract puts
    each type's name, interfaces and directives so the rest stays byte for byte.
    `_service`, `_entities` and their types are left out, as Apollo's subgraph
    specification asks."""
    contract = export_sdl()
    ends = {}
    for definition in parse(contract).definitions:
        if isinstance(definition, ObjectTypeDefinitionNode) and (
                definition.name.value in ENTITY_NAMES):
            fields = {field.name.value: field for field in definition.fields or ()}
            if "id" not in fields or print_ast(fields["id"].type) != "ID!":
                raise RuntimeError(f"entity {definition.name.value} has no `id: ID!`")
            last = [definition.name, *(definition.interfaces or ()),
                    *(definition.directives or ())][-1]
            ends[definition.name.value] = last.loc.end
    if set(ends) != ENTITY_NAMES:
        raise RuntimeError(f"entities missing from the schema: {ENTITY_NAMES - set(ends)}")
    sdl = contract
    for end in sorted(ends.values(), reverse=True):
        sdl = f'{sdl[:end]} @key(fields: "id"){sdl[end:]}'
    link = (f'extend schema @link(url: "https://specs.apollo.dev/federation/'
            f'v{FEDERATION_VERSION}", import: ["@key"])')
    return f"{link}\n\n{sdl}"
