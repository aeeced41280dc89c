"""The review portal through its HTTP interface (Starlette's test client, no browser): logging in,
CSRF, lockout, session expiry; who may see what (every route as every role); reviews and appeals
that re-score a call, and the month's figures the report agrees with."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from portaldata import PASSWORD, PortalData, build_portal_db
from starlette.testclient import TestClient

from pipeline.portal.app import create_app
from pipeline.portal.auth import failure_delay
from pipeline.reports.build import load_month
from pipeline.reports.monthly import Month
from pipeline.reports.render import page_name
from pipeline.rules.rescore import rescore_call
from pipeline.rules.scorecard import REPO_RULES, load_scorecards
from pipeline.store import Store

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


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PortalData, object]]:
    data = build_portal_db(tmp_path_factory.mktemp("portal"))
    yield data, create_app(data.settings)


@pytest.fixture()
def fresh(tmp_path: Path) -> tuple[PortalData, object]:
    data = build_portal_db(tmp_path)
    return data, create_app(data.settings)


def call_url(call_id: str) -> str:
    return f"/m/2026-11/calls/{page_name(call_id)}"


# ---- logging in ---------------------------------------------------------------------------------


def test_login_wrong_password_then_lock(fresh: tuple[PortalData, object]) -> None:
    _, app = fresh
    client = client_for(app)
    token = csrf_of(client)
    for attempt in range(1, 5):
        r = client.post("/login", data={"csrf": token, "name": "qa", "password": "wrong"})
        assert r.status_code == 401 and "账号或密码不正确" in r.text, attempt
    r = client.post("/login", data={"csrf": token, "name": "qa", "password": "wrong"})
    assert r.status_code == 401 and "已暂时锁定" in r.text
    # locked: even the right password is refused now
    r = client.post("/login", data={"csrf": token, "name": "qa", "password": PASSWORD})
    assert r.status_code == 401 and "已暂时锁定" in r.text
    # an unknown name gets the same answers (nothing tells which names exist)
    r = client.post("/login", data={"csrf": token, "name": "nobody", "password": "x"})
    assert r.status_code == 401 and "账号或密码不正确" in r.text
    assert failure_delay(1, 0.5) == 0.5 and failure_delay(3, 0.5) == 2.0 and failure_delay(10, 0.5) == 8.0


def test_lock_expires(tmp_path: Path) -> None:
    data = build_portal_db(tmp_path, login_lock_after=2, login_lock_minutes=0.02)  # 1.2 s
    app = create_app(data.settings)
    client = client_for(app)
    token = csrf_of(client)
    for _ in range(2):
        client.post("/login", data={"csrf": token, "name": "boss", "password": "wrong"})
    assert (
        "已暂时锁定" in client.post("/login", data={"csrf": token, "name": "boss", "password": PASSWORD}).text
    )
    time.sleep(1.5)
    assert (
        client.post("/login", data={"csrf": token, "name": "boss", "password": PASSWORD}).status_code == 303
    )


def test_csrf_refused(shared: tuple[PortalData, object]) -> None:
    data, app = shared
    client = client_for(app)
    r = client.post("/login", data={"name": "qa", "password": PASSWORD})
    assert r.status_code == 403
    client, token = login(app, "zhangsan")
    call_id = data.month.calls["A01"][12]
    r = client.post(
        "/appeals", data={"csrf": "forged", "call_id": call_id, "rule_id": "CLOSE-SURVEY", "reason": "x"}
    )
    assert r.status_code == 403
    # a session's token does not work for another session
    other, _ = login(app, "lisi")
    assert other.post("/logout", data={"csrf": token}).status_code == 403


def test_cookie_flags_logout_and_expiry(tmp_path: Path) -> None:
    data = build_portal_db(tmp_path, session_idle_minutes=0.03)  # 1.8 s
    app = create_app(data.settings)
    client, token = login(app, "qa")
    cookie = client.get("/review").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert client.get("/review").status_code == 200
    old_cookie = dict(client.cookies)
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    assert client.get("/review").headers["location"] == "/login"
    replay = client_for(app)
    replay.cookies.update(old_cookie)  # the cookie from before the logout no longer works
    assert replay.get("/review").status_code == 303
    client, _ = login(app, "qa")
    time.sleep(2.5)
    assert client.get("/review").headers.get("location") == "/login"

    secure = build_portal_db(tmp_path / "tls", secure_cookies=True)
    app = create_app(secure.settings)
    assert "secure" in client_for(app).get("/login").headers["set-cookie"].lower()


def test_disabled_account_is_logged_out(fresh: tuple[PortalData, object]) -> None:
    data, app = fresh
    from pipeline.portal import store as portal_store

    client, _ = login(app, "lisi")
    with portal_store.opened(data.settings, write=True) as store:
        portal_store.update_user(store, "lisi", disabled=True)
    assert client.get("/calls").status_code == 200  # the portal reads accounts every 5 s (auth.USER_CACHE_S)
    deadline = time.monotonic() + 10
    while client.get("/calls").status_code != 303:
        assert time.monotonic() < deadline, "a disabled account kept its session"
        time.sleep(0.5)


# ---- who may see what -----------------------------------------------------------------------------

# Every route of the app with what each role gets; test_every_route_has_an_access_test fails for a
# route missing here.
ROLES = ("anonymous", "agent", "other_agent", "supervisor", "manager")


def _matrix(data: PortalData) -> dict[tuple[str, str], tuple[str, dict[str, int]]]:
    own = data.month.audio_calls[0]  # A01's call with a real recording
    own_page = call_url(own)
    ok, hidden = 200, 404
    return {
        ("GET", "/login"): ("/login", dict.fromkeys(ROLES, ok)),
        ("GET", "/"): (
            "/",
            {"anonymous": 303, "agent": 303, "other_agent": 303, "supervisor": 303, "manager": 303},
        ),
        ("GET", "/calls"): (
            "/calls",
            {"anonymous": 303, "agent": ok, "other_agent": ok, "supervisor": ok, "manager": ok},
        ),
        ("GET", "/m/{month}/{kind}"): (
            "/m/2026-11/ranking.html",
            {"anonymous": 303, "agent": hidden, "other_agent": hidden, "supervisor": ok, "manager": ok},
        ),
        ("GET", "/m/{month}/{kind}/{page}"): (
            own_page,
            {"anonymous": 303, "agent": ok, "other_agent": hidden, "supervisor": ok, "manager": ok},
        ),
        ("GET", "/audio/{call_id}"): (
            f"/audio/{own}",
            {"anonymous": 303, "agent": ok, "other_agent": hidden, "supervisor": ok, "manager": ok},
        ),
        ("GET", "/appeals"): (
            "/appeals",
            {"anonymous": 303, "agent": ok, "other_agent": ok, "supervisor": ok, "manager": hidden},
        ),
        ("GET", "/review"): (
            "/review",
            {"anonymous": 303, "agent": hidden, "other_agent": hidden, "supervisor": ok, "manager": hidden},
        ),
        ("GET", "/audit"): (
            "/audit",
            {"anonymous": 303, "agent": hidden, "other_agent": hidden, "supervisor": ok, "manager": hidden},
        ),
        # POSTs with a valid token: the owner may appeal; nobody else reaches the handler
        ("POST", "/appeals"): (
            "/appeals",
            {"anonymous": 403, "agent": 303, "other_agent": hidden, "supervisor": hidden, "manager": hidden},
        ),
        ("POST", "/appeals/{appeal_id:int}/decide"): (
            "/appeals/1/decide",
            {"anonymous": 403, "agent": hidden, "other_agent": hidden, "supervisor": 303, "manager": hidden},
        ),
        ("POST", "/review"): (
            "/review",
            {"anonymous": 403, "agent": hidden, "other_agent": hidden, "supervisor": 303, "manager": hidden},
        ),
        ("POST", "/login"): ("/login", dict.fromkeys(ROLES, 401)),
        ("POST", "/logout"): (
            "/logout",
            {"anonymous": 403, "agent": 303, "other_agent": 303, "supervisor": 303, "manager": 303},
        ),
    }


def test_every_route_has_an_access_test(shared: tuple[PortalData, object]) -> None:
    data, app = shared
    declared = {(a.method, a.path) for a in app.state.access}  # type: ignore[attr-defined]
    assert declared == set(_matrix(data)), declared ^ set(_matrix(data))


def test_each_route_as_each_role(fresh: tuple[PortalData, object]) -> None:
    data, app = fresh
    own = data.month.audio_calls[0]
    sessions = {
        "anonymous": (client_for(app), None),
        "agent": login(app, "zhangsan"),
        "other_agent": login(app, "lisi"),
        "supervisor": login(app, "qa"),
        "manager": login(app, "boss"),
    }
    sessions["anonymous"] = (sessions["anonymous"][0], csrf_of(sessions["anonymous"][0]))
    forms = {
        "/appeals": {
            "call_id": own,
            "rule_id": "OPEN-GREETING",
            "start_s": "2.000",
            "reason": "我说了开场白",
        },
        "/appeals/1/decide": {"outcome": "uphold", "comment": "维持"},
        "/review": {"call_id": data.review_call, "rule_id": "RATE", "start_s": "2.000", "verdict": "reject"},
        "/login": {"name": "qa", "password": "wrong"},
        "/logout": {},
    }
    # A01's own call needs a deducting finding to appeal: make its greeting fail (as the batch would)
    with Store(data.settings.db) as store:
        store.db.execute(
            "UPDATE findings SET passed = false, deduction = 5, rule_id = 'OPEN-GREETING', start_s = 2.0 "
            "WHERE call_id = ? AND idx = 0",
            [own],
        )
    matrix = _matrix(data)
    order = ["anonymous", "other_agent", "manager", "agent", "supervisor"]  # appeal filed before decided
    for (method, _), (url, expected) in matrix.items():
        if method == "POST" and url == "/logout":
            continue
        for role in order:
            client, token = sessions[role]
            r = client.get(url) if method == "GET" else client.post(url, data={"csrf": token, **forms[url]})
            assert r.status_code == expected[role], (method, url, role, r.status_code, r.text[:200])
            if expected[role] == 404:
                assert own not in r.text and "张三" not in r.text
    for role in order[1:]:
        client, token = sessions[role]
        assert client.post("/logout", data={"csrf": token}).status_code == 303


def test_agent_cannot_reach_another_agents_things(shared: tuple[PortalData, object]) -> None:
    data, app = shared
    client, token = login(app, "lisi")  # A02
    theirs = data.month.calls["A01"][12]  # fails CLOSE-SURVEY
    assert client.get(call_url(theirs)).status_code == 404
    assert client.get(f"/audio/{theirs}").status_code == 404
    assert client.get(f"/m/2026-11/agents/{page_name('A01')}").status_code == 404
    assert client.get("/m/2026-11/calls/../ranking.html").status_code == 404
    r = client.post(
        "/appeals", data={"csrf": token, "call_id": theirs, "rule_id": "CLOSE-SURVEY", "reason": "x"}
    )
    assert r.status_code == 404
    assert client.get(f"/m/2026-11/agents/{page_name('A02')}").status_code == 200


def test_audio_is_served_by_range(shared: tuple[PortalData, object]) -> None:
    data, app = shared
    client, _ = login(app, "zhangsan")
    own = data.month.audio_calls[0]
    page = client.get(call_url(own)).text
    assert f'src="/audio/{own}"' in page
    whole = client.get(f"/audio/{own}")
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mpeg"
    part = client.get(f"/audio/{own}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"


# ---- decisions ------------------------------------------------------------------------------------


def _current(settings: object, call_id: str) -> float:
    with Store(settings.db) as store:  # type: ignore[attr-defined]
        score = store.current_score(call_id)
        assert score is not None
        return score.score


def _a02_mean(settings: object) -> float:
    report = load_month(settings, Month.parse("2026-11")).report  # type: ignore[arg-type]
    return next(a.mean for a in report.agents if a.agent_id == "A02")


def test_review_confirm_deducts_and_reject_does_not(fresh: tuple[PortalData, object]) -> None:
    data, app = fresh
    client, token = login(app, "qa")
    assert data.review_call in client.get("/review").text
    assert _current(data.settings, data.review_call) == 100.0
    mean_before = _a02_mean(data.settings)
    form = {
        "csrf": token,
        "call_id": data.review_call,
        "rule_id": "RATE",
        "start_s": "2.000",
        "verdict": "confirm",
    }
    assert client.post("/review", data=form).status_code == 303
    assert _current(data.settings, data.review_call) == 97.0  # RATE deducts 3 in rules/default.yaml
    assert data.review_call not in client.get("/review").text
    assert _a02_mean(data.settings) == pytest.approx(mean_before - 3 / 20)
    with Store(data.settings.db) as store:
        history = store.db.execute(
            "SELECT count(*) FROM scores WHERE call_id = ?", [data.review_call]
        ).fetchone()
        assert history[0] == 2
    # a later `callqa rescore` keeps the person's verdict
    with Store(data.settings.db) as store:
        store.db.execute(
            "UPDATE findings SET needs_review = true, deduction = 0 WHERE call_id = ? AND rule_id = 'RATE'",
            [data.review_call],
        )
    other = next(c for c in data.month.calls["A02"] if c != data.review_call)
    with Store(data.settings.db) as store:
        store.db.execute(
            "UPDATE findings SET needs_review = true, deduction = 0 WHERE call_id = ? AND rule_id = 'RATE'",
            [other],
        )
        store.db.execute("UPDATE scores SET score = 100 WHERE call_id = ? AND is_current", [other])
    form.update(call_id=other, verdict="reject")
    assert client.post("/review", data=form).status_code == 303
    assert _current(data.settings, other) == 100.0
    audit = client.get("/audit").text
    assert other in audit and "100.0 → 100.0" in audit and "100.0 → 97.0" in audit


def test_rescore_applies_decisions(fresh: tuple[PortalData, object]) -> None:
    from pipeline.decisions import Decision, apply_decisions

    data, _ = fresh
    card = next(c for c in load_scorecards(REPO_RULES) if c.spec.applies_to is None)
    with Store(data.settings.db) as store:
        findings = store.current_findings(data.review_call)
    decided = apply_decisions(findings, [Decision("RATE", 2.0, "deducts", "review")], {"RATE": 3.0}.get)
    rate = next(f for f in decided if f.rule_id == "RATE")
    assert not rate.needs_review and rate.deduction == 3.0 and "待人工复核" not in (rate.evidence or "")
    assert (
        apply_decisions(decided, [Decision("RATE", 2.0, "deducts", "review")], {"RATE": 3.0}.get) == decided
    )
    voided = apply_decisions(decided, [Decision("RATE", 2.01, "void", "appeal")], {}.get)
    assert next(f for f in voided if f.rule_id == "RATE").passed
    assert card.spec.rules  # the real scorecard loads (rescore_call below runs its rules)
    with Store(data.settings.db) as store:
        assert rescore_call(store, data.review_call, [card]) is not None


def test_appeal_overturned_changes_score_and_money(fresh: tuple[PortalData, object]) -> None:
    data, app = fresh
    agent, token = login(app, "zhangsan")
    call_id = data.month.calls["A01"][12]  # 90: CLOSE-SURVEY −10
    page = agent.get(call_url(call_id)).text
    assert "提交申诉" in page
    hostile = '<script>alert(1)</script>"{{ 7*7 }}'
    form = {
        "csrf": token,
        "call_id": call_id,
        "rule_id": "CLOSE-SURVEY",
        "start_s": "2.000",
        "reason": hostile,
    }
    assert agent.post("/appeals", data=form).status_code == 303
    assert agent.post("/appeals", data=form).status_code == 303  # sent twice: stored once
    with Store(data.settings.db) as store:
        assert store.db.execute("SELECT count(*) FROM appeals").fetchone()[0] == 1
    page = agent.get(call_url(call_id)).text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&#34;{{ 7*7 }}" in page
    assert "待处理" in page

    qa, qa_token = login(app, "qa")
    assert "&lt;script&gt;" in qa.get("/appeals").text
    r = qa.post(
        "/appeals/1/decide", data={"csrf": qa_token, "outcome": "overturn", "comment": "录音中有邀评"}
    )
    assert r.status_code == 303
    assert _current(data.settings, call_id) == 100.0
    page = agent.get(call_url(call_id)).text
    assert "已撤销扣分" in page and "90.0 → 100.0" in page
    report = load_month(data.settings, Month.parse("2026-11")).report
    a01 = next(a for a in report.agents if a.agent_id == "A01")
    assert a01.mean == pytest.approx(95.5)
    month_page = agent.get(f"/m/2026-11/agents/{page_name('A01')}").text
    assert "95.50" in month_page
    assert qa.post("/appeals/1/decide", data={"csrf": qa_token, "outcome": "uphold"}).status_code == 400


def test_appeal_window_closes(tmp_path: Path) -> None:
    from pipeline.audit import record

    data = build_portal_db(tmp_path, appeal_window_days=0.0)
    record(data.settings, "report", "callqa report", "reports/2026-11", 1, True, {"month": "2026-11"})
    app = create_app(data.settings)
    agent, token = login(app, "zhangsan")
    call_id = data.month.calls["A01"][12]
    assert "申诉期已过" in agent.get(call_url(call_id)).text
    form = {"csrf": token, "call_id": call_id, "rule_id": "CLOSE-SURVEY", "start_s": "2.000", "reason": "x"}
    assert agent.post("/appeals", data=form).status_code == 400


def test_users_command_and_audit_listing(
    fresh: tuple[PortalData, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from pipeline.cli import main

    data, app = fresh
    db = str(data.settings.db)
    monkeypatch.setattr("sys.stdin", io.StringIO("另一个密码-123\n"))
    assert (
        main(
            ["users", "add", "wangwu", "--role", "agent", "--agent-id", "A03", "--password-stdin", "--db", db]
        )
        == 0
    )
    assert main(["users", "add", "bad", "--role", "agent", "--password-stdin", "--db", db]) == 2  # no 工号
    assert login(app, "wangwu", "另一个密码-123")[0].get("/calls").status_code == 200
    assert main(["users", "disable", "wangwu", "--db", db]) == 0
    client = client_for(app)
    r = client.post("/login", data={"csrf": csrf_of(client), "name": "wangwu", "password": "另一个密码-123"})
    assert r.status_code == 401
    monkeypatch.setattr("sys.stdin", io.StringIO("第三个密码-456\n"))
    assert main(["users", "reset", "wangwu", "--password-stdin", "--db", db]) == 0
    assert login(app, "wangwu", "第三个密码-456")[0].get("/calls").status_code == 200

    qa, token = login(app, "qa")
    form = {
        "csrf": token,
        "call_id": data.review_call,
        "rule_id": "RATE",
        "start_s": "2.000",
        "verdict": "confirm",
    }
    assert qa.post("/review", data=form).status_code == 303
    capsys.readouterr()
    assert main(["audit", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "添加账号" in out and "停用账号" in out and "平台登录失败" in out
    review = next(line for line in out.splitlines() if "人工复核" in line)
    assert "portal:qa@" in review and data.review_call in review and "得分 100 → 97" in review


HOSTILE = '<script>alert("x")</script>\'{{ 7*7 }}{% raw %}'


def test_hostile_store_text_renders_as_text(fresh: tuple[PortalData, object]) -> None:
    data, app = fresh
    own = data.month.audio_calls[0]
    with Store(data.settings.db) as store:
        store.db.execute(
            "UPDATE calls SET agent_name = ?, path = '/rec/' || ? || call_id || '.wav' WHERE agent_id = 'A01'",
            [HOSTILE, HOSTILE],
        )
        store.db.execute(
            "UPDATE utterances SET text = ? WHERE call_id = ? AND idx = 1", [f"客户说{HOSTILE}", own]
        )
        store.db.execute("UPDATE findings SET evidence = ? WHERE call_id = ? AND idx = 0", [HOSTILE, own])
    pages = []
    for name, urls in {
        "zhangsan": ["/calls", call_url(own), f"/m/2026-11/agents/{page_name('A01')}"],
        "qa": ["/calls", "/m/2026-11/ranking.html", call_url(own), "/review", "/audit"],
    }.items():
        client, _ = login(app, name)
        for url in urls:
            r = client.get(url)
            assert r.status_code == 200, url
            pages.append((url, r.text))
    for url, html in pages:
        assert "<script>alert" not in html, url
    escaped = (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;{{ 7*7 }}{% raw %}"  # template syntax as text
    )
    shown = [url for url, html in pages if escaped in html]
    assert {"/calls", call_url(own), "/m/2026-11/ranking.html"} <= set(shown), shown


def test_decisions_are_calibration_labels(
    fresh: tuple[PortalData, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main
    from pipeline.decisions import human_labels

    data, app = fresh
    qa, token = login(app, "qa")
    review = {
        "csrf": token,
        "call_id": data.review_call,
        "rule_id": "RATE",
        "start_s": "2.000",
        "verdict": "confirm",
    }
    assert qa.post("/review", data=review).status_code == 303
    agent, agent_token = login(app, "zhangsan")
    appealed = data.month.calls["A01"][12]
    form = {
        "csrf": agent_token,
        "call_id": appealed,
        "rule_id": "CLOSE-SURVEY",
        "start_s": "2.000",
        "reason": "有",
    }
    assert agent.post("/appeals", data=form).status_code == 303
    assert (
        qa.post(
            "/appeals/1/decide", data={"csrf": token, "outcome": "overturn", "comment": "有邀评"}
        ).status_code
        == 303
    )
    with Store(data.settings.db) as store:
        labels = [(x.call_id, x.rule_id, x.passed) for x in human_labels(store.db)]
    assert sorted(labels) == sorted([(data.review_call, "RATE", False), (appealed, "CLOSE-SURVEY", True)])
    capsys.readouterr()
    assert main(["calibrate", "--portal", "--db", str(data.settings.db)]) == 0
    out = capsys.readouterr().out
    assert "RATE" in out and "CLOSE-SURVEY" in out
    assert main(["calibrate", "--db", str(data.settings.db)]) == 2  # neither a CSV nor --portal
