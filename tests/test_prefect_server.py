"""The schedules really fire: a real Prefect server creates the nightly and monthly runs.

Checking the cron strings is not enough: with SQLAlchemy 2.1 the server's scheduler failed every
minute (`Can't evaluate bulk DML statement`) and never created a scheduled run. This test starts
`prefect server start` on 127.0.0.1 with its own home, serves both deployments with
`python flows.py serve`, and waits for the server to create scheduled runs at the next 02:00 and the
next 1st-of-the-month 06:00 in the centre's time zone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parent.parent
CENTRE = ZoneInfo("Asia/Shanghai")
START_LIMIT_S = 180.0  # first start migrates the database: ~30 s here, more on a busy machine
SCHEDULE_LIMIT_S = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, body: dict | None = None) -> object:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + START_LIMIT_S
        while True:
            assert server.poll() is None, f"prefect server exited:\n{log.read_text()[-3000:]}"
            try:
                if _api(base, "/health") is True:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"prefect server did not start:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        yield base, {**env, "PREFECT_API_URL": base}, log
    finally:
        _stop(server)


def _next_nightly(now: datetime) -> datetime:
    candidate = now.astimezone(CENTRE).replace(hour=2, minute=0, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


def _next_monthly(now: datetime) -> datetime:
    local = now.astimezone(CENTRE)
    candidate = local.replace(day=1, hour=6, minute=0, second=0, microsecond=0)
    if candidate <= now:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        candidate = candidate.replace(year=year, month=month)
    return candidate


def test_the_server_creates_the_nightly_and_monthly_runs_at_the_centres_times(
    prefect_server: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    base, env, server_log = prefect_server
    serve_log = tmp_path / "serve.log"
    now = datetime.now(CENTRE)
    with serve_log.open("w") as out:
        serving = subprocess.Popen(
            [sys.executable, str(ROOT / "flows.py"), "serve"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SCHEDULE_LIMIT_S
        first_run: dict[str, datetime] = {}
        while len(first_run) < 2:
            assert serving.poll() is None, f"flows.py serve exited:\n{serve_log.read_text()[-3000:]}"
            deployments = {d["id"]: d["name"] for d in _api(base, "/deployments/filter", {})}  # type: ignore[union-attr]
            runs = _api(
                base,
                "/flow_runs/filter",
                {
                    "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
                    "sort": "EXPECTED_START_TIME_ASC",
                },
            )
            first_run = {}
            for run in runs:  # type: ignore[union-attr]
                name = deployments.get(run["deployment_id"])
                if name and name not in first_run:
                    first_run[name] = datetime.fromisoformat(
                        run["expected_start_time"].replace("Z", "+00:00")
                    )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no scheduled runs for {sorted(set(deployments.values()) - set(first_run))} after "
                    f"{SCHEDULE_LIMIT_S:.0f} s; server log:\n{server_log.read_text()[-3000:]}"
                )
            time.sleep(2)
    finally:
        _stop(serving)
    assert first_run["nightly-qa"] == _next_nightly(now)
    assert first_run["monthly-report"] == _next_monthly(now)
    assert first_run["nightly-qa"].astimezone(CENTRE).hour == 2
    assert "bulk DML" not in server_log.read_text()
