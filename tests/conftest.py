"""Shared fixtures. Real audio comes from ../shared/audio (read in place, never copied)."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MAGICDATA = SHARED / "audio" / "magicdata_cs"
SAMPLES = ROOT / "recordings_sample"
CHECK_EXPORT = SHARED / "tools" / "check_export.py"

sys.path.insert(0, str(ROOT / "tools"))  # callsim: the labelled-call builder
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not MAGICDATA.is_dir():
        raise pytest.UsageError(
            f"real test audio not found at {MAGICDATA}: clone with ../shared beside the repo"
        )


@pytest.fixture(scope="session")
def magicdata_texts() -> dict[str, str]:
    with (MAGICDATA / "transcripts.tsv").open(encoding="utf-8") as handle:
        return {row["file"]: row["transcript"] for row in csv.DictReader(handle, delimiter="\t")}


@pytest.fixture()
def settings(tmp_path: Path):
    from pipeline.config import Settings

    return Settings(db=tmp_path / "qa.duckdb", reports_dir=tmp_path / "reports")


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless Debian Chromium for the page tests (report pages, the portal), one per test module."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.fail(
            f"{CHROMIUM} / {CHROMEDRIVER} missing: run scripts/setup.sh (apt chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
