"""Subscription fan-out: subscribers of the same feed with the same visibility share one
execution per event; a partner in the same document still reads only what is shared."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import strawberry
import uvicorn
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType
from httpx_ws import AsyncWebSocketSession
from sqlalchemy.dialects import postgresql
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

import loaders.accounts
import loaders.activities
import loaders.audit
import loaders.billing
import loaders.campaigns
import loaders.opportunities
import loaders.planning
import loaders.pricing
import loaders.users
from bench.fanout import Subscriber, TimedConnection
from models.users import Role, Viewer
from server.app import create_app
from server.websocket import LeanWebSocketProtocol
from subscriptions.fanout import FRAMES, groupable, text_frame, visibility_key
from tests.factories import make_account, make_org, make_user, share
from tests.graphql_client import GraphQLClient, websocket
from tests.live import create_deal, make_sales_pipeline, move_deal, next_data, nothing_more
from tests.processes import free_port

# No `after`: a feed many boards share.
FEED = """subscription($pipelineId: ID) {
  opportunityPhaseChanged(pipelineId: $pipelineId) {
    eventId kind toPhase { name } changedBy { name }
    opportunity { name account { name } owner { name } }
  }
}"""


@asynccontextmanager
async def feeds(app: Any, client: GraphQLClient, users: list[Any],
                variables: dict[str, Any]) -> AsyncIterator[list[AsyncWebSocketSession]]:
    """One WebSocket per user, each subscribed to FEED as operation "board"."""
    async with AsyncExitStack() as stack:
        sockets = []
        for user in users:
            ws = await stack.enter_async_context(websocket(app))
            await ws.send_json({"type": "connection_init", "payload": {
                "Authorization": f"Bearer {client.token(user)}"}})
            assert (await ws.receive_json())["type"] == "connection_ack"
            await ws.send_json({"id": "board", "type": "subscribe",
                                "payload": {"query": FEED, "variables": variables}})
            sockets.append(ws)
        await _members(app, len(users))
        yield sockets


async def _members(app: Any, count: int) -> None:
    """Wait until ``count`` subscribers have joined their groups (each first runs the
    pipeline for itself) and every group is registered with the hub."""
    fanout = _fanout(app)
    for _ in range(250):
        await asyncio.sleep(0.02)
        groups = len(fanout.groups)
        if fanout.members == count and len(app.state.events._subscriptions) == groups:
            return
    raise AssertionError(f"{fanout.members} of {count} subscribers joined")


def _view(app: Any) -> Any:
    # The WebSocket view lives in the app's lifespan state; reach it through the route.
    route = next(r for r in app.routes if getattr(r, "path", None) == "/graphql"
                 and r.__class__.__name__ == "WebSocketRoute")
    return inspect.getclosurevars(route.endpoint).nonlocals["state"]["ws"]


def _fanout(app: Any) -> Any:
    return _view(app).fanout


async def _one_event(app: Any, client: GraphQLClient, db: Any, users: list[Any],
                     moves: list[Any]) -> tuple[list[dict[str, Any] | None], int]:
    """The message every user's board got for the last of ``moves`` (None: nothing),
    and the SQL statements the server made from that mutation until every board had
    it. The moves before it warm the pool: a connection opened counts statements too."""
    async with feeds(app, client, users, {}) as sockets:
        for move in moves:
            before = db.statements
            await move()
            got: list[dict[str, Any] | None] = []
            for ws in sockets:
                try:
                    got.append((await next_data(ws, within=2))["opportunityPhaseChanged"])
                except TimeoutError:
                    got.append(None)
            await asyncio.sleep(0.1)  # a straggling statement would count
        return got, db.statements - before


async def test_one_execution_per_group_whatever_the_number_of_subscribers(app, client, db):
    org = await make_org(db)
    _, phases = await make_sales_pipeline(db, "Sales")
    shared = await make_account(db, org.rep_a1, name="Shared Co")
    await share(db, shared, org.partner_org)
    second_partner = await make_user(db, Role.PARTNER, partner_org=org.partner_org,
                                     name="Partner Two")
    deal = await create_deal(client, org.rep_a1, shared, phases["Prospect"])
    statements = client.app.state.db
    moved = [deal]

    def move(phase: str) -> Any:
        async def action() -> None:
            moved[0] = await move_deal(client, org.rep_a1, moved[0], phases[phase])
        return action

    # One board per visibility: admin, manager, partner (two partner users: two groups).
    few = [org.admin, org.manager_a, org.partner, second_partner]
    got, few_statements = await _one_event(app, client, statements, few,
                                           [move("Offer"), move("Deal")])
    assert [g and g["toPhase"]["name"] for g in got] == ["Deal"] * 4

    # 50 boards with the same four visibilities: managers of both teams share one.
    many = [org.admin] * 15 + [org.manager_a] * 10 + [org.manager_b] * 10 + \
        [org.partner] * 10 + [second_partner] * 5
    fanout = _fanout(app)
    got, many_statements = await _one_event(app, client, statements, many,
                                            [move("Offer"), move("Deal")])
    assert all(g is not None and g["toPhase"]["name"] == "Deal" for g in got)
    assert {g["opportunity"]["account"]["name"] for g in got if g} == {"Shared Co"}
    # The same statements as four boards: one execution per group, not per board.
    assert many_statements == few_statements
    assert fanout.counts.groups_started == 8  # four groups, twice
    assert fanout.counts.payloads == 4 * 4  # two moves each time, four groups


async def test_a_partner_sharing_the_document_reads_only_what_is_shared(app, client, db):
    org = await make_org(db)
    _, phases = await make_sales_pipeline(db, "Sales")
    shared = await make_account(db, org.rep_a1, name="Shared Co")
    private = await make_account(db, org.rep_a1, name="Private Co")
    await share(db, shared, org.partner_org)
    on_shared = await create_deal(client, org.rep_a1, shared, phases["Prospect"])
    on_private = await create_deal(client, org.rep_a1, private, phases["Prospect"])
    users = [org.admin] * 5 + [org.partner] * 5 + [org.rep_a1] * 5
    async with feeds(app, client, users, {}) as sockets:
        await move_deal(client, org.rep_a1, on_private, phases["Offer"])
        staff, partners = sockets[:5] + sockets[10:], sockets[5:10]
        for ws in staff:
            event = (await next_data(ws))["opportunityPhaseChanged"]
            assert event["opportunity"]["account"] == {"name": "Private Co"}
        for ws in partners:
            await nothing_more(ws, within=0.3)
        await move_deal(client, org.rep_a1, on_shared, phases["Offer"])
        for ws in sockets:
            event = (await next_data(ws))["opportunityPhaseChanged"]
            assert event["opportunity"]["account"] == {"name": "Shared Co"}
            assert event["changedBy"] == {"name": "Rep A1"}


async def test_a_member_leaving_does_not_end_the_others_and_the_last_stops_the_group(
        app, client, db):
    org = await make_org(db)
    _, phases = await make_sales_pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1, name="Acme")
    deal = await create_deal(client, org.rep_a1, account, phases["Prospect"])
    fanout = _fanout(app)
    async with feeds(app, client, [org.admin] * 3, {}) as sockets:
        assert len(fanout.groups) == 1
        await sockets[0].send_json({"id": "board", "type": "complete"})
        await _members(app, 2)
        deal = await move_deal(client, org.rep_a1, deal, phases["Offer"])
        for ws in sockets[1:]:
            assert (await next_data(ws))["opportunityPhaseChanged"]["kind"] == "MOVED"
        await nothing_more(sockets[0], within=0.3)
        for ws in sockets[1:]:
            await ws.send_json({"id": "board", "type": "complete"})
        await _members(app, 0)
        assert fanout.groups == {}


async def test_bad_arguments_are_refused_per_subscriber_with_their_code(app, client, db):
    org = await make_org(db)
    async with feeds(app, client, [org.admin], {}) as sockets:
        ws = sockets[0]
        await ws.send_json({"id": "bad", "type": "subscribe", "payload": {
            "query": FEED, "variables": {"pipelineId": "not-an-id"}}})
        message = await asyncio.wait_for(ws.receive_json(), 5)
        while message.get("id") != "bad":
            message = await asyncio.wait_for(ws.receive_json(), 5)
        assert message["type"] in ("next", "error")
        errors = message["payload"]["errors"] if message["type"] == "next" \
            else message["payload"]
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert _fanout(app).members == 1  # the refused one joined nothing


def test_replays_and_snapshots_run_alone() -> None:
    assert groupable(FEED, None, {})
    assert groupable("subscription { opportunityPhaseChanged { eventId } }", None, None)
    assert not groupable(FEED.replace("(pipelineId: $pipelineId)", "(after: \"5\")"), None, {})
    assert not groupable("subscription($a: String) { opportunityPhaseChanged(after: $a) "
                         "{ eventId } }", None, {})
    assert not groupable("subscription { pipelineSummaryChanged(pipelineId: \"x\") "
                         "{ pipelineId } }", None, {})
    assert not groupable("query { viewer { name } }", None, {})
    assert not groupable("subscription {", None, {})


# --- why the visibility key is sound -------------------------------------------------------

POLICY_MODULES = [loaders.accounts, loaders.activities, loaders.audit, loaders.billing,
                  loaders.campaigns, loaders.opportunities, loaders.planning,
                  loaders.pricing, loaders.users]


def _viewer(role: Role, user_id: int, team_id: int | None = None,
            partner_org_id: int | None = None) -> Viewer:
    return Viewer(user_id=user_id, email=f"u{user_id}@x.dev", name=f"U{user_id}", role=role,
                  team_id=team_id, partner_org_id=partner_org_id)


def _sql(policy: Any, viewer: Viewer) -> str:
    return str(policy(viewer).compile(dialect=postgresql.dialect(),
                                      compile_kwargs={"literal_binds": True}))


def test_viewers_with_one_visibility_key_meet_the_same_read_policies() -> None:
    """Every read policy a subscription message can reach gives the same SQL for two
    viewers with the same key: what they read is the same rows."""
    pairs = [
        (_viewer(Role.ADMIN, 1), _viewer(Role.ADMIN, 2, team_id=7)),
        (_viewer(Role.MANAGER, 3, team_id=7), _viewer(Role.MANAGER, 4, team_id=8)),
        (_viewer(Role.PARTNER, 5, partner_org_id=9), _viewer(Role.PARTNER, 5, partner_org_id=9)),
    ]
    policies = [getattr(module, name) for module in POLICY_MODULES for name in dir(module)
                if name.startswith("visible_") and name != "visible_target_groups"]
    assert len(policies) >= 15
    for one, other in pairs:
        assert visibility_key(one) == visibility_key(other)
        for policy in policies:
            assert _sql(policy, one) == _sql(policy, other), (policy.__name__, one.role)
    # A rep's team decides: the policies name the team and the rep, and the rep is in
    # its team, so reps of one team read the same rows (asserted on data in
    # tests/test_attainment*.py for team_mates); of two teams, not.
    assert visibility_key(_viewer(Role.REP, 10, team_id=7)) == \
        visibility_key(_viewer(Role.REP, 11, team_id=7))
    assert visibility_key(_viewer(Role.REP, 10, team_id=7)) != \
        visibility_key(_viewer(Role.REP, 10, team_id=8))
    assert visibility_key(_viewer(Role.PARTNER, 5, partner_org_id=9)) != \
        visibility_key(_viewer(Role.PARTNER, 6, partner_org_id=9))


def test_no_subscription_message_reaches_a_target_group(app) -> None:
    """visible_target_groups depends on the user, which the key leaves out for staff:
    sound only while no type a subscription sends leads to a TargetGroup."""
    schema: strawberry.Schema = _schema(app)
    subscription = schema._schema.subscription_type
    assert subscription is not None
    seen: set[str] = set()
    todo = [field.type for field in subscription.fields.values()]
    while todo:
        kind = todo.pop()
        while isinstance(kind, GraphQLNonNull | GraphQLList):
            kind = kind.of_type
        if not isinstance(kind, GraphQLObjectType) or kind.name in seen:
            continue
        seen.add(kind.name)
        todo.extend(field.type for field in kind.fields.values())
    assert "PhaseChangeEvent" in seen
    assert "Opportunity" in seen
    assert "TargetGroup" not in seen
    assert "Query" not in seen


def _schema(app: Any) -> Any:
    route = next(r for r in app.routes if getattr(r, "path", None) == "/graphql"
                 and r.__class__.__name__ == "WebSocketRoute")
    return inspect.getclosurevars(route.endpoint).nonlocals["state"]["ws"].schema


def test_a_ready_made_frame_is_the_frame_websockets_would_write() -> None:
    for size in (10, 126, 200, 70_000):
        text = '{"id":"1","type":"next","payload":' + '"' + "é" * size + '"}'
        protocol = ServerProtocol()
        protocol.state = State.OPEN
        protocol.send_text(text.encode())
        assert text_frame(text) == b"".join(protocol.data_to_send())


async def test_a_served_socket_takes_the_groups_frames_whole(app, client, db):
    """Through uvicorn with the server's WebSocket protocol (server/cli.py), members
    with the same operation id get one frame made once, others their own; each is the
    message the ordinary send path writes."""
    org = await make_org(db)
    _, phases = await make_sales_pipeline(db, "Sales")
    account = await make_account(db, org.rep_a1, name="Acme")
    deal = await create_deal(client, org.rep_a1, account, phases["Prospect"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
        ws="server.websocket:LeanWebSocketProtocol", ws_per_message_deflate=False))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        async with AsyncExitStack() as stack:
            sockets = []
            for operation_id in ("board", "board", "other"):
                ws = await stack.enter_async_context(connect(
                    f"ws://127.0.0.1:{port}/graphql", subprotocols=[
                        Subprotocol("graphql-transport-ws")]))
                await ws.send(json.dumps({"type": "connection_init", "payload": {
                    "Authorization": f"Bearer {client.token(org.admin)}"}}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                await ws.send(json.dumps({"id": operation_id, "type": "subscribe",
                                          "payload": {"query": FEED, "variables": {}}}))
                sockets.append((operation_id, ws))
            await _members(app, 3)
            members = [m for g in _fanout(app).groups.values() for m in g.members]
            gates = [m.gate for m in members]
            protocols = {p.scope["extensions"][FRAMES]: p
                         for p in server.server_state.connections}
            assert all(isinstance(protocols[gate], LeanWebSocketProtocol) and gate.open
                       for gate in gates)
            # Past the transport's high-water mark the gate shuts (the ordinary path
            # waits instead), and opens again once the transport drains.
            protocol = protocols[gates[0]]
            protocol.pause_writing()
            assert not protocol.writable.is_set()
            assert not gates[0].open
            protocol.resume_writing()
            assert protocol.writable.is_set()
            assert gates[0].open
            await move_deal(client, org.rep_a1, deal, phases["Offer"])
            texts = [await asyncio.wait_for(ws.recv(), 5) for _, ws in sockets]
            for (operation_id, _), text in zip(sockets, texts, strict=True):
                message = json.loads(text)
                assert message["id"] == operation_id
                assert message["type"] == "next"
                assert message["payload"]["data"]["opportunityPhaseChanged"]["toPhase"] == \
                    {"name": "Offer"}
            assert texts[0] == texts[1]
            assert texts[2] == texts[0].replace('"id":"board"', '"id":"other"', 1)
            await sockets[0][1].send(json.dumps({"id": "board", "type": "complete"}))
            await _members(app, 2)
            # A close from the client shuts its gate as the close frame arrives, before
            # the transport's close reaches connection_lost.
            other = next(m.gate for m in members if '"other"' in m.prefix)
            protocols[other].data_received(
                Frame(Opcode.CLOSE, Close(1000, "").serialize()).serialize(mask=True))
            assert not other.open
            assert all(gate.open for gate in gates if gate is not other)
    finally:
        server.should_exit = True
        await serving
    # The server's own close (at shutdown, 1012) shuts the others.
    assert not any(gate.open for gate in gates)


async def test_an_idle_board_is_pinged_and_outlives_the_init_timeout(settings, db):
    """Server pings run on a timer, not a task per connection, and the wait for
    connection_init ends with the ack: an idle board is neither cut nor left unpinged."""
    org = await make_org(db)
    quick = create_app(replace(settings, ws_ping_seconds=0.15, ws_init_timeout_seconds=0.3))
    async with quick.router.lifespan_context(quick), \
            httpx.AsyncClient(transport=httpx.ASGITransport(quick),
                              base_url="http://testserver") as http:
        token = GraphQLClient(quick, http).token(org.admin)
        async with websocket(quick) as ws:
            await ws.send_json({"type": "connection_init",
                                "payload": {"Authorization": f"Bearer {token}"}})
            assert (await ws.receive_json())["type"] == "connection_ack"
            await ws.send_json({"id": "board", "type": "subscribe",
                                "payload": {"query": FEED, "variables": {}}})
            await _members(quick, 1)
            for _ in range(4):  # 0.6 s: past the init timeout
                assert await ws.receive_json(timeout=2) == {"type": "ping"}
                await ws.send_json({"type": "pong"})
            assert _fanout(quick).members == 1
            await ws.send_json({"id": "board", "type": "complete"})
            await _members(quick, 0)



async def test_one_timer_pings_every_socket_once_per_interval(settings, db):
    """The app's pinger holds every acknowledged socket in one of its slices and pings
    them from one timer, which stops once no socket is left; each socket is pinged once
    per interval, the first one interval after its ack."""
    org = await make_org(db)
    quick = create_app(replace(settings, ws_ping_seconds=2.0))
    async with quick.router.lifespan_context(quick):
        pinger = _view(quick).graphql_transport_ws_handler_class.pinger
        assert (pinger.count, pinger.tick) == (2, 1.0)
        token = quick.state.authenticator.mint(org.admin.id)
        async with websocket(quick) as first, websocket(quick) as second:
            acked = []
            for ws in (first, second):
                await ws.send_json({"type": "connection_init", "payload": {"token": token}})
                assert (await ws.receive_json())["type"] == "connection_ack"
                acked.append(time.monotonic())
            assert sum(map(len, pinger.slices)) == 2

            async def pinged(ws: AsyncWebSocketSession) -> list[float]:
                arrivals = []
                for _ in range(2):
                    assert await ws.receive_json(timeout=5) == {"type": "ping"}
                    arrivals.append(time.monotonic())
                    await ws.send_json({"type": "pong"})
                return arrivals

            for at, (ping, again) in zip(acked, await asyncio.gather(
                    pinged(first), pinged(second)), strict=True):
                # One interval after the ack, give or take the tick it joined in (and a
                # busy machine's delays): not at the next tick, and once per interval.
                assert 0.9 <= ping - at <= 3.5
                assert 1.0 <= again - ping <= 3.5
        for _ in range(100):
            if pinger._timer is None:
                break
            await asyncio.sleep(0.05)
        assert pinger.slices == [{}, {}]
        assert pinger._timer is None


async def test_a_served_graphql_socket_is_pinged_by_its_protocol_alone(settings, db):
    """Under the server's WebSocket protocol a graphql-transport-ws socket's pings
    (ready-made frames through its gate) replace uvicorn's keepalive ping frames; a
    legacy graphql-ws socket, whose `ka` asks for no answer, keeps them."""
    org = await make_org(db)
    quick = create_app(replace(settings, ws_ping_seconds=0.2))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        quick, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
        ws="server.websocket:LeanWebSocketProtocol", ws_per_message_deflate=False,
        ws_ping_interval=0.1))
    async with quick.router.lifespan_context(quick):
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
                await asyncio.sleep(0.02)
            token = quick.state.authenticator.mint(org.admin.id)
            url = f"ws://127.0.0.1:{port}/graphql"
            async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws, \
                    connect(url, subprotocols=[Subprotocol("graphql-ws")]) as legacy:
                for socket in (ws, legacy):
                    await socket.send(json.dumps({"type": "connection_init",
                                                  "payload": {"token": token}}))
                    assert json.loads(await socket.recv())["type"] == "connection_ack"
                by_protocol = {p.scope["subprotocols"][0]: p
                               for p in server.server_state.connections}
                gate = by_protocol["graphql-transport-ws"].scope["extensions"][FRAMES]
                for _ in range(3):
                    assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "ping"}
                    await ws.send('{"type":"pong"}')
                    # Taken by the protocol, which tells the pinger through the gate.
                    for _ in range(100):
                        if gate.heard:
                            break
                        await asyncio.sleep(0.005)
                    assert gate.heard is True
                # A keepalive runs while a ping is due or a pong awaited.
                transport_ws, legacy_ws = by_protocol["graphql-transport-ws"], \
                    by_protocol["graphql-ws"]
                assert transport_ws.ping_timer is None
                assert transport_ws.pong_timer is None
                assert legacy_ws.ping_timer is not None or legacy_ws.pong_timer is not None
        finally:
            server.should_exit = True
            await serving


async def test_a_bench_subscriber_is_timed_when_its_bytes_arrive() -> None:
    """bench/fanout.py times a delivery when the subscriber's bytes reach its process,
    not when its reader gets round to them: with 10,000 subscribers in one process,
    the reader's time held this process's own queue of parses and wake-ups."""

    async def send_next(ws: ServerConnection) -> None:
        await ws.send('{"id":"1","type":"next","payload":{"data":{}}}')
        await ws.wait_closed()

    async with serve(send_next, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}",
                           create_connection=TimedConnection) as ws:
            await asyncio.sleep(0.5)  # the message arrives meanwhile; nobody reads it
            read_from = time.perf_counter()
            subscriber = Subscriber(ws)
            for _ in range(200):
                if subscriber.arrivals:
                    break
                await asyncio.sleep(0.01)
            subscriber.reader.cancel()
            arrived = ws.arrived  # before the close handshake's bytes
    assert subscriber.arrivals == [arrived]
    assert 0 < arrived < read_from - 0.25, (arrived, read_from)
