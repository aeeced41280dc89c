"""Users read Chinese: `callqa --help` and every command's help carry no English words, only what a
user types (commands, options, file names, formats and ids)."""

from __future__ import annotations

import re

import pytest

from pipeline.cli import main

COMMANDS = [
    "run", "failures", "purge", "audit", "roles", "show", "eval", "export",
    "rescore", "calibrate", "import-events", "report", "users", "serve",
    "users add", "users disable", "users reset", "users list",
]  # fmt: skip
# What a user types or reads as a name: the program, commands, formats, CSV column names, the
# [metrics] section of callqa.toml and date patterns.
ALLOWED = {"callqa", "CSV", "JSON", "Lines", "YAML", "TOML", "call_id", "rule_id", "passed", "score"}
ALLOWED |= {"metrics", "YYYY", "MM", "DD"} | set(COMMANDS) | {"import", "events"}
ALLOWED |= {"add", "disable", "reset", "list", "agent", "supervisor", "manager"}  # typed: users …, --role


def _english_words(text: str) -> set[str]:
    text = re.sub(r"(?<![\w])--?[\w-]+", " ", text)  # options
    text = re.sub(r"[\w./-]*[./][\w./-]*", " ", text)  # file names and paths
    return {w for w in re.findall(r"[A-Za-z_]+", text) if w not in ALLOWED}


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_is_in_chinese(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command.split(), "--help"] if command else ["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "用法：" in text and "选项" in text
    assert _english_words(text) == set(), text
