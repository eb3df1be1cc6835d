"""Real server processes for tests: `crmgraph` as a user runs it."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import httpx

from server.settings import Settings

CRMGRAPH = str(Path(sys.executable).parent / "crmgraph")
REDIS_TIMEOUT = 5.0

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


class RedisServer:
    """A redis-server that a test may stop and start again on the same port."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--save", "", "--appendonly", "no", "--port", str(self.port),
             "--bind", "127.0.0.1", "--dir", str(self._directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + REDIS_TIMEOUT
        while not self._answers_ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(REDIS_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGRES_USER = "postgres"  # postgres refuses to run as root
POSTGRES_TIMEOUT = 30.0


def postgres_missing() -> str | None:
    """Why a private PostgreSQL server cannot run here, or None when it can."""
    for binary in ("initdb", "pg_ctl", "postgres"):
        if not (POSTGRES_BIN / binary).is_file():
            return f"{POSTGRES_BIN / binary} is not installed"
    try:
        pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        return f"there is no OS user {POSTGRES_USER!r} to run PostgreSQL as"
    return None


class PostgresServer:
    """A PostgreSQL server of a test's own (never the shared one), which the test may
    stop and start again on the same port: a cluster with trust auth in a directory of
    its own, its Unix socket there too. The directory is not under pytest's tmp_path:
    that lies inside a directory only root may enter, and postgres runs as its own user.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"postgresql://{POSTGRES_USER}@127.0.0.1:{port}/postgres"
        self.directory = Path(tempfile.mkdtemp(prefix="crmgraph-pg-"))
        self._data = self.directory / "pgdata"
        self.log = self.directory / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.directory, POSTGRES_USER)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(POSTGRES_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", POSTGRES_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True,
                              timeout=POSTGRES_TIMEOUT * 2)

    def init(self) -> None:
        result = self._run("initdb", "-D", str(self._data), "-U", POSTGRES_USER,
                           "--auth=trust", "--no-sync", "-E", "UTF8")
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")
        result = self._run("pg_ctl", "start", "-w", "-t", str(int(POSTGRES_TIMEOUT)),
                           "-D", str(self._data), "-l", str(self.log), "-o", options)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}: "
                               f"{result.stdout}{result.stderr}\n{log}")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session and stops; ``immediate`` as good as kills it."""
        if (self._data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self._data))

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
