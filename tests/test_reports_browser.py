"""The report pages opened from files in a real headless browser (Debian's chromium + chromedriver,
installed by scripts/setup.sh): the table is there, a chart is drawn, and clicking a finding plays
the recording from its evidence time. Screenshots are taken and checked for what they show."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures.reports.monthdata import build
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from pipeline.config import Settings
from pipeline.reports.build import write_monthly_report
from pipeline.reports.monthly import Month

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "recordings_sample" / "1005_20261121-153000.mp3"
BAR_RGB = (0x3B, 0x6F, 0xB6)  # charts.BAR


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    work = tmp_path_factory.mktemp("browser")
    built = build(work / "qa.duckdb", work, audio=RECORDING)
    settings = Settings(db=work / "qa.duckdb", reports_dir=work / "reports")
    written = write_monthly_report(settings, Month.parse("2026-11"))
    assert written.call_pages == 106 and written.audio_missing == 104
    return written.directory, built


def _wait(condition: Callable[[], object], seconds: float = 10.0) -> object:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _element_image(element: WebElement) -> Image.Image:
    return Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")


def _share_of_colour(image: Image.Image, rgb: tuple[int, int, int], tolerance: int = 12) -> float:
    pixels = list(image.getdata())
    near = sum(1 for p in pixels if all(abs(a - b) <= tolerance for a, b in zip(p, rgb, strict=True)))
    return near / len(pixels)


def test_pages_are_self_contained(report_dir: tuple[Path, object]) -> None:
    out, built = report_dir
    pages = [
        out / "ranking.html",
        *sorted((out / "agents").glob("*.html")),
        out / "calls" / f"{built.audio_calls[1]}.html",
    ]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        # No script, stylesheet, image, font or audio from anywhere but the report folder itself.
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), page
        assert "@import" not in html and "url(http" not in html, page


def test_ranking_page_shows_the_table_and_charts(
    browser: WebDriver, report_dir: tuple[Path, object], tmp_path: Path
) -> None:
    out, _ = report_dir
    browser.get((out / "ranking.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#ranking-table tbody tr")
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert [c[0] for c in cells] == ["1", "1", "3", "4", "—"]
    assert cells[0][1] == "张三（A01）" and cells[2][13] == "−20" and cells[1][13] == "+130"
    assert "不参加排名" in cells[4][14]

    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, min(height + 120, 8000))
    shot = tmp_path / "ranking.png"
    assert browser.save_screenshot(str(shot))
    page = Image.open(shot).convert("RGB")
    assert page.width >= 1200 and page.height > 2000

    table = browser.find_element(By.ID, "ranking-table")
    assert table.size["height"] > 5 * 20 and table.is_displayed()
    table_image = _element_image(table)
    assert len(set(table_image.getdata())) > 20  # text rendered, not a blank box

    for css in ("svg.pareto", "svg.histogram", "svg.agent-scores"):
        chart = browser.find_element(By.CSS_SELECTOR, css)
        assert chart.size["width"] > 500 and chart.size["height"] > 150, css
    pareto = browser.find_element(By.CSS_SELECTOR, "svg.pareto")
    assert len(pareto.find_elements(By.CSS_SELECTOR, "rect.bar")) == 8
    assert pareto.find_elements(By.CSS_SELECTOR, "polyline.cumulative")
    # The bars are really painted: a good share of the chart's pixels are the bar colour.
    assert _share_of_colour(_element_image(pareto), BAR_RGB) > 0.05
    # Chinese labels render with a CJK font (a missing font draws the same empty box for every glyph).
    title = browser.find_element(By.CSS_SELECTOR, "#pareto h2")
    assert title.size["width"] > 150

    # Every money amount links to its policy rule, and the rule is on the page.
    for link in browser.find_elements(By.CSS_SELECTOR, "#money-table td:nth-child(2) a"):
        target = link.get_attribute("href").split("#", 1)[1]
        assert browser.find_element(By.ID, target).is_displayed()


def test_clicking_a_finding_plays_the_recording_from_its_evidence(
    browser: WebDriver, report_dir: tuple[Path, object], tmp_path: Path
) -> None:
    out, built = report_dir
    call_id = built.audio_calls[1]  # A03's call: 不知道 at 1.2 s, greeting at 2.0 s
    browser.set_window_size(1400, 1000)
    browser.get((out / "calls" / f"{call_id}.html").as_uri())
    ready = _wait(
        lambda: browser.execute_script(
            "const a = document.getElementById('player'); return a.readyState >= 1 && !a.error && a.duration;"
        )
    )
    assert ready and ready > 100  # the 1005 sample is about 119 s long

    mark = browser.find_element(By.CSS_SELECTOR, "#transcript mark")
    assert mark.text == "不知道"
    finding = browser.find_element(By.ID, "finding-1")
    assert finding.get_attribute("data-start") == "1.20"
    assert "对不起，这个问题我帮您确认一下" in finding.text  # the handbook's replacement beside the hit
    browser.execute_script("document.getElementById('player').currentTime = 60;")
    finding.click()
    position = _wait(
        lambda: browser.execute_script(
            "const a = document.getElementById('player'); return !a.seeking && a.currentTime < 10 && a.currentTime;"
        )
    )
    assert position and 1.2 <= position < 6.0
    playing = _wait(lambda: browser.execute_script("return !document.getElementById('player').paused;"))
    assert playing
    assert "active" in finding.get_attribute("class")
    shot = tmp_path / "call.png"
    assert browser.save_screenshot(str(shot))
    image = Image.open(shot).convert("RGB")
    assert len(set(image.crop((0, 0, image.width, 300)).getdata())) > 20

    # The transcript's time buttons seek too, and a link with #t= opens the page at that time.
    browser.find_elements(By.CSS_SELECTOR, "#transcript button.t")[1].click()
    assert _wait(
        lambda: (
            abs(browser.execute_script("return document.getElementById('player').currentTime;") - 3.2) < 2.5
        )
    )
    # A fresh page load, as when the link is followed from the ranking page (a same-page
    # fragment change alone keeps the audio playing from the button's position).
    browser.get("about:blank")
    browser.get((out / "calls" / f"{call_id}.html").as_uri() + "#t=6.2")
    assert _wait(
        lambda: (
            abs(browser.execute_script("return document.getElementById('player').currentTime;") - 6.2) < 0.05
        )
    )


def test_agent_page_teaches_the_replacement_and_links_to_the_moment(
    browser: WebDriver, report_dir: tuple[Path, object]
) -> None:
    out, _ = report_dir
    browser.get((out / "agents" / "A03.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#forbidden-table tbody tr")
    said = {r.find_element(By.CSS_SELECTOR, ".forbidden").text: r for r in rows}
    assert set(said) == {"不知道", "这不归我管"}
    row = said["不知道"]
    assert row.find_element(By.CSS_SELECTOR, ".replacement").text.startswith("对不起，这个问题我帮您确认一下")
    assert row.find_element(By.CSS_SELECTOR, "td.num").text == "12"
    link = row.find_element(By.CSS_SELECTOR, "a.tag").get_attribute("href")
    assert re.search(r"/calls/HX\d{8}-\d{4}\.html#t=1\.2$", link)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#calls-table tbody tr")) == 25


def test_a_missing_recording_is_explained_not_broken(
    browser: WebDriver, report_dir: tuple[Path, object]
) -> None:
    out, built = report_dir
    other = next(c for cs in built.calls.values() for c in cs if c not in built.audio_calls)
    browser.get((out / "calls" / f"{other}.html").as_uri())
    assert "录音文件不在原位置" in browser.find_element(By.ID, "no-audio").text
    assert not browser.find_elements(By.ID, "player")
