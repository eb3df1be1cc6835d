"""A deterministic demo data set: a small sales organisation with its customers.

One seeded random generator and a fixed base date produce every value, so two fresh
databases seeded from it hold the same rows: screenshots, documentation examples and
benchmarks stay comparable from run to run. Nothing here reads the wall clock.

Company websites and contact emails use the reserved ``.example`` top-level domain
(RFC 2606): the data looks real, yet no campaign run against a demo database can
ever reach a real mailbox.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.ids import encode_id
from models.accounts import Account, AccountShare, AccountType, Contact
from models.activities import (
    Activity,
    ActivityStatus,
    ActivityTarget,
    ActivityType,
    TargetMetric,
)
from models.base import Base
from models.billing import Invoice, InvoiceLine, InvoiceStatus
from models.campaigns import Campaign, CampaignMember, CampaignStatus, CampaignType, MemberStatus
from models.db import Database
from models.leads import Lead
from models.opportunities import (
    ForecastCategory,
    Opportunity,
    Phase,
    PhaseChange,
    PhaseOutcome,
    Pipeline,
    PipelineKind,
)
from models.planning import Budget, Forecast, ForecastKind
from models.pricing import (
    AccountPriceBook,
    OfferingArea,
    PriceBook,
    PriceBookEntry,
    PriceSource,
    Product,
)
from models.target_groups import (
    TargetGroup,
    TargetGroupEntry,
    TargetGroupKind,
    TargetGroupVisibility,
)
from models.users import PartnerOrg, Role, Team, User
from resolvers.billing import PAYMENT_DAYS, line_total
from resolvers.weeks import week_bounds, week_of

SEED = 2026
BASE_DATE = datetime(2026, 11, 1, tzinfo=UTC)
# About eighteen months of history before the base date.
HISTORY_START = BASE_DATE - timedelta(days=548)
EMAIL_DOMAIN = "demo.crmgraph.dev"

ACCOUNT_COUNT = 200
CONTACT_COUNT = 600
CHILD_ACCOUNT_COUNT = 20
ARCHIVED_ACCOUNT_COUNT = 6
SHARED_ACCOUNT_COUNT = 30
OPPORTUNITY_COUNT = 1000
PARTNER_DEAL_COUNT = 150  # of OPPORTUNITY_COUNT, on accounts shared with the partner org
LEAD_COUNT = 300
CONVERTED_LEAD_COUNT = 40  # of LEAD_COUNT; half of them also opened an opportunity

PARTNER_ORG_NAME = "Northwind Partners"
TEAM_NAMES = ("Nordics", "DACH", "Benelux")

# (name, role, team); the first user of each role is the one DEMO_EMAILS names.
_USERS: tuple[tuple[str, Role, str | None], ...] = (
    ("Ada Lindqvist", Role.ADMIN, None),
    ("Mikko Virtanen", Role.MANAGER, "Nordics"),
    ("Katrin Weber", Role.MANAGER, "DACH"),
    ("Sanne de Vries", Role.MANAGER, "Benelux"),
    ("Emma Nieminen", Role.REP, "Nordics"),
    ("Lars Johansson", Role.REP, "Nordics"),
    ("Ingrid Hansen", Role.REP, "Nordics"),
    ("Jonas Becker", Role.REP, "DACH"),
    ("Lena Huber", Role.REP, "DACH"),
    ("Daan Janssen", Role.REP, "Benelux"),
    ("Lotte Peeters", Role.REP, "Benelux"),
    ("Oliver Grant", Role.PARTNER, None),
)

_OFFERING_AREAS = (
    ("SW", "Software"),
    ("SVC", "Services"),
    ("HW", "Hardware"),
    ("SUP", "Support"),
    ("TRN", "Training"),
)

# Per offering area: code | name | unit | list price in EUR | description.
_PRODUCT_TABLE = {
    "SW": """
        SW-CRM-STD | CRM Cloud Standard        | license |   45.00 | Core CRM for small sales teams
        SW-CRM-PRO | CRM Cloud Professional    | license |   89.00 | Pipelines, forecasts, plans
        SW-CRM-ENT | CRM Cloud Enterprise      | license |  149.00 | Territories, partner access
        SW-ANL     | Analytics Add-on          | license |   29.00 | Dashboards and live boards
        SW-MKT     | Marketing Automation      | license |   69.00 | Email and event campaigns
        SW-API     | API Access Pack           | month   |  250.00 | Raised API limits, sandboxes
        SW-LEG     | CRM On-Premise Classic    | license | 1200.00 | Retired on-premise edition
    """,
    "SVC": """
        SVC-IMPL   | Implementation Consulting | hour    |  145.00 | Configuration and roll-out
        SVC-ARCH   | Solution Architecture     | hour    |  175.00 | Integration and data design
        SVC-MIG    | Data Migration            | day     | 1150.00 | Accounts, contacts, history
        SVC-INT    | Integration Development   | hour    |  155.00 | ERP and billing connectors
    """,
    "HW": """
        HW-TAB     | Field Sales Tablet        | piece   |  649.00 | Rugged tablet, CRM app
        HW-SCN     | Badge Scanner             | piece   |  219.00 | Lead capture at events
        HW-HDS     | Headset Pro               | piece   |  129.00 | Headset for call campaigns
        HW-KSK     | Event Check-in Kiosk      | piece   | 2490.00 | Self-service event check-in
        HW-DSP     | Sales Floor Display 55    | piece   | 1390.00 | Wall display for live boards
        HW-PHN     | Desk Phone Classic        | piece   |   89.00 | Superseded by the headset
    """,
    "SUP": """
        SUP-STD    | Standard Support          | month   |  390.00 | Business hours, next-day reply
        SUP-PRM    | Premium Support           | month   |  890.00 | Around the clock, 1-hour reply
        SUP-TAM    | Technical Account Manager | month   | 2400.00 | A named engineer
    """,
    "TRN": """
        TRN-ADM    | Administrator Training    | day     |  890.00 | Two days for administrators
        TRN-USR    | End-User Training         | day     |  690.00 | Classroom course for sales
        TRN-ELN    | E-Learning Seat           | license |   39.00 | Twelve months of courses
        TRN-WSH    | Sales Process Workshop    | day     | 1450.00 | Pipeline design workshop
    """,
}
# Still in the catalogue for old agreements, no longer sold.
_RETIRED_PRODUCTS = frozenset({"SW-LEG", "HW-PHN"})

SALES_PIPELINE = "Sales"
PARTNER_PIPELINE = "Partner Deals"
LEAD_PIPELINE = "Lead Funnel"

# Per pipeline: phase | default probability | outcome | forecast category, in position
# order. Open phases come first: the generators below walk them front to back.
_PIPELINE_TABLE = {
    (SALES_PIPELINE, PipelineKind.SALES): """
        Qualification  |  10 | OPEN | PIPELINE
        Needs Analysis |  20 | OPEN | PIPELINE
        Proposal       |  40 | OPEN | BEST_CASE
        Negotiation    |  60 | OPEN | BEST_CASE
        Commit         |  80 | OPEN | COMMIT
        Closed Won     | 100 | WON  | CLOSED
        Closed Lost    |   0 | LOST | OMITTED
    """,
    (PARTNER_PIPELINE, PipelineKind.SALES): """
        Registered     |  20 | OPEN | PIPELINE
        Qualified      |  50 | OPEN | BEST_CASE
        Closed Won     | 100 | WON  | CLOSED
        Closed Lost    |   0 | LOST | OMITTED
    """,
    (LEAD_PIPELINE, PipelineKind.MARKETING): """
        New            |   5 | OPEN | PIPELINE
        Contacted      |  10 | OPEN | PIPELINE
        Engaged        |  25 | OPEN | PIPELINE
        Qualified      |  50 | OPEN | PIPELINE
        Disqualified   |   0 | LOST | OMITTED
    """,
}

# Where opportunities end up: open, won, lost.
_OUTCOME_WEIGHTS = {PhaseOutcome.OPEN: 60, PhaseOutcome.WON: 25, PhaseOutcome.LOST: 15}
# Per pipeline, over its open phases: where open deals stand (a funnel, fuller at the
# top), and where lost deals were lost.
_OPEN_PHASE_WEIGHTS = {SALES_PIPELINE: (30, 25, 20, 15, 10), PARTNER_PIPELINE: (60, 40)}
_LOST_FROM_WEIGHTS = {SALES_PIPELINE: (25, 25, 25, 15, 10), PARTNER_PIPELINE: (55, 45)}
_LOST_REASONS = ("Price", "Competitor", "No budget", "Timing", "No decision")
_LOST_REASON_WEIGHTS = (25, 25, 20, 15, 15)
# Deals per account type: customers buy most; competitors are never sold to.
_DEAL_ACCOUNT_WEIGHTS = {
    AccountType.CUSTOMER: 6,
    AccountType.PROSPECT: 3,
    AccountType.PARTNER: 1,
    AccountType.COMPETITOR: 0,
    AccountType.OTHER: 1,
}
# Offering area weights per pipeline: partners resell software and hardware.
_DEAL_AREA_WEIGHTS = {
    SALES_PIPELINE: {"SW": 35, "SVC": 25, "HW": 10, "SUP": 15, "TRN": 15},
    PARTNER_PIPELINE: {"SW": 50, "HW": 30, "SUP": 20},
}
# Median deal size per offering area in EUR; sizes spread log-normally around it.
_DEAL_MEDIANS = {"SW": 30_000, "SVC": 40_000, "HW": 12_000, "SUP": 18_000, "TRN": 6_000}
_DEAL_MIN, _DEAL_MAX = 2_000, 250_000
# What a deal for a product is called, by the product's unit.
_DEAL_SUFFIXES = {
    "license": ("", "expansion", "renewal", "upgrade"),
    "month": ("", "renewal", "contract"),
    "hour": ("", "project", "roll-out"),
    "day": ("", "project", "programme"),
    "piece": ("", "roll-out", "refresh"),
}

_LEAD_SOURCES = ("Web form", "Trade show", "Webinar", "Referral", "Cold call", "LinkedIn")
_LEAD_SOURCE_WEIGHTS = (30, 15, 15, 10, 15, 15)
# Unconverted leads over the funnel phases, in position order; converted leads are all
# in "Qualified".
_LEAD_PHASE_WEIGHTS = (25, 25, 20, 10, 20)

# The organisation's time zone when none is given: Settings.org_timezone's default.
DEFAULT_TIMEZONE = "Europe/Helsinki"
# A year of activities, the last week the one that holds the base date; targets also
# for the weeks after it, so a live demo has targets to attain.
ACTIVITY_WEEKS = 52
TARGET_WEEKS_AHEAD = 8

# code | name | points. Migration 0003 brings the first three; the demo adds demos.
_ACTIVITY_TYPE_TABLE = """
    CALL    | Call         | 1
    MEETING | Meeting      | 3
    TASK    | Task         | 1
    DEMO    | Product demo | 5
"""
# How a rep's week splits over the types: inside sellers phone, field sellers visit.
# Field sellers also have a weekly meeting target, and fewer activities in all.
_TYPE_MIX = {
    "inside": {"CALL": 60, "TASK": 25, "MEETING": 12, "DEMO": 3},
    "field": {"CALL": 42, "TASK": 25, "MEETING": 27, "DEMO": 6},
}
_COUNT_TARGETS = {"inside": (20, 30), "field": (15, 22)}
# A rep's steady share of target, lowest to highest over the reps; each week adds noise.
_LEVEL_RANGE = (0.6, 1.3)
_WEEKDAY_WEIGHTS = (22, 22, 21, 20, 15)  # Monday to Friday: Fridays are quieter
# What an activity is about, per type: an open deal (with its account and mostly a
# contact), a contact of an account, an account alone, or nothing in the CRM.
_LINK_WEIGHTS = {
    "CALL": (35, 40, 10, 15),
    "MEETING": (55, 35, 10, 0),
    "TASK": (30, 15, 25, 30),
    "DEMO": (80, 20, 0, 0),
}
_SUBJECTS = {
    "CALL": {
        "deal": ("Follow-up call: {deal}", "Pricing call: {deal}", "Next steps: {deal}"),
        "contact": ("Call {contact}, {account}", "Check-in call with {contact}"),
        "account": ("Call {account} about renewal", "Check-in call: {account}"),
        "none": ("Prospecting calls", "Call back web enquiry", "Referral call"),
    },
    "MEETING": {
        "deal": (
            "Discovery meeting: {deal}",
            "Proposal review: {deal}",
            "Negotiation meeting: {deal}",
        ),
        "contact": ("Meeting with {contact}, {account}", "Quarterly review with {contact}"),
        "account": ("Account review: {account}", "Site visit: {account}"),
        "none": ("Networking breakfast",),
    },
    "TASK": {
        "deal": ("Send proposal: {deal}", "Prepare quote: {deal}", "Update deal notes: {deal}"),
        "contact": ("Email {contact} the meeting notes", "Send {contact} references"),
        "account": ("Update account plan: {account}", "Check invoices of {account}"),
        "none": ("Update forecast", "Clean up pipeline", "Prepare weekly report"),
    },
    "DEMO": {
        "deal": ("Product demo: {deal}",),
        "contact": ("Product demo for {contact}, {account}",),
        "account": ("Product demo at {account}",),
        "none": ("Product demo webinar",),
    },
}
_CANCELLED_TYPE_WEIGHTS = {"MEETING": 45, "CALL": 35, "DEMO": 10, "TASK": 10}
_CANCEL_REASONS = (
    "Customer asked to reschedule.",
    "Contact on sick leave.",
    "Covered in another meeting.",
    "Deal on hold.",
    None,  # cancelled without a word
)


# Pricing and billing. Everything is in EUR, as the catalogue and the deals are.
CURRENCY = "EUR"
STANDARD_BOOK = "Standard EUR"
AGREEMENT_ACCOUNT_COUNT = ACCOUNT_COUNT // 3
AGREEMENT_PARTNER_COUNT = 6  # of AGREEMENT_ACCOUNT_COUNT, resellers on the partner book
# Two years of invoices, in the 24 months before the base date's month.
BILLING_START = date(BASE_DATE.year - 2, BASE_DATE.month, 1)
BILLING_END = BASE_DATE.date() - timedelta(days=1)
# The CRM came with the accounts; older agreements were entered from the contracts, and
# older invoices imported from the ERP.
_ERP_NUMBER_BASE = 5_000_000

# Tier minimum quantities per product unit: an entry's tier level is a place in its list.
_TIER_QUANTITIES = {
    "license": (1, 10, 50, 200),
    "piece": (1, 10, 25, 100),
    "hour": (1, 40, 160, 400),
    "day": (1, 5, 20, 50),
    "month": (1, 3, 12, 24),
}
# The standard book prices a product at its list price, or a little under; some licenses
# and hardware also have volume tiers at levels 1 and 2, this many percent off.
_STANDARD_UNDER_LIST = (2, 3, 5)
_STANDARD_TIERS = {"license": (4, 8), "piece": (3, 6)}

# Customer books: name | valid from | valid to | active | offering areas priced |
# percent off the standard price per tier level, "-" for no entry at that level. The
# legacy book prices retired products too, off their list price; its agreements all ended
# before the first invoice here. Partner Resale is for partner accounts only.
_CUSTOMER_BOOK_TABLE = """
    Legacy On-Premise 2022  | 2022-01-01 | 2024-10-31 | no  | SW HW SUP         |  8
    Enterprise 2024-2025    | 2024-01-01 | 2025-12-31 | yes | SW SUP SVC        | 10 14 18 22
    Enterprise 2026         | 2026-01-01 |            | yes | SW SUP SVC TRN    | 12 16 20 24
    Mid-Market              |            |            | yes | SW SUP TRN        |  5  8 12
    Public Sector Framework | 2024-03-01 | 2028-02-29 | yes | SW SVC HW SUP TRN |  9 11 13 15
    Partner Resale          |            |            | yes | SW HW             | 20 25 30 35
    Volume Hardware         |            |            | yes | HW                |  -  6 10 15
    Services Framework      | 2024-06-01 |            | yes | SVC TRN           |  7 10 14
    Growth Programme        | 2025-01-01 |            | yes | SW TRN            | 15 17 20
"""
LEGACY_BOOK = "Legacy On-Premise 2022"
PARTNER_BOOK = "Partner Resale"
# How often customers sign each current book; a renewal of an expired book goes to its
# successor.
_BOOK_WEIGHTS = {
    "Enterprise 2024-2025": 3,
    "Enterprise 2026": 3,
    "Mid-Market": 4,
    "Public Sector Framework": 2,
    "Volume Hardware": 1,
    "Services Framework": 2,
    "Growth Programme": 2,
}
_SUCCESSORS = {"Enterprise 2024-2025": "Enterprise 2026"}
# After an agreement ends: renewed the next day, renewed after a gap, or none since.
_AFTER_AGREEMENT = ("renew", "gap", "stop")
_AFTER_AGREEMENT_WEIGHTS = (65, 20, 15)

# Subscriptions, billed monthly to accounts with agreements, quarterly to the others
# that won a software or support deal.
_LICENSES = ("SW-CRM-STD", "SW-CRM-PRO", "SW-CRM-ENT")
_LICENSE_WEIGHTS = (40, 40, 20)
_ADD_ONS = (("SW-ANL", 0.45), ("SW-MKT", 0.25), ("SW-API", 0.15))  # with their chance
_SUPPORT = (None, "SUP-STD", "SUP-PRM", "SUP-TAM")
_SUPPORT_WEIGHTS = (20, 50, 25, 5)
_PROJECT_AREAS = ("SVC", "HW", "TRN")  # won deals there are invoiced once, as projects
# Order quantities per unit: (fewest, most).
_ORDER_QUANTITIES = {
    "license": (5, 400),
    "piece": (1, 150),
    "hour": (4, 400),
    "day": (1, 40),
    "month": (1, 12),
}
_LINE_DISCOUNTS = (Decimal(5), Decimal("7.5"), Decimal(10), Decimal("12.5"), Decimal(15))
_EXPENSES = (
    "Travel and accommodation",
    "Travel expenses",
    "Workshop venue and catering",
)
_CANCELLED_NOTES = (
    "Cancelled: billed to the wrong company.",
    "Cancelled: quantities corrected on a new invoice.",
    "Cancelled: sent twice.",
)


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(sep) if word.strip())


@dataclass(frozen=True)
class _Country:
    name: str
    code: str  # ISO 3166-1 alpha-2: also the business id prefix
    team: str
    legal_form: str
    dialing_code: str
    weight: int
    # "city:postal code pattern", comma-separated; in a pattern '#' is a random digit and
    # '?' a random capital letter.
    city_list: str
    street_list: str

    @property
    def cities(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (city, pattern)
            for city, _, pattern in (entry.partition(":") for entry in _words(self.city_list, ","))
        )

    @property
    def streets(self) -> tuple[str, ...]:
        return _words(self.street_list, ",")


_COUNTRIES = (
    _Country(
        "Finland", "FI", "Nordics", "Oy", "358", 14,
        "Helsinki:001#0, Espoo:021#0, Tampere:331#0, Turku:201#0, Oulu:901#0",
        "Mannerheimintie, Hämeenkatu, Aleksanterinkatu, Keilaranta, Yliopistonkatu",
    ),
    _Country(
        "Sweden", "SE", "Nordics", "AB", "46", 12,
        "Stockholm:11# ##, Gothenburg:41# ##, Malmö:21# ##, Uppsala:75# ##",
        "Drottninggatan, Kungsgatan, Sveavägen, Storgatan, Vasagatan",
    ),
    _Country(
        "Norway", "NO", "Nordics", "AS", "47", 8,
        "Oslo:01##, Bergen:50##, Trondheim:70##, Stavanger:40##",
        "Karl Johans gate, Storgata, Kongens gate, Strandgaten",
    ),
    _Country(
        "Denmark", "DK", "Nordics", "A/S", "45", 8,
        "Copenhagen:1###, Aarhus:80##, Odense:50##, Aalborg:90##",
        "Vesterbrogade, Strøget, Nørregade, Havnegade",
    ),
    _Country(
        "Germany", "DE", "DACH", "GmbH", "49", 20,
        "Berlin:10###, Munich:80###, Hamburg:20###, Frankfurt am Main:60###, Cologne:50###,"
        " Stuttgart:70###",
        "Hauptstraße, Bahnhofstraße, Friedrichstraße, Industriestraße, Lindenallee",
    ),
    _Country(
        "Austria", "AT", "DACH", "GmbH", "43", 7,
        "Vienna:10#0, Graz:80#0, Linz:40#0, Salzburg:50#0",
        "Mariahilfer Straße, Ringstraße, Landstraße, Herrengasse",
    ),
    _Country(
        "Switzerland", "CH", "DACH", "AG", "41", 8,
        "Zurich:80##, Geneva:12##, Basel:40##, Bern:30##",
        "Bahnhofstrasse, Seestrasse, Rue du Rhône, Marktgasse",
    ),
    _Country(
        "Netherlands", "NL", "Benelux", "B.V.", "31", 13,
        "Amsterdam:10## ??, Rotterdam:30## ??, Utrecht:35## ??, Eindhoven:56## ??,"
        " The Hague:25## ??",
        "Keizersgracht, Herengracht, Stationsplein, Coolsingel, Kerkstraat",
    ),
    _Country(
        "Belgium", "BE", "Benelux", "NV", "32", 8,
        "Brussels:10#0, Antwerp:20#0, Ghent:90#0, Leuven:30#0",
        "Meir, Louizalaan, Veldstraat, Rue Neuve",
    ),
    _Country(
        "Luxembourg", "LU", "Benelux", "S.A.", "352", 2,
        "Luxembourg:L-1###, Esch-sur-Alzette:L-4###",
        "Boulevard Royal, Avenue de la Gare, Grand-Rue",
    ),
)  # fmt: skip

_NAME_PREFIXES = _words(
    "Nordic Baltic Alpine Arctic Polar Boreal Aurora Fjord Rhine Danube Delta Harbor Summit"
    " Granite Silver Blue Evergreen Northstar Meridian Vantage Pinnacle Crescent Horizon"
    " Linden Birch Oak Falcon Lynx Orion Nova Atlas Apex Helix Vertex Keystone Bright"
    " Clearwater Riverside Lakeside Westwind"
)
# (name word, industry): the industry follows from what the company is called.
_NAME_CORES = tuple(
    (word, industry)
    for industry, words in {
        "Manufacturing": "Steel Machinery Robotics Packaging Engineering",
        "Logistics": "Logistics Freight Transport",
        "Food & Beverage": "Foods Dairy Brewing",
        "Energy": "Energy Power Solar",
        "Healthcare": "Pharma Medical Health",
        "Software": "Software Systems Analytics",
        "Retail": "Retail Outfitters",
        "Financial Services": "Capital Insurance",
        "Construction": "Construction Builders",
        "Telecommunications": "Telecom",
        "Media": "Media",
        "Professional Services": "Consulting Advisory",
        "Chemicals": "Chemicals",
        "Maritime": "Marine",
    }.items()
    for word in _words(words)
)

_ACCOUNT_TYPES = (
    AccountType.CUSTOMER,
    AccountType.PROSPECT,
    AccountType.PARTNER,
    AccountType.COMPETITOR,
    AccountType.OTHER,
)
_ACCOUNT_TYPE_WEIGHTS = (55, 35, 5, 3, 2)

# First and last names per team region, for the contacts of that region's accounts.
_FIRST_NAMES = {
    "Nordics": _words(
        "Aino, Juha, Sanna, Timo, Laura, Anders, Karin, Erik, Sofia, Nils, Maja, Henrik, Kari,"
        " Silje, Ole, Mette, Jesper, Freja, Ville, Elina",
        ",",
    ),
    "DACH": _words(
        "Lukas, Anna, Felix, Julia, Maximilian, Lea, Tobias, Sarah, Stefan, Katharina, Matthias,"
        " Hannah, Florian, Sabine, Andreas, Claudia, Michael, Nina, Thomas, Johanna",
        ",",
    ),
    "Benelux": _words(
        "Bram, Eva, Thijs, Fleur, Ruben, Anouk, Jeroen, Sophie, Pieter, Marieke, Wouter, Lieke,"
        " Kevin, Elise, Tom, Charlotte, Luc, Camille, Sander, Femke",
        ",",
    ),
}
_LAST_NAMES = {
    "Nordics": _words(
        "Korhonen, Mäkinen, Lehtonen, Heikkinen, Järvinen, Andersson, Karlsson, Nilsson,"
        " Eriksson, Lindberg, Larsen, Olsen, Nielsen, Pedersen, Sørensen, Berg, Lund, Dahl,"
        " Halvorsen, Strand",
        ",",
    ),
    "DACH": _words(
        "Müller, Schmidt, Schneider, Fischer, Meyer, Wagner, Schulz, Hoffmann, Bauer, Gruber,"
        " Huber, Steiner, Keller, Brunner, Frei, Wolf, Zimmermann, Krüger, Hofer, Graf",
        ",",
    ),
    "Benelux": _words(
        "de Jong, Jansen, de Vries, van den Berg, Bakker, Visser, Smit, Meijer, Mulder, Peeters,"
        " Maes, Jacobs, Willems, Claes, Goossens, Wouters, Dubois, Lambert, Schmit, van Dijk",
        ",",
    ),
}
_TITLES = _words(
    "Chief Executive Officer, Chief Financial Officer, Chief Information Officer,"
    " Head of Sales, Head of Procurement, Purchasing Manager, IT Manager, Operations Manager,"
    " Marketing Manager, Sales Director, Project Manager, Office Manager, Finance Controller,"
    " Business Analyst, Customer Service Manager",
    ",",
)

# Letters that Unicode decomposition does not turn into ASCII.
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss"})


def _ascii_slug(value: str) -> str:
    """Lower-case ASCII letters and digits only: 'van den Berg' -> 'vandenberg'."""
    folded = unicodedata.normalize("NFKD", value.translate(_FOLD))
    return re.sub(r"[^a-z0-9]", "", folded.encode("ascii", "ignore").decode().lower())


def _user_email(name: str) -> str:
    first, _, last = name.partition(" ")
    return f"{_ascii_slug(first)}.{_ascii_slug(last)}@{EMAIL_DOMAIN}"


def _first_of_each_role() -> dict[Role, str]:
    emails: dict[Role, str] = {}
    for name, role, _team in _USERS:
        emails.setdefault(role, _user_email(name))
    return emails


DEMO_EMAILS: dict[Role, str] = _first_of_each_role()


@dataclass
class DemoRows:
    """Rows per table, as dictionaries keyed by attribute name, ids assigned."""

    partner_orgs: list[dict[str, Any]] = field(default_factory=list)
    teams: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    # (team id, manager id, when assigned): set once both rows exist.
    team_managers: list[tuple[int, int, datetime]] = field(default_factory=list)
    offering_areas: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    account_shares: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    opportunities: list[dict[str, Any]] = field(default_factory=list)
    phase_changes: list[dict[str, Any]] = field(default_factory=list)
    leads: list[dict[str, Any]] = field(default_factory=list)
    # Activity types carry the demo's own ids, and so do the activities' and targets'
    # references to them: the database may already hold the standard types under other
    # ids, so seed_demo maps them by code on insert.
    activity_types: list[dict[str, Any]] = field(default_factory=list)
    activity_targets: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    price_books: list[dict[str, Any]] = field(default_factory=list)
    price_book_entries: list[dict[str, Any]] = field(default_factory=list)
    account_price_books: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    invoice_lines: list[dict[str, Any]] = field(default_factory=list)
    budgets: list[dict[str, Any]] = field(default_factory=list)
    forecasts: list[dict[str, Any]] = field(default_factory=list)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    campaign_members: list[dict[str, Any]] = field(default_factory=list)
    # The campaign that brought an opportunity or a lead, by its id. Campaigns came after
    # the opportunities and leads were generated, whose rows stay as they were: seed_demo
    # writes these into them as it inserts them.
    opportunity_sources: dict[int, int] = field(default_factory=dict)
    lead_campaigns: dict[int, int] = field(default_factory=dict)
    target_groups: list[dict[str, Any]] = field(default_factory=list)
    target_group_entries: list[dict[str, Any]] = field(default_factory=list)


def _moment(rng: random.Random, after: datetime, before: datetime) -> datetime:
    """A whole second between two instants."""
    span = max(int((before - after).total_seconds()), 0)
    return after + timedelta(seconds=rng.randint(0, span))


def _fill(rng: random.Random, pattern: str) -> str:
    """A postal code from its pattern: '#' a random digit, '?' a random capital letter."""
    chars = []
    for char in pattern:
        if char == "#":
            char = str(rng.randint(0, 9))
        elif char == "?":
            char = rng.choice("ABCDEFGHJKLMNPRSTVWXZ")
        chars.append(char)
    return "".join(chars)


def _stamps(rng: random.Random, created: datetime) -> dict[str, Any]:
    return {"created_at": created, "updated_at": _moment(rng, created, BASE_DATE), "version": 1}


def _split_contacts(rng: random.Random) -> list[int]:
    """Contacts per account: between 1 and 6 each, exactly CONTACT_COUNT in all."""
    counts = [CONTACT_COUNT // ACCOUNT_COUNT] * ACCOUNT_COUNT
    for _ in range(2 * ACCOUNT_COUNT):
        gain, lose = rng.sample(range(ACCOUNT_COUNT), 2)
        if counts[gain] < 6 and counts[lose] > 1:
            counts[gain] += 1
            counts[lose] -= 1
    return counts


def _build_people(rng: random.Random, rows: DemoRows) -> dict[str, list[int]]:
    """Partner org, teams and users; returns the user ids that sell, per team."""
    setup_end = HISTORY_START + timedelta(days=21)
    partner_since = HISTORY_START + timedelta(days=90)
    rows.partner_orgs.append(
        {
            "id": 1,
            "name": PARTNER_ORG_NAME,
            "active": True,
            "created_at": partner_since,
            "updated_at": partner_since,
            "version": 1,
        }
    )
    team_ids = {name: index for index, name in enumerate(TEAM_NAMES, start=1)}
    sellers: dict[str, list[int]] = {name: [] for name in TEAM_NAMES}
    for user_id, (name, role, team) in enumerate(_USERS, start=1):
        if role is Role.PARTNER:
            created = _moment(rng, partner_since, partner_since + timedelta(days=14))
        else:
            created = _moment(rng, HISTORY_START, setup_end)
        rows.users.append(
            {
                "id": user_id,
                "email": _user_email(name),
                "name": name,
                "role": role,
                "team_id": team_ids[team] if team else None,
                "partner_org_id": 1 if role is Role.PARTNER else None,
                "active": True,
                **_stamps(rng, created),
            }
        )
        if team is not None:
            sellers[team].append(user_id)
            if role is Role.MANAGER:
                rows.team_managers.append((team_ids[team], user_id, created))
    for name, team_id in team_ids.items():
        assigned = next(when for tid, _, when in rows.team_managers if tid == team_id)
        rows.teams.append(
            {
                "id": team_id,
                "name": name,
                "manager_id": None,
                "created_at": HISTORY_START,
                "updated_at": assigned,
                "version": 1,
            }
        )
    return sellers


def _build_catalogue(rng: random.Random, rows: DemoRows) -> None:
    area_ids = {code: index for index, (code, _) in enumerate(_OFFERING_AREAS, start=1)}
    for code, name in _OFFERING_AREAS:
        created = _moment(rng, HISTORY_START, HISTORY_START + timedelta(days=7))
        rows.offering_areas.append(
            {
                "id": area_ids[code],
                "code": code,
                "name": name,
                "active": True,
                **_stamps(rng, created),
            }
        )
    products = [
        (area, _words(line, "|"))
        for area, table in _PRODUCT_TABLE.items()
        for line in table.strip().splitlines()
    ]
    for product_id, (area, (code, name, unit, price, description)) in enumerate(products, start=1):
        created = _moment(rng, HISTORY_START, HISTORY_START + timedelta(days=30))
        rows.products.append(
            {
                "id": product_id,
                "code": code,
                "name": name,
                "description": f"{description}.",
                "offering_area_id": area_ids[area],
                "unit": unit,
                "list_price": Decimal(price),
                "currency": "EUR",
                "active": code not in _RETIRED_PRODUCTS,
                **_stamps(rng, created),
            }
        )


def _build_accounts(
    rng: random.Random, rows: DemoRows, sellers: dict[str, list[int]]
) -> list[tuple[_Country, str]]:
    """Accounts, oldest first; returns each account's country and website domain."""
    first = HISTORY_START + timedelta(days=30)
    created_ats = sorted(
        _moment(rng, first, BASE_DATE - timedelta(days=3)) for _ in range(ACCOUNT_COUNT)
    )
    weights = [country.weight for country in _COUNTRIES]
    base_names: set[str] = set()
    business_ids: set[str] = set()
    details: list[tuple[_Country, str]] = []
    for account_id, created in enumerate(created_ats, start=1):
        country = rng.choices(_COUNTRIES, weights)[0]
        while True:
            prefix = rng.choice(_NAME_PREFIXES)
            core, industry = rng.choice(_NAME_CORES)
            if f"{prefix} {core}" not in base_names:
                break
        base_names.add(f"{prefix} {core}")
        while True:
            business_id = f"{country.code}{rng.randint(10_000_000, 99_999_999)}"
            if business_id not in business_ids:
                break
        business_ids.add(business_id)
        domain = f"{_ascii_slug(prefix + core)}.example"
        city, postal_pattern = rng.choice(country.cities)
        team_sellers = sellers[country.team]
        # The manager is listed first and owns a third as many accounts as each rep.
        owner = rng.choices(team_sellers, [1] + [3] * (len(team_sellers) - 1))[0]
        rows.accounts.append(
            {
                "id": account_id,
                "name": f"{prefix} {core} {country.legal_form}",
                "business_id": business_id,
                "industry": industry,
                "type": rng.choices(_ACCOUNT_TYPES, _ACCOUNT_TYPE_WEIGHTS)[0],
                "owner_id": owner,
                "parent_id": None,
                "website": f"https://www.{domain}",
                "phone": f"+{country.dialing_code} {rng.randint(1, 9)} "
                f"{rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                "street": f"{rng.choice(country.streets)} {rng.randint(1, 120)}",
                "postal_code": _fill(rng, postal_pattern),
                "city": city,
                "country": country.name,
                "archived": False,
                "archived_at": None,
                **_stamps(rng, created),
            }
        )
        details.append((country, domain))

    # Subsidiaries: a parent is older (lower id) and is not a subsidiary itself, so the
    # hierarchy is one level deep and has no cycles.
    children = sorted(
        rng.sample(range(ACCOUNT_COUNT // 10 + 1, ACCOUNT_COUNT + 1), CHILD_ACCOUNT_COUNT)
    )
    child_set = set(children)
    parents: set[int] = set()
    for child in children:
        parent = rng.choice([a for a in range(1, child) if a not in child_set])
        rows.accounts[child - 1]["parent_id"] = parent
        parents.add(parent)

    # Archive only stand-alone accounts: the demo hierarchy stays fully visible.
    standalone = [a for a in range(1, ACCOUNT_COUNT + 1) if a not in child_set | parents]
    for account_id in sorted(rng.sample(standalone, ARCHIVED_ACCOUNT_COUNT)):
        account = rows.accounts[account_id - 1]
        archived_at = _moment(rng, account["created_at"] + timedelta(days=30), BASE_DATE)
        account.update(archived=True, archived_at=archived_at, updated_at=archived_at)
    return details


def _build_contacts(
    rng: random.Random,
    rows: DemoRows,
    sellers: dict[str, list[int]],
    details: Sequence[tuple[_Country, str]],
) -> None:
    contact_id = 0
    for account, count, (country, domain) in zip(
        rows.accounts, _split_contacts(rng), details, strict=True
    ):
        first_names = _FIRST_NAMES[country.team]
        last_names = _LAST_NAMES[country.team]
        emails: set[str] = set()
        for _ in range(count):
            while True:
                first_name, last_name = rng.choice(first_names), rng.choice(last_names)
                email = f"{_ascii_slug(first_name)}.{_ascii_slug(last_name)}@{domain}"
                if email not in emails:
                    break
            emails.add(email)
            owner = account["owner_id"]
            if rng.random() >= 0.85:
                owner = rng.choice(sellers[country.team])
            contact_id += 1
            rows.contacts.append(
                {
                    "id": contact_id,
                    "account_id": account["id"],
                    "first_name": first_name,
                    "last_name": last_name,
                    "email": email,
                    "phone": f"+{country.dialing_code} {rng.randint(40, 50)} "
                    f"{rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                    "title": rng.choice(_TITLES),
                    "owner_id": owner,
                    "email_consent": rng.random() < 0.7,
                    "phone_consent": rng.random() < 0.5,
                    **_stamps(rng, _moment(rng, account["created_at"], BASE_DATE)),
                }
            )


def _build_shares(rng: random.Random, rows: DemoRows) -> None:
    partner_since = rows.partner_orgs[0]["created_at"]
    active = [account["id"] for account in rows.accounts if not account["archived"]]
    for share_id, account_id in enumerate(
        sorted(rng.sample(active, SHARED_ACCOUNT_COUNT)), start=1
    ):
        shared_after = max(rows.accounts[account_id - 1]["created_at"], partner_since)
        created = _moment(rng, shared_after, BASE_DATE)
        rows.account_shares.append(
            {
                "id": share_id,
                "account_id": account_id,
                "partner_org_id": 1,
                "created_at": created,
                "updated_at": created,
            }
        )


@dataclass(frozen=True)
class _Funnel:
    """A pipeline and its phase rows, as the generators below walk them."""

    pipeline: dict[str, Any]
    open: tuple[dict[str, Any], ...]  # in position order
    won: dict[str, Any] | None
    lost: dict[str, Any]


def _build_pipelines(rng: random.Random, rows: DemoRows) -> dict[str, _Funnel]:
    partner_since = rows.partner_orgs[0]["created_at"]
    funnels: dict[str, _Funnel] = {}
    for pipeline_id, ((name, kind), table) in enumerate(_PIPELINE_TABLE.items(), start=1):
        # Partner deals began with the partner programme; the rest is initial set-up.
        if name == PARTNER_PIPELINE:
            created = partner_since
        else:
            created = _moment(rng, HISTORY_START, HISTORY_START + timedelta(days=7))
        stamps = {"created_at": created, "updated_at": created, "version": 1}
        pipeline = {"id": pipeline_id, "name": name, "kind": kind, "active": True, **stamps}
        rows.pipelines.append(pipeline)
        phases = []
        for position, line in enumerate(table.strip().splitlines(), start=1):
            phase_name, probability, outcome, category = _words(line, "|")
            phase = {
                "id": len(rows.phases) + 1,
                "pipeline_id": pipeline_id,
                "name": phase_name,
                "position": position,
                "probability": int(probability),
                "outcome": PhaseOutcome[outcome],
                "forecast_category": ForecastCategory[category],
                **stamps,
            }
            rows.phases.append(phase)
            phases.append(phase)
        funnels[name] = _Funnel(
            pipeline=pipeline,
            open=tuple(phase for phase in phases if phase["outcome"] is PhaseOutcome.OPEN),
            won=next((phase for phase in phases if phase["outcome"] is PhaseOutcome.WON), None),
            lost=next(phase for phase in phases if phase["outcome"] is PhaseOutcome.LOST),
        )
    return funnels


_CENT = Decimal("0.01")
_TEN = Decimal("1E1")
# En dash between account and offering, as sales people write deal names.
_DASH = "\u2013"


def _rounded_deal_amount(value: Decimal) -> Decimal:
    """Deals are quoted to ten euros, within the demo's range, with two decimals."""
    return min(max(value.quantize(_TEN), Decimal(_DEAL_MIN)), Decimal(_DEAL_MAX)).quantize(_CENT)


def _deal_amount(rng: random.Random, median: int) -> Decimal:
    """Log-normal around the area's median: many mid-sized deals, a few large ones."""
    permille = int(1000 * rng.lognormvariate(0, 0.8))
    return _rounded_deal_amount(Decimal(median * permille) / 1000)


def _seconds(days: float) -> timedelta:
    return timedelta(seconds=int(days * 86_400))


def _moments_between(
    rng: random.Random, start: datetime, end: datetime, count: int
) -> list[datetime]:
    """count distinct whole seconds strictly between start and end, in order."""
    span = max(int((end - start).total_seconds()), count + 1)
    return [start + timedelta(seconds=s) for s in sorted(rng.sample(range(1, span), count))]


def _phase_path(
    rng: random.Random, funnel: _Funnel, pipeline: str, outcome: PhaseOutcome
) -> list[dict[str, Any]]:
    """The phases an opportunity entered, from its creation in the first one: forward
    through the open phases to where it stands, now and then skipping a phase or
    stepping back one, then into the closing phase if it is closed."""
    last_open = len(funnel.open) - 1
    if outcome is PhaseOutcome.OPEN:
        target = rng.choices(range(last_open + 1), _OPEN_PHASE_WEIGHTS[pipeline])[0]
    elif outcome is PhaseOutcome.WON:
        # Most wins pass the last open phase; some close from the one before it.
        target = last_open if rng.random() < 0.85 else last_open - 1
    else:
        target = rng.choices(range(last_open + 1), _LOST_FROM_WEIGHTS[pipeline])[0]
    steps, index, stepped_back = [0], 0, False
    while index < target:
        roll = rng.random()
        if roll < 0.06 and index > 0 and not stepped_back:
            index, stepped_back = index - 1, True
        elif roll < 0.18 and index + 2 <= target:
            index += 2
        else:
            index += 1
        steps.append(index)
    path = [funnel.open[step] for step in steps]
    if outcome is PhaseOutcome.WON and funnel.won is not None:
        path.append(funnel.won)
    elif outcome is PhaseOutcome.LOST:
        path.append(funnel.lost)
    return path


@dataclass(frozen=True)
class _Buyers:
    """The accounts a pipeline's deals go to, in order of creation, and their weights."""

    accounts: list[dict[str, Any]]
    since: list[datetime]  # from when each can have deals in the pipeline
    # Running sums of the weights: by account type, and by type times the days the
    # account could buy before the base date.
    cumulative: list[int]
    cumulative_lifetime: list[int]

    @classmethod
    def of(cls, accounts: list[dict[str, Any]], opened: datetime) -> _Buyers:
        since = [max(account["created_at"], opened) + timedelta(days=1) for account in accounts]
        weights = [_DEAL_ACCOUNT_WEIGHTS[account["type"]] for account in accounts]
        lifetime = [w * (BASE_DATE - s).days for w, s in zip(weights, since, strict=True)]
        return cls(
            accounts,
            since,
            list(itertools.accumulate(weights)),
            list(itertools.accumulate(lifetime)),
        )

    @property
    def first_deal(self) -> datetime:
        return next(s for s, total in zip(self.since, self.cumulative, strict=True) if total)

    def existing_at(self, rng: random.Random, moment: datetime) -> dict[str, Any]:
        # Since is ascending, so the accounts able to buy at a moment are a prefix.
        known = bisect.bisect_right(self.since, moment)
        return rng.choices(self.accounts[:known], cum_weights=self.cumulative[:known])[0]

    def over_history(self, rng: random.Random) -> tuple[dict[str, Any], datetime]:
        """An account, likelier the longer it could buy; and since when it could."""
        index = rng.choices(range(len(self.accounts)), cum_weights=self.cumulative_lifetime)[0]
        return self.accounts[index], self.since[index]


def _deal_account_and_moments(
    rng: random.Random, buyers: _Buyers, outcome: PhaseOutcome, changes: int
) -> tuple[dict[str, Any], list[datetime]]:
    """An opportunity's account, its creation and its entry into each later phase."""
    if outcome is PhaseOutcome.OPEN:
        # Open deals are mostly recent; a fifth have been around for a while. Their
        # last move lies anywhere up to the base date.
        age = rng.uniform(2, 240) if rng.random() < 0.8 else rng.uniform(240, 450)
        created = max(buyers.first_deal, BASE_DATE - _seconds(age))
        account = buyers.existing_at(rng, created)
        later = _moments_between(rng, created, BASE_DATE + timedelta(seconds=1), changes)
        return account, [created, *later]
    # Closed deals spread over each account's life, so the deal flow grows with the
    # customer base without piling onto the oldest accounts. Wins take about two
    # months, losses come sooner; the last move closes the deal.
    account, since = buyers.over_history(rng)
    median = 60 if outcome is PhaseOutcome.WON else 40
    cycle = _seconds(min(max(median * rng.lognormvariate(0, 0.6), 5), 300))
    created = _moment(rng, since, BASE_DATE - cycle)
    closed = min(created + cycle, BASE_DATE)
    return account, [created, *_moments_between(rng, created, closed, changes - 1), closed]


def _expected_close(rng: random.Random, progress: float, created: datetime) -> date:
    """Deals further along expect to close sooner; a few open ones are overdue."""
    latest = 270 - int(200 * progress)
    days = round(rng.triangular(-30, latest, latest * 0.4))
    return max(BASE_DATE.date() + timedelta(days=days), created.date() + timedelta(days=14))


def _short_names(rows: DemoRows, details: Sequence[tuple[_Country, str]]) -> dict[int, str]:
    """Account names without the legal form, as people say them: 'Nordic Steel'."""
    return {
        account["id"]: account["name"].removesuffix(f" {country.legal_form}")
        for account, (country, _) in zip(rows.accounts, details, strict=True)
    }


def _build_opportunities(
    rng: random.Random,
    rows: DemoRows,
    funnels: dict[str, _Funnel],
    details: Sequence[tuple[_Country, str]],
) -> None:
    team_of = {user["id"]: user["team_id"] for user in rows.users}
    managers = {team_id: manager_id for team_id, manager_id, _ in rows.team_managers}
    sellers: dict[int, list[int]] = {}
    for user in rows.users:
        if user["team_id"] is not None:
            sellers.setdefault(user["team_id"], []).append(user["id"])
    area_ids = {area["code"]: area["id"] for area in rows.offering_areas}
    products: dict[int, list[dict[str, Any]]] = {}
    for product in rows.products:
        if product["active"]:
            products.setdefault(product["offering_area_id"], []).append(product)
    short_names = _short_names(rows, details)
    active = [account for account in rows.accounts if not account["archived"]]
    shared = {share["account_id"] for share in rows.account_shares}
    plan = (
        (SALES_PIPELINE, active, OPPORTUNITY_COUNT - PARTNER_DEAL_COUNT),
        (PARTNER_PIPELINE, [a for a in active if a["id"] in shared], PARTNER_DEAL_COUNT),
    )
    names: set[tuple[int, str]] = set()
    deals: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for pipeline, accounts, count in plan:
        funnel = funnels[pipeline]
        buyers = _Buyers.of(accounts, funnel.pipeline["created_at"])
        areas = _DEAL_AREA_WEIGHTS[pipeline]
        for _ in range(count):
            outcome = rng.choices(tuple(_OUTCOME_WEIGHTS), tuple(_OUTCOME_WEIGHTS.values()))[0]
            path = _phase_path(rng, funnel, pipeline, outcome)
            account, moments = _deal_account_and_moments(rng, buyers, outcome, len(path) - 1)
            created = moments[0]
            owner = account["owner_id"]
            if rng.random() < 0.12:
                owner = rng.choice(sellers[team_of[owner]])
            manager = managers[team_of[owner]]
            area = rng.choices(tuple(areas), tuple(areas.values()))[0]
            product = rng.choice(products[area_ids[area]])

            amount = _deal_amount(rng, _DEAL_MEDIANS[area])
            changes = []
            previous: dict[str, Any] | None = None
            for phase, moment in zip(path, moments, strict=True):
                changed_by = owner
                if previous is not None:
                    # Scope and discounts move the figure as the deal progresses.
                    if rng.random() < 0.2:
                        amount = _rounded_deal_amount(amount * rng.randint(75, 125) / 100)
                    if rng.random() < 0.1:
                        changed_by = manager
                changes.append(
                    {
                        "from_phase_id": previous["id"] if previous is not None else None,
                        "to_phase_id": phase["id"],
                        "changed_by_id": changed_by,
                        "changed_at": moment,
                        "amount": amount,
                        "probability": phase["probability"],
                        "event_id": None,
                        "created_at": moment,
                        "updated_at": moment,
                    }
                )
                previous = phase

            suffix = rng.choice(_DEAL_SUFFIXES[product["unit"]])
            name = f"{short_names[account['id']]} {_DASH} {product['name']} {suffix}".rstrip()
            for candidate in (name, f"{name} {created.year}", f"{name} {created:%Y-%m}"):
                if (account["id"], candidate) not in names:
                    name = candidate
                    break
            names.add((account["id"], name))

            current, entered = path[-1], moments[-1]
            is_open = current["outcome"] is PhaseOutcome.OPEN
            if is_open:
                progress = funnel.open.index(current) / (len(funnel.open) - 1)
                expected_close = _expected_close(rng, progress, created)
            else:
                expected_close = entered.date()
            lost_reason = None
            if current["outcome"] is PhaseOutcome.LOST:
                lost_reason = rng.choices(_LOST_REASONS, _LOST_REASON_WEIGHTS)[0]
            opportunity = {
                "account_id": account["id"],
                "name": name,
                "amount": amount,
                "currency": "EUR",
                "pipeline_id": funnel.pipeline["id"],
                "phase_id": current["id"],
                "probability": current["probability"],
                "expected_close_date": expected_close,
                "owner_id": owner,
                "offering_area_id": area_ids[area],
                "source_campaign_id": None,
                "lost_reason": lost_reason,
                "phase_entered_at": entered,
                "closed_at": None if is_open else entered,
                "created_at": created,
                "updated_at": entered,
                "version": 1,
            }
            deals.append((opportunity, changes))

    # Ids in order of creation, as a live database would have handed them out.
    deals.sort(key=lambda deal: deal[0]["created_at"])
    for opportunity_id, (opportunity, changes) in enumerate(deals, start=1):
        rows.opportunities.append({"id": opportunity_id, **opportunity})
        for change in changes:
            change["opportunity_id"] = opportunity_id
            rows.phase_changes.append(change)
    rows.phase_changes.sort(key=lambda change: change["changed_at"])
    for change_id, change in enumerate(rows.phase_changes, start=1):
        change["id"] = change_id


def _build_leads(
    rng: random.Random,
    rows: DemoRows,
    funnels: dict[str, _Funnel],
    details: Sequence[tuple[_Country, str]],
) -> None:
    funnel = funnels[LEAD_PIPELINE]
    opened = funnel.pipeline["created_at"]
    qualified = next(phase for phase in funnel.open if phase["name"] == "Qualified")
    users = {user["id"]: user for user in rows.users}
    reps: dict[int, list[int]] = {}
    for user in rows.users:
        if user["role"] is Role.REP:
            reps.setdefault(user["team_id"], []).append(user["id"])
    accounts = {account["id"]: account for account in rows.accounts}
    contacts: dict[int, list[dict[str, Any]]] = {}
    for contact in rows.contacts:
        contacts.setdefault(contact["account_id"], []).append(contact)
    leads: list[dict[str, Any]] = []

    def lead_owner(record: dict[str, Any]) -> int:
        """The record's owner when a rep, else a rep of the owner's team."""
        owner = users[record["owner_id"]]
        return owner["id"] if owner["role"] is Role.REP else rng.choice(reps[owner["team_id"]])

    def converted_lead(
        account: dict[str, Any],
        contact: dict[str, Any],
        converted: datetime,
        opportunity: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        created = _moment(
            rng, max(opened, converted - timedelta(days=120)), converted - timedelta(days=2)
        )
        entered = _moment(rng, created, converted - timedelta(hours=1))
        return {
            "company": account["name"],
            "first_name": contact["first_name"],
            "last_name": contact["last_name"],
            "email": contact["email"],
            "phone": contact["phone"],
            "title": contact["title"],
            "source": rng.choices(_LEAD_SOURCES, _LEAD_SOURCE_WEIGHTS)[0],
            "campaign_id": None,
            # The rep who worked the lead went on to own the deal it opened.
            "owner_id": lead_owner(opportunity or account),
            "pipeline_id": funnel.pipeline["id"],
            "phase_id": qualified["id"],
            "phase_entered_at": entered,
            "converted_at": converted,
            "converted_account_id": account["id"],
            "converted_contact_id": contact["id"],
            "converted_opportunity_id": opportunity["id"] if opportunity else None,
            "created_at": created,
            "updated_at": converted,
            "version": 1,
        }

    # Half the converted leads opened a sales opportunity as they converted: the
    # conversion is that opportunity's creation, linked to a contact who existed then.
    sales_id = funnels[SALES_PIPELINE].pipeline["id"]
    earliest = opened + timedelta(days=3)
    candidates = [
        opportunity
        for opportunity in rows.opportunities
        if opportunity["pipeline_id"] == sales_id
        and opportunity["created_at"] >= earliest
        and any(
            c["created_at"] < opportunity["created_at"] for c in contacts[opportunity["account_id"]]
        )
    ]
    with_deal = CONVERTED_LEAD_COUNT // 2
    for opportunity in rng.sample(candidates, with_deal):
        created = opportunity["created_at"]
        known = [c for c in contacts[opportunity["account_id"]] if c["created_at"] < created]
        leads.append(
            converted_lead(
                accounts[opportunity["account_id"]], rng.choice(known), created, opportunity
            )
        )
    # The other half were linked to a customer or prospect and one of its contacts.
    prospects = [
        account
        for account in rows.accounts
        if not account["archived"]
        and account["type"] in (AccountType.CUSTOMER, AccountType.PROSPECT)
    ]
    for account in rng.sample(prospects, CONVERTED_LEAD_COUNT - with_deal):
        contact = rng.choice(contacts[account["id"]])
        converted = _moment(rng, max(contact["created_at"], earliest), BASE_DATE)
        leads.append(converted_lead(account, contact, converted))

    # The rest are companies not (yet) in the account list.
    taken = set(_short_names(rows, details).values())
    team_ids = {team["name"]: team["id"] for team in rows.teams}
    weights = [country.weight for country in _COUNTRIES]
    phases = (*funnel.open, funnel.lost)
    for _ in range(LEAD_COUNT - CONVERTED_LEAD_COUNT):
        country = rng.choices(_COUNTRIES, weights)[0]
        while True:
            company = f"{rng.choice(_NAME_PREFIXES)} {rng.choice(_NAME_CORES)[0]}"
            if company not in taken:
                break
        taken.add(company)
        first_name = rng.choice(_FIRST_NAMES[country.team])
        last_name = rng.choice(_LAST_NAMES[country.team])
        domain = f"{_ascii_slug(company)}.example"
        phase = rng.choices(phases, _LEAD_PHASE_WEIGHTS)[0]
        if phase is funnel.open[0]:
            # Untouched leads are fresh: older ones have been worked or dropped.
            created = _moment(rng, BASE_DATE - timedelta(days=45), BASE_DATE)
            entered = created
        else:
            if phase is funnel.lost:
                created = _moment(rng, opened, BASE_DATE - timedelta(days=7))
            else:
                created = _moment(
                    rng, max(opened, BASE_DATE - timedelta(days=270)), BASE_DATE - timedelta(days=3)
                )
            entered = _moment(
                rng, created + timedelta(days=1), min(created + timedelta(days=75), BASE_DATE)
            )
        leads.append(
            {
                "company": f"{company} {country.legal_form}",
                "first_name": first_name,
                "last_name": last_name,
                "email": f"{_ascii_slug(first_name)}.{_ascii_slug(last_name)}@{domain}",
                "phone": f"+{country.dialing_code} {rng.randint(40, 50)} "
                f"{rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                "title": rng.choice(_TITLES),
                "source": rng.choices(_LEAD_SOURCES, _LEAD_SOURCE_WEIGHTS)[0],
                "campaign_id": None,
                "owner_id": rng.choice(reps[team_ids[country.team]]),
                "pipeline_id": funnel.pipeline["id"],
                "phase_id": phase["id"],
                "phase_entered_at": entered,
                "converted_at": None,
                "converted_account_id": None,
                "converted_contact_id": None,
                "converted_opportunity_id": None,
                "created_at": created,
                "updated_at": entered,
                "version": 1,
            }
        )

    leads.sort(key=lambda lead: lead["created_at"])
    rows.leads.extend({"id": lead_id, **lead} for lead_id, lead in enumerate(leads, start=1))


def _build_activity_types(rng: random.Random, rows: DemoRows) -> None:
    for type_id, line in enumerate(_ACTIVITY_TYPE_TABLE.strip().splitlines(), start=1):
        code, name, points = _words(line, "|")
        created = _moment(rng, HISTORY_START, HISTORY_START + timedelta(days=7))
        rows.activity_types.append(
            {
                "id": type_id,
                "code": code,
                "name": name,
                "points": int(points),
                "active": True,
                "created_at": created,
                "updated_at": created,
                "version": 1,
            }
        )


def _season(monday: date) -> float:
    """Less gets done, and less is asked, over Christmas and in the July holidays."""
    week = monday.isocalendar().week
    if week >= 52 or week == 1:
        return 0.5
    if 28 <= week <= 31:
        return 0.6
    return 1.0


@dataclass(frozen=True)
class _RepPlan:
    """How one rep works: the type mix, targets and how well the rep meets them."""

    user_id: int
    field_seller: bool
    mix: dict[str, int]
    level: float  # share of target reached in an ordinary week, mid-year
    trend: float  # change of that share from the first week to the last
    base_count: int
    points_per_activity: float

    @property
    def meeting_share(self) -> float:
        return self.mix["MEETING"] / sum(self.mix.values())

    def level_at(self, index: int) -> float:
        return self.level + self.trend * (index / (ACTIVITY_WEEKS - 1) - 0.5)


def _rep_plans(rng: random.Random, rows: DemoRows) -> list[_RepPlan]:
    reps = [user["id"] for user in rows.users if user["role"] is Role.REP]
    field_sellers = set(rng.sample(reps, len(reps) // 2))
    low, high = _LEVEL_RANGE
    # Evenly spread over the range, in random order: every demo has a laggard and a star.
    levels = [low + (high - low) * i / max(len(reps) - 1, 1) for i in range(len(reps))]
    rng.shuffle(levels)
    points = {row["code"]: row["points"] for row in rows.activity_types}
    plans = []
    for user_id, level in zip(reps, levels, strict=True):
        style = "field" if user_id in field_sellers else "inside"
        mix = {
            code: max(1, round(w * rng.uniform(0.8, 1.2))) for code, w in _TYPE_MIX[style].items()
        }
        plans.append(
            _RepPlan(
                user_id=user_id,
                field_seller=style == "field",
                mix=mix,
                level=level,
                trend=rng.uniform(-0.15, 0.15),
                base_count=rng.randint(*_COUNT_TARGETS[style]),
                points_per_activity=sum(points[c] * w for c, w in mix.items()) / sum(mix.values()),
            )
        )
    return plans


def _wall_clock(zone: ZoneInfo, day: date, minutes: int) -> datetime:
    """Local time on a day, minutes after midnight, as an aware UTC datetime."""
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone).astimezone(UTC)


def _build_activity_targets(
    rng: random.Random, rows: DemoRows, plans: Sequence[_RepPlan], timezone: str, weeks: list[date]
) -> dict[tuple[int, date], int]:
    """Weekly COUNT and POINTS targets for every rep, and a MEETING count for field
    sellers, set per quarter on the Friday before its first week. Returns the COUNT
    targets by rep and week."""
    zone = ZoneInfo(timezone)
    meeting = next(row["id"] for row in rows.activity_types if row["code"] == "MEETING")
    quarter_counts: dict[tuple[int, int, int], int] = {}
    quarter_set: dict[tuple[int, int], datetime] = {}
    counts: dict[tuple[int, date], int] = {}
    for index, monday in enumerate(weeks):
        quarter = (monday.year, (monday.month - 1) // 3)
        if quarter not in quarter_set:
            quarter_set[quarter] = _wall_clock(zone, monday - timedelta(days=3), 14 * 60)
        created = quarter_set[quarter]
        season = _season(monday)
        for plan in plans:
            key = (plan.user_id, *quarter)
            if key not in quarter_counts:
                # Targets creep up over the year, with a manager's touch each quarter.
                grown = plan.base_count * (1 + 0.1 * index / len(weeks)) + rng.choice((-1, 0, 1))
                quarter_counts[key] = min(max(round(grown), 15), 30)
            count = quarter_counts[key]
            points = 5 * round(count * plan.points_per_activity / 5)
            values = [(TargetMetric.COUNT, None, count), (TargetMetric.POINTS, None, points)]
            if plan.field_seller:
                values.append((TargetMetric.COUNT, meeting, round(count * plan.meeting_share)))
            # Managers lower the bar for the holiday weeks.
            counts[plan.user_id, monday] = max(1, round(count * season))
            for metric, type_id, target in values:
                rows.activity_targets.append(
                    {
                        "id": len(rows.activity_targets) + 1,
                        "user_id": plan.user_id,
                        "week": monday,
                        "metric": metric,
                        "activity_type_id": type_id,
                        "target": max(1, round(target * season)),
                        "created_at": created,
                        "updated_at": created,
                        "version": 1,
                    }
                )
    return counts


@dataclass(frozen=True)
class _Links:
    """What an activity is about, its subject, and since when all of it exists."""

    ids: dict[str, int | None]
    subject: str
    since: datetime


class _Book:
    """A rep's accounts, their contacts and the rep's deals: what an activity is about."""

    def __init__(self, rows: DemoRows, user_id: int) -> None:
        self.accounts = [a for a in rows.accounts if a["owner_id"] == user_id]
        self.deals = [o for o in rows.opportunities if o["owner_id"] == user_id]
        self.contacts: dict[int, list[dict[str, Any]]] = {a["id"]: [] for a in self.accounts}
        for deal in self.deals:
            self.contacts.setdefault(deal["account_id"], [])
        for contact in rows.contacts:
            if contact["account_id"] in self.contacts:
                self.contacts[contact["account_id"]].append(contact)
        self.account_by_id = {a["id"]: a for a in rows.accounts}

    def week(self, start: datetime, end: datetime) -> tuple[list[dict], list[dict]]:
        """The accounts there and the deals open from start to end."""
        accounts = [
            a
            for a in self.accounts
            if a["created_at"] <= start and (a["archived_at"] is None or a["archived_at"] > end)
        ]
        deals = [
            o
            for o in self.deals
            if o["created_at"] <= start and (o["closed_at"] is None or o["closed_at"] > end)
        ]
        return accounts, deals

    def links(
        self,
        rng: random.Random,
        code: str,
        week: tuple[list[dict], list[dict]],
        start: datetime,
        short_names: dict[int, str],
    ) -> _Links:
        accounts, deals = week
        kind = rng.choices(("deal", "contact", "account", "none"), _LINK_WEIGHTS[code])[0]
        if kind == "deal" and not deals:
            kind = "contact"
        if kind in ("contact", "account") and not accounts:
            kind = "none"
        deal = rng.choice(deals) if kind == "deal" else None
        account = None
        if deal is not None:
            account = self.account_by_id[deal["account_id"]]
        elif kind != "none":
            account = rng.choice(accounts)
        contact = None
        if account is not None and kind != "account" and rng.random() < 0.85:
            known = [c for c in self.contacts[account["id"]] if c["created_at"] <= start]
            contact = rng.choice(known) if known else None
        if kind == "contact" and contact is None:
            kind = "account"
        subject = rng.choice(_SUBJECTS[code][kind]).format(
            deal=deal["name"] if deal else "",
            account=short_names[account["id"]] if account else "",
            contact=f"{contact['first_name']} {contact['last_name']}" if contact else "",
        )
        ids = {
            "account_id": account["id"] if account else None,
            "contact_id": contact["id"] if contact else None,
            "opportunity_id": deal["id"] if deal else None,
        }
        linked = [r["created_at"] for r in (account, contact, deal) if r is not None]
        return _Links(ids, subject, max(linked, default=HISTORY_START))


def _working_slot(rng: random.Random, zone: ZoneInfo, monday: date, step: int) -> datetime:
    """A time on a weekday of the week, in office hours, on a multiple of step minutes."""
    day = monday + timedelta(days=rng.choices(range(5), _WEEKDAY_WEIGHTS)[0])
    return _wall_clock(zone, day, rng.randrange(8 * 60, 16 * 60 + 30, step))


def _done_times(
    rng: random.Random, zone: ZoneInfo, monday: date, code: str, when: str
) -> tuple[datetime | None, datetime, datetime]:
    """(due, completed, created) of an activity done in the week. Calls and tasks are
    done in office hours unless `when` is "sunday" (Sunday evening) or "monday" (just
    after midnight into Monday); meetings and demos always in office hours."""
    if code in ("MEETING", "DEMO"):
        # Booked on the half hour, a week or two ahead, and logged when they end.
        due = _working_slot(rng, zone, monday, 30)
        length = timedelta(minutes=rng.choice((30, 45, 60, 90)), seconds=rng.randint(0, 900))
        created = _moment(rng, due - timedelta(days=21), due - timedelta(hours=2))
        return due, due + length, created
    if when == "sunday":
        sunday = monday + timedelta(days=6)
        completed = _wall_clock(zone, sunday, rng.randint(18 * 60, 23 * 60 + 50))
    elif when == "monday":
        completed = _wall_clock(zone, monday, rng.randint(5, 115))
    else:
        completed = _working_slot(rng, zone, monday, 1)
    completed += timedelta(seconds=rng.randint(0, 59))
    if code == "CALL" and rng.random() < 0.7:
        # Booked for a quarter hour, done on time or a little late.
        due = completed - timedelta(minutes=rng.randint(0, 40))
        due = due.replace(minute=due.minute - due.minute % 15, second=0)
        return due, completed, _moment(rng, due - timedelta(days=4), due - timedelta(hours=2))
    if code == "TASK" and rng.random() < 0.9:
        # Due at four in the afternoon; most are done on time, some late.
        local_day = completed.astimezone(zone).date()
        due_day = local_day + timedelta(days=rng.choice((-2, -1, 0, 0, 0, 1, 1, 2, 3)))
        due = _wall_clock(zone, due_day, 16 * 60)
        earlier = min(due, completed)
        return due, completed, _moment(rng, earlier - timedelta(days=7), earlier)
    # Logged as done right away: never planned, so no due time.
    return None, completed, completed


def _dst_ends_week(zone: ZoneInfo, monday: date) -> bool:
    """Whether the clocks change on this week's Sunday."""
    this = datetime.combine(monday, time.min, tzinfo=zone).utcoffset()
    next_ = datetime.combine(monday + timedelta(days=7), time.min, tzinfo=zone).utcoffset()
    return this != next_


def _build_activities(
    rng: random.Random,
    rows: DemoRows,
    plans: Sequence[_RepPlan],
    timezone: str,
    history: list[date],
    count_targets: dict[tuple[int, date], int],
    details: Sequence[tuple[_Country, str]],
) -> None:
    zone = ZoneInfo(timezone)
    type_ids = {row["code"]: row["id"] for row in rows.activity_types}
    points = {row["code"]: row["points"] for row in rows.activity_types}
    short_names = _short_names(rows, details)
    activities: list[dict[str, Any]] = []

    def add(
        plan: _RepPlan,
        code: str,
        links: _Links,
        status: ActivityStatus,
        due: datetime | None,
        created: datetime,
        completed: datetime | None = None,
        updated: datetime | None = None,
        notes: str | None = None,
    ) -> None:
        # Nothing is planned about a record before the record exists.
        created = min(max(created, links.since), completed or due or created)
        activities.append(
            {
                "type_id": type_ids[code],
                "subject": links.subject,
                "notes": notes,
                "owner_id": plan.user_id,
                **links.ids,
                "campaign_id": None,
                "due_at": due,
                "status": status,
                "completed_at": completed,
                "completed_week": week_of(completed, timezone) if completed else None,
                "points_earned": points[code] if completed else None,
                "created_at": created,
                "updated_at": max(updated or completed or created, created),
                "version": 1,
            }
        )

    for plan in plans:
        book = _Book(rows, plan.user_id)
        codes, weights = tuple(plan.mix), tuple(plan.mix.values())
        after_dst = False
        for index, monday in enumerate(history):
            start, end = week_bounds(monday, timezone)
            week = book.week(start, end)
            noise = min(max(rng.gauss(1, 0.15), 0.4), 1.6)
            done = max(0, round(count_targets[plan.user_id, monday] * plan.level_at(index) * noise))
            # Work logged on Sunday evening or just after midnight into Monday: one of
            # each around the clock change, to keep week arithmetic honest.
            forced = ["monday"] * after_dst
            after_dst = _dst_ends_week(zone, monday)
            forced += ["sunday"] * after_dst
            for n in range(done):
                if n < len(forced):
                    code, when = rng.choice(("CALL", "TASK")), forced[n]
                else:
                    code = rng.choices(codes, weights)[0]
                    roll = rng.random()
                    when = "sunday" if roll < 0.02 else "monday" if roll < 0.035 else "office"
                due, completed, created = _done_times(rng, zone, monday, code, when)
                if completed > BASE_DATE:
                    due, completed, created = _done_times(rng, zone, monday, code, "office")
                links = book.links(rng, code, week, start, short_names)
                add(plan, code, links, ActivityStatus.DONE, due, created, completed)
            for _ in range(sum(rng.random() < 0.06 for _ in range(done))):
                code = rng.choices(
                    tuple(_CANCELLED_TYPE_WEIGHTS), tuple(_CANCELLED_TYPE_WEIGHTS.values())
                )[0]
                due = _working_slot(rng, zone, monday, 30)
                created = _moment(rng, due - timedelta(days=14), due - timedelta(hours=1))
                cancelled = _moment(rng, created, min(due + timedelta(days=1), BASE_DATE))
                links = book.links(rng, code, week, start, short_names)
                add(
                    plan,
                    code,
                    links,
                    ActivityStatus.CANCELLED,
                    due,
                    created,
                    updated=cancelled,
                    notes=rng.choice(_CANCEL_REASONS),
                )

        # Still to do: a few overdue, the rest booked for the coming weeks.
        now = book.week(BASE_DATE, BASE_DATE)
        base_monday = history[-1]
        for _ in range(rng.randint(1, 4)):
            code = rng.choices(("TASK", "CALL", "MEETING"), (50, 40, 10))[0]
            due = _working_slot(rng, zone, base_monday - timedelta(weeks=rng.randint(0, 1)), 30)
            created = _moment(rng, due - timedelta(days=10), due - timedelta(hours=1))
            add(
                plan,
                code,
                book.links(rng, code, now, BASE_DATE, short_names),
                ActivityStatus.PLANNED,
                due,
                created,
            )
        for _ in range(rng.randint(8, 16)):
            code = rng.choices(codes, weights)[0]
            ahead = rng.choices((1, 2, 3), (55, 30, 15))[0]
            due = _working_slot(rng, zone, base_monday + timedelta(weeks=ahead), 30)
            created = _moment(rng, BASE_DATE - timedelta(days=14), BASE_DATE)
            add(
                plan,
                code,
                book.links(rng, code, now, BASE_DATE, short_names),
                ActivityStatus.PLANNED,
                due,
                created,
            )

    # Ids in order of creation, as a live database would have handed them out.
    activities.sort(key=lambda activity: activity["created_at"])
    rows.activities.extend({"id": i, **activity} for i, activity in enumerate(activities, start=1))


def _build_activity_history(
    rng: random.Random, rows: DemoRows, details: Sequence[tuple[_Country, str]], timezone: str
) -> None:
    """Activity types, a year of reps' activities and their weekly targets."""
    _build_activity_types(rng, rows)
    plans = _rep_plans(rng, rows)
    last = week_of(BASE_DATE, timezone)
    history = [last - timedelta(weeks=n) for n in range(ACTIVITY_WEEKS - 1, -1, -1)]
    ahead = [last + timedelta(weeks=n) for n in range(1, TARGET_WEEKS_AHEAD + 1)]
    count_targets = _build_activity_targets(rng, rows, plans, timezone, history + ahead)
    _build_activities(rng, rows, plans, timezone, history, count_targets, details)


def _percent_off(price: Decimal, percent: Decimal | int) -> Decimal:
    """The price less a percentage, to the cent (half-even, as line totals are)."""
    return (price * (100 - Decimal(percent)) / 100).quantize(_CENT, rounding=ROUND_HALF_EVEN)


def _months_after(day: date, months: int) -> date:
    """The first day of the month that many months after the day's month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _month_end(day: date, months: int = 0) -> date:
    """The last day of the month that many months after the day's month."""
    return _months_after(day, months + 1) - timedelta(days=1)


def _during(rng: random.Random, day: date, first_hour: int, last_hour: int) -> datetime:
    """A whole second of a day (UTC) from first_hour up to last_hour."""
    start = datetime.combine(day, time(first_hour), tzinfo=UTC)
    return start + timedelta(seconds=rng.randrange((last_hour - first_hour) * 3600))


def _valid_on(row: dict[str, Any], on: date) -> bool:
    return (row["valid_from"] is None or row["valid_from"] <= on) and (
        row["valid_to"] is None or on <= row["valid_to"]
    )


def _optional_date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _build_price_books(rng: random.Random, rows: DemoRows) -> None:
    """The standard book with an entry for every product on sale, and the customer books
    with their tiers, priced off the standard book."""
    area_codes = {area["id"]: area["code"] for area in rows.offering_areas}
    catalogue_ready = max(product["created_at"] for product in rows.products)
    standard_prices: dict[int, Decimal] = {}
    entries: list[dict[str, Any]] = []

    def add_book(
        name: str,
        *,
        created: datetime,
        updated: datetime | None = None,
        valid_from: date | None = None,
        valid_to: date | None = None,
        active: bool = True,
        standard: bool = False,
    ) -> dict[str, Any]:
        book = {
            "id": len(rows.price_books) + 1,
            "name": name,
            "currency": CURRENCY,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "is_standard": standard,
            "active": active,
            "created_at": created,
            "updated_at": updated or created,
            "version": 1,
        }
        rows.price_books.append(book)
        return book

    def add_entry(
        book: dict[str, Any], product: dict[str, Any], level: int, price: Decimal
    ) -> None:
        entries.append(
            {
                "price_book_id": book["id"],
                "product_id": product["id"],
                "unit_price": price,
                "min_quantity": Decimal(_TIER_QUANTITIES[product["unit"]][level]),
                "created_at": book["created_at"],
                "updated_at": book["created_at"],
                "version": 1,
            }
        )

    created = _moment(rng, catalogue_ready, catalogue_ready + _seconds(2))
    standard = add_book(STANDARD_BOOK, created=created, standard=True)
    for product in rows.products:
        if not product["active"]:
            continue
        price = product["list_price"]
        if rng.random() < 0.3:
            price = _percent_off(price, rng.choice(_STANDARD_UNDER_LIST))
        standard_prices[product["id"]] = price
        add_entry(standard, product, 0, price)
        if product["unit"] in _STANDARD_TIERS and rng.random() < 0.6:
            for level, percent in enumerate(_STANDARD_TIERS[product["unit"]], start=1):
                add_entry(standard, product, level, _percent_off(price, percent))

    for line in _CUSTOMER_BOOK_TABLE.strip().splitlines():
        name, valid_from, valid_to, active, areas, percents = (
            part.strip() for part in line.split("|")
        )
        start, end = _optional_date(valid_from), _optional_date(valid_to)
        legacy = name == LEGACY_BOOK
        # Books signed before the CRM were entered as it started; later ones some weeks
        # before they took effect.
        created = catalogue_ready + _seconds(rng.uniform(0.1, 3))
        if start is not None and not legacy:
            opened = datetime.combine(start - timedelta(days=45), time(9), tzinfo=UTC)
            created = max(created, _moment(rng, opened, opened + timedelta(days=14)))
        # The legacy book was switched off once its last agreement had been moved over.
        updated = created + _seconds(rng.uniform(20, 40)) if legacy else None
        book = add_book(
            name,
            created=created,
            updated=updated,
            valid_from=start,
            valid_to=end,
            active=active == "yes",
        )
        for product in rows.products:
            if area_codes[product["offering_area_id"]] not in areas.split():
                continue
            if not legacy and (not product["active"] or rng.random() >= 0.85):
                continue
            base = standard_prices.get(product["id"], product["list_price"])
            jitter = rng.choice((-1, 0, 0, 1))
            levels = len(_TIER_QUANTITIES[product["unit"]])
            for level, percent in enumerate(percents.split()[:levels]):
                if percent != "-":
                    add_entry(book, product, level, _percent_off(base, int(percent) + jitter))

    rows.price_book_entries.extend(
        {"id": entry_id, **entry} for entry_id, entry in enumerate(entries, start=1)
    )


def _agreement_periods(
    rng: random.Random, books: dict[str, dict[str, Any]], partner: bool
) -> list[tuple[dict[str, Any], date, date | None]]:
    """An account's agreements one after the other, never overlapping: (book, first day,
    last day or None)."""
    first_possible = date(2023, 1, 1)
    if partner:
        return [(books[PARTNER_BOOK], _months_after(first_possible, rng.randint(0, 40)), None)]
    periods: list[tuple[dict[str, Any], date, date | None]] = []
    previous = None
    if rng.random() < 0.15:
        # Moved over from the on-premise contract before the first invoice here.
        legacy = books[LEGACY_BOOK]
        end = _month_end(date(2024, 1, 1), rng.randint(0, 9))
        periods.append((legacy, _months_after(legacy["valid_from"], rng.randint(0, 18)), end))
        start = end + timedelta(days=1)
    else:
        start = _months_after(first_possible, rng.randint(0, 42))
    while start <= BILLING_END:
        successor = _SUCCESSORS.get(previous["name"]) if previous else None
        if successor and _valid_on(books[successor], start):
            book = books[successor]
        else:
            # A book that lasts at least half a year from the start.
            names = [
                name
                for name in _BOOK_WEIGHTS
                if _valid_on(books[name], start)
                and (
                    books[name]["valid_to"] is None
                    or books[name]["valid_to"] >= _month_end(start, 5)
                )
            ]
            book = books[rng.choices(names, [_BOOK_WEIGHTS[name] for name in names])[0]]
        end = None if rng.random() < 0.45 else _month_end(start, rng.randint(11, 29))
        if book["valid_to"] is not None and (end is None or end > book["valid_to"]):
            end = book["valid_to"]
        periods.append((book, start, end))
        if end is None or end >= BILLING_END:
            break
        after = rng.choices(_AFTER_AGREEMENT, _AFTER_AGREEMENT_WEIGHTS)[0]
        if after == "stop":
            break
        start = (
            end + timedelta(days=1) if after == "renew" else _months_after(end, rng.randint(2, 5))
        )
        previous = book
    return periods


def _build_agreements(rng: random.Random, rows: DemoRows) -> None:
    """Price agreements for a third of the accounts: customers, and a few partners on
    the partner book."""
    books = {book["name"]: book for book in rows.price_books}
    active = [account for account in rows.accounts if not account["archived"]]
    partners = [account for account in active if account["type"] is AccountType.PARTNER]
    customers = [account for account in active if account["type"] is AccountType.CUSTOMER]
    resellers = rng.sample(partners, min(AGREEMENT_PARTNER_COUNT, len(partners)))
    chosen = resellers + rng.sample(customers, AGREEMENT_ACCOUNT_COUNT - len(resellers))
    reseller_ids = {account["id"] for account in resellers}
    agreements: list[dict[str, Any]] = []
    for account in sorted(chosen, key=lambda account: account["id"]):
        for book, start, end in _agreement_periods(rng, books, account["id"] in reseller_ids):
            # Entered some weeks before it took effect, or from the contract once the
            # account was in the CRM.
            signed = datetime.combine(start - timedelta(days=30), time(9), tzinfo=UTC)
            created = max(
                _moment(rng, signed, signed + timedelta(days=25)),
                account["created_at"] + timedelta(minutes=rng.randint(5, 240)),
                book["created_at"] + timedelta(hours=1),
            )
            updated = created
            if end is not None and end < BILLING_END:
                # Its last day was set when it was ended, up to a month before.
                ended = datetime.combine(end - timedelta(days=30), time(9), tzinfo=UTC)
                updated = max(
                    created, min(_moment(rng, ended, ended + timedelta(days=29)), BASE_DATE)
                )
            agreements.append(
                {
                    "account_id": account["id"],
                    "price_book_id": book["id"],
                    "valid_from": start,
                    "valid_to": end,
                    "created_at": created,
                    "updated_at": updated,
                    "version": 1,
                }
            )
    # Ids in order of creation, as a live database would have handed them out.
    agreements.sort(key=lambda agreement: (agreement["created_at"], agreement["account_id"]))
    rows.account_price_books.extend(
        {"id": agreement_id, **agreement} for agreement_id, agreement in enumerate(agreements, 1)
    )


class _PriceList:
    """Price resolution in memory, by the rule resolvers.pricing.resolve_prices applies
    in the database (which needs a connection, and these rows are not written yet): the
    account's agreement valid on the date, the highest tier its book has for the quantity;
    else the standard book of the currency; else the product's list price."""

    def __init__(self, rows: DemoRows) -> None:
        self.books = {book["id"]: book for book in rows.price_books}
        self.products = {product["id"]: product for product in rows.products}
        self.standard = [book for book in rows.price_books if book["is_standard"]]
        self.entries: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for entry in sorted(rows.price_book_entries, key=lambda entry: entry["min_quantity"]):
            key = (entry["price_book_id"], entry["product_id"])
            self.entries.setdefault(key, []).append(entry)
        self.agreements: dict[int, list[dict[str, Any]]] = {}
        for agreement in sorted(
            rows.account_price_books, key=lambda a: (a["valid_from"], a["id"]), reverse=True
        ):
            self.agreements.setdefault(agreement["account_id"], []).append(agreement)

    def _tier(
        self, book: dict[str, Any], product_id: int, quantity: Decimal
    ) -> dict[str, Any] | None:
        found = None
        for entry in self.entries.get((book["id"], product_id), []):
            if entry["min_quantity"] <= quantity:
                found = entry
        return found

    def price(
        self, account_id: int, product_id: int, quantity: Decimal, on: date
    ) -> tuple[Decimal, PriceSource, int | None]:
        """(unit price, source, price book id) in CURRENCY."""
        for agreement in self.agreements.get(account_id, []):
            book = self.books[agreement["price_book_id"]]
            if not (_valid_on(agreement, on) and book["active"] and _valid_on(book, on)):
                continue
            # The demo's books are all in CURRENCY: resolution never has to refuse.
            assert book["currency"] == CURRENCY
            entry = self._tier(book, product_id, quantity)
            if entry is not None:
                return entry["unit_price"], PriceSource.AGREEMENT, book["id"]
        for book in self.standard:
            if book["currency"] == CURRENCY and book["active"] and _valid_on(book, on):
                entry = self._tier(book, product_id, quantity)
                if entry is not None:
                    return entry["unit_price"], PriceSource.STANDARD, book["id"]
        product = self.products[product_id]
        assert product["currency"] == CURRENCY
        return product["list_price"], PriceSource.LIST_PRICE, None


@dataclass
class _Bill:
    """An invoice before it has a number, a status or an id."""

    account: dict[str, Any]
    on: date
    lines: list[dict[str, Any]]
    notes: str | None = None


def _build_invoices(rng: random.Random, rows: DemoRows) -> None:
    """Two years of invoices: subscriptions billed monthly (accounts with agreements) or
    quarterly (accounts that won a software or support deal), won projects billed once,
    and now and then an order of hardware or training. Every automatic price is resolved
    by the API's rule on the invoice date."""
    prices = _PriceList(rows)
    products = {product["code"]: product for product in rows.products}
    area_codes = {area["id"]: area["code"] for area in rows.offering_areas}
    on_sale: dict[str, list[dict[str, Any]]] = {}
    for product in rows.products:
        if product["active"]:
            on_sale.setdefault(area_codes[product["offering_area_id"]], []).append(product)
    won_phases = {phase["id"] for phase in rows.phases if phase["outcome"] is PhaseOutcome.WON}
    won = [deal for deal in rows.opportunities if deal["phase_id"] in won_phases]
    books = {book["id"]: book for book in rows.price_books}
    agreed_since: dict[int, date] = {}
    legacy: set[int] = set()
    for agreement in rows.account_price_books:
        account_id = agreement["account_id"]
        agreed_since[account_id] = min(
            agreed_since.get(account_id, date.max), agreement["valid_from"]
        )
        if books[agreement["price_book_id"]]["name"] == LEGACY_BOOK:
            legacy.add(account_id)
    subscribed_since: dict[int, date] = {}
    for deal in won:
        if area_codes[deal["offering_area_id"]] in ("SW", "SUP"):
            closed = deal["closed_at"].date()
            subscribed_since[deal["account_id"]] = min(
                subscribed_since.get(deal["account_id"], date.max), closed
            )
    bills: list[_Bill] = []

    def line(
        account: dict[str, Any],
        product: dict[str, Any] | None,
        quantity: Decimal,
        on: date,
        description: str,
        discount: Decimal = Decimal(0),
        manual: Decimal | None = None,
    ) -> dict[str, Any]:
        if manual is None:
            assert product is not None, "a line without a product has a price typed in"
            unit_price, source, book = prices.price(account["id"], product["id"], quantity, on)
        else:
            unit_price, source, book = manual, PriceSource.MANUAL, None
        return {
            "product_id": product["id"] if product is not None else None,
            "description": description,
            "quantity": quantity,
            "unit_price": unit_price,
            "discount_percent": discount,
            "price_source": source,
            "price_book_id": book,
            "line_total": line_total(quantity, unit_price, discount),
        }

    def order_quantity(product: dict[str, Any], share: int) -> Decimal:
        """An order's quantity, up to a share of the most ever ordered."""
        low, high = _ORDER_QUANTITIES[product["unit"]]
        return Decimal(rng.randint(low, max(low, high // share)))

    for account in rows.accounts:
        if account["id"] in agreed_since:
            since, months = agreed_since[account["id"]], 1
        elif account["id"] in subscribed_since:
            since, months = subscribed_since[account["id"]], 3
        else:
            continue
        license = products[rng.choices(_LICENSES, _LICENSE_WEIGHTS)[0]]
        seats = min(max(round(25 * rng.lognormvariate(0, 0.9)), 3), 400)
        add_ons = [
            (products[code], rng.uniform(0.2, 1))
            for code, chance in _ADD_ONS
            if rng.random() < chance
        ]
        support = rng.choices(_SUPPORT, _SUPPORT_WEIGHTS)[0]
        loyalty = rng.choices((Decimal(0), Decimal("2.5"), Decimal(5)), (85, 10, 5))[0]
        # Billed in advance, on the first day of each month or quarter.
        period = _months_after(max(since, BILLING_START), 0)
        if period < since:
            period = _months_after(period, 1)
        while (period.month - 1) % months:
            period = _months_after(period, 1)
        first = period
        while period <= BILLING_END:
            if months == 1:
                label = f"{period:%B %Y}"
            else:
                label = f"Q{(period.month - 1) // 3 + 1} {period.year}"
            if rng.random() < 0.08:
                seats = min(max(seats + round(seats * rng.uniform(-0.1, 0.3)), 3), 500)
            lines = [
                line(
                    account,
                    license,
                    Decimal(seats * months),
                    period,
                    f"{license['name']}, {label}",
                    loyalty,
                )
            ]
            if account["id"] in legacy and period < date(2025, 4, 1):
                classic = products["SW-LEG"]
                lines.append(
                    line(
                        account,
                        classic,
                        Decimal(months),
                        period,
                        f"{classic['name']} maintenance, {label}",
                    )
                )
            if support is not None:
                product = products[support]
                lines.append(
                    line(account, product, Decimal(months), period, f"{product['name']}, {label}")
                )
            for product, share in add_ons:
                per_month = max(1, round(seats * share)) if product["unit"] == "license" else 1
                lines.append(
                    line(
                        account,
                        product,
                        Decimal(per_month * months),
                        period,
                        f"{product['name']}, {label}",
                    )
                )
            bills.append(_Bill(account, period, lines[:4]))
            period = _months_after(period, months)

        # Now and then an order besides the subscription: headsets, scanners, courses.
        month = first
        while month <= BILLING_END:
            if rng.random() < 0.05:
                on = min(month + timedelta(days=rng.randint(0, 27)), BILLING_END)
                lines = []
                for product in rng.sample(on_sale[rng.choice(("HW", "TRN"))], rng.randint(1, 2)):
                    discount = rng.choice(_LINE_DISCOUNTS) if rng.random() < 0.2 else Decimal(0)
                    lines.append(
                        line(
                            account,
                            product,
                            order_quantity(product, 8),
                            on,
                            product["name"],
                            discount,
                        )
                    )
                bills.append(_Bill(account, on, lines))
            month = _months_after(month, 1)

    # Won projects, billed once they are delivered: what the deal sold, for about its
    # amount; services often with their travel costs, some at a fixed price as quoted.
    accounts = {account["id"]: account for account in rows.accounts}
    by_name_length = sorted(rows.products, key=lambda product: -len(product["name"]))
    for deal in won:
        area = area_codes[deal["offering_area_id"]]
        if area not in _PROJECT_AREAS:
            continue
        on = deal["closed_at"].date() + timedelta(days=rng.randint(2, 25))
        if on > BILLING_END:
            continue  # not delivered yet
        account = accounts[deal["account_id"]]
        sold = deal["name"].split(f" {_DASH} ", 1)[1]
        product = next(p for p in by_name_length if sold.startswith(p["name"]))
        low, high = _ORDER_QUANTITIES[product["unit"]]
        quantity = Decimal(min(max(round(deal["amount"] / product["list_price"]), low), high))
        if product["unit"] == "hour" and rng.random() < 0.3:
            quantity += Decimal("0.5")
        if area == "SVC" and rng.random() < 0.2:
            resolved, _, _ = prices.price(account["id"], product["id"], quantity, on)
            lines = [
                line(
                    account,
                    product,
                    quantity,
                    on,
                    f"{product['name']}, fixed price as quoted",
                    manual=_percent_off(resolved, rng.choice((5, 8, 10))),
                )
            ]
        else:
            discount = rng.choice(_LINE_DISCOUNTS) if rng.random() < 0.25 else Decimal(0)
            lines = [line(account, product, quantity, on, product["name"], discount)]
        others = [p for p in on_sale[area] if p is not product]
        if rng.random() < 0.35:
            extra = rng.choice(others)
            lines.append(line(account, extra, order_quantity(extra, 10), on, extra["name"]))
        if area in ("SVC", "TRN") and rng.random() < 0.4:
            cost = Decimal(rng.randint(150, 2500)) + rng.choice((Decimal(0), Decimal("0.5")))
            lines.append(
                line(
                    account,
                    None,
                    Decimal(1),
                    on,
                    rng.choice(_EXPENSES),
                    manual=cost.quantize(_CENT),
                )
            )
        bills.append(_Bill(account, on, lines, notes=f"Order: {deal['name']}"))

    # Numbered by date, as the ERP numbers them; most came from the ERP's nightly export,
    # the rest were written in the CRM. Drafts are the CRM's, in the last month only.
    bills.sort(key=lambda bill: (bill.on, bill.account["id"]))
    numbers: Counter[int] = Counter()
    exported = 0
    invoices: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    base_day = BASE_DATE.date()
    for bill in bills:
        account = bill.account
        age = (base_day - bill.on).days
        # Billed before the account came into the CRM: brought over with its history.
        backfilled = bill.on < account["created_at"].date()
        if age <= 31 and not backfilled and rng.random() < 0.12:
            status = InvoiceStatus.DRAFT
        elif age <= 31:
            status = InvoiceStatus.PAID if age >= 20 and rng.random() < 0.25 else InvoiceStatus.SENT
        elif age <= 60:
            status = InvoiceStatus.PAID if rng.random() < 0.75 else InvoiceStatus.SENT
        else:
            status = InvoiceStatus.PAID if rng.random() < 0.985 else InvoiceStatus.SENT
        if status is not InvoiceStatus.DRAFT and rng.random() < 0.02:
            status = InvoiceStatus.CANCELLED
        imported = backfilled or (status is not InvoiceStatus.DRAFT and rng.random() < 0.85)
        numbers[bill.on.year] += 1
        external_id = None
        if imported:
            exported += 1
            external_id = f"ERP-{_ERP_NUMBER_BASE + exported}"

        in_crm = account["created_at"] + timedelta(minutes=1)
        if backfilled:
            created = account["created_at"] + timedelta(minutes=rng.randint(10, 240))
        elif imported:
            created = max(_during(rng, bill.on, 18, 23), in_crm)
        else:
            created = max(_during(rng, bill.on, 6, 15), in_crm)
        updated = created
        if backfilled or status is InvoiceStatus.DRAFT:
            pass
        elif status is InvoiceStatus.PAID:
            paid_from = max(
                created, datetime.combine(bill.on + timedelta(days=8), time(9), tzinfo=UTC)
            )
            paid_by = datetime.combine(bill.on + timedelta(days=45), time(17), tzinfo=UTC)
            updated = _moment(rng, paid_from, max(paid_from, min(paid_by, BASE_DATE)))
        elif status is InvoiceStatus.CANCELLED:
            updated = _moment(rng, created, min(created + timedelta(days=10), BASE_DATE))
        elif not imported:
            updated = _moment(rng, created, min(created + timedelta(days=1), BASE_DATE))

        notes = bill.notes
        if status is InvoiceStatus.CANCELLED:
            notes = rng.choice(_CANCELLED_NOTES)
        elif notes is None and rng.random() < 0.15:
            notes = f"PO {rng.randint(4_500_000_000, 4_599_999_999)}"
        invoice = {
            "account_id": account["id"],
            "number": f"INV-{bill.on.year}-{numbers[bill.on.year]:06d}",
            "invoice_date": bill.on,
            "due_date": bill.on + timedelta(days=PAYMENT_DAYS),
            "status": status,
            "currency": CURRENCY,
            "external_id": external_id,
            "notes": notes,
            "total": sum((values["line_total"] for values in bill.lines), Decimal(0)),
            "created_at": created,
            "updated_at": updated,
            "version": 1,
        }
        invoices.append((invoice, bill.lines))

    # Ids in order of creation, as a live database would have handed them out.
    invoices.sort(key=lambda pair: (pair[0]["created_at"], pair[0]["number"]))
    for invoice_id, (invoice, lines) in enumerate(invoices, start=1):
        rows.invoices.append({"id": invoice_id, **invoice})
        for position, values in enumerate(lines, start=1):
            rows.invoice_lines.append(
                {
                    "id": len(rows.invoice_lines) + 1,
                    "invoice_id": invoice_id,
                    "position": position,
                    **values,
                    "created_at": invoice["created_at"],
                    "updated_at": invoice["created_at"],
                }
            )


# Account plans: budgets and forecasts per month for the two calendar years around the
# base date, for every account with invoices, in EUR.
PLAN_START = date(BASE_DATE.year - 1, 1, 1)
PLAN_MONTHS = 24
# An account is planned in the offering areas it buys most: at most this many, each
# worth at least this share of the first (billed, and half its won and open deals).
_PLAN_AREAS = 3
_PLAN_AREA_SHARE = Decimal("0.3")
# Project areas bill less over the holidays and are budgeted so; subscriptions are even.
_PROJECT_SEASON = {1: 0.9, 7: 0.6, 8: 0.85, 12: 0.75}
# ROLLING forecasts are submitted in the two weeks before each quarter for the six months
# from its first; now and then again mid-quarter, for the quarter's last two months.
_ROLLING_MONTHS = 6
_MID_QUARTER_CHANCE = 0.2
# FIXED forecasts for the base date's year were set late the year before; some owners
# changed theirs in June for the months still to come.
_FIXED_REVISION_CHANCE = 0.15
_FIXED_REVISED_IN = date(BASE_DATE.year, 6, 1)
_BILLED = (InvoiceStatus.SENT, InvoiceStatus.PAID)  # what an account plan counts as billed
_BASE_MONTH = date(BASE_DATE.year, BASE_DATE.month, 1)  # the first with nothing billed yet


def _to_step(value: float, step: int) -> Decimal:
    """A non-negative amount rounded to a multiple of step, with two decimals."""
    return Decimal(max(round(value / step), 0) * step).quantize(_CENT)


def _utc(day: date, hour: int = 0) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


@dataclass
class _Planned:
    """What one account bought, per offering area, as its plans are drawn up from it."""

    billed: dict[int, dict[date, Decimal]] = field(default_factory=dict)  # by area, month
    dealt: dict[int, Decimal] = field(default_factory=dict)  # won and open deals, by area

    def areas(self) -> list[int]:
        scores = {
            area: sum(self.billed.get(area, {}).values(), Decimal(0))
            + self.dealt.get(area, Decimal(0)) / 2
            for area in set(self.billed) | set(self.dealt)
        }
        ranked = sorted((a for a in scores if scores[a] > 0), key=lambda a: (-scores[a], a))
        top = scores[ranked[0]]
        return [area for area in ranked[:_PLAN_AREAS] if scores[area] >= top * _PLAN_AREA_SHARE]


@dataclass(frozen=True)
class _AreaPlan:
    """One account's plan in one offering area, as its forecasts are drawn up."""

    account_id: int
    area_id: int
    owner_id: int
    imported: datetime  # when the account came into the CRM, with its plans so far
    billed: dict[date, Decimal]  # by month
    run_rate: float  # billed a month lately: what the months ahead are expected to bring
    budget: dict[date, Decimal]  # by month

    def figure(self, rng: random.Random, month: date, ahead: int) -> Decimal:
        """A forecast made `ahead` months before the month: between the budget and what
        was (or is expected to be) billed, the nearer the month the closer to the latter."""
        expected = float(self.billed.get(month, 0)) if month < _BASE_MONTH else self.run_rate
        weight = max(0.75 - 0.1 * ahead, 0.2)
        value = weight * expected + (1 - weight) * float(self.budget[month])
        return _to_step(value * rng.gauss(1, 0.05 + 0.02 * min(ahead, 6)), 10)

    def forecast(
        self, month: date, amount: Decimal, kind: ForecastKind, submitted: datetime
    ) -> dict[str, Any]:
        created = max(submitted, self.imported)
        return {
            "account_id": self.account_id,
            "offering_area_id": self.area_id,
            "period": month,
            "amount": amount,
            "currency": CURRENCY,
            "kind": kind,
            "submitted_by_id": self.owner_id,
            "submitted_at": submitted,
            "created_at": created,
            "updated_at": created,
            "version": 1,
        }


def _build_plans(rng: random.Random, rows: DemoRows) -> None:
    """Budgets and FIXED and ROLLING forecasts, month by month, for every account with
    invoices in the offering areas it buys most. Budgets follow what the account was
    billed; forecasts sit between the budget and what was, or is now expected to be,
    billed, the nearer the month the closer to the latter. Figures from before the
    account came into the CRM came with it, as its invoices did: created then, submitted
    when they were."""
    months = [_months_after(PLAN_START, n) for n in range(PLAN_MONTHS)]
    area_codes = {area["id"]: area["code"] for area in rows.offering_areas}
    area_of = {product["id"]: product["offering_area_id"] for product in rows.products}
    invoices = {invoice["id"]: invoice for invoice in rows.invoices}
    planned = {invoice["account_id"]: _Planned() for invoice in rows.invoices}
    for line in rows.invoice_lines:
        invoice = invoices[line["invoice_id"]]
        if line["product_id"] is None or invoice["status"] not in _BILLED:
            continue
        per_month = planned[invoice["account_id"]].billed.setdefault(
            area_of[line["product_id"]], {}
        )
        month = _months_after(invoice["invoice_date"], 0)
        per_month[month] = per_month.get(month, Decimal(0)) + line["line_total"]
    not_lost = {p["id"] for p in rows.phases if p["outcome"] is not PhaseOutcome.LOST}
    for deal in rows.opportunities:
        plan = planned.get(deal["account_id"])
        if plan is not None and deal["phase_id"] in not_lost:
            area = deal["offering_area_id"]
            plan.dealt[area] = plan.dealt.get(area, Decimal(0)) + deal["amount"]

    accounts = {account["id"]: account for account in rows.accounts}
    this_year = BASE_DATE.year
    fixed, rolling = ForecastKind.FIXED, ForecastKind.ROLLING
    budgets: list[dict[str, Any]] = []
    forecasts: list[dict[str, Any]] = []
    for account_id, plan in sorted(planned.items()):
        account = accounts[account_id]
        owner = account["owner_id"]
        imported = account["created_at"] + timedelta(minutes=rng.randint(10, 240))
        # Budgets are set for a year in its November and December before.
        budget_set = {
            year: max(
                _moment(rng, _utc(date(year - 1, 11, 15), 8), _utc(date(year - 1, 12, 15), 17)),
                imported,
            )
            for year in (this_year - 1, this_year)
        }
        fixed_at = _moment(
            rng, _utc(date(this_year - 1, 11, 20), 8), _utc(date(this_year - 1, 12, 19), 17)
        )
        revised_at = None
        if rng.random() < _FIXED_REVISION_CHANCE:
            revised_at = _moment(
                rng, _utc(_FIXED_REVISED_IN, 8), _utc(_FIXED_REVISED_IN + timedelta(days=19), 17)
            )
            if revised_at < imported:
                revised_at = None
        # ROLLING submissions: (when, first month, months covered).
        submissions = []
        for quarter in months[::3]:
            submitted = _moment(
                rng, _utc(quarter) - timedelta(days=14), _utc(quarter) - timedelta(hours=1)
            )
            submissions.append((submitted, quarter, _ROLLING_MONTHS))
            second = _months_after(quarter, 1)
            if rng.random() < _MID_QUARTER_CHANCE:
                again = _moment(rng, _utc(second, 7), _utc(second + timedelta(days=19), 17))
                if again <= BASE_DATE:
                    submissions.append((again, second, 2))
        for area_id in plan.areas():
            per_month = plan.billed.get(area_id, {})
            # A year's budget a month is what the area billed a month that year (so far,
            # in the base date's), give or take; never billed, a share of its deals.
            rates: dict[int, float] = {}
            for year in (this_year - 1, this_year):
                billed_months = [m for m in months if m.year == year and m < _BASE_MONTH]
                if per_month:
                    billed = sum((per_month.get(m, Decimal(0)) for m in billed_months), Decimal(0))
                    rates[year] = float(billed) / len(billed_months)
                else:
                    rates[year] = float(plan.dealt[area_id]) / 2 / PLAN_MONTHS
            levels = {year: rate * rng.uniform(0.9, 1.3) for year, rate in rates.items()}
            recent = [
                per_month.get(_months_after(_BASE_MONTH, -n), Decimal(0)) for n in range(1, 7)
            ]
            run_rate = float(sum(recent, Decimal(0))) / 6 or rates[this_year]
            seasonal = area_codes[area_id] in _PROJECT_AREAS
            budget: dict[date, Decimal] = {}
            for month in months:
                factor = _PROJECT_SEASON.get(month.month, 1.0) if seasonal else 1.0
                budget[month] = max(_to_step(levels[month.year] * factor, 100), Decimal(100))
                created = budget_set[month.year]
                budgets.append(
                    {
                        "account_id": account_id,
                        "offering_area_id": area_id,
                        "period": month,
                        "amount": budget[month],
                        "currency": CURRENCY,
                        "created_at": created,
                        "updated_at": created,
                        "version": 1,
                    }
                )

            area = _AreaPlan(account_id, area_id, owner, imported, per_month, run_rate, budget)
            for ahead, month in enumerate(m for m in months if m.year == this_year):
                row = area.forecast(month, area.figure(rng, month, ahead), fixed, fixed_at)
                if revised_at is not None and month > revised_at.date():
                    # Changed in place, as a FIXED figure is until its month begins.
                    row.update(
                        amount=area.figure(rng, month, month.month - revised_at.month - 1),
                        submitted_at=revised_at,
                        updated_at=revised_at,
                        version=2,
                    )
                forecasts.append(row)
            for submitted, first, count in submissions:
                for ahead in range(count):
                    month = _months_after(first, ahead)
                    if month > months[-1]:
                        break
                    amount = area.figure(rng, month, ahead)
                    forecasts.append(area.forecast(month, amount, rolling, submitted))

    # Ids in order of creation, as a live database would have handed them out.
    budgets.sort(
        key=lambda b: (b["created_at"], b["account_id"], b["offering_area_id"], b["period"])
    )
    rows.budgets.extend({"id": n, **row} for n, row in enumerate(budgets, start=1))
    forecasts.sort(
        key=lambda f: (
            f["created_at"],
            f["submitted_at"],
            f["account_id"],
            f["offering_area_id"],
            f["period"],
            f["kind"].value,
        )
    )
    rows.forecasts.extend({"id": n, **row} for n, row in enumerate(forecasts, start=1))


@dataclass(frozen=True)
class _CampaignPlan:
    """A campaign as the marketing calendar lists it."""

    name: str
    type: CampaignType
    first_day: str
    last_day: str
    audience: str  # see _Audiences.since
    owner: str  # the user's first name
    members: int  # at most: fewer where fewer contacts fit the audience and the channel
    budget: int  # EUR
    description: str
    # Events: place | the place's time zone | local start | capacity.
    event: str = ""
    cancelled_on: str = ""


_CAMPAIGNS = (
    _CampaignPlan(
        "Year-End Newsletter 2025", CampaignType.EMAIL, "2025-12-02", "2025-12-19", "all",
        "Ada", 300, 2500, "The year's product news and the holiday support hours.",
    ),
    _CampaignPlan(
        "Year-End Customer Webinar 2025", CampaignType.EVENT, "2025-12-10", "2025-12-10", "all",
        "Ada", 150, 3500, "Live boards and forecasts: what came in 2025, what comes in 2026.",
        "Online | Europe/Helsinki | 10:00 | 100",
    ),
    _CampaignPlan(
        "New Year Newsletter 2026", CampaignType.EMAIL, "2026-01-13", "2026-01-30", "all",
        "Ada", 300, 2500, "The 2026 roadmap and the new price books.",
    ),
    _CampaignPlan(
        "Customer Advisory Board 2026", CampaignType.PROJECT, "2026-02-02", "2026-12-18",
        "advisory", "Ada", 30, 18000,
        "Quarterly sessions with customer executives on the product roadmap.",
    ),
    _CampaignPlan(
        "Renewal Calls Q1 2026", CampaignType.CALL, "2026-02-16", "2026-03-27", "all",
        "Ada", 150, 6000, "Check-in calls ahead of the spring renewals.",
    ),
    _CampaignPlan(
        "Reference Customer Programme 2026", CampaignType.PROJECT, "2026-03-02", "2026-12-31",
        "references", "Sanne", 40, 12000,
        "Case studies, reference calls and quotes from happy customers.",
    ),
    _CampaignPlan(
        "Spring Release 2026: Live Boards", CampaignType.EMAIL, "2026-03-10", "2026-03-31",
        "all", "Ada", 300, 3000, "Launch mail for live sales-floor boards.",
    ),
    _CampaignPlan(
        "Forecasting Workshop Munich 2026", CampaignType.EVENT, "2026-04-23", "2026-04-23",
        "DACH", "Katrin", 150, 14000, "A hands-on day on pipelines and forecasts, ten seats.",
        "Isar Conference Centre, Munich | Europe/Berlin | 09:30 | 10",
    ),
    _CampaignPlan(
        "Headset Refresh Calls 2026", CampaignType.CALL, "2026-05-04", "2026-06-12",
        "customers", "Ada", 120, 5000, "Offer the Headset Pro to customers on desk phones.",
    ),
    _CampaignPlan(
        "Nordic Sales Floor Summit 2026", CampaignType.EVENT, "2026-06-04", "2026-06-04",
        "Nordics", "Mikko", 150, 45000, "Sales leaders on running a sales floor by the numbers.",
        "Waterfront Congress Centre, Stockholm | Europe/Stockholm | 09:00 | 60",
    ),
    _CampaignPlan(
        "Forecasting Webinar Invitation", CampaignType.EMAIL, "2026-06-15", "2026-07-03", "all",
        "Ada", 300, 2500, "Invitation to the summer webinar on rolling forecasts.",
    ),
    _CampaignPlan(
        "Partner Kick-off Amsterdam 2026", CampaignType.EVENT, "2026-09-10", "2026-09-11",
        "partners", "Sanne", 150, 52000, "Two days with resellers: roadmap, pricing, training.",
        "Harbour Hall, Amsterdam | Europe/Amsterdam | 13:00 | 80",
    ),
    _CampaignPlan(
        "Marketing Automation Launch", CampaignType.EMAIL, "2026-09-22", "2026-10-16", "all",
        "Ada", 300, 4500, "Three mails introducing Marketing Automation.",
    ),
    _CampaignPlan(
        "Win-back Calls 2026", CampaignType.CALL, "2026-10-05", "2026-11-27", "win-back",
        "Katrin", 120, 8000, "Call the accounts of lost deals: what changed since?",
    ),
    _CampaignPlan(
        "Customer Day Vienna 2026", CampaignType.EVENT, "2026-10-08", "2026-10-08", "DACH",
        "Katrin", 120, 30000, "Customer day for Austria.",
        "Ringstrasse Forum, Vienna | Europe/Vienna | 09:30 | 60", cancelled_on="2026-09-14",
    ),
    _CampaignPlan(
        "Year-End Offer 2026", CampaignType.EMAIL, "2026-10-26", "2026-11-20", "all", "Ada",
        300, 3500, "Year-end prices on licences and training days.",
    ),
    _CampaignPlan(
        "Winter Customer Evening Helsinki 2026", CampaignType.EVENT, "2026-12-03", "2026-12-03",
        "Nordics", "Mikko", 150, 24000, "Dinner and sauna evening for Nordic customers.",
        "Kaisaniemi Pavilion, Helsinki | Europe/Helsinki | 17:30 | 45",
    ),
    _CampaignPlan(
        "Support Upgrade Calls Q1 2027", CampaignType.CALL, "2027-01-11", "2027-02-26",
        "customers", "Sanne", 120, 7000, "Offer Premium Support before the renewals.",
    ),
)  # fmt: skip
# Titles that sit on an advisory board.
_SENIOR_TITLES = ("Chief ", "Head of ", "Sales Director")
# How long before an event its invitations go out.
_INVITE_DAYS = {"Online": 14}
_INVITE_DAYS_ON_SITE = 35
# Invitees who answer, and of those who register; registrants who cancel later; those
# who come.
_EVENT_ANSWER, _EVENT_REGISTER, _EVENT_CANCEL, _EVENT_ATTEND = 0.6, 0.75, 0.08, 0.85
# Email: bounced, unsubscribed, opened (cumulative chances).
_EMAIL_OUTCOMES = ((0.03, MemberStatus.BOUNCED), (0.07, MemberStatus.UNSUBSCRIBED),
                   (0.47, MemberStatus.OPENED))  # fmt: skip
_CALL_OUTCOMES = (MemberStatus.REACHED, MemberStatus.NOT_REACHED, MemberStatus.CALLED)
_CALL_OUTCOME_WEIGHTS = (50, 30, 20)
_MEMBER_NOTES = {
    MemberStatus.DECLINED: ("Travelling that week.", "Sends a colleague instead.", None),
    MemberStatus.NO_SHOW: ("Cancelled on the day.", None),
    MemberStatus.REACHED: (
        "Interested: book a demo.",
        "Happy as things are.",
        "Asked for an offer.",
        "Renewal is in next year's budget.",
    ),
    MemberStatus.NOT_REACHED: ("Left a voicemail.", "Number no longer in use.", None),
    MemberStatus.UNSUBSCRIBED: ("Unsubscribed from product news.",),
    MemberStatus.RESPONDED: (
        "Joined the interview round.",
        "Shared feedback on the roadmap.",
        "Agreed to a case study.",
    ),
}
# The responses that count as a campaign's touch on an account, and how long after one a
# new deal there counts as sourced by the campaign.
_TOUCHES = {
    MemberStatus.ATTENDED,
    MemberStatus.OPENED,
    MemberStatus.REACHED,
    MemberStatus.RESPONDED,
}
_SOURCED_WITHIN = timedelta(days=90)
SOURCED_OPPORTUNITY_COUNT = 60  # besides those opened by leads from campaigns
CAMPAIGN_LEAD_COUNT = 40
# Lead sources a campaign of each type explains, and how long after it leads still come.
_LEAD_SOURCE_TYPES = {
    "Trade show": (CampaignType.EVENT,),
    "Webinar": (CampaignType.EVENT, CampaignType.EMAIL),
    "Web form": (CampaignType.EMAIL,),
    "Cold call": (CampaignType.CALL,),
}
_LEADS_WITHIN = timedelta(days=21)


def _cents(value: float) -> Decimal:
    return (Decimal(round(value * 100)) / 100).quantize(_CENT)


def _share_of(start: datetime, end: datetime, share: float) -> datetime:
    """The moment a share of the way from start to end, to the second."""
    return start + timedelta(seconds=int((end - start).total_seconds() * share))


class _Audiences:
    """Who a campaign may reach: contacts of accounts other than competitors, not
    archived, in the audience and open to the channel, and in the CRM by then."""

    def __init__(self, rows: DemoRows) -> None:
        self.contacts = rows.contacts
        self.accounts = {account["id"]: account for account in rows.accounts}
        teams = {team["id"]: team["name"] for team in rows.teams}
        self.team_of_user = {user["id"]: teams.get(user["team_id"]) for user in rows.users}
        self.shared = {share["account_id"] for share in rows.account_shares}
        outcomes = {phase["id"]: phase["outcome"] for phase in rows.phases}
        self.first_closed: dict[tuple[PhaseOutcome, int], datetime] = {}
        for deal in rows.opportunities:
            if deal["closed_at"] is not None:
                key = (outcomes[deal["phase_id"]], deal["account_id"])
                self.first_closed[key] = min(
                    self.first_closed.get(key, deal["closed_at"]), deal["closed_at"]
                )

    def since(self, audience: str, contact: dict[str, Any]) -> datetime | None:
        """From when the contact belongs to the audience; None: never."""
        account = self.accounts[contact["account_id"]]
        if account["type"] is AccountType.COMPETITOR:
            return None
        since = contact["created_at"]
        if audience == "all":
            return since
        if audience in TEAM_NAMES:
            return since if self.team_of_user[account["owner_id"]] == audience else None
        if audience == "customers":
            return since if account["type"] is AccountType.CUSTOMER else None
        if audience == "advisory":
            senior = (contact["title"] or "").startswith(_SENIOR_TITLES)
            return since if senior and account["type"] is AccountType.CUSTOMER else None
        if audience == "partners":
            partner = account["type"] is AccountType.PARTNER or account["id"] in self.shared
            return since if partner else None
        outcome = {"references": PhaseOutcome.WON, "win-back": PhaseOutcome.LOST}[audience]
        closed = self.first_closed.get((outcome, account["id"]))
        return None if closed is None else max(since, closed)

    def reachable(self, plan: _CampaignPlan, by: datetime) -> list[tuple[dict[str, Any], datetime]]:
        """(contact, since when) of everyone the campaign may reach by then."""
        found = []
        for contact in self.contacts:
            if plan.type is CampaignType.EMAIL and not contact["email_consent"]:
                continue
            if plan.type is CampaignType.CALL and not (
                contact["phone_consent"] and contact["phone"]
            ):
                continue
            account = self.accounts[contact["account_id"]]
            if account["archived_at"] is not None and account["archived_at"] <= by:
                continue
            since = self.since(plan.audience, contact)
            if since is not None and since < by:
                found.append((contact, since))
        return found


def _campaign_status(plan: _CampaignPlan) -> CampaignStatus:
    today = BASE_DATE.date()
    if plan.cancelled_on:
        return CampaignStatus.CANCELLED
    if date.fromisoformat(plan.first_day) > today:
        return CampaignStatus.PLANNED
    if date.fromisoformat(plan.last_day) >= today:
        return CampaignStatus.ACTIVE
    return CampaignStatus.COMPLETED


def _event_responses(
    rng: random.Random,
    members: list[dict[str, Any]],
    capacity: int,
    cutoff: datetime,
    held: datetime | None,
) -> None:
    """Invitees answer in their own time until the cutoff; seats go in order of
    registration, and once the event is full registrants join the waiting list. A seat
    given back goes to the first on the list. ``held``: when the event took place."""
    timeline: list[tuple[datetime, int, str, dict[str, Any]]] = []
    for order, member in enumerate(members):
        if rng.random() >= _EVENT_ANSWER:
            continue
        answered = _share_of(member["created_at"], cutoff, rng.betavariate(1.2, 4))
        if rng.random() >= _EVENT_REGISTER:
            member.update(status=MemberStatus.DECLINED, responded_at=answered, updated_at=answered)
            continue
        timeline.append((answered, order, "register", member))
        if rng.random() < _EVENT_CANCEL:
            timeline.append((_moment(rng, answered, cutoff), order, "cancel", member))
    timeline.sort(key=lambda event: (event[0], event[1], event[2] == "cancel"))
    seated = 0
    waiting: list[dict[str, Any]] = []
    for moment, _, what, member in timeline:
        if what == "register":
            member.update(responded_at=moment, updated_at=moment)
            if seated < capacity:
                member["status"] = MemberStatus.REGISTERED
                seated += 1
            else:
                member.update(status=MemberStatus.WAITLISTED, waitlisted_at=moment)
                waiting.append(member)
            continue
        was = member["status"]
        member.update(
            status=MemberStatus.DECLINED, responded_at=moment, updated_at=moment, waitlisted_at=None
        )
        if was is MemberStatus.WAITLISTED:
            waiting.remove(member)
        elif waiting:
            moved = waiting.pop(0)
            moved.update(status=MemberStatus.REGISTERED, waitlisted_at=None, updated_at=moment)
        else:
            seated -= 1
    if held is None:
        return
    for member in members:
        if member["status"] is MemberStatus.REGISTERED:
            came = rng.random() < _EVENT_ATTEND
            member.update(
                status=MemberStatus.ATTENDED if came else MemberStatus.NO_SHOW,
                updated_at=min(held + timedelta(hours=rng.randint(3, 48)), BASE_DATE),
            )


def _office_moment(rng: random.Random, first: date, last: date) -> datetime:
    """A time in office hours (UTC) on a weekday from first to last; first a weekday."""
    day = first + timedelta(days=rng.randint(0, (last - first).days))
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return _during(rng, day, 8, 16)


def _build_campaigns(rng: random.Random, rows: DemoRows) -> None:
    """The marketing calendar's campaigns and their members, with each member's
    response as things stood at the base date."""
    audiences = _Audiences(rows)
    users = {user["name"].split()[0]: user for user in rows.users}
    reps: dict[str | None, list[int]] = {None: []}
    for user in rows.users:
        if user["role"] is Role.REP:
            reps.setdefault(audiences.team_of_user[user["id"]], []).append(user["id"])
            reps[None].append(user["id"])
    today = BASE_DATE.date()
    campaigns: list[tuple[dict[str, Any], list[dict[str, Any]], list[int]]] = []
    for plan in _CAMPAIGNS:
        first, last = date.fromisoformat(plan.first_day), date.fromisoformat(plan.last_day)
        status = _campaign_status(plan)
        owner = users[plan.owner]
        place, starts_at, capacity = None, None, None
        if plan.type is CampaignType.EVENT:
            place, zone, local_start, seats = _words(plan.event, "|")
            hour, minute = map(int, local_start.split(":"))
            local = datetime.combine(first, time(hour, minute), tzinfo=ZoneInfo(zone))
            starts_at, capacity = local.astimezone(UTC), int(seats)
            lead = _INVITE_DAYS.get(place, _INVITE_DAYS_ON_SITE)
            added = _utc(first - timedelta(days=lead), 9)
        elif plan.type is CampaignType.EMAIL:
            added = _utc(first - timedelta(days=1), 9)
        elif plan.type is CampaignType.CALL:
            added = min(_utc(first - timedelta(days=3), 9), BASE_DATE - timedelta(days=5))
        else:
            added = _utc(first, 9)
        assert added < BASE_DATE
        created = _moment(rng, added - timedelta(days=40), added - timedelta(days=7))
        cancelled = None
        if plan.cancelled_on:
            cancelled = _during(rng, date.fromisoformat(plan.cancelled_on), 8, 16)
        budget = Decimal(plan.budget)
        if status is CampaignStatus.COMPLETED:
            # The last invoices booked in the weeks after.
            cost = _cents(plan.budget * rng.uniform(0.75, 1.12))
            booked = min(_utc(last + timedelta(days=2), 8), BASE_DATE)
            updated = _moment(rng, booked, min(booked + timedelta(days=18), BASE_DATE))
        elif status is CampaignStatus.ACTIVE:
            done = (today - first).days / ((last - first).days + 1)
            cost = _cents(plan.budget * done * rng.uniform(0.8, 1.1))
            updated = _moment(rng, max(created, _utc(first)), BASE_DATE)
        elif status is CampaignStatus.CANCELLED:
            assert cancelled is not None
            cost, updated = _cents(plan.budget * rng.uniform(0.05, 0.2)), cancelled
        else:
            cost, updated = None, _moment(rng, created, BASE_DATE)
        campaign = {
            "name": plan.name,
            "type": plan.type,
            "status": status,
            "starts_on": first,
            "ends_on": last,
            "currency": CURRENCY,
            "budget": budget.quantize(_CENT),
            "actual_cost": cost,
            "expected_revenue": _to_step(plan.budget * rng.uniform(4, 12), 1000),
            "owner_id": owner["id"],
            "description": plan.description,
            "event_place": place,
            "event_starts_at": starts_at,
            "capacity": capacity,
            "created_at": created,
            "updated_at": updated,
            "version": 1,
        }

        # Projects take members on as they go; the others start from one list.
        until = min(_utc(last, 17), BASE_DATE) if plan.type is CampaignType.PROJECT else added
        reachable = audiences.reachable(plan, until)
        chosen = sorted(
            rng.sample(reachable, min(plan.members, len(reachable))), key=lambda c: c[0]["id"]
        )
        assert len(chosen) >= 20, (plan.name, len(chosen))
        members = []
        for index, (contact, since) in enumerate(chosen):
            if plan.type is CampaignType.PROJECT:
                joined = _moment(rng, max(since, _utc(first, 8)), until)
            else:
                joined = added + timedelta(seconds=index)
            members.append(
                {
                    "contact_id": contact["id"],
                    "status": MemberStatus.INVITED,
                    "agent_id": None,
                    "responded_at": None,
                    "waitlisted_at": None,
                    "notes": None,
                    "created_at": joined,
                    "updated_at": joined,
                    "version": 1,
                }
            )

        agents: list[int] = []
        if plan.type is CampaignType.EVENT:
            assert starts_at is not None
            assert capacity is not None
            end = min(starts_at - timedelta(hours=1), cancelled or BASE_DATE, BASE_DATE)
            held = starts_at if status is CampaignStatus.COMPLETED else None
            _event_responses(rng, members, capacity, end, held)
        elif plan.type is CampaignType.EMAIL:
            sent = _utc(first, 8)
            for member in members:
                member.update(status=MemberStatus.SENT, updated_at=sent)
                roll = rng.random()
                outcome = next((s for chance, s in _EMAIL_OUTCOMES if roll < chance), None)
                if outcome is MemberStatus.BOUNCED:
                    member.update(
                        status=outcome, updated_at=sent + timedelta(minutes=rng.randint(1, 30))
                    )
                elif outcome is not None:
                    at = sent + _seconds(rng.lognormvariate(-1.5, 1.2))
                    if at <= BASE_DATE:
                        member.update(status=outcome, updated_at=at)
                        if outcome is MemberStatus.OPENED:
                            member["responded_at"] = at
        elif plan.type is CampaignType.CALL:
            team = audiences.team_of_user[owner["id"]]
            agents = sorted(rng.sample(reps[team], min(rng.choice((2, 3)), len(reps[team]))))
            for member in members:
                member["status"] = MemberStatus.TO_CALL
            if status is not CampaignStatus.PLANNED:
                share = (
                    0.95
                    if status is CampaignStatus.COMPLETED
                    else (today - first).days / ((last - first).days + 1)
                )
                calls_end = min(last, today - timedelta(days=1))
                for member in rng.sample(members, round(share * len(members))):
                    at = _office_moment(rng, first, calls_end)
                    outcome = rng.choices(_CALL_OUTCOMES, _CALL_OUTCOME_WEIGHTS)[0]
                    member.update(status=outcome, updated_at=at)
                    if outcome is MemberStatus.REACHED:
                        member["responded_at"] = at
        else:
            for member in members:
                member["status"] = MemberStatus.INVOLVED
                start = member["created_at"] + timedelta(days=1)
                if start < until and rng.random() < 0.6:
                    at = _moment(rng, start, until)
                    member.update(status=MemberStatus.RESPONDED, responded_at=at, updated_at=at)
        for member in members:
            notes = _MEMBER_NOTES.get(member["status"])
            if notes and rng.random() < 0.2:
                member["notes"] = rng.choice(notes)
        campaigns.append((campaign, members, agents))

    # Ids in order of creation, as a live database would have handed them out; call
    # agents take the members of their campaign in turn.
    campaigns.sort(key=lambda entry: entry[0]["created_at"])
    members_of: list[tuple[int, dict[str, Any]]] = []
    for campaign_id, (campaign, members, _) in enumerate(campaigns, start=1):
        rows.campaigns.append({"id": campaign_id, **campaign})
        members_of.extend((campaign_id, member) for member in members)
    members_of.sort(key=lambda entry: (entry[1]["created_at"], entry[0], entry[1]["contact_id"]))
    turns = {
        campaign_id: itertools.cycle(agents)
        for campaign_id, (_, _, agents) in enumerate(campaigns, start=1)
        if agents
    }
    for member_id, (campaign_id, member) in enumerate(members_of, start=1):
        if campaign_id in turns:
            member["agent_id"] = next(turns[campaign_id])
        rows.campaign_members.append({"id": member_id, "campaign_id": campaign_id, **member})


def _link_campaigns(rng: random.Random, rows: DemoRows) -> None:
    """The leads and opportunities the campaigns brought in.

    Leads and opportunities were generated before there were campaigns and stay as they
    were: the links are kept beside them, and seed_demo writes them into those rows as it
    inserts them. A lead whose source a campaign explains (a trade-show lead and an
    event, a web-form lead and an email) and that came in while the campaign ran, or in
    the three weeks after, is that campaign's, and so is the deal it converted into. A
    deal opened on an account within three months after one of its contacts attended,
    opened, was reached or responded is sourced by that campaign."""
    campaigns = [c for c in rows.campaigns if c["status"] is not CampaignStatus.CANCELLED]
    by_id = {campaign["id"]: campaign for campaign in campaigns}

    def window(campaign: dict[str, Any]) -> tuple[datetime, datetime]:
        if campaign["event_starts_at"] is not None:
            start = end = campaign["event_starts_at"]
        else:
            start = _utc(campaign["starts_on"])
            end = _utc(campaign["ends_on"] + timedelta(days=1))
        return start, end + _LEADS_WITHIN

    windows = {campaign["id"]: window(campaign) for campaign in campaigns}
    lead_candidates = []
    for lead in rows.leads:
        types = _LEAD_SOURCE_TYPES.get(lead["source"], ())
        fitting = [
            (windows[c["id"]][0], c["id"])
            for c in campaigns
            if c["type"] in types
            and windows[c["id"]][0] <= lead["created_at"] <= windows[c["id"]][1]
        ]
        if fitting:
            lead_candidates.append((lead, max(fitting)[1]))
    for lead, campaign_id in sorted(
        rng.sample(lead_candidates, min(CAMPAIGN_LEAD_COUNT, len(lead_candidates))),
        key=lambda pair: pair[0]["id"],
    ):
        rows.lead_campaigns[lead["id"]] = campaign_id
        if lead["converted_opportunity_id"] is not None:
            rows.opportunity_sources[lead["converted_opportunity_id"]] = campaign_id

    account_of = {contact["id"]: contact["account_id"] for contact in rows.contacts}
    touches: dict[int, list[tuple[datetime, int]]] = {}
    for member in rows.campaign_members:
        if member["status"] not in _TOUCHES or member["campaign_id"] not in by_id:
            continue
        touched = member["responded_at"]
        if member["status"] is MemberStatus.ATTENDED:
            touched = by_id[member["campaign_id"]]["event_starts_at"]
        touches.setdefault(account_of[member["contact_id"]], []).append(
            (touched, member["campaign_id"])
        )
    deal_candidates = []
    for deal in rows.opportunities:
        if deal["id"] in rows.opportunity_sources:
            continue
        before = [
            touch
            for touch in touches.get(deal["account_id"], [])
            if touch[0] < deal["created_at"] <= touch[0] + _SOURCED_WITHIN
        ]
        if before:
            deal_candidates.append((deal["id"], max(before)[1]))
    for deal_id, campaign_id in sorted(
        rng.sample(deal_candidates, min(SOURCED_OPPORTUNITY_COUNT, len(deal_candidates)))
    ):
        rows.opportunity_sources[deal_id] = campaign_id


def _countries_of(team: str) -> list[str]:
    return [country.name for country in _COUNTRIES if country.team == team]


def _build_target_groups(rng: random.Random, rows: DemoRows) -> None:
    """Target groups as sales and marketing keep them: shared and personal, of accounts
    and of contacts, by a saved filter, by hand, or by both with exclusions. A saved
    filter is an AccountFilter or ContactFilter exactly as a client sends it, global ids
    and all; the predicate beside it says the same in Python, to pick exclusions from
    what the filter finds."""
    users = {user["name"].split()[0]: user for user in rows.users}
    accounts = {account["id"]: account for account in rows.accounts}
    outcomes = {phase["id"]: phase["outcome"] for phase in rows.phases}
    deals: dict[int, list[dict[str, Any]]] = {}
    for deal in rows.opportunities:
        deals.setdefault(deal["account_id"], []).append(deal)

    def has_deal(account: dict[str, Any], outcome: PhaseOutcome) -> bool:
        return any(outcomes[d["phase_id"]] is outcome for d in deals.get(account["id"], []))

    def owned_by(first_name: str) -> list[dict[str, Any]]:
        return [a for a in rows.accounts if a["owner_id"] == users[first_name]["id"]]

    dach, nordics = _countries_of("DACH"), _countries_of("Nordics")
    deciders = ("chief", "head of")
    jonas = users["Jonas"]["id"]

    def key_customer(account: dict[str, Any]) -> bool:
        return (
            account["country"] in dach
            and account["type"] is AccountType.CUSTOMER
            and not account["archived"]
        )

    def nordic_decider(contact: dict[str, Any]) -> bool:
        account = accounts[contact["account_id"]]
        title = (contact["title"] or "").lower()
        return (
            (title.startswith(deciders) or title == "sales director")
            and account["country"] in nordics
            and not account["archived"]
        )

    def to_win_back(account: dict[str, Any]) -> bool:
        return account["owner_id"] == jonas and has_deal(account, PhaseOutcome.LOST)

    nordic_contacts = [c for c in rows.contacts if accounts[c["account_id"]]["country"] in nordics]
    daan_accounts = {a["id"] for a in owned_by("Daan")}
    # name | kind | visibility | owner | description | filter | members | exclusions
    groups: list[tuple[str, TargetGroupKind, TargetGroupVisibility, str, str, Any, list, list]] = [
        (
            "Energy accounts with large open deals",
            TargetGroupKind.ACCOUNT,
            TargetGroupVisibility.SHARED,
            "Ada",
            "Energy sector accounts with an open deal over EUR 10,000.",
            {
                "industry": {"eq": "Energy"},
                "opportunities": {"some": {"amount": {"gt": "10000"}, "outcome": {"eq": "OPEN"}}},
            },
            [],
            [],
        ),
        (
            "DACH key customers",
            TargetGroupKind.ACCOUNT,
            TargetGroupVisibility.SHARED,
            "Katrin",
            "Active customers in Germany, Austria and Switzerland, and the prospects closest"
            " to becoming one.",
            {
                "country": {"in": dach},
                "type": {"eq": "CUSTOMER"},
                "archived": {"eq": False},
            },
            rng.sample(
                [
                    a
                    for a in rows.accounts
                    if a["country"] in dach
                    and a["type"] is AccountType.PROSPECT
                    and not a["archived"]
                    and has_deal(a, PhaseOutcome.OPEN)
                ],
                3,
            ),
            rng.sample([a for a in rows.accounts if key_customer(a)], 2),
        ),
        (
            "Nordic decision makers",
            TargetGroupKind.CONTACT,
            TargetGroupVisibility.SHARED,
            "Mikko",
            "Executives, heads of department and sales directors at Nordic accounts.",
            {
                "or": [
                    {"title": {"startsWith": "Chief"}},
                    {"title": {"startsWith": "Head of"}},
                    {"title": {"eq": "Sales Director"}},
                ],
                "account": {"country": {"in": nordics}, "archived": {"eq": False}},
            },
            rng.sample(
                [
                    c
                    for c in nordic_contacts
                    if c["title"] == "IT Manager" and not accounts[c["account_id"]]["archived"]
                ],
                3,
            ),
            rng.sample([c for c in rows.contacts if nordic_decider(c)], 3),
        ),
        (
            "Newsletter audience",
            TargetGroupKind.CONTACT,
            TargetGroupVisibility.SHARED,
            "Ada",
            "Customers' and prospects' contacts who agreed to email.",
            {
                "emailConsent": {"eq": True},
                "account": {"type": {"in": ["CUSTOMER", "PROSPECT"]}, "archived": {"eq": False}},
            },
            [],
            [],
        ),
        (
            "Callback list",
            TargetGroupKind.CONTACT,
            TargetGroupVisibility.PERSONAL,
            "Daan",
            "People to call back before the year ends.",
            None,
            rng.sample(
                [
                    c
                    for c in rows.contacts
                    if c["account_id"] in daan_accounts
                    and c["phone_consent"]
                    and c["phone"]
                    and not accounts[c["account_id"]]["archived"]
                ],
                20,
            ),
            [],
        ),
        (
            "My accounts to win back",
            TargetGroupKind.ACCOUNT,
            TargetGroupVisibility.PERSONAL,
            "Jonas",
            "My accounts that lost a deal, and two of Lena's I help with.",
            {
                "ownerId": {"eq": encode_id("User", jonas)},
                "opportunities": {"some": {"outcome": {"eq": "LOST"}}},
            },
            rng.sample([a for a in owned_by("Lena") if has_deal(a, PhaseOutcome.LOST)], 2),
            rng.sample(
                [a for a in rows.accounts if to_win_back(a) and has_deal(a, PhaseOutcome.WON)], 1
            ),
        ),
        (
            "Northwind Partners accounts",
            TargetGroupKind.ACCOUNT,
            TargetGroupVisibility.SHARED,
            "Sanne",
            f"The accounts shared with {PARTNER_ORG_NAME}.",
            None,
            [accounts[share["account_id"]] for share in rows.account_shares],
            [],
        ),
        (
            "IT contacts open to calls",
            TargetGroupKind.CONTACT,
            TargetGroupVisibility.PERSONAL,
            "Emma",
            "IT managers and CIOs of the Nordic team's contacts who take calls.",
            {
                "title": {"in": ["IT Manager", "Chief Information Officer"]},
                "phoneConsent": {"eq": True},
                "owner": {"team": {"name": {"eq": "Nordics"}}},
            },
            [],
            [],
        ),
    ]

    member_key = {TargetGroupKind.ACCOUNT: "account_id", TargetGroupKind.CONTACT: "contact_id"}
    made: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for name, kind, visibility, owner, description, saved, members, excluded in groups:
        created = _moment(rng, HISTORY_START + timedelta(days=120), BASE_DATE - timedelta(days=30))
        entries = []
        for record, out in [*((m, False) for m in members), *((m, True) for m in excluded)]:
            added = _moment(rng, min(max(created, record["created_at"]), BASE_DATE), BASE_DATE)
            entries.append(
                {
                    "account_id": None,
                    "contact_id": None,
                    member_key[kind]: record["id"],
                    "excluded": out,
                    "created_at": added,
                    "updated_at": added,
                }
            )
        group = {
            "name": name,
            "kind": kind,
            "visibility": visibility,
            "owner_id": users[owner]["id"],
            "description": description,
            "filter": saved,
            "created_at": created,
            "updated_at": created,
            "version": 1,
        }
        made.append((group, entries))

    # Ids in order of creation, as a live database would have handed them out.
    made.sort(key=lambda pair: pair[0]["created_at"])
    all_entries = []
    for group_id, (group, entries) in enumerate(made, start=1):
        rows.target_groups.append({"id": group_id, **group})
        all_entries.extend({"target_group_id": group_id, **entry} for entry in entries)
    all_entries.sort(
        key=lambda e: (e["created_at"], e["target_group_id"], e["account_id"] or e["contact_id"])
    )
    rows.target_group_entries.extend({"id": n, **entry} for n, entry in enumerate(all_entries, 1))


def build_demo_rows(*, timezone: str = DEFAULT_TIMEZONE) -> DemoRows:
    """The whole data set in memory: the same rows on every call.

    The time zone is the organisation's: activity weeks and office hours are local.
    """
    rng = random.Random(SEED)
    rows = DemoRows()
    sellers = _build_people(rng, rows)
    _build_catalogue(rng, rows)
    details = _build_accounts(rng, rows, sellers)
    _build_contacts(rng, rows, sellers, details)
    _build_shares(rng, rows)
    # Built after everything above, so adding them left the earlier rows as they were.
    funnels = _build_pipelines(rng, rows)
    _build_opportunities(rng, rows, funnels, details)
    _build_leads(rng, rows, funnels, details)
    _build_activity_history(rng, rows, details, timezone)
    # Pricing and billing come after everything else, from a generator of their own:
    # the time zone changes how many numbers the activities draw from the shared one,
    # and would change every price and invoice after them.
    billing_rng = random.Random(f"{SEED}:billing")
    _build_price_books(billing_rng, rows)
    _build_agreements(billing_rng, rows)
    _build_invoices(billing_rng, rows)
    # Plans, campaigns and target groups likewise, each area from a generator of its own.
    _build_plans(random.Random(f"{SEED}:plans"), rows)
    campaign_rng = random.Random(f"{SEED}:campaigns")
    _build_campaigns(campaign_rng, rows)
    _link_campaigns(campaign_rng, rows)
    _build_target_groups(random.Random(f"{SEED}:target-groups"), rows)
    return rows


# Insert order: every foreign key points at a table earlier in the list, or at
# activity_types, which is not in it: migration 0003 fills it with the standard types,
# so rows there are no sign of data and the demo adds only the types missing. Campaigns
# go in before the opportunities and leads that name them as their source.
_SEEDED_MODELS: tuple[type[Base], ...] = (
    PartnerOrg,
    Team,
    User,
    OfferingArea,
    Product,
    Account,
    Contact,
    AccountShare,
    Campaign,
    CampaignMember,
    Pipeline,
    Phase,
    Opportunity,
    PhaseChange,
    Lead,
    ActivityTarget,
    Activity,
    PriceBook,
    PriceBookEntry,
    AccountPriceBook,
    Invoice,
    InvoiceLine,
    Budget,
    Forecast,
    TargetGroup,
    TargetGroupEntry,
)


async def _insert(session: AsyncSession, model: type[Base], rows: list[dict[str, Any]]) -> None:
    # Into the table, past the ORM: its bulk INSERT would set every version to 1 (a
    # FIXED forecast changed since is at 2), and would leave NULL values out of each
    # row, which splits the batch wherever rows differ in what is NULL: thousands of
    # single-row statements. Every demo value is explicit: one executemany per table.
    if rows:
        await session.execute(insert(model.__table__), rows)


async def _activity_type_ids(session: AsyncSession, types: list[dict[str, Any]]) -> dict[int, int]:
    """The database id of each demo activity type, found by code; the types missing are
    inserted first. Types already there keep their names and points: the demo's
    points earned are what its types were worth when the activities were done."""

    async def by_code() -> dict[str, int]:
        query = select(ActivityType.code, ActivityType.id)
        return {code: type_id for code, type_id in (await session.execute(query)).all()}

    found = await by_code()
    missing = [row for row in types if row["code"] not in found]
    if missing:
        # No explicit ids: the standard types may hold any of them already.
        unnumbered = [{key: value for key, value in row.items() if key != "id"} for row in missing]
        await _insert(session, ActivityType, unnumbered)
        found = await by_code()
    return {row["id"]: found[row["code"]] for row in types}


async def _has_data(session: AsyncSession) -> bool:
    for model in _SEEDED_MODELS:
        table = model.__table__
        if (await session.execute(select(table.c.id).limit(1))).first() is not None:
            return True
    return False


async def seed_demo(db: Database, *, timezone: str = DEFAULT_TIMEZONE) -> bool:
    """Seed the demo data set when the database has no users; return False (and write
    nothing) when it already has data.

    Any row in a table the demo fills counts as data, not only users: the demo uses
    fixed ids, which would collide with rows already there. Activity types are the
    exception (see _activity_type_ids). ``timezone`` is the organisation's, in which
    activity weeks are counted.
    """
    rows = build_demo_rows(timezone=timezone)
    async with db.transaction() as session:
        if await _has_data(session):
            return False
        await _insert(session, PartnerOrg, rows.partner_orgs)
        await _insert(session, Team, rows.teams)
        await _insert(session, User, rows.users)
        for team_id, manager_id, assigned in rows.team_managers:
            await session.execute(
                update(Team)
                .where(Team.id == team_id)
                .values(manager_id=manager_id, updated_at=assigned)
            )
        await _insert(session, OfferingArea, rows.offering_areas)
        await _insert(session, Product, rows.products)
        await _insert(session, Account, rows.accounts)
        await _insert(session, Contact, rows.contacts)
        await _insert(session, AccountShare, rows.account_shares)
        await _insert(session, Campaign, rows.campaigns)
        await _insert(session, CampaignMember, rows.campaign_members)
        await _insert(session, Pipeline, rows.pipelines)
        await _insert(session, Phase, rows.phases)
        # The campaigns' links, kept apart from the rows they belong in (see DemoRows).
        await _insert(
            session,
            Opportunity,
            [
                {**row, "source_campaign_id": rows.opportunity_sources.get(row["id"])}
                for row in rows.opportunities
            ],
        )
        await _insert(session, PhaseChange, rows.phase_changes)
        await _insert(
            session,
            Lead,
            [{**row, "campaign_id": rows.lead_campaigns.get(row["id"])} for row in rows.leads],
        )
        type_ids = await _activity_type_ids(session, rows.activity_types)
        await _insert(
            session,
            ActivityTarget,
            [
                {**row, "activity_type_id": type_ids[row["activity_type_id"]]}
                if row["activity_type_id"] is not None
                else row
                for row in rows.activity_targets
            ],
        )
        await _insert(
            session,
            Activity,
            [{**row, "type_id": type_ids[row["type_id"]]} for row in rows.activities],
        )
        await _insert(session, PriceBook, rows.price_books)
        await _insert(session, PriceBookEntry, rows.price_book_entries)
        await _insert(session, AccountPriceBook, rows.account_price_books)
        await _insert(session, Invoice, rows.invoices)
        await _insert(session, InvoiceLine, rows.invoice_lines)
        await _insert(session, Budget, rows.budgets)
        await _insert(session, Forecast, rows.forecasts)
        # A group without a saved filter has SQL NULL there, not the JSON null a None
        # would be written as: the column is left out of those groups' insert.
        await _insert(session, TargetGroup, [g for g in rows.target_groups if g["filter"]])
        await _insert(
            session,
            TargetGroup,
            [
                {key: value for key, value in group.items() if key != "filter"}
                for group in rows.target_groups
                if not group["filter"]
            ],
        )
        await _insert(session, TargetGroupEntry, rows.target_group_entries)
        if db.dialect == "postgresql":
            # Explicit ids leave the SERIAL sequences at 1: move them past the demo rows,
            # or the next ordinary insert would collide with id 1.
            for model in _SEEDED_MODELS:
                table = model.__table__
                sequence = func.pg_get_serial_sequence(table.name, "id")
                highest = select(func.max(table.c.id)).scalar_subquery()
                await session.execute(select(func.setval(sequence, highest)))
    return True
