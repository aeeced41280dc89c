"""The review portal through its HTTP interface (Starlette's test client, no browser): logging in,
CSRF, lockout, session expiry, and who may see what (every route as every role)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from portaldata import PASSWORD, PortalData, build_portal_db, call_url, client_for, csrf_of, login

from pipeline.portal.app import create_app
from pipeline.portal.auth import failure_delay
from pipeline.reports.render import page_name
from pipeline.store import Store


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PortalData, object]]:
    data = build_portal_db(tmp_path_factory.mktemp("portal"))
    yield data, create_app(data.settings)


@pytest.fixture()
def fresh(tmp_path: Path) -> tuple[PortalData, object]:
    data = build_portal_db(tmp_path)
    return data, create_app(data.settings)


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


def test_month_tables_for_managers_and_no_ranking_links_for_agents(shared: tuple[PortalData, object]) -> None:
    data, app = shared
    boss, _ = login(app, "boss")
    for name, starts in (("ranking.xlsx", b"PK"), ("ranking.csv", "工号".encode("utf-8-sig")[:3])):
        r = boss.get(f"/m/2026-11/{name}")
        assert r.status_code == 200 and r.content.startswith(starts), name
        assert f"2026-11-{name}" in r.headers["content-disposition"]
    money = boss.get("/m/2026-11/money_lines.csv").content.decode("utf-8-sig")
    assert money.splitlines()[0].startswith("工号,姓名,奖惩规则")
    agent, _ = login(app, "zhangsan")
    assert agent.get("/m/2026-11/ranking.xlsx").status_code == 404
    own = data.month.audio_calls[0]
    for url in (call_url(own), f"/m/2026-11/agents/{page_name('A01')}"):
        assert "ranking.html" not in agent.get(url).text, url  # a link an agent could only get 404 from
        assert "ranking.html" in boss.get(url).text, url
