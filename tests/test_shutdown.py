"""Graceful shutdown of a real server process on SIGTERM: it stops accepting, closes
WebSockets with 1012 (Service Restart, so graphql-ws clients reconnect to another
process), lets a request in flight finish, and exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from models.db import Database
from server.auth import Authenticator
from server.settings import Settings
from tests.databases import BACKENDS, scratch_database
from tests.factories import gid, make_account, make_org
from tests.processes import CRMGRAPH, free_port, server_env

SECRET = "shutdown-secret-0123456789abcdef0123456789"
UPDATE = """mutation($input: UpdateAccountInput!) { updateAccount(input: $input) {
    account { industry version } userErrors { code } } }"""


async def _setup(url: str) -> tuple[str, str]:
    db = Database(url)
    try:
        org = await make_org(db)
        account = await make_account(db, org.admin, name="Kept")
        token = Authenticator(Settings(database_url=url, jwt_secret=SECRET), db).mint(
            org.admin.id)
        return token, gid(account)
    finally:
        await db.dispose()


def _start(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([CRMGRAPH, "serve", "--port", str(port)], env=env, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "the server exited at start"
        assert time.monotonic() < deadline, "the server was not ready in 60 s"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process, port
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


async def _subscribed_then_closed(port: int, token: str, process: subprocess.Popen[bytes]
                                  ) -> int:
    """Subscribe, send SIGTERM, and return the close code the server sent."""
    async with connect(f"ws://127.0.0.1:{port}/graphql",
                       subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { opportunityPhaseChanged { eventId } }"}}))
        await asyncio.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 20)
        assert ws.close_code is not None
        return ws.close_code


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_closes_websockets_with_1012_and_exits_0(backend: str, tmp_path: Path):
    with scratch_database(backend, "crmgraph_shutdown_ws", tmp_path) as url:
        token, _account = asyncio.run(_setup(url))
        process, port = _start(server_env(DATABASE_URL=url, JWT_SECRET=SECRET), tmp_path)
        try:
            code = asyncio.run(_subscribed_then_closed(port, token, process))
            assert process.wait(30) == 0
        finally:
            process.kill()
    assert code == 1012


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="holds a row lock in PostgreSQL "
                    "(TEST_DATABASE_URL) to keep a request in flight")
def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path):
    with scratch_database("postgresql", "crmgraph_shutdown_http", tmp_path) as url:
        token, account = asyncio.run(_setup(url))
        process, port = _start(server_env(DATABASE_URL=url, JWT_SECRET=SECRET,
                                          SHUTDOWN_GRACE_SECONDS="30"), tmp_path)
        try:
            answer = asyncio.run(_in_flight_through_sigterm(url, port, token, account,
                                                            process))
            assert process.wait(30) == 0
        finally:
            process.kill()
    assert answer.status_code == 200
    assert answer.json()["data"]["updateAccount"]["account"] == {
        "industry": "Shipping", "version": 2}


async def _in_flight_through_sigterm(url: str, port: int, token: str, account: str,
                                     process: subprocess.Popen[bytes]) -> httpx.Response:
    db = Database(url)
    answers: list[httpx.Response] = []
    try:
        async with db.engine.connect() as holder:
            # The request waits on this lock: in flight when SIGTERM comes.
            await holder.execute(text("SELECT id FROM accounts FOR UPDATE"))
            request = threading.Thread(target=lambda: answers.append(httpx.post(
                f"http://127.0.0.1:{port}/graphql", timeout=60,
                headers={"Authorization": f"Bearer {token}"},
                json={"query": UPDATE, "variables": {"input": {
                    "id": account, "expectedVersion": 1, "industry": "Shipping"}}})))
            request.start()
            await _until_waiting(db)
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _accepts(port):
                assert time.monotonic() < deadline, "still accepting 10 s after SIGTERM"
                await asyncio.sleep(0.1)
            assert process.poll() is None, "it must wait for the request in flight"
            await holder.rollback()  # the lock goes: the request can finish
        await asyncio.to_thread(request.join, 30)
    finally:
        await db.dispose()
    assert answers, "the request in flight got no answer"
    return answers[0]


async def _until_waiting(db: Database) -> None:
    deadline = time.monotonic() + 20
    while True:
        async with db.engine.connect() as connection:
            waiting = (await connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"))).scalar_one()
        if waiting:
            return
        assert time.monotonic() < deadline, "the request never reached the lock"
        await asyncio.sleep(0.1)
