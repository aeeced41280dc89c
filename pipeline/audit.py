"""The audit trail: who took personal data out of the store, or removed it, when, and how.

Standards section 8: customer information is confidential, extraction is controlled and logged.
Every `callqa export`, `callqa show`, `callqa report` / monthly_report flow run and `callqa purge`
writes one row to `audit_log` *before* any data leaves (a purge: in the same transaction as the
deletion). If the row cannot be written, the command stops without output.
"""

from __future__ import annotations

import getpass
import json
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


# `callqa audit` and the portal's audit page show actions by these names.
ACTION_LABELS_ZH = {
    "export": "导出",
    "report": "报表",
    "show": "查看通话",
    "purge": "清除",
    "roles": "角色决定",
    "portal-login": "平台登录",
    "portal-login-failed": "平台登录失败",
    "portal-logout": "平台退出",
    "portal-view": "平台查看",
    "portal-audio": "平台播放录音",
    "appeal": "提交申诉",
    "appeal-decision": "处理申诉",
    "review": "人工复核",
    "user-add": "添加账号",
    "user-disable": "停用账号",
    "user-reset": "重设密码",
}


def change_text(details: str | dict | None) -> str:
    """A decision's effect, from the row's details: 规则 X：维持/撤销… 得分 90 → 100."""
    data = json.loads(details) if isinstance(details, str) else details or {}
    parts = []
    if data.get("rule_id"):
        parts.append(f"规则 {data['rule_id']}")
    if data.get("decision"):
        parts.append(str(data["decision"]))
    if "score_before" in data:
        before, after = data.get("score_before"), data.get("score_after")
        parts.append(
            f"得分 {'—' if before is None else f'{before:g}'} → {'—' if after is None else f'{after:g}'}"
        )
    return "，".join(parts)
