"""The portal end to end in a real headless Chromium against `callqa serve` (uvicorn in a child
process on a free 127.0.0.1 port, stopped when the module's tests end): an agent logs in, opens a
call, plays the recording from a finding, files an appeal; a supervisor overturns it; the agent sees
the new score, and the month page the new money — the figures `callqa report` computes. Also a
failed login, the lock after repeated failures, a tampered CSRF token refused, logout, and a session
that ends after its idle timeout but not while it is in use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from portaldata import PASSWORD, PortalData, build_portal_db
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from pipeline.reports.build import load_month
from pipeline.reports.describe import money
from pipeline.reports.monthly import Month
from pipeline.reports.render import page_name
from pipeline.store import Store

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PortalData, str]]:
    work = tmp_path_factory.mktemp("portal-browser")
    data = build_portal_db(work)
    own = data.month.audio_calls[0]
    with Store(data.settings.db) as store:
        # A01's call with a real recording fails its greeting (−20 here), said at 2 s
        store.db.execute(
            "UPDATE findings SET passed = false, deduction = 20, rule_id = 'OPEN-GREETING', "
            "title = '标准开场白', start_s = 2.0, end_s = 3.0 WHERE call_id = ? AND idx = 0",
            [own],
        )
        store.db.execute("UPDATE scores SET score = 80 WHERE call_id = ? AND is_current", [own])
        # the review call back to its plain RATE deduction (A02 at 95.00, as in the report tests)
        store.db.execute(
            "UPDATE findings SET needs_review = false, deduction = 5 WHERE call_id = ? AND rule_id = 'RATE'",
            [data.review_call],
        )
        store.db.execute("UPDATE scores SET score = 95 WHERE call_id = ? AND is_current", [data.review_call])
    with _serving(work, data, "") as base:
        yield data, base


@pytest.fixture(scope="module")
def served_briefly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server whose sessions end after 3 s without a request."""
    work = tmp_path_factory.mktemp("portal-browser-idle")
    data = build_portal_db(work)
    with _serving(work, data, "session_idle_minutes = 0.05\n") as base:
        yield base


@contextmanager
def _serving(work: Path, data: PortalData, portal_settings: str) -> Iterator[str]:
    (work / "callqa.toml").write_text(
        f'db = "{data.settings.db}"\nreports_dir = "{data.settings.reports_dir}"\n'
        "[portal]\nlogin_delay_s = 0.01\nmonth_cache_s = 0\n" + portal_settings,
        encoding="utf-8",
    )
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLQA_CONFIG": str(work / "callqa.toml")}
    server = subprocess.Popen(
        ["timeout", "900", sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/login", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(server.stderr.read().decode() if server.stderr else "") from None
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def _document_replaced(exc: WebDriverException) -> bool:
    """Chromium under load reports an element of a page being replaced as a missing node, not as stale."""
    return isinstance(exc, StaleElementReferenceException) or "does not belong to the document" in str(exc)


def _wait(condition, seconds: float = 15.0) -> object:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = condition()
        except NoSuchElementException:  # the next page still loading
            value = None
        except WebDriverException as exc:
            if not _document_replaced(exc):
                raise
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _submit(browser: WebDriver, button: WebElement) -> None:
    """Click a form's button and wait until the page it leads to has loaded.

    The old page is marked with a window property; a new document has a new window object without it.
    Waiting on the marker rather than on the clicked element going stale avoids Chromium's race in which
    asking about a node of the document being replaced fails with an inspector error instead.
    """
    browser.execute_script("window.__before_submit = true;")
    button.click()

    def new_page_loaded(driver: WebDriver) -> bool:
        try:
            return bool(
                driver.execute_script(
                    "return window.__before_submit === undefined && document.readyState === 'complete';"
                )
            )
        except WebDriverException:  # the script ran while the documents were being swapped
            return False

    WebDriverWait(browser, 20).until(new_page_loaded)


def _login(browser: WebDriver, base: str, name: str, password: str = PASSWORD) -> None:
    for attempt in range(3):
        browser.get(f"{base}/login")
        WebDriverWait(browser, 20).until(
            expected_conditions.presence_of_element_located((By.ID, "login-button"))
        )
        try:
            browser.find_element(By.ID, "name").send_keys(name)
            browser.find_element(By.ID, "password").send_keys(password)
            button = browser.find_element(By.ID, "login-button")
        except WebDriverException as exc:
            # the previous navigation replaced the document between finding an element and typing into it
            if not _document_replaced(exc) or attempt == 2:
                raise
            continue
        _submit(browser, button)
        return


def _logout(browser: WebDriver) -> None:
    _submit(browser, browser.find_element(By.ID, "logout"))
    assert _wait(lambda: browser.current_url.endswith("/login"))


def _money_card(browser: WebDriver) -> str:
    return browser.find_elements(By.CSS_SELECTOR, ".cards .card b")[3].text


def test_login_failure_lockout_csrf_and_logout(served: tuple[PortalData, str], browser: WebDriver) -> None:
    _, base = served
    _login(browser, base, "zhangsan", "wrong-password")
    assert "账号或密码不正确" in browser.find_element(By.ID, "login-error").text
    for _ in range(5):  # the 5th failure in a row locks the name (portal.login_lock_after)
        _login(browser, base, "boss", "wrong-password")
    _login(browser, base, "boss")
    assert "已暂时锁定" in browser.find_element(By.ID, "login-error").text
    # a form whose CSRF token was tampered with is refused
    browser.get(f"{base}/login")
    browser.execute_script("document.querySelector('input[name=csrf]').value = 'forged';")
    browser.find_element(By.ID, "name").send_keys("zhangsan")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    _submit(browser, browser.find_element(By.ID, "login-button"))
    assert "CSRF" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(f"{base}/calls")
    assert browser.current_url.endswith("/login")  # not logged in
    _login(browser, base, "zhangsan")
    assert _wait(lambda: browser.current_url.endswith("/calls"))
    _logout(browser)
    browser.get(f"{base}/calls")
    assert browser.current_url.endswith("/login")  # the session ended


def test_appeal_overturned_end_to_end(served: tuple[PortalData, str], browser: WebDriver) -> None:
    data, base = served
    own = data.month.audio_calls[0]
    month_url = f"{base}/m/2026-11/agents/{page_name('A01')}"

    _login(browser, base, "zhangsan")
    assert _wait(lambda: browser.current_url.endswith("/calls"))
    browser.get(month_url)
    money_before = _money_card(browser)
    browser.get(f"{base}/calls")
    browser.find_element(By.LINK_TEXT, own).click()
    assert "得分 80.0" in browser.find_element(By.CSS_SELECTOR, "header .meta").text

    # playing from the finding: the recording (served by range requests) starts at its evidence
    browser.find_element(By.ID, "finding-1").click()
    assert _wait(
        lambda: browser.execute_script(
            "var a = document.getElementById('player'); return !a.paused && a.currentTime >= 1.9;"
        )
    )

    form = browser.find_element(By.CSS_SELECTOR, "form.appeal-form")
    form.find_element(By.NAME, "reason").send_keys("我在 00:02 说了“您好，客户服务中心”，是标准开场白。")
    _submit(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert _wait(lambda: "待处理" in browser.find_element(By.ID, "appeals").text)
    _logout(browser)

    _login(browser, base, "qa")
    browser.get(f"{base}/appeals")
    row = browser.find_element(By.CSS_SELECTOR, "#appeals-table tbody tr")
    assert own in row.text and "待处理" in row.text
    row.find_element(By.NAME, "comment").send_keys("复听录音，开场白完整，撤销扣分。")
    _submit(browser, row.find_element(By.CSS_SELECTOR, "button.overturn"))
    assert _wait(lambda: "已撤销扣分" in browser.find_element(By.ID, "appeals-table").text)
    _logout(browser)

    _login(browser, base, "zhangsan")
    assert _wait(lambda: browser.current_url.endswith("/calls"))
    browser.get(f"{base}/m/2026-11/calls/{page_name(own)}")
    assert "得分 100.0" in browser.find_element(By.CSS_SELECTOR, "header .meta").text
    assert "已撤销扣分" in browser.find_element(By.ID, "appeals").text
    browser.get(month_url)
    report = load_month(data.settings, Month.parse("2026-11")).report
    a01 = next(a for a in report.agents if a.agent_id == "A01")
    assert _money_card(browser) == money(a01.money_total) != money_before
    _logout(browser)


def test_a_session_ends_when_idle_not_while_used(served_briefly: str, browser: WebDriver) -> None:
    base = served_briefly
    browser.delete_all_cookies()
    _login(browser, base, "zhangsan")
    assert _wait(lambda: browser.current_url.endswith("/calls"))
    for _ in range(3):  # a request every 1.5 s: 4.5 s in all, longer than the 3 s idle limit
        time.sleep(1.5)
        browser.get(f"{base}/calls")
        assert browser.current_url.endswith("/calls")
    time.sleep(4.0)  # now idle past the limit
    browser.get(f"{base}/calls")
    assert _wait(lambda: browser.current_url.endswith("/login"))
