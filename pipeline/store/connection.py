"""The connection every part of the store works over: opening the file (waiting out another
process's lock), the schema, transactions, and the helpers the other modules share.

DuckDB lets one process write a database file, and no other process open it meanwhile (not even to
read). So every user of the store opens it for a short moment and closes it again — the batch once
before and once after each recording, never during speech recognition — and a `Store` that finds
the file locked waits and tries again (`lock_wait_s`, `[batch] db_lock_wait_s`) before it gives up
with `StoreBusyError`. docs/operations.md describes the design.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from pipeline.errors import CallQAError
from pipeline.store.call_time import backfill, backfilled

if TYPE_CHECKING:
    from pipeline.config import Settings

SCHEMA_VERSION = "1"
# Everything stored about a processed call, children first (deleted together when a call is redone).
METRIC_TABLES = ("call_metrics", "utterance_rates", "interruptions", "holds", "dead_air")
CALL_TABLES = (
    "findings",
    "scores",
    *METRIC_TABLES,
    "audio_events",
    "utterance_evidence",
    "char_timings",
    "utterances",
    "voice_activity",
    "calls",
)


class StoreBusyError(CallQAError):
    """Another process kept the database file locked for longer than we were willing to wait."""


DEFAULT_LOCK_WAIT_S = 120.0
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def connect(path: Path, read_only: bool, lock_wait_s: float) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting (with growing pauses) while another process holds its lock."""
    deadline = time.monotonic() + lock_wait_s
    pause = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            holder = _LOCK_HOLDER.search(str(exc))
            if holder is None:
                raise CallQAError(f"{path}：无法打开质检数据库（{exc}）") from exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreBusyError(
                    f"{path}：质检数据库正被另一个程序使用（进程 {holder['pid']}），等了 {lock_wait_s:g} 秒仍未释放；"
                    "请稍后再试（等待时间见配置 batch.db_lock_wait_s）"
                ) from exc
            time.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)


class StoreBase:
    """The open file. Use as a context manager; it closes the file on exit.

    Keep it open only as long as needed: while it is open, no other process can write the file
    (and a writer keeps everyone else out)."""

    @classmethod
    def from_settings(cls, settings: Settings, read_only: bool = False) -> Self:
        """The configured database, in the centre's time zone, waiting as configured for the batch."""
        return cls(
            settings.db,
            read_only=read_only,
            timezone=settings.input.timezone,
            lock_wait_s=settings.batch.db_lock_wait_s,
        )

    def __init__(
        self,
        path: Path,
        read_only: bool = False,
        timezone: str = "Asia/Shanghai",
        lock_wait_s: float = DEFAULT_LOCK_WAIT_S,
    ) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise CallQAError(f"{self.path}：还没有质检数据库（请先运行 callqa run DIR）")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = connect(self.path, read_only, lock_wait_s)
        self.backfilled_s: dict[str, float] = {}
        if read_only and not self._current_schema():
            # a database last written by an older version: add the new tables once, then read
            self.db.close()
            StoreBase(self.path, timezone=timezone, lock_wait_s=lock_wait_s).close()
            self.db = connect(self.path, read_only, lock_wait_s)
        # SET takes no bound parameter: the zone must be a known IANA name (nothing else can be pasted)
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            self.db.close()
            raise CallQAError(f"未知的时区“{timezone}”（input.timezone）") from exc
        self.db.execute(f"SET TimeZone = '{timezone}'")
        if not read_only:
            self.db.execute(files("pipeline.store").joinpath("schema.sql").read_text(encoding="utf-8"))
            self.db.execute(
                "INSERT OR REPLACE INTO schema_info VALUES ('schema_version', ?)", [SCHEMA_VERSION]
            )
            # once per store: rows stored before the call's start was on them (seconds per table)
            self.backfilled_s = backfill(self.db)

    def _current_schema(self) -> bool:
        """Whether the newest tables and columns of schema.sql are there (read-only connections
        cannot add them)."""
        tables = self.db.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name IN ('audit_log', 'utterance_evidence', 'finding_decisions')"
        ).fetchone()[0]
        engine = self.db.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'scores' AND column_name = 'engine'"
        ).fetchone()[0]
        return bool(tables == 3 and engine == 1) and backfilled(self.db)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.db.execute("BEGIN TRANSACTION")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def query(self, sql: str, params: dict[str, object] | list | None = None) -> list[dict]:
        """Rows of a read-only query as dicts (named `$param` or positional `?` parameters)."""
        return self._dicts(sql, params)  # type: ignore[arg-type]

    def columns(self, sql: str, params: dict[str, object] | list | None = None) -> dict[str, list]:
        """A read-only query's result by column: each column a list of the values `query` gives
        (None for NULL). For results of millions of rows (a month's utterances): fetched as numpy
        columns and made Python values a column at a time, no dict or tuple per row: the month's
        1.67 million utterances of a million-call store took 6.2 s as dicts, 3.8–4.1 s as tuples,
        2.7–3.0 s by column (its SQL alone 1.3–1.7 s; bench/results/db-scale-2026-11-29e.md).
        Numbers, booleans and text only: DuckDB's numpy conversion drops a timestamp's zone, makes
        decimals floats and lists arrays, so those columns are refused (use `query`)."""
        cursor = self.db.execute(sql, params or [])
        odd = [f"{name} {kind}" for name, kind, *_ in cursor.description if str(kind) not in _PLAIN_TYPES]
        if odd:
            raise TypeError(f"Store.columns: not a plain column ({', '.join(odd)}); use Store.query")
        return {name: values.tolist() for name, values in cursor.fetchnumpy().items()}

    def _dicts(self, sql: str, params: list | None = None) -> list[dict]:
        cursor = self.db.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# Column types whose numpy values `.tolist()` turns into what `fetchall` gives.
_PLAIN_TYPES = frozenset(
    {"BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
    | {"UBIGINT", "FLOAT", "DOUBLE", "VARCHAR"}
)

# Above this many rows a table's new rows go in as one DataFrame scan: row-by-row executemany took
# 41 s for a long call's 160,000 character timings (the write transaction, and with it every other
# process, waited that long); the scan takes 0.3 s. Only for tables whose columns are all NOT NULL
# (pandas would turn a missing number into NaN).
_BULK_ROWS = 200


def insert_many(db: duckdb.DuckDBPyConnection, table: str, rows: list[list]) -> None:
    if not rows:
        return
    if len(rows) < _BULK_ROWS:
        db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
        return
    import pandas as pd

    columns = [row[0] for row in db.execute(f"DESCRIBE {table}").fetchall()]
    name = f"new_{table}"
    db.register(name, pd.DataFrame(rows, columns=columns))
    try:
        db.execute(f"INSERT INTO {table} SELECT * FROM {name}")
    finally:
        db.unregister(name)


def now() -> datetime:
    return datetime.now(UTC)
