"""Real server processes for tests: `crmgraph` as a user runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import httpx

from server.settings import Settings

CRMGRAPH = str(Path(sys.executable).parent / "crmgraph")
# Every setting the server reads: a test's process gets only the ones it names.
SETTINGS = tuple(f.name.upper() for f in fields(Settings))


def server_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    return env | values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CRMGRAPH, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@contextmanager
def serving(env: dict[str, str], cwd: Path, *extra: str) -> Iterator[tuple[str, list[str]]]:
    """Start `crmgraph serve`, wait until it is ready, yield its URL and what it printed."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen([CRMGRAPH, "serve", "--port", str(port), *extra], env=env,
                                   cwd=cwd, stdout=output, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "not ready in 90 seconds:\n" + log.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url, log.read_text().splitlines()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
