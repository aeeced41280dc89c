"""What callqa writes is owner-only, and the configuration in force (and its redaction) is stated."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline.cli import main as callqa
from pipeline.config import Settings, load_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _batch_and_export(folder: Path, *config: str) -> tuple[Path, Path]:
    (folder / "calls").mkdir(parents=True, exist_ok=True)
    broken = folder / "calls" / "1001_20261120-091502.wav"  # not audio: fails at once, no ASR
    broken.write_bytes(b"RIFF" + bytes(512))
    os.utime(broken, (1e9, 1e9))
    db, export = folder / "qa.duckdb", folder / "out" / "export.jsonl"
    assert callqa([*config, "run", str(folder / "calls"), "--db", str(db)]) == 1
    assert callqa([*config, "export", "--db", str(db), "--out", str(export)]) == 0
    return db, export


@pytest.fixture()
def loose_umask() -> object:
    previous = os.umask(0o022)  # what a service account usually has: files 0644, folders 0755
    yield
    os.umask(previous)


def test_database_summaries_and_exports_are_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loose_umask: object
) -> None:
    monkeypatch.chdir(tmp_path)
    db, export = _batch_and_export(tmp_path)
    (summary,) = (tmp_path / "reports" / "batches").glob("*.md")
    for path in (db, export, summary):
        assert _mode(path) == 0o600, path
    for folder in (tmp_path / "reports", tmp_path / "reports" / "batches", export.parent):
        assert _mode(folder) == 0o700, folder
    assert os.umask(0o022) == 0o022  # the process's own umask is given back


def test_group_readable_when_configured_and_old_files_are_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loose_umask: object
) -> None:
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "qa.duckdb"
    _batch_and_export(tmp_path)
    old.chmod(0o644)  # as an earlier version left it
    (tmp_path / "reports").chmod(0o755)
    config = tmp_path / "shared.toml"
    config.write_text("[privacy]\ngroup_readable = true\n", encoding="utf-8")
    db, export = _batch_and_export(tmp_path, "--config", str(config))
    assert _mode(db) == 0o640 and _mode(export) == 0o640
    assert _mode(tmp_path / "reports") == 0o750
    _batch_and_export(tmp_path)
    assert _mode(db) == 0o600 and _mode(tmp_path / "reports") == 0o700


def test_unredacted_outputs_only_from_the_file_named_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "calls").mkdir()
    found = tmp_path / "callqa.toml"
    found.write_text('[privacy]\nunredacted_outputs = ["export", "show"]\n', encoding="utf-8")
    assert callqa(["export", "--db", str(tmp_path / "qa.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "unredacted_outputs" in err and "当前目录中自动读取" in err and "--config" in err
    monkeypatch.setenv("CALLQA_CONFIG", str(found))
    assert callqa(["export", "--db", str(tmp_path / "qa.duckdb")]) == 2
    assert "CALLQA_CONFIG" in capsys.readouterr().err
    monkeypatch.delenv("CALLQA_CONFIG")
    named = load_settings(found)
    assert named.privacy.unredacted_outputs == ("export", "show")
    assert named.source == f"配置文件 {found.resolve()}（由 --config 指定）"
    assert callqa(["--config", str(found), "run", "calls", "--db", str(tmp_path / "qa.duckdb")]) == 0
    err = capsys.readouterr().err
    assert f"配置文件 {found.resolve()}（由 --config 指定）；不脱敏的输出：export、show" in err
    (summary,) = (tmp_path / "reports" / "batches").glob("*.md")
    assert "- 配置：配置文件" in summary.read_text(encoding="utf-8")


def test_the_configuration_in_force_is_said_in_the_batch_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "calls").mkdir()
    assert callqa(["run", "calls", "--db", "qa.duckdb"]) == 0
    assert "未使用配置文件（全部为默认值）；所有输出均脱敏" in capsys.readouterr().err
    (tmp_path / "callqa.toml").write_text("[batch]\n", encoding="utf-8")
    assert callqa(["run", "calls", "--db", "qa.duckdb"]) == 0
    assert "当前目录中自动读取" in capsys.readouterr().err
    texts = [p.read_text(encoding="utf-8") for p in (tmp_path / "reports" / "batches").glob("*.md")]
    assert any("- 配置：配置文件" in t and "当前目录中自动读取" in t for t in texts)


def test_prefect_task_names_hold_no_callers_number() -> None:
    from flows import task_run_name  # imports Prefect: only here

    name = task_run_name(Path("/calls/1001_20261120-091502_13912345678.wav"), Settings())
    assert name == "process 1001_20261120-091502_139****5678.wav"
