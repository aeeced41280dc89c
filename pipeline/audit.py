"""The audit trail: who took personal data out of the store, or removed it, when, and how.

Standards section 8: customer information is confidential, extraction is controlled and logged.
Every `callqa export`, `callqa show`, `callqa report` / monthly_report flow run and `callqa purge`
writes one row to `audit_log` *before* any data leaves (a purge: in the same transaction as the
deletion). If the row cannot be written, the command stops without output.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
from collections.abc import Sequence

from pipeline.config import Settings
from pipeline.store import Store


def who() -> tuple[str, str]:
    """(operating-system user, host). CALLQA_USER names the person when a service account runs it."""
    user = os.environ.get("CALLQA_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers)
            user = f"uid {os.getuid()}"
    return user, socket.gethostname()


def command_line(argv: Sequence[str]) -> str:
    return "callqa " + " ".join(shlex.quote(arg) for arg in argv)


def audit_kwargs(command: str) -> dict[str, str]:
    """The `add_audit` arguments that say who and how (for `Store.purge_before`)."""
    user, host = who()
    return {"command": command, "os_user": user, "host": host}


def record(
    settings: Settings,
    action: str,
    command: str,
    target: str | None,
    records: int | None,
    redacted: bool | None,
    details: dict | None = None,
) -> None:
    """One audit row, in its own short write transaction."""
    with Store.from_settings(settings) as store:
        store.add_audit(
            action,
            target=target,
            records=records,
            redacted=redacted,
            details=details,
            **audit_kwargs(command),
        )
