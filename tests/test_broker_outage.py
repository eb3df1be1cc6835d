"""The broker goes away and comes back: mutations keep working meanwhile, and a
subscriber on another server process gets every move, in order, once it is back."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from tests.factories import make_account, make_org
from tests.graphql_client import GraphQLClient
from tests.live import (
    create_deal,
    make_sales_pipeline,
    move_deal,
    next_data,
    nothing_more,
    subscribed,
)
from tests.processes import RedisServer, free_port


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_moves_made_while_redis_is_down_reach_the_other_process(
    settings, db, throwaway_redis: RedisServer
):
    org = await make_org(db)
    _, phases = await make_sales_pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1, name="Acme")
    # Two apps on one database stand for two server processes; a long poll interval
    # leaves the broker (and its reconnect) as the only way news crosses between them.
    shared = dataclasses.replace(settings, broadcast_url=throwaway_redis.url,
                                 event_poll_seconds=600)
    board_side, desk_side = create_app(shared), create_app(shared)
    async with board_side.router.lifespan_context(board_side), \
            desk_side.router.lifespan_context(desk_side), \
            httpx.AsyncClient(transport=httpx.ASGITransport(desk_side),
                              base_url="http://desk") as http:
        desk = GraphQLClient(desk_side, http)
        deal = await create_deal(desk, org.rep_a1, account, phases["Prospect"])
        board = GraphQLClient(board_side, None)  # type: ignore[arg-type]
        async with subscribed(board_side, board, org.admin) as ws:
            deal = await move_deal(desk, org.rep_a1, deal, phases["Offer"])
            event = (await next_data(ws, 10))["opportunityPhaseChanged"]
            assert event["toPhase"]["name"] == "Offer"

            throwaway_redis.stop()
            for target in ("Deal", "Prospect", "Offer"):
                started = time.monotonic()
                deal = await move_deal(desk, org.rep_a1, deal, phases[target])
                assert time.monotonic() - started < 1.5, "a mutation waited for the broker"
            await nothing_more(ws, 1.0)

            throwaway_redis.start()
            caught_up = [(await next_data(ws, 20))["opportunityPhaseChanged"] for _ in range(3)]
            assert [e["toPhase"]["name"] for e in caught_up] == ["Deal", "Prospect", "Offer"]
            ids = [int(e["eventId"]) for e in caught_up]
            assert ids == sorted(ids)

            deal = await move_deal(desk, org.rep_a1, deal, phases["Deal"])
            assert (await next_data(ws, 10))["opportunityPhaseChanged"]["toPhase"]["name"] == "Deal"
            await nothing_more(ws)
