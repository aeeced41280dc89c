"""The review portal's ASGI application (Starlette + Jinja2; no JavaScript framework, nothing
loaded from elsewhere).

Every route is declared in ROUTES with the roles that may use it; `guarded` enforces that on the
server before the handler runs: no session → the login page (GET) or 403 (POST); a role not listed,
or a call/finding/appeal/audio of another agent → 404, never the content; a POST without the
session's CSRF token → 403. tests/test_portal_access.py fails for a route without an access test.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from pipeline.audit import ACTION_LABELS_ZH, change_text
from pipeline.config import Settings
from pipeline.errors import CallQAError
from pipeline.portal import store as portal_store
from pipeline.portal.auth import COOKIE, Session, Sessions, failure_delay, password_matches
from pipeline.portal.months import TEMPLATES, LoadedMonth, Months, in_background
from pipeline.portal.store import ROLE_LABELS_ZH, User
from pipeline.reports.audio import AudioCopy, review_audio
from pipeline.reports.render import page_name
from pipeline.reports.tables import MONTH_TABLES, month_table_bytes

Handler = Callable[[Request, Session, FormData], Response]
ALL = ("agent", "supervisor", "manager")
WORKERS = 6  # requests handled at once (the others wait in the event loop)
FLUSH_S = 1.0  # page-view audit rows wait at most this long (pipeline/portal/store.py)
T = TypeVar("T")


class NotFoundError(Exception):
    """Answered 404 — also for what exists but the user may not see (nothing is told either way)."""


@dataclass(frozen=True)
class Access:
    method: str
    path: str
    roles: tuple[str, ...] | None  # None: public (the login page)


class Portal:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        portal_store.prepare(settings)
        self.sessions = Sessions(portal_store.secret(settings), settings.portal, settings)
        self.months = Months(settings, portal_store._LOCK)
        self._cache: dict[object, tuple[float, object]] = {}
        # Pages are Python work under one interpreter lock: more threads add no speed, and with 40 the
        # one reading a month again got a fortieth of the CPU (measured: 30 s stalls, bench/portal_load.py).
        self.workers = anyio.CapacityLimiter(WORKERS)
        self._cache_lock = threading.Lock()
        self._generation = 0
        self._loading: dict[object, threading.Lock] = {}
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)
        self.env.filters["score"] = lambda v, d=1: "—" if v is None else f"{v:.{d}f}"
        self.env.filters["dt"] = lambda v: f"{v:%Y-%m-%d %H:%M}" if v else "—"
        self.env.filters["page"] = page_name
        self.env.globals.update(
            role_labels=ROLE_LABELS_ZH, action_labels=ACTION_LABELS_ZH, change_text=change_text
        )

    # ---- plumbing --------------------------------------------------------------------------------

    def page(self, template: str, session: Session, **values: object) -> HTMLResponse:
        body = self.env.get_template(template).render(user=session.user, csrf=session.csrf, **values)
        return HTMLResponse(body)

    def finish(self, session: Session, response: Response) -> Response:
        response.set_cookie(
            COOKIE,
            self.sessions.cookie_value(session),
            max_age=self.sessions.idle_s,
            httponly=True,
            samesite="strict",
            secure=self.settings.portal.secure_cookies,
            path="/",
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; media-src 'self'; form-action 'self'; frame-ancestors 'none'"
        )
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    def guarded(
        self, roles: tuple[str, ...] | None, handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            form = await request.form() if request.method == "POST" else FormData()
            # sessions, the store and rendering block: they run in the thread pool, never in the loop
            return await anyio.to_thread.run_sync(answer, request, form, limiter=self.workers)

        def answer(request: Request, form: FormData) -> Response:
            session = self.sessions.read(request.cookies.get(COOKIE))
            if request.method == "POST" and not session.csrf_ok(str(form.get("csrf", ""))):
                return self.finish(
                    session, PlainTextResponse("表单已失效（CSRF 校验失败），请刷新页面后重试", 403)
                )
            if roles is not None:
                if session.user is None:
                    if request.method == "GET":
                        return self.finish(session, RedirectResponse("/login", 303))
                    return self.finish(session, PlainTextResponse("请先登录", 403))
                if session.user.role not in roles:
                    return self.finish(session, _not_found())
            try:
                response = handler(request, session, form)
            except NotFoundError:
                response = _not_found()
            except CallQAError as exc:
                response = PlainTextResponse(str(exc), 400)
            # login and logout hand back the session that follows them
            return self.finish(getattr(response, "portal_session", session), response)

        return endpoint

    def audit(
        self, request: Request, session: Session, action: str, target: str | None, **details: object
    ) -> None:
        who = session.user.name if session.user else "（未登录）"
        where = request.client.host if request.client else "?"
        line = f"{request.method} {request.url.path}"
        portal_store.queue_audit(action, who, where, line, target, details or None)

    def flush_audit(self) -> None:
        if portal_store.pending_audit():
            with portal_store.opened(self.settings, write=True):
                pass  # a writing open writes the pending rows

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Pending audit rows are written within FLUSH_S, and when the portal stops."""

        async def flusher() -> None:
            while True:
                await asyncio.sleep(FLUSH_S)
                try:
                    await run_in_threadpool(self.flush_audit)
                except CallQAError:  # the store busy past the wait: the rows stay queued
                    continue

        task = asyncio.create_task(flusher())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(self.flush_audit)

    def cached(self, key: object, load: Callable[[], T]) -> T:
        """What the portal itself changes (appeals, decisions) or rarely changes (report times, call
        lists), kept for portal.month_cache_s; `changed()` drops it all."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.settings.portal.month_cache_s:
            return hit[1]  # type: ignore[no-any-return]
        with self._cache_lock:
            loading = self._loading.setdefault(key, threading.Lock())
        if hit is not None:  # read again in the background; the previous value meanwhile
            in_background(loading, lambda: self._refresh(key, load))
            return hit[1]  # type: ignore[no-any-return]
        with loading:  # one request reads it, the others wait for that (no stampede on the store)
            again = self._cache.get(key)
            if again is not None and again is not hit:
                return again[1]  # type: ignore[no-any-return]
            value = load()
            self._cache[key] = (time.monotonic(), value)
            return value

    def _refresh(self, key: object, load: Callable[[], object]) -> None:
        generation = self._generation
        value = load()
        if generation == self._generation:  # not read before a change that came meanwhile
            self._cache[key] = (time.monotonic(), value)

    def changed(self, month: str | None) -> None:
        self._generation += 1
        self._cache.clear()
        if month:
            self.months.forget(month)

    def read(self, query: Callable[..., T], *args: object) -> T:
        with portal_store.opened(self.settings) as store:
            return query(store, *args)

    def all_appeals(self) -> list[dict]:
        return self.cached("appeals", lambda: self.read(portal_store.appeals))

    def month(self, label: str) -> LoadedMonth:
        try:
            return self.months.get(label)
        except CallQAError as exc:
            raise NotFoundError from exc

    def may_see(self, user: User, agent_id: str | None) -> bool:
        return user.role in ("supervisor", "manager") or (
            user.agent_id is not None and user.agent_id == agent_id
        )

    # ---- login -----------------------------------------------------------------------------------

    def login_form(self, request: Request, session: Session, form: FormData) -> Response:
        return self.page("login.html", session, error=None, name="")

    def login(self, request: Request, session: Session, form: FormData) -> Response:
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        cfg = self.settings.portal
        with portal_store.opened(self.settings, write=True) as store:
            locked = portal_store.locked_until(store, name)
            account = portal_store.user(store, name)
        if locked is None:
            ok = password_matches(account, password)
            if ok and account is not None and not account.disabled:
                with portal_store.opened(self.settings, write=True) as store:
                    portal_store.clear_failures(store, name)
                self.sessions.forget()
                new = self.sessions.login(account)
                self.audit(request, new, "portal-login", None)
                response = RedirectResponse("/", 303)
                response.portal_session = new  # type: ignore[attr-defined]
                return response
            with portal_store.opened(self.settings, write=True) as store:
                failures = portal_store.add_failure(store, name, cfg.login_lock_after, cfg.login_lock_minutes)
                locked = portal_store.locked_until(store, name)
            time.sleep(failure_delay(failures, cfg.login_delay_s))
        self.audit(request, session, "portal-login-failed", None, name=name, locked=locked is not None)
        error = (
            f"登录失败次数过多，账号已暂时锁定，请于 {locked:%H:%M} 后再试"
            if locked
            else "账号或密码不正确（或账号已停用）"
        )
        response = self.page("login.html", session, error=error, name=name)
        response.status_code = 401
        return response

    def logout(self, request: Request, session: Session, form: FormData) -> Response:
        assert session.user is not None
        with portal_store.opened(self.settings, write=True) as store:
            portal_store.end_sessions(store, session.user.name)
        self.sessions.forget()
        self.audit(request, session, "portal-logout", None)
        response = RedirectResponse("/login", 303)
        response.portal_session = Session(None, secrets.token_urlsafe(24))  # type: ignore[attr-defined]
        return response

    def home(self, request: Request, session: Session, form: FormData) -> Response:
        assert session.user is not None
        return RedirectResponse("/review" if session.user.role == "supervisor" else "/calls", 303)

    # ---- calls, months, audio ---------------------------------------------------------------------

    def calls(self, request: Request, session: Session, form: FormData) -> Response:
        user = session.user
        assert user is not None
        own = user.agent_id if user.role == "agent" else None
        rows = self.cached(("calls", own), lambda: self.read(portal_store.calls_list, own))
        months = sorted({f"{r['started_at']:%Y-%m}" for r in rows if r["started_at"]}, reverse=True)
        return self.page("calls.html", session, calls=rows, months=months)

    def month_page(self, request: Request, session: Session, form: FormData) -> Response:
        user = session.user
        assert user is not None
        loaded = self.month(request.path_params["month"])
        kind, name = request.path_params["kind"], request.path_params["page"]
        common = {
            "user": user,
            "csrf": session.csrf,
            "month": str(loaded.data.report.month),
            "show_ranking": user.role != "agent",  # agents see their own month, not the ranking
        }
        if kind == "ranking.html" and name == "" and user.role in ("supervisor", "manager"):
            self.audit(request, session, "portal-view", f"ranking {loaded.data.report.month}")
            return HTMLResponse(loaded.renderer.ranking("p_ranking.html", **common))
        if kind in MONTH_TABLES and name == "" and user.role in ("supervisor", "manager"):
            self.audit(request, session, "portal-view", f"{kind} {loaded.data.report.month}")
            return Response(
                month_table_bytes(loaded.data.report, kind),
                media_type=MONTH_TABLES[kind],
                headers={"Content-Disposition": f'attachment; filename="{common["month"]}-{kind}"'},
            )
        if kind == "agents":
            agent = loaded.agents_by_page.get(name)
            if agent is None or not self.may_see(user, agent.agent_id):
                raise NotFoundError
            self.audit(request, session, "portal-view", f"agent {agent.agent_id}", month=common["month"])
            filed = [a for a in self.all_appeals() if a["agent_id"] == agent.agent_id]
            return HTMLResponse(loaded.renderer.agent(agent, "p_agent.html", appeals=filed, **common))
        if kind == "calls":
            return self.call_page(request, session, loaded, name, common)
        raise NotFoundError

    def call_page(
        self, request: Request, session: Session, loaded: LoadedMonth, name: str, common: dict
    ) -> Response:
        user = session.user
        assert user is not None
        call = loaded.calls_by_page.get(name)
        if call is None or not self.may_see(user, call.agent_id):
            raise NotFoundError
        self.audit(request, session, "portal-view", call.call_id)
        filed = [a for a in self.all_appeals() if a["call_id"] == call.call_id]
        reported = self.cached(
            ("report", common["month"]), lambda: self.read(portal_store.first_report_at, common["month"])
        )
        window_open = reported is None or (
            time.time() - reported.timestamp() <= self.settings.portal.appeal_window_days * 86400
        )
        mp3 = self._audio_file(call.path, call.sha256, common["month"])
        audio = (
            AudioCopy(f"/audio/{quote(call.call_id, safe='')}", None)
            if mp3.exists() or Path(call.path).is_file()
            else AudioCopy(None, "录音文件不在原位置")
        )
        findings = loaded.renderer.findings_of_call.get(call.call_id, [])
        appealed = {(a["rule_id"], round(a["start_s"] or -1, 1)) for a in filed}
        return HTMLResponse(
            loaded.renderer.call(
                call,
                loaded.data.transcripts.get(call.call_id, ()),
                audio,
                "p_call.html",
                appeals=filed,
                appealable=[
                    f
                    for f in findings
                    if (f.deduction > 0 or f.fatal)
                    and not f.needs_review
                    and (f.rule_id, round(f.start_s if f.start_s is not None else -1, 1)) not in appealed
                ],
                reviewable=[f for f in findings if f.needs_review],
                window_open=window_open,
                window_days=self.settings.portal.appeal_window_days,
                here=request.url.path,
                **common,
            )
        )

    def _audio_file(self, path: str, sha256: str, month: str) -> Path:
        return self.settings.reports_dir / month / "calls" / "audio" / f"{sha256}.mp3"

    def audio(self, request: Request, session: Session, form: FormData) -> Response:
        user = session.user
        assert user is not None
        call_id = request.path_params["call_id"]
        with portal_store.opened(self.settings) as store:
            call = portal_store.call_owner(store, call_id)
        if call is None or not self.may_see(user, call["agent_id"]):
            raise NotFoundError
        month = f"{call['started_at']:%Y-%m}"
        target = self._audio_file(call["path"], call["sha256"], month)
        made = review_audio(Path(call["path"]), call["sha256"], target.parent)
        if made.file is None:
            raise NotFoundError
        if "range" not in request.headers or request.headers["range"].startswith("bytes=0-"):
            self.audit(request, session, "portal-audio", call_id)  # once per playback, not per chunk
        return FileResponse(target, media_type="audio/mpeg")

    # ---- appeals and reviews are in pipeline/portal/decide.py --------------------------------------


def _not_found() -> Response:
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>404</title><p>页面不存在，或您无权查看。</p>", 404
    )


def create_app(settings: Settings) -> Starlette:
    from pipeline.portal.decide import Decisions

    portal = Portal(settings)
    decisions = Decisions(portal)
    sup, agent = ("supervisor",), ("agent",)
    table: list[tuple[Access, Handler]] = [
        (Access("GET", "/login", None), portal.login_form),
        (Access("POST", "/login", None), portal.login),
        (Access("POST", "/logout", ALL), portal.logout),
        (Access("GET", "/", ALL), portal.home),
        (Access("GET", "/calls", ALL), portal.calls),
        (Access("GET", "/m/{month}/{kind}", ("supervisor", "manager")), portal.month_page),
        (Access("GET", "/m/{month}/{kind}/{page}", ALL), portal.month_page),
        (Access("GET", "/audio/{call_id}", ALL), portal.audio),
        (Access("POST", "/appeals", agent), decisions.file_appeal),
        (Access("GET", "/appeals", ("agent", "supervisor")), decisions.appeals_page),
        (Access("POST", "/appeals/{appeal_id:int}/decide", sup), decisions.decide_appeal),
        (Access("GET", "/review", sup), decisions.review_page),
        (Access("POST", "/review", sup), decisions.review),
        (Access("GET", "/audit", sup), decisions.audit_page),
    ]
    routes = []
    for access, handler in table:
        endpoint = portal.guarded(access.roles, handler)
        if access.path == "/m/{month}/{kind}":
            endpoint = _with_empty_page(endpoint)
        routes.append(Route(access.path, endpoint, methods=[access.method]))
    app = Starlette(routes=routes, lifespan=portal.lifespan)
    app.state.access = [access for access, _ in table]
    app.state.portal = portal
    return app


def _with_empty_page(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        request.path_params["page"] = ""
        return await endpoint(request)

    return wrapped
