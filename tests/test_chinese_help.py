"""Users read Chinese: `callqa --help` and every command's help carry no English words, only what a
user types (commands, options, file names, formats and ids)."""

from __future__ import annotations

import pytest
from chinese import COMMANDS, english_words

from pipeline.cli import main


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_is_in_chinese(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"] if command else ["--help"])
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
