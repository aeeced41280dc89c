"""Appeals (申诉) and reviews in the portal: an agent files, a supervisor decides; a decision re-scores
the call from its stored findings (pipeline/decisions.py; no ASR), keeps the old score in the
history, drops the month's cached figures, and is audited with the score before and after."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pipeline.decisions import record_decision, same_finding
from pipeline.errors import CallQAError
from pipeline.portal import store as portal_store
from pipeline.portal.auth import Session
from pipeline.portal.months import month_of
from pipeline.process import scorecards
from pipeline.reports.render import page_name
from pipeline.rules.scorecard import card_for_call

if TYPE_CHECKING:
    from pipeline.portal.app import Portal

MAX_TEXT = 2000


def _start(value: object) -> float | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise CallQAError("时间格式不对") from exc


def _text(value: object, what: str, required: bool = True) -> str:
    text = str(value or "").strip()[:MAX_TEXT]
    if required and not text:
        raise CallQAError(f"请填写{what}")
    return text


class Decisions:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.settings = portal.settings

    def _call_url(self, call_id: str, month: str) -> str:
        return f"/m/{month}/calls/{page_name(call_id)}"

    def file_appeal(self, request: Request, session: Session, form: FormData) -> Response:
        from pipeline.portal.app import NotFoundError

        user = session.user
        assert user is not None
        call_id = str(form.get("call_id", ""))
        rule_id, start_s = str(form.get("rule_id", "")), _start(form.get("start_s"))
        reason = _text(form.get("reason"), "申诉理由")
        with portal_store.opened(self.settings, write=True) as store:
            call = portal_store.call_owner(store, call_id)
            if call is None or call["agent_id"] != user.agent_id:
                raise NotFoundError
            month = month_of(store, call_id) or ""
            reported = portal_store.first_report_at(store, month)
            if (
                reported is not None
                and time.time() - reported.timestamp() > self.settings.portal.appeal_window_days * 86400
            ):
                raise CallQAError(
                    f"{month} 的申诉期（月报生成后 {self.settings.portal.appeal_window_days:g} 天）已过"
                )
            current = store.current_score(call_id)
            finding = next(
                (
                    f
                    for f in (current.findings if current else ())
                    if same_finding(f, rule_id, start_s)
                    and not f.passed
                    and not f.needs_review
                    and (f.deduction > 0 or f.fatal)
                ),
                None,
            )
            if finding is None:
                raise NotFoundError
            appeal_id = portal_store.file_appeal(
                store,
                call_id,
                rule_id,
                start_s,
                finding.title or rule_id,
                finding.deduction,
                call["agent_id"],
                user.name,
                reason,
            )
            if appeal_id is not None:
                portal_store.audit(
                    store,
                    "appeal",
                    user.name,
                    _client(request),
                    f"POST {request.url.path}",
                    call_id,
                    {
                        "appeal_id": appeal_id,
                        "rule_id": rule_id,
                        "start_s": start_s,
                        "deduction": finding.deduction,
                    },
                )
        self.portal.changed(None)
        return RedirectResponse(self._call_url(call_id, month) + "#appeals", 303)

    def appeals_page(self, request: Request, session: Session, form: FormData) -> Response:
        user = session.user
        assert user is not None
        with portal_store.opened(self.settings) as store:
            rows = portal_store.appeals(store, agent_id=user.agent_id if user.role == "agent" else None)
            for row in rows:
                row["month"] = month_of(store, row["call_id"]) or ""
        return self.portal.page("appeals.html", session, appeals=rows)

    def decide_appeal(self, request: Request, session: Session, form: FormData) -> Response:
        from pipeline.portal.app import NotFoundError

        user = session.user
        assert user is not None
        outcome = str(form.get("outcome", ""))
        if outcome not in ("uphold", "overturn"):
            raise CallQAError("请选择维持或撤销")
        comment = _text(form.get("comment"), "处理意见", required=outcome == "overturn")
        appeal_id = int(request.path_params["appeal_id"])
        cards = scorecards(self.settings)
        with portal_store.opened(self.settings, write=True) as store:
            appeal = portal_store.appeal(store, appeal_id)
            if appeal is None:
                raise NotFoundError
            if appeal["state"] != "open":
                raise CallQAError(f"申诉 {appeal_id} 已处理")
            call_id = appeal["call_id"]
            before = store.current_score(call_id)
            after = before.score if before else None
            if outcome == "overturn":
                meta = store.load_meta(call_id)
                assert meta is not None
                decided = record_decision(
                    store,
                    call_id,
                    appeal["rule_id"],
                    appeal["start_s"],
                    "void",
                    "appeal",
                    user.name,
                    card_for_call(meta, cards),
                    comment,
                    appeal_id,
                )
                after = decided.after
            state = "overturned" if outcome == "overturn" else "upheld"
            portal_store.close_appeal(
                store, appeal_id, state, user.name, comment, before.score if before else None, after
            )
            month = month_of(store, call_id) or ""
            portal_store.audit(
                store,
                "appeal-decision",
                user.name,
                _client(request),
                f"POST {request.url.path}",
                call_id,
                {
                    "appeal_id": appeal_id,
                    "decision": state,
                    "rule_id": appeal["rule_id"],
                    "score_before": before.score if before else None,
                    "score_after": after,
                    "comment": comment,
                },
            )
        self.portal.changed(month)
        return RedirectResponse(_back(form.get("back"), "/appeals"), 303)

    def review_page(self, request: Request, session: Session, form: FormData) -> Response:
        with portal_store.opened(self.settings) as store:
            rows = portal_store.review_queue(store)
            for row in rows:
                row["month"] = f"{row['started_at']:%Y-%m}" if row["started_at"] else ""
            open_appeals = [a for a in portal_store.appeals(store) if a["state"] == "open"]
        return self.portal.page("review.html", session, findings=rows, open_appeals=len(open_appeals))

    def review(self, request: Request, session: Session, form: FormData) -> Response:
        from pipeline.portal.app import NotFoundError

        user = session.user
        assert user is not None
        call_id, rule_id, start_s = (
            str(form.get("call_id", "")),
            str(form.get("rule_id", "")),
            _start(form.get("start_s")),
        )
        verdict = {"confirm": "deducts", "reject": "void"}.get(str(form.get("verdict", "")))
        if verdict is None:
            raise CallQAError("请选择确认或驳回")
        comment = _text(form.get("comment"), "意见", required=False) or None
        cards = scorecards(self.settings)
        with portal_store.opened(self.settings, write=True) as store:
            current = store.current_score(call_id)
            if current is None or not any(
                same_finding(f, rule_id, start_s) and f.needs_review for f in current.findings
            ):
                raise NotFoundError
            meta = store.load_meta(call_id)
            assert meta is not None
            decided = record_decision(
                store,
                call_id,
                rule_id,
                start_s,
                verdict,
                "review",
                user.name,
                card_for_call(meta, cards),
                comment,
            )
            month = month_of(store, call_id) or ""
            portal_store.audit(
                store,
                "review",
                user.name,
                _client(request),
                f"POST {request.url.path}",
                call_id,
                {
                    "rule_id": rule_id,
                    "start_s": start_s,
                    "decision": "confirm" if verdict == "deducts" else "reject",
                    "score_before": decided.before,
                    "score_after": decided.after,
                },
            )
        self.portal.changed(month)
        return RedirectResponse(_back(form.get("back"), "/review"), 303)

    def audit_page(self, request: Request, session: Session, form: FormData) -> Response:
        with portal_store.opened(self.settings, write=True) as store:  # writes the pending rows first
            rows = portal_store.audit_rows(store)
        return self.portal.page("audit.html", session, rows=rows)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _back(value: object, default: str) -> str:
    """Where to go after a decision: a path on this site only (never another host)."""
    back = str(value or "")
    return back if back.startswith("/") and not back.startswith("//") and "\\" not in back else default
