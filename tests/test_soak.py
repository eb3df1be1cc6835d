"""The soak script (bench/soak.py) at a small scale: subscribers that drop and resume
on one server process, phase moves on another, the broker restarted meanwhile; every
subscription gets every event once and in order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import POSTGRES_URL, scratch_database

ROOT = Path(__file__).parent.parent


@pytest.mark.skipif(POSTGRES_URL is None, reason="the soak runs on PostgreSQL "
                    "(TEST_DATABASE_URL)")
def test_nothing_is_lost_or_repeated_through_broker_restarts_and_reconnects(tmp_path: Path):
    out = tmp_path / "soak.json"
    with scratch_database("postgresql", "crmgraph_soak", tmp_path, migrate=False) as url:
        finished = subprocess.run(
            [sys.executable, "-m", "bench.soak", "--database-url", url, "--duration", "15",
             "--subscriptions", "30", "--connections", "3", "--rate", "4", "--restarts", "2",
             "--outage", "2", "--churn", "4", "--sample-seconds", "5", "--json", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    result = json.loads(out.read_text())
    assert result["moves"] >= 20, result
    assert result["events"] == result["moves"], result
    assert result["delivered"] == result["expected"] == result["events"] * 30, result
    assert result["lost"] == result["duplicated"] == result["out_of_order"] == 0, result
    assert result["dropped"] > 0, result
    assert result["broker_restarts"] == 2, result
