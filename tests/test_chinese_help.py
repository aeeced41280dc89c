"""Users read Chinese: `callqa --help` and every command's help carry no English words, only what a
user types (commands, options, file names, formats and ids)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from chinese import COMMANDS, english_words

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_is_in_chinese(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command.split(), "--help"] if command else ["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "用法：" in text and "选项" in text
    assert english_words(text) == set(), text


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "calls", "--bogus"], "无法识别的参数：--bogus"),
        (["rn"], "没有 'rn' 这一项"),
        (["show"], "缺少必需的参数：通话编号"),
        (["roles", "X", "--swap", "--confirm"], "不能与 --swap 同时使用"),
        (["audit", "--since"], "参数 --since 后面需要一个值"),
        (["audit", "--since", "2026-13-01"], "日期应写成 YYYY-MM-DD"),
    ],
)
def test_a_mistyped_command_is_answered_in_chinese(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    text = capsys.readouterr().err
    assert said in text and "用法：" in text and "错误：" in text
    assert english_words(text.replace("'rn'", "")) == set(), text


def test_the_config_file_can_follow_the_command(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "callqa.toml"
    config.write_text('[input]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    assert main(["failures", "--db", str(tmp_path / "qa.duckdb"), "--config", str(config)]) != 0
    said = capsys.readouterr().err
    assert "Mars/Olympus" in said  # the file was read: its bad zone is named
    assert english_words(said.replace("Mars/Olympus", "").replace("Asia/Shanghai", "")) == set(), said


LOG_LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def _log_formats() -> list[tuple[str, str]]:
    """(where, text) of every literal message passed to a logger in flows.py and pipeline/."""
    found = []
    for path in [ROOT / "flows.py", *sorted((ROOT / "pipeline").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            if node.func.attr not in LOG_LEVELS or "log" not in ast.unparse(node.func.value).lower():
                continue
            message = node.args[0]
            if isinstance(message, ast.Constant) and isinstance(message.value, str):
                text = message.value
            elif isinstance(message, ast.JoinedStr):
                text = " ".join(v.value for v in message.values if isinstance(v, ast.Constant))
            else:
                continue  # a message built elsewhere (e.g. written.line()), covered by the batch test
            found.append((f"{path.relative_to(ROOT)}:{node.lineno}", re.sub(r"%[-.\d]*[sdrf]", " ", text)))
    return found


def test_every_log_line_we_write_is_chinese() -> None:
    formats = _log_formats()
    assert len(formats) >= 5  # the scan finds the flow's and the pipeline's log calls
    assert {where: english_words(text) for where, text in formats if english_words(text)} == {}
