"""One subscriber that reads nothing while 10,000 events are published: the server's
memory stays bounded, the slow one is closed with 1013, and another subscriber keeps
receiving all along. Real server process, real TCP: the slow client's socket backs up."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from models.db import Database
from subscriptions.outbox import OPPORTUNITY_TOPIC, record_event
from tests.databases import scratch_database
from tests.processes import run, server_env, serving

ADMIN = "ada.lindqvist@demo.crmgraph.dev"
EVENTS = 10_000
# About 1.5 KB a frame (without loading anything): 10,000 of them are far more than the
# kernel buffers between server and client hold, so a client that stops reading backs
# up to the server.
FEED = "subscription { opportunityPhaseChanged { eventId %s } }" % " ".join(  # noqa: UP031
    f"at{i}: changedAt" for i in range(40))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _publish(database_url: str, count: int) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            for _ in range(count):
                await record_event(session, topic=OPPORTUNITY_TOPIC, payload={
                    "kind": "MOVED", "opportunityId": 1, "accountId": 1, "pipelineId": 1,
                    "ownerId": 1, "ownerTeamId": 1, "fromPhaseId": 1, "toPhaseId": 2,
                    "changedById": 1, "changedAt": "2026-01-01T00:00:00+00:00",
                    "amount": "1.00", "amountDelta": "0.00", "currency": "EUR"})
    finally:
        await db.dispose()


async def _subscribe(ws_url: str, token: str, **options: Any):  # type: ignore[no-untyped-def]
    ws = await connect(ws_url, subprotocols=["graphql-transport-ws"], max_size=2**20,
                       **options)
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": FEED}}))
    return ws


class RawSubscriber:
    """A WebSocket client on a plain socket that reads only when told to: while it
    does not, the kernel buffers between it and the server fill and the server's
    sends to it stall, as with a board on a dead-slow network."""

    def __init__(self, url: str, token: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        self.protocol = ClientProtocol(
            parse_uri(url.replace("http://", "ws://") + "/graphql"),
            subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self._read_until(lambda event: isinstance(event, Response))
        self.send({"type": "connection_init", "payload": {"token": token}})
        self._read_until(lambda event: isinstance(event, Frame))
        self.send({"id": "1", "type": "subscribe", "payload": {"query": FEED}})

    def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self._flush()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            self.sock.sendall(data)

    def _read_until(self, done: Any) -> Any:
        while True:
            for event in self.protocol.events_received():
                if done(event):
                    return event
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection without a close frame")
            self.protocol.receive_data(data)

    def drain(self) -> tuple[int, int | None]:
        """Read everything the server sent: how many events, then the close code (None
        when the server dropped the connection without one)."""
        events = 0
        self.sock.settimeout(30)
        while True:
            try:
                frame = self._read_until(lambda event: isinstance(event, Frame))
            except ConnectionError:
                return events, None
            if frame.opcode is Opcode.CLOSE:
                return events, Close.parse(frame.data).code
            if frame.opcode is Opcode.TEXT and json.loads(frame.data)["type"] == "next":
                events += 1


async def _scenario(url: str, pid: int, database_url: str, token: str
                    ) -> tuple[int, int, int, int | None]:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    slow = await asyncio.to_thread(RawSubscriber, url, token)
    fast = await _subscribe(ws_url, token)
    await asyncio.sleep(0.5)
    before = _rss_kib(pid)
    await _publish(database_url, EVENTS)
    received = 0
    while received < EVENTS:
        message = json.loads(await asyncio.wait_for(fast.recv(), 30))
        if message["type"] == "next":
            received += 1
    growth = _rss_kib(pid) - before
    await fast.close()
    slow_events, close_code = await asyncio.to_thread(slow.drain)
    return received, growth, slow_events, close_code


def test_a_slow_subscriber_cannot_grow_memory_or_hold_up_others(tmp_path: Path) -> None:
    with scratch_database("sqlite", "slow_subscriber", tmp_path) as database_url:
        env = server_env(DATABASE_URL=database_url, EVENT_POLL_SECONDS="0.2",
                         SUBSCRIPTION_QUEUE_SIZE="500")
        assert run("seed-demo", env=env, cwd=tmp_path).returncode == 0
        token = run("token", "--email", ADMIN, env=env, cwd=tmp_path).stdout.strip()
        with serving(env, tmp_path) as (url, _):
            pid = int(next(line.split("[")[1].split("]")[0] for line in (
                tmp_path / next(p.name for p in tmp_path.glob("serve-*.log"))
            ).read_text().splitlines() if "Started server process" in line))
            received, growth_kib, slow_events, close_code = asyncio.run(
                _scenario(url, pid, database_url, token))
    assert received == EVENTS
    # The slow one got what fitted in the buffers, and was then let go: with 1013
    # (resubscribe with after) if the server could still say so, else by dropping a
    # connection that had stopped answering pings.
    assert slow_events < EVENTS
    assert close_code in (1013, None)
    # 10,000 events held for the slow client would be tens of MB; bounded is far less.
    assert growth_kib < 40 * 1024, f"server grew by {growth_kib} KiB"
    assert os.getpid() != pid
