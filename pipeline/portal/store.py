"""The portal's SQL: accounts, failed logins, the cookie key, appeals, the review queue, audit rows.

The portal holds the DuckDB file only for the moment of one request's reads or writes (the nightly
batch opens it per recording, and DuckDB lets one process in at a time). Within the portal process
one lock serialises those moments (`opened`); the figures of a month are cached (pipeline/portal/months.py).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.config import Settings
from pipeline.errors import CallQAError
from pipeline.store import Store

ROLES = ("agent", "supervisor", "manager")
ROLE_LABELS_ZH = {"agent": "客服", "supervisor": "质检员", "manager": "经理"}
_LOCK = threading.Lock()


# Audit rows of page views and recordings played wait here (at most FLUSH_S, see Portal) and are
# written together by the next writing open: one hold of the file a second instead of one per page.
# Decisions write their row at once, in their own transaction.
_PENDING: list[list[object]] = []
_PENDING_LOCK = threading.Lock()


@contextmanager
def opened(settings: Settings, write: bool = False) -> Iterator[Store]:
    """The store for one request's moment (waits for the batch as configured, batch.db_lock_wait_s).
    A writing open also writes the pending audit rows."""
    with _LOCK, Store.from_settings(settings, read_only=not write) as store:
        if write:
            _write_pending(store)
        yield store


def _write_pending(store: Store) -> None:
    with _PENDING_LOCK:
        rows = list(_PENDING)
        _PENDING.clear()
    if rows:
        try:
            store.db.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            with _PENDING_LOCK:
                _PENDING[:0] = rows  # kept for the next try
            raise


def pending_audit() -> int:
    with _PENDING_LOCK:
        return len(_PENDING)


def queue_audit(
    action: str, who: str, where: str, request_line: str, target: str | None, details: dict | None
) -> None:
    """An audit row written with the next writing open (its time is now)."""
    row = [
        datetime.now(UTC),
        action,
        f"portal {request_line}",
        f"portal:{who}",
        where,
        target,
        1 if target else None,
        True,
        json.dumps(details, ensure_ascii=False, sort_keys=True) if details else None,
    ]
    with _PENDING_LOCK:
        _PENDING.append(row)


def prepare(settings: Settings) -> None:
    """Create the portal's tables in an existing or new store (a writing open runs schema.sql)."""
    with opened(settings, write=True):
        pass


@dataclass(frozen=True)
class User:
    name: str
    role: str
    agent_id: str | None
    password_hash: str
    disabled: bool
    session_epoch: int


def user(store: Store, name: str) -> User | None:
    row = store.db.execute(
        "SELECT name, role, agent_id, password_hash, disabled, session_epoch FROM portal_users WHERE name = ?",
        [name],
    ).fetchone()
    return User(*row) if row else None


def users(store: Store) -> list[User]:
    rows = store.db.execute(
        "SELECT name, role, agent_id, password_hash, disabled, session_epoch FROM portal_users ORDER BY name"
    ).fetchall()
    return [User(*row) for row in rows]


def add_user(store: Store, name: str, role: str, agent_id: str | None, password_hash: str) -> None:
    if role not in ROLES:
        raise CallQAError(f"未知的角色“{role}”（应为 agent、supervisor 或 manager）")
    if role == "agent" and not agent_id:
        raise CallQAError("客服账号需要工号（--agent-id）")
    if user(store, name) is not None:
        raise CallQAError(f"账号 {name} 已存在")
    store.db.execute(
        "INSERT INTO portal_users VALUES (?, ?, ?, ?, false, 0, ?)",
        [name, role, agent_id if role == "agent" else agent_id or None, password_hash, datetime.now(UTC)],
    )


def update_user(
    store: Store, name: str, *, disabled: bool | None = None, password_hash: str | None = None
) -> None:
    """Disable or set a new password; either ends every session of the account."""
    if user(store, name) is None:
        raise CallQAError(f"没有账号 {name}")
    store.db.execute(
        "UPDATE portal_users SET disabled = coalesce(?, disabled), password_hash = coalesce(?, password_hash), "
        "session_epoch = session_epoch + 1 WHERE name = ?",
        [disabled, password_hash, name],
    )
    clear_failures(store, name)


def end_sessions(store: Store, name: str) -> None:
    store.db.execute("UPDATE portal_users SET session_epoch = session_epoch + 1 WHERE name = ?", [name])


# ---- failed logins -------------------------------------------------------------------------------


def locked_until(store: Store, name: str) -> datetime | None:
    row = store.db.execute(
        "SELECT locked_until FROM portal_login_failures WHERE name = ? AND locked_until > ?",
        [name, datetime.now(UTC)],
    ).fetchone()
    return row[0] if row else None


def add_failure(store: Store, name: str, lock_after: int, lock_minutes: float) -> int:
    """Count a failed login; the `lock_after`-th in a row locks the name. Returns the count."""
    now = datetime.now(UTC)
    row = store.db.execute("SELECT failures FROM portal_login_failures WHERE name = ?", [name]).fetchone()
    failures = (row[0] if row else 0) + 1
    locked = now + timedelta(minutes=lock_minutes) if failures >= lock_after else None
    store.db.execute(
        "INSERT OR REPLACE INTO portal_login_failures VALUES (?, ?, ?, ?)",
        [name, 0 if locked else failures, now, locked],
    )
    return failures


def clear_failures(store: Store, name: str) -> None:
    store.db.execute("DELETE FROM portal_login_failures WHERE name = ?", [name])


def secret(settings: Settings) -> str:
    """The cookie-signing key, made once and kept in the store."""
    with opened(settings, write=True) as store:
        row = store.db.execute("SELECT secret FROM portal_secret WHERE id = 1").fetchone()
        if row:
            return str(row[0])
        key = secrets.token_urlsafe(48)
        store.db.execute("INSERT INTO portal_secret VALUES (1, ?)", [key])
        return key


# ---- calls, findings, appeals ---------------------------------------------------------------------


def call_owner(store: Store, call_id: str) -> dict | None:
    rows = store.query(
        "SELECT call_id, agent_id, started_at, path, sha256 FROM calls WHERE call_id = ?", [call_id]
    )
    return rows[0] if rows else None


def calls_list(store: Store, agent_id: str | None) -> list[dict]:
    """Calls with their current score and failed rules, newest first (one agent's, or everyone's)."""
    return store.query(
        "SELECT c.call_id, c.agent_id, c.agent_name, c.started_at, c.duration_s, s.score, s.fatal, "
        "  (SELECT list(DISTINCT coalesce(nullif(f.title, ''), f.rule_id) ORDER BY coalesce(nullif(f.title, ''), f.rule_id)) "
        "   FROM current_findings f WHERE f.call_id = c.call_id AND NOT f.passed) AS failed "
        "FROM calls c LEFT JOIN scores s ON s.call_id = c.call_id AND s.is_current "
        "WHERE ? IS NULL OR c.agent_id = ? ORDER BY c.started_at DESC, c.call_id LIMIT 2000",
        [agent_id, agent_id],
    )


def review_queue(store: Store) -> list[dict]:
    return store.query(
        "SELECT f.call_id, f.agent_id, f.started_at, f.rule_id, f.title, f.start_s, f.evidence, f.confidence "
        "FROM current_findings f WHERE f.needs_review AND NOT f.passed ORDER BY f.started_at, f.call_id, f.idx"
    )


_APPEAL_COLUMNS = (
    "appeal_id, call_id, rule_id, start_s, title, deduction, agent_id, filed_by, filed_at, reason, state, "
    "decided_by, decided_at, comment, score_before, score_after"
)


def appeals(store: Store, agent_id: str | None = None, call_id: str | None = None) -> list[dict]:
    return store.query(
        f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE (? IS NULL OR agent_id = ?) AND (? IS NULL OR call_id = ?) "
        "ORDER BY state <> 'open', filed_at DESC",
        [agent_id, agent_id, call_id, call_id],
    )


def appeal(store: Store, appeal_id: int) -> dict | None:
    rows = store.query(f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE appeal_id = ?", [appeal_id])
    return rows[0] if rows else None


def file_appeal(
    store: Store,
    call_id: str,
    rule_id: str,
    start_s: float | None,
    title: str,
    deduction: float,
    agent_id: str,
    filed_by: str,
    reason: str,
) -> int | None:
    """A new open appeal; None when this finding already has one (a form sent twice)."""
    with store.transaction() as db:
        same = db.execute(
            "SELECT appeal_id FROM appeals WHERE call_id = ? AND rule_id = ? "
            "AND ((start_s IS NULL AND ? IS NULL) OR abs(start_s - ?) <= 0.05)",
            [call_id, rule_id, start_s, start_s],
        ).fetchone()
        if same:
            return None
        row = db.execute(
            "INSERT INTO appeals (call_id, rule_id, start_s, title, deduction, agent_id, filed_by, filed_at, "
            "reason, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open') RETURNING appeal_id",
            [call_id, rule_id, start_s, title, deduction, agent_id, filed_by, datetime.now(UTC), reason],
        ).fetchone()
        return int(row[0])


def close_appeal(
    store: Store, appeal_id: int, state: str, by: str, comment: str, before: float | None, after: float | None
) -> bool:
    """Mark an open appeal decided; False when it was decided already (by someone else meanwhile)."""
    row = store.db.execute(
        "UPDATE appeals SET state = ?, decided_by = ?, decided_at = ?, comment = ?, score_before = ?, "
        "score_after = ? WHERE appeal_id = ? AND state = 'open' RETURNING appeal_id",
        [state, by, datetime.now(UTC), comment, before, after, appeal_id],
    ).fetchone()
    return row is not None


def first_report_at(store: Store, month: str) -> datetime | None:
    """When the month's report was first written (`callqa report`), from the audit trail."""
    row = store.db.execute(
        "SELECT min(logged_at) FROM audit_log WHERE action = 'report' "
        "AND json_extract_string(details, '$.month') = ?",
        [month],
    ).fetchone()
    return row[0] if row else None


def audit(
    store: Store,
    action: str,
    who: str,
    where: str,
    request_line: str,
    target: str | None,
    details: dict | None = None,
) -> None:
    """One audit row for a portal request: `who` is the portal account, `where` the client address."""
    store.add_audit(
        action,
        command=f"portal {request_line}",
        os_user=f"portal:{who}",
        host=where,
        target=target,
        records=1 if target else None,
        redacted=True,
        details=details,
    )


def audit_rows(store: Store, limit: int = 500) -> list[dict]:
    rows = store.query(
        "SELECT logged_at, action, os_user, host, target, details, command FROM audit_log "
        "ORDER BY logged_at DESC LIMIT ?",
        [limit],
    )
    for row in rows:
        row["details"] = json.loads(row["details"]) if row["details"] else {}
    return rows
