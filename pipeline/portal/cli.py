"""`callqa users …` and `callqa serve`, registered by pipeline/cli.py.

callqa users add NAME --role agent|supervisor|manager [--agent-id A01] [--password-stdin]
callqa users disable NAME | callqa users reset NAME [--password-stdin] | callqa users list
callqa serve [--host 127.0.0.1] [--port 8080] [--secure-cookies]
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import CallQAError

COMMANDS = ("users", "serve")


def add_commands(commands: argparse._SubParsersAction) -> None:
    users = commands.add_parser("users", help="复核平台的账号：添加、停用、重设密码、列出")
    actions = users.add_subparsers(dest="users_action", required=True, title="操作", metavar="操作")
    add = actions.add_parser("add", help="添加账号（密码从提示输入，或 --password-stdin 从标准输入读一行）")
    add.add_argument("name", metavar="账号", help="账号名")
    add.add_argument(
        "--role",
        required=True,
        choices=("agent", "supervisor", "manager"),
        metavar="角色",
        help="agent 客服、supervisor 质检员或 manager 经理",
    )
    add.add_argument("--agent-id", metavar="工号", help="客服工号（角色 agent 必填）")
    add.add_argument("--password-stdin", action="store_true", help="从标准输入读密码")
    add.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")
    disable = actions.add_parser("disable", help="停用账号（立即退出其所有会话）")
    disable.add_argument("name", metavar="账号", help="账号名")
    disable.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")
    reset = actions.add_parser("reset", help="重设密码并重新启用（立即退出其所有会话）")
    reset.add_argument("name", metavar="账号", help="账号名")
    reset.add_argument("--password-stdin", action="store_true", help="从标准输入读密码")
    reset.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")
    listing = actions.add_parser("list", help="列出账号")
    listing.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")

    serve = commands.add_parser("serve", help="启动质检复核平台（网页）")
    serve.add_argument(
        "--host", default="127.0.0.1", metavar="地址", help="监听地址（默认 127.0.0.1，仅本机）"
    )
    serve.add_argument("--port", type=int, default=8080, metavar="端口", help="端口（默认 8080）")
    serve.add_argument(
        "--secure-cookies",
        action="store_true",
        help="会话凭据只经加密连接发送（部署在加密的反向代理之后时使用）",
    )
    serve.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("密码：")
    if first != getpass.getpass("再输入一次："):
        raise CallQAError("两次输入的密码不一致")
    return first


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.portal import store as portal_store
    from pipeline.portal.auth import hash_password

    if args.command == "serve":
        return _serve(args, settings)
    portal_store.prepare(settings)
    action = args.users_action
    if action == "list":
        with portal_store.opened(settings) as store:
            for u in portal_store.users(store):
                state = "（已停用）" if u.disabled else ""
                print(f"{u.name}\t{portal_store.ROLE_LABELS_ZH[u.role]}\t{u.agent_id or ''}{state}")
        return 0
    if action == "add":
        hashed = hash_password(_password(args.password_stdin))
        with portal_store.opened(settings, write=True) as store:
            portal_store.add_user(store, args.name, args.role, args.agent_id, hashed)
            _audit(store, "user-add", args, {"role": args.role, "agent_id": args.agent_id})
        print(f"已添加账号 {args.name}（{portal_store.ROLE_LABELS_ZH[args.role]}）")
        return 0
    if action == "disable":
        with portal_store.opened(settings, write=True) as store:
            portal_store.update_user(store, args.name, disabled=True)
            _audit(store, "user-disable", args, None)
        print(f"已停用账号 {args.name}")
        return 0
    hashed = hash_password(_password(args.password_stdin))
    with portal_store.opened(settings, write=True) as store:
        portal_store.update_user(store, args.name, disabled=False, password_hash=hashed)
        _audit(store, "user-reset", args, None)
    print(f"已重设账号 {args.name} 的密码")
    return 0


def _audit(store: object, action: str, args: argparse.Namespace, details: dict | None) -> None:
    from pipeline.audit import audit_kwargs

    store.add_audit(
        action, target=args.name, records=1, redacted=None, details=details, **audit_kwargs(args.command_line)
    )  # type: ignore[attr-defined]


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from pipeline.portal.app import create_app

    if args.secure_cookies:
        settings = settings.model_copy(
            update={"portal": settings.portal.model_copy(update={"secure_cookies": True})}
        )
    app = create_app(settings)
    print(f"质检复核平台：http://{args.host}:{args.port}/（数据库 {settings.db}）", file=sys.stderr)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
    return 0
