"""A deterministic demo data set: a small sales organisation with its customers.

One seeded random generator and a fixed base date produce every value, so two fresh
databases seeded from it hold the same rows: screenshots, documentation examples and
benchmarks stay comparable from run to run. Nothing here reads the wall clock.

Company websites and contact emails use the reserved ``.example`` top-level domain
(RFC 2606): the data looks real, yet no campaign run against a demo database can
ever reach a real mailbox.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.accounts import Account, AccountShare, AccountType, Contact
from models.base import Base
from models.db import Database
from models.pricing import OfferingArea, Product
from models.users import PartnerOrg, Role, Team, User

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


def build_demo_rows() -> DemoRows:
    """The whole data set in memory: the same rows on every call."""
    rng = random.Random(SEED)
    rows = DemoRows()
    sellers = _build_people(rng, rows)
    _build_catalogue(rng, rows)
    details = _build_accounts(rng, rows, sellers)
    _build_contacts(rng, rows, sellers, details)
    _build_shares(rng, rows)
    return rows


# Insert order: every foreign key points at a table earlier in the list.
_SEEDED_MODELS: tuple[type[Base], ...] = (
    PartnerOrg,
    Team,
    User,
    OfferingArea,
    Product,
    Account,
    Contact,
    AccountShare,
)


async def _has_data(session: AsyncSession) -> bool:
    for model in _SEEDED_MODELS:
        table = model.__table__
        if (await session.execute(select(table.c.id).limit(1))).first() is not None:
            return True
    return False


async def seed_demo(db: Database) -> bool:
    """Seed the demo data set when the database has no users; return False (and write
    nothing) when it already has data.

    Any row in a table the demo fills counts as data, not only users: the demo uses
    fixed ids, which would collide with rows already there.
    """
    rows = build_demo_rows()
    async with db.transaction() as session:
        if await _has_data(session):
            return False
        await session.execute(insert(PartnerOrg), rows.partner_orgs)
        await session.execute(insert(Team), rows.teams)
        await session.execute(insert(User), rows.users)
        for team_id, manager_id, assigned in rows.team_managers:
            await session.execute(
                update(Team)
                .where(Team.id == team_id)
                .values(manager_id=manager_id, updated_at=assigned)
            )
        await session.execute(insert(OfferingArea), rows.offering_areas)
        await session.execute(insert(Product), rows.products)
        await session.execute(insert(Account), rows.accounts)
        await session.execute(insert(Contact), rows.contacts)
        await session.execute(insert(AccountShare), rows.account_shares)
        if db.dialect == "postgresql":
            # Explicit ids leave the SERIAL sequences at 1: move them past the demo rows,
            # or the next ordinary insert would collide with id 1.
            for model in _SEEDED_MODELS:
                table = model.__table__
                sequence = func.pg_get_serial_sequence(table.name, "id")
                highest = select(func.max(table.c.id)).scalar_subquery()
                await session.execute(select(func.setval(sequence, highest)))
    return True
