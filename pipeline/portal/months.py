"""A month's figures for the portal: the very `load_month` the monthly report uses (same SQL, same
redaction, same numbers), rendered with the report's templates, cached for a short while and dropped
when a decision in the portal changes a score."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader

from pipeline.config import Settings
from pipeline.portal.store import ROLE_LABELS_ZH
from pipeline.reports.build import MonthData, load_month
from pipeline.reports.monthly import AgentMonth, CallRow, Month
from pipeline.reports.render import Renderer, page_name
from pipeline.store import Store

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class LoadedMonth:
    data: MonthData
    renderer: Renderer
    calls_by_page: dict[str, CallRow]
    agents_by_page: dict[str, AgentMonth]
    loaded_at: float


class Months:
    def __init__(self, settings: Settings, lock: threading.Lock) -> None:
        self.settings = settings
        self.db_lock = lock  # the portal's one-at-a-time hold on the store (pipeline/portal/store.py)
        self._cache: dict[str, LoadedMonth] = {}
        self._loading = threading.Lock()
        self._generation = 0  # forget() raises it: a read begun before is not kept

    def get(self, label: str) -> LoadedMonth:
        """The month YYYY-MM (CallQAError for a malformed one)."""
        month = Month.parse(label)
        key = str(month)
        cached = self._cache.get(key)
        if cached and time.monotonic() - cached.loaded_at < self.settings.portal.month_cache_s:
            return cached
        if cached:  # read again in the background; the previous figures meanwhile
            in_background(self._loading, lambda: self._load(month))
            return cached
        with self._loading:  # one reader loads, the others wait for its result
            cached = self._cache.get(key)
            if cached and time.monotonic() - cached.loaded_at < self.settings.portal.month_cache_s:
                return cached
            return self._load(month)

    def _load(self, month: Month) -> LoadedMonth:
        generation = self._generation
        with self.db_lock:
            data = load_month(self.settings, month)
        renderer = Renderer(data.report)
        report_templates = renderer.env.loader
        renderer.env.loader = ChoiceLoader([FileSystemLoader(TEMPLATES), report_templates])  # type: ignore[list-item]
        renderer.env.globals["role_labels"] = ROLE_LABELS_ZH
        loaded = LoadedMonth(
            data,
            renderer,
            {page_name(c.call_id): c for c in data.report.calls},
            {page_name(a.agent_id): a for a in data.report.agents},
            time.monotonic(),
        )
        if generation == self._generation:  # not read before a decision that came meanwhile
            self._cache[str(month)] = loaded
        return loaded

    def forget(self, label: str) -> None:
        self._generation += 1
        self._cache.pop(label, None)


def in_background(lock: threading.Lock, work: Callable[[], object]) -> None:
    """Run `work` in its own thread holding `lock`, unless it is running already. Requests never wait
    for a refresh of what they have a previous copy of (they would, behind the store's lock)."""
    if not lock.acquire(blocking=False):
        return

    def run() -> None:
        try:
            work()
        except Exception:  # the previous copy stays; the next request tries again
            logging.getLogger(__name__).exception("评审平台：刷新月度数据失败，继续使用上一份")
        finally:
            lock.release()

    threading.Thread(target=run, daemon=True).start()


def month_of(store: Store, call_id: str) -> str | None:
    """The YYYY-MM a call belongs to, in the centre's time zone (the store's session zone)."""
    row = store.db.execute(
        "SELECT strftime(started_at, '%Y-%m') FROM calls WHERE call_id = ?", [call_id]
    ).fetchone()
    return row[0] if row and row[0] else None
