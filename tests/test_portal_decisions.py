"""The review portal's decisions over HTTP: reviews and appeals re-score a call, the month's figures
(the report's) follow, `callqa rescore` keeps people's verdicts, they feed `callqa calibrate`; the
users command and the audit listing; text from the store rendered inert."""

from __future__ import annotations

from pathlib import Path

import pytest
from portaldata import PortalData, build_portal_db, call_url, client_for, csrf_of, login

from pipeline.portal.app import create_app
from pipeline.reports.build import load_month
from pipeline.reports.monthly import Month
from pipeline.reports.render import page_name
from pipeline.rules.rescore import rescore_call
from pipeline.rules.scorecard import REPO_RULES, load_scorecards
from pipeline.store import Store


@pytest.fixture()
def fresh(tmp_path: Path) -> tuple[PortalData, object]:
    data = build_portal_db(tmp_path)
    return data, create_app(data.settings)


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


def test_confirmed_occurrences_stay_within_the_rules_cap() -> None:
    """FORBIDDEN: 5 per occurrence, at most 20 a call. Three deduct, two went to review; confirming
    both may add only what is left under the cap, and voiding one gives its share to the next."""
    from pipeline.decisions import CAP_NOTE, Decision, apply_decisions
    from pipeline.records import Finding

    def occurrence(at: float, review: bool) -> Finding:
        return Finding("FORBIDDEN", False, 0.0 if review else 5.0, at, at + 1, "agent", "喂喂", 0.5, review)

    findings = [occurrence(t, review=t in (20.0, 40.0)) for t in (10.0, 20.0, 30.0, 40.0, 50.0)]
    amount, cap = {"FORBIDDEN": 5.0}.get, {"FORBIDDEN": 20.0}.get
    confirm = [Decision("FORBIDDEN", t, "deducts", "review") for t in (20.0, 40.0)]
    decided = apply_decisions(findings, confirm, amount, cap)
    assert [f.deduction for f in decided] == [5.0, 5.0, 5.0, 5.0, 0.0]
    assert sum(f.deduction for f in decided) == 20.0 and CAP_NOTE in (decided[-1].evidence or "")
    assert apply_decisions(decided, confirm, amount, cap) == decided  # applying again changes nothing
    voided = apply_decisions(decided, [*confirm, Decision("FORBIDDEN", 10.0, "void", "appeal")], amount, cap)
    assert [f.deduction for f in voided] == [0.0, 5.0, 5.0, 5.0, 5.0]
    assert CAP_NOTE not in (voided[-1].evidence or "")
