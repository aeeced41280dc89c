"""argparse in Chinese: usage, section titles, -h, placeholders and the errors a user sees.

argparse writes its own words in English (`usage:`, `error: unrecognized arguments`); a supervisor
reads Chinese. Help texts are ours; these are argparse's, replaced on each parser and command."""

from __future__ import annotations

import argparse
import re
import sys
import types
from typing import NoReturn

_METAVARS_ZH = {
    "config": "文件",
    "db": "文件",
    "scorecard": "文件",
    "out": "文件",
    "policy": "文件",
    "labels": "文件",
    "file": "文件",
    "directory": "目录",
    "call_id": "通话编号",
    "since": "日期",
    "before": "年月",
    "month": "年月",
    "command": "命令",
}


class _ChineseHelp(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):  # type: ignore[no-untyped-def]
        super().add_usage(usage, actions, groups, "用法：")


def in_chinese(parser: argparse.ArgumentParser) -> None:
    """argparse's own words (usage, section titles, -h) in Chinese, for the parser and every command."""
    parser.formatter_class = _ChineseHelp
    parser._positionals.title = "参数"
    parser._optionals.title = "选项"
    parser.error = types.MethodType(_error_in_chinese, parser)  # type: ignore[method-assign]
    for action in parser._actions:
        if action.metavar is None and action.nargs != 0 and action.dest in _METAVARS_ZH:
            action.metavar = _METAVARS_ZH[action.dest]
        if isinstance(action, argparse._HelpAction):
            action.help = "显示本帮助并退出"
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                in_chinese(sub)


# argparse's error messages (Python 3.11), most specific first.
_ERRORS_ZH: tuple[tuple[str, str], ...] = (
    (r"unrecognized arguments: (.*)", r"无法识别的参数：\1"),
    (r"the following arguments are required: (.*)", r"缺少必需的参数：\1"),
    (r"argument (\S+): invalid choice: (.*?) \(choose from (.*)\)", r"参数 \1：没有 \2 这一项（可选：\3）"),
    (r"argument (\S+): expected one argument", r"参数 \1 后面需要一个值"),
    (r"argument (\S+): expected at least one argument", r"参数 \1 后面至少需要一个值"),
    (r"argument (\S+): invalid \w+ value: (.*)", r"参数 \1：\2 不是有效的值"),
    (r"argument (\S+): not allowed with argument (\S+)", r"参数 \1 不能与 \2 同时使用"),
    (r"argument (\S+): ignored explicit argument (.*)", r"参数 \1 不接受值 \2"),
    (r"ambiguous option: (\S+) could match (.*)", r"选项 \1 有歧义，可能是：\2"),
    (r"argument (\S+): (.*)", r"参数 \1：\2"),  # our own type checks already speak Chinese
)


def translate_error(message: str) -> str:
    for pattern, chinese in _ERRORS_ZH:
        if re.fullmatch(pattern, message, flags=re.DOTALL):
            return re.sub(pattern, chinese, message, count=1, flags=re.DOTALL)
    return message


def _error_in_chinese(self: argparse.ArgumentParser, message: str) -> NoReturn:
    self.print_usage(sys.stderr)
    self.exit(2, f"{self.prog}：错误：{translate_error(message)}\n")
