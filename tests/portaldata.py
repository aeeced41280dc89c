"""A filled store for the portal tests, without speech recognition: the report tests' constructed
month (tests/fixtures/reports/monthdata.py, known ranking and money), its scores registered under the
project's scorecard, one finding turned into a `needs_review` one, and an account per role."""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fixtures.reports.monthdata import Month, build
from starlette.testclient import TestClient

from pipeline.config import PortalConfig, Settings
from pipeline.portal import store as portal_store
from pipeline.portal.auth import hash_password
from pipeline.reports.render import page_name
from pipeline.rules.scorecard import REPO_RULES, load_scorecards
from pipeline.store import Store

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "recordings_sample" / "1005_20261121-153000.mp3"
PASSWORD = "正确的密码-2026"
USERS = {  # name: (role, agent id)
    "zhangsan": ("agent", "A01"),
    "lisi": ("agent", "A02"),
    "qa": ("supervisor", None),
    "boss": ("manager", None),
}


@dataclass(frozen=True)
class PortalData:
    settings: Settings
    month: Month
    review_call: str  # an A02 call whose RATE finding waits for review


_TEMPLATE: list[tuple[Path, Month, str]] = []  # built once per test process, copied for each test


def build_portal_db(work: Path, **portal: object) -> PortalData:
    """A fresh copy of the portal's test store in `work` (the first call builds it)."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="portal-template-"))
        atexit.register(shutil.rmtree, folder, True)
        _TEMPLATE.append(_build(folder))
    template, month, review_call = _TEMPLATE[0]
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, work / "qa.duckdb")
    settings = Settings(
        db=work / "qa.duckdb",
        reports_dir=work / "reports",
        portal=PortalConfig(login_delay_s=0.01, **portal),  # type: ignore[arg-type]
    )
    return PortalData(settings, month, review_call)


def _build(work: Path) -> tuple[Path, Month, str]:
    db = work / "qa.duckdb"
    month = build(db, work, audio=RECORDING)  # the two real recordings stay in `work`
    card = next(c for c in load_scorecards(REPO_RULES) if c.spec.applies_to is None)
    with Store(db) as store:
        # the constructed scores name scorecard 'h1': register it as the project's default card
        store.db.execute(
            "INSERT INTO scorecards VALUES ('h1', ?, ?, ?, now()) ON CONFLICT DO NOTHING",
            [card.name, str(card.path), card.content],
        )
        review_call = month.calls["A02"][3]
        # A02's calls fail RATE (−5); this one's finding waits for a person instead (score 100)
        store.db.execute(
            "UPDATE findings SET needs_review = true, deduction = 0, "
            "evidence = '语速偏快（待人工复核，确认后扣 5 分）' WHERE call_id = ? AND rule_id = 'RATE'",
            [review_call],
        )
        store.db.execute("UPDATE scores SET score = 100 WHERE call_id = ? AND is_current", [review_call])
    settings = Settings(db=db, reports_dir=work / "reports")
    portal_store.prepare(settings)
    hashed = hash_password(PASSWORD)
    with portal_store.opened(settings, write=True) as store:
        for name, (role, agent_id) in USERS.items():
            portal_store.add_user(store, name, role, agent_id, hashed)
    return db, month, review_call


# ---- driving the app over HTTP (Starlette's test client) ----------------------------------------

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def client_for(app: object) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)  # type: ignore[arg-type]


def csrf_of(client: TestClient, path: str = "/login") -> str:
    found = CSRF.search(client.get(path).text)
    assert found, path
    return found[1]


def login(app: object, name: str, password: str = PASSWORD) -> tuple[TestClient, str]:
    client = client_for(app)
    response = client.post("/login", data={"csrf": csrf_of(client), "name": name, "password": password})
    assert response.status_code == 303, response.text
    return client, csrf_of(client, "/calls")


def call_url(call_id: str) -> str:
    return f"/m/2026-11/calls/{page_name(call_id)}"
