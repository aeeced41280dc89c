"""Load on the review portal: N logged-in clients browsing at once for D seconds.

    .venv/bin/python bench/portal_load.py [--clients 50] [--seconds 60] [--out bench/results]

The store is the report tests' constructed month (tests/portaldata.py: 106 calls, 5 agents). The
portal runs as `callqa serve` in its own process (one uvicorn worker), the clients in this one
(asyncio + httpx, each with its own session): agents open their own call pages (70 %), their call
list (20 %) and their month page (10 %) back to back, no pause. Reported: p50/p95/max latency per
page kind, errors (anything but 200), requests per second. Results: bench/results/portal-load-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
from portaldata import PASSWORD, build_portal_db  # noqa: E402

from pipeline.portal import store as portal_store  # noqa: E402
from pipeline.portal.auth import hash_password  # noqa: E402
from pipeline.reports.render import page_name  # noqa: E402

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _client(base: str, name: str, urls: dict[str, list[str]], seconds: float, out: dict) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False) as client:
        async with out["login_slots"]:  # argon2 is slow on purpose: a few logins at a time
            token = CSRF.search((await client.get("/login")).text)[1]  # type: ignore[index]
            r = await client.post("/login", data={"csrf": token, "name": name, "password": PASSWORD})
            assert r.status_code == 303, r.text
        # everyone starts browsing together, once all are logged in
        out["logged_in"] += 1
        if out["logged_in"] == out["clients"]:
            # the first page of a month reads and renders it (load_month, as `callqa report`); timed apart
            started = time.perf_counter()
            await client.get(urls["call"][0])
            out["cold_first_page_s"] = round(time.perf_counter() - started, 2)
            out["until"] = time.monotonic() + seconds
            out["started"] = time.perf_counter()
            out["go"].set()
        await out["go"].wait()
        rng = random.Random(name)
        while time.monotonic() < out["until"]:
            pick = rng.random()
            kind = "call" if pick < 0.7 else "calls" if pick < 0.9 else "month"
            started = time.perf_counter()
            try:
                ok = (await client.get(rng.choice(urls[kind]))).status_code == 200
            except httpx.HTTPError:
                ok = False
            took = time.perf_counter() - started
            out["latency"].setdefault(kind, []).append(took)
            if took > out["slowest"][0]:  # when in the run the slowest request started
                out["slowest"] = (took, round(started - out["started"], 1), kind)
            out["errors"] += 0 if ok else 1


async def _browse(base: str, urls_of: dict[str, dict[str, list[str]]], seconds: float) -> dict:
    out: dict = {
        "latency": {},
        "errors": 0,
        "logged_in": 0,
        "clients": len(urls_of),
        "go": asyncio.Event(),
        "login_slots": asyncio.Semaphore(2),
        "slowest": (0.0, 0.0, ""),
        "cold_first_page_s": None,
        "started": 0.0,
    }
    await asyncio.gather(*(_client(base, name, urls, seconds, out) for name, urls in urls_of.items()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: say how busy it was
    work = Path(tempfile.mkdtemp(prefix="portal-load-"))
    data = build_portal_db(work)
    hashed = hash_password(PASSWORD)
    names = [f"agent{i:02d}" for i in range(args.clients)]
    agents = sorted(data.month.calls)
    with portal_store.opened(data.settings, write=True) as store:
        for i, name in enumerate(names):
            portal_store.add_user(store, name, "agent", agents[i % len(agents)], hashed)
    (work / "callqa.toml").write_text(
        f'db = "{data.settings.db}"\nreports_dir = "{data.settings.reports_dir}"\n', encoding="utf-8"
    )
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLQA_CONFIG": str(work / "callqa.toml")}
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port)], cwd=work, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        urls_of = {
            name: {
                "call": [
                    f"/m/2026-11/calls/{page_name(c)}" for c in data.month.calls[agents[i % len(agents)]]
                ],
                "calls": ["/calls"],
                "month": [f"/m/2026-11/agents/{page_name(agents[i % len(agents)])}"],
            }
            for i, name in enumerate(names)
        }
        result = asyncio.run(_browse(base, urls_of, args.seconds))
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()

    stamp = datetime.now().strftime("%Y-%m-%d")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_before": load_before,
        "clients": args.clients,
        "seconds": args.seconds,
        "requests": sum(len(v) for v in result["latency"].values()),
        "errors": result["errors"],
        "cold_first_page_s": result["cold_first_page_s"],
        "slowest_request": {
            "seconds": round(result["slowest"][0], 2),
            "started_at_s": result["slowest"][1],
            "page": result["slowest"][2],
        },
        "requests_per_s": round(sum(len(v) for v in result["latency"].values()) / args.seconds, 1),
        "pages": {
            kind: {
                "requests": len(v),
                "p50_ms": round(1000 * statistics.median(v), 1),
                "p95_ms": round(1000 * _quantile(v, 0.95), 1),
                "max_ms": round(1000 * max(v), 1),
            }
            for kind, v in sorted(result["latency"].items())
        },
    }
    (args.out / f"portal-load-{stamp}.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    lines = [
        f"# Portal load, {summary['date']}",
        "",
        f"{args.clients} logged-in clients browsing without pause for {args.seconds:g} s against one "
        f"`callqa serve` process on {summary['machine']} (clients in the same machine). "
        f"{summary['requests']} requests, {summary['errors']} errors, {summary['requests_per_s']} requests/s. "
        f"Load average before the run (1/5/15 min): {load_before}.",
        f"The first page of the month before the run (reads and renders the month, as `callqa report`) "
        f"took {summary['cold_first_page_s']} s. "
        f"The slowest request ({summary['slowest_request']['seconds']} s, {summary['slowest_request']['page']}) "
        f"started {summary['slowest_request']['started_at_s']} s into the run.",
        "",
        "| page | requests | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
        *(
            f"| {kind} | {p['requests']} | {p['p50_ms']} | {p['p95_ms']} | {p['max_ms']} |"
            for kind, p in summary["pages"].items()
        ),
    ]
    (args.out / f"portal-load-{stamp}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
