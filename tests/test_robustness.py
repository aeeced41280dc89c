"""Bad input, crashes and reruns, locks — everything that needs no speech recognition.

The catalogue's entries that stop before recognition are each processed and checked here (reason,
problem code, status, what the store keeps); the ones that are analysed are checked at the decoding
stage. tests/test_catalogue.py runs the whole catalogue as one real batch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT
from make_catalogue import CATALOGUE, build
from storecalls import save_call

from pipeline.batch import batch_lock, plan_batch, run_batch
from pipeline.config import IntakeConfig, Settings, load_settings
from pipeline.errors import CallQAError
from pipeline.ingest import decode, fingerprint, read_meta
from pipeline.problems import RecordingError
from pipeline.process import process_recording
from pipeline.store import Store, StoreBusyError

ENTRIES = {e.name: e for e in CATALOGUE}
BEFORE_RECOGNITION = [
    "1007_20261120-090000.wav",
    "1008_20261120-091000.wav",
    "1011_20261120-094000.wav",
    "1012_20261120-095000.wav",
    "9999_20261120-100000.wav",
    "empty.wav",
    "truncated_header.wav",
    "random_bytes.wav",
    "notes.wav",
    "g729.wav",
    "voicemail.amr",
    "being_written.wav",
    "gone.wav",
]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("catalogue")
    build(out)
    return out, time.time()  # the "batch" starts now: being_written.wav was just written


def _settings(catalogue: Path, db: Path, **sections: dict) -> Settings:
    settings = load_settings(catalogue / "callqa.toml", db=db)
    return settings.model_copy(
        update={k: getattr(settings, k).model_copy(update=v) for k, v in sections.items()}
    )


@pytest.mark.parametrize("name", BEFORE_RECOGNITION)
def test_catalogue_entry_gets_its_reason(name: str, catalogue: tuple[Path, float], tmp_path: Path) -> None:
    out, started = catalogue
    entry = ENTRIES[name]
    settings = _settings(out, tmp_path / "qa.duckdb")
    path = out / "recordings" / name
    outcome = process_recording(path, settings, batch_started=started)
    assert (outcome.status, outcome.problem) == (entry.status, entry.problem), outcome.message
    assert entry.says in outcome.message and name.split(".")[0] in outcome.message
    assert not outcome.retryable
    with Store(settings.db, read_only=True) as store:
        row = store.recording_at(path)
        assert (row.status, row.problem, row.attempts) == (entry.status, entry.problem, 1)
        assert entry.says in row.error
        assert store.call_ids() == [] and store.interrupted() == []  # nothing half done, no mark left


@pytest.mark.parametrize(
    ("name", "layout", "rate", "warning"),
    [
        ("1002_20261120-081000.wav", "stereo-agent-left", 44100, None),
        ("1003_20261120-082000.flac", "stereo-agent-left", 48000, None),
        ("1004_20261120-083000.wav", "mono", 8000, None),
        ("1005_20261120-084000.wav", "stereo-agent-left", 8000, "削波失真"),
        ("1006_20261120-085000.wav", "mono", 8000, "右声道全程无声"),
        (
            "1009_20261120-092000.wav",
            "stereo-agent-left",
            8000,
            "文件被截断：文件头标明 18 秒，实际只有 12 秒",
        ),
    ],
)
def test_analysed_catalogue_entries_decode(
    name: str, layout: str, rate: int, warning: str | None, catalogue: tuple[Path, float]
) -> None:
    path = catalogue[0] / "recordings" / name
    settings = Settings()
    audio = decode(path, read_meta(path, settings.input), settings.input, settings.intake)
    assert (audio.layout, audio.source_sample_rate, audio.sample_rate) == (layout, rate, 16000)
    expected = 12.0 if name.startswith("1009") else 18.0
    assert audio.duration_s == pytest.approx(expected, abs=1.0)
    for track in audio.tracks.values():
        assert len(track) == pytest.approx(audio.duration_s * 16000, abs=200)
        assert 0.005 < float(np.sqrt(np.mean(track**2))) < 0.8  # speech, not silence
    assert (warning is None and not audio.warnings) or any(warning in w for w in audio.warnings), (
        audio.warnings
    )
    if name.startswith("1004"):
        assert audio.source_format == "WAV/ULAW"


def test_too_long_recordings_are_skipped_before_decoding(
    catalogue: tuple[Path, float], tmp_path: Path
) -> None:
    out, started = catalogue
    settings = _settings(out, tmp_path / "qa.duckdb", intake={"max_duration_s": 10.0})
    outcome = process_recording(
        out / "recordings" / "1001_20261120-080000.wav", settings, batch_started=started
    )
    assert (outcome.status, outcome.problem) == ("skipped", "too_long")
    assert (
        "超过上限 0 分 10 秒（intake.max_duration_s）" in outcome.message and "--recheck" in outcome.message
    )


def test_skipped_files_are_done_until_recheck(catalogue: tuple[Path, float], tmp_path: Path) -> None:
    out, started = catalogue
    settings = _settings(out, tmp_path / "qa.duckdb")
    short = out / "recordings" / "1007_20261120-090000.wav"
    assert process_recording(short, settings, batch_started=started).status == "skipped"
    again = process_recording(short, settings, batch_started=started)
    assert again.status == "unchanged" and "以前已跳过" in again.message
    rechecked = process_recording(short, settings, recheck=True, batch_started=started)
    assert rechecked.status == "skipped"
    with Store(settings.db, read_only=True) as store:
        assert (
            store.recording_at(short).attempts == 2
        )  # failed ones are retried every time, skipped ones on recheck


def test_failed_files_are_retried_on_every_run(catalogue: tuple[Path, float], tmp_path: Path) -> None:
    out, started = catalogue
    settings = _settings(out, tmp_path / "qa.duckdb")
    notes = out / "recordings" / "notes.wav"
    for attempt in (1, 2, 3):
        assert process_recording(notes, settings, batch_started=started).status == "failed"
        with Store(settings.db, read_only=True) as store:
            assert store.recording_at(notes).attempts == attempt


def test_a_file_growing_while_it_is_read_is_being_written(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    path.write_bytes(os.urandom(64 << 20))  # hashing takes long enough for the writer to add to it
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "with open(sys.argv[1], 'ab', buffering=0) as f:\n"
            "    while True:\n"
            "        f.write(b'x' * 4096); time.sleep(0.001)",
            str(path),
        ]
    )
    try:
        time.sleep(0.3)
        with pytest.raises(RecordingError) as err:
            fingerprint(path, settle_s=0.0)
        assert (
            err.value.problem == "writing" and err.value.status == "skipped" and "仍在写入" in str(err.value)
        )
    finally:
        writer.kill()
        writer.wait()
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    assert fingerprint(path, settle_s=60.0).size_bytes == path.stat().st_size  # finished: read normally


def test_a_file_without_read_permission_is_unreadable(tmp_path: Path) -> None:
    """Root reads every file: as root the check runs in a child process without the capabilities
    that let root ignore file permissions (setpriv)."""
    path = tmp_path / "locked.wav"
    path.write_bytes(b"RIFF")
    path.chmod(0)
    code = (
        "import sys; from pathlib import Path; from pipeline.ingest import fingerprint\n"
        "from pipeline.problems import RecordingError\n"
        "try:\n    fingerprint(Path(sys.argv[1]))\nexcept RecordingError as e:\n    print(e.problem, e)\n"
    )
    command = [sys.executable, "-c", code, str(path)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    run = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True
    )
    assert run.stdout.startswith("unreadable ") and "没有读取权限" in run.stdout, run.stdout + run.stderr


def test_an_unreadable_file_keeps_its_earlier_result(tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "qa.duckdb")
    path = tmp_path / "a.wav"
    with Store(settings.db) as store:
        save_call(store, "C1", [("agent", 0.5, 2.0, "您好")], path=str(path))
    path.symlink_to(tmp_path / "mount-gone" / "a.wav")  # the share went away
    outcome = process_recording(path, settings)
    assert (outcome.status, outcome.problem) == (
        "failed",
        "unreadable",
    ) and "保留上次的分析结果" in outcome.message
    with Store(settings.db, read_only=True) as store:
        assert store.recording_at(path).status == "ok" and store.call("C1") is not None


def test_roster_fills_names_and_refuses_unknown_agents(tmp_path: Path) -> None:
    from pipeline.records import CallMeta
    from pipeline.roster import check_agent, load_roster

    roster = tmp_path / "agents.csv"
    roster.write_text("agent_id,agent_name\n1001,张敏\n1002,\n", encoding="gb18030")  # as Excel saves it
    loaded = load_roster(roster)
    assert check_agent(CallMeta("C1", agent_id="1001"), loaded, Path("a.wav")).agent_name == "张敏"
    assert (
        check_agent(CallMeta("C1", agent_id="1002", agent_name="李"), loaded, Path("a.wav")).agent_name
        == "李"
    )
    with pytest.raises(RecordingError, match="客服工号 7777（随录音信息字段 agent_id）不在客服名单"):
        check_agent(CallMeta("C1", agent_id="7777", source="sidecar"), loaded, Path("a.wav"))
    with pytest.raises(RecordingError, match="没有客服工号"):
        check_agent(CallMeta("C1"), loaded, Path("a.wav"))
    for text, reason in (
        ("id,name\n1,a\n", "缺少 agent_id 列"),
        ("agent_id\n1\n1\n", "第 3 行的 agent_id 1 重复"),
    ):
        roster.write_text(text, encoding="utf-8")
        with pytest.raises(CallQAError, match=reason):
            load_roster(roster)


def test_a_broken_roster_stops_the_batch_before_it_starts(tmp_path: Path) -> None:
    roster = tmp_path / "agents.csv"
    roster.write_text("name\nx\n", encoding="utf-8")
    settings = load_settings(None, db=tmp_path / "qa.duckdb", agents={"roster": str(roster)})
    (tmp_path / "calls").mkdir()
    with pytest.raises(CallQAError, match="agent_id 列"):
        run_batch(tmp_path / "calls", settings)


def _short_wav(path: Path, seconds: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(0).normal(0, 0.1, int(8000 * seconds)).astype(np.float32), 8000)
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    return path


def test_a_file_the_batch_died_on_goes_last_and_is_held_after_two_crashes(tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "qa.duckdb")
    folder = tmp_path / "calls"
    crashing = _short_wav(folder / "a_crashes.wav")
    _short_wav(folder / "b_fine.wav", 0.6)
    sha = fingerprint(crashing).sha256
    for crash in (1, 2):
        with Store(settings.db) as store:  # what a batch killed while working on the file leaves
            store.begin_processing(crashing, sha)
        with batch_lock(settings.db):
            plan = plan_batch(folder, settings)
        assert [p.name for p in plan.paths] == ["b_fine.wav", "a_crashes.wav"]  # the suspect goes last
        with Store(settings.db, read_only=True) as store:
            row = store.recording_at(crashing)
            assert (row.status, row.problem) == ("failed", "crashed") and f"中断（第 {crash} 次" in row.error
        if crash == 1:
            assert plan.held == {}
    assert plan.held[crashing].problem == "crashed" and "--recheck" in plan.held[crashing].message
    summary = run_batch(folder, settings)  # held: not tried; the other file is
    assert {o.path.name: o.status for o in summary.outcomes} == {
        "b_fine.wav": "skipped",
        "a_crashes.wav": "failed",
    }
    rechecked = run_batch(folder, settings, recheck=True)
    assert {o.path.name: (o.status, o.problem) for o in rechecked.outcomes}["a_crashes.wav"] == (
        "skipped",
        "too_short",
    )
    with Store(settings.db, read_only=True) as store:
        assert store.interrupted() == []  # finished: the crash record is gone


def test_a_second_batch_on_the_same_database_does_not_start(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pipeline.batch import batch_lock\n"
            "with batch_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        (tmp_path / "calls").mkdir()
        with pytest.raises(CallQAError, match=rf"另一个批处理正在写这个数据库（进程 {holder.pid}，开始于"):
            run_batch(tmp_path / "calls", Settings(db=db))
    finally:
        holder.kill()
        holder.wait()
    assert run_batch(tmp_path / "calls", Settings(db=db)).outcomes == []  # the lock died with its process


def _hold_database(db: Path, seconds: float, read_only: bool = True) -> subprocess.Popen:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            "c = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == 'ro')\n"
            "print('open', flush=True); time.sleep(float(sys.argv[2])); c.close()",
            str(db),
            str(seconds),
            "ro" if read_only else "rw",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "open"
    return holder


def test_the_store_waits_for_another_process_then_gives_up_with_a_reason(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    Store(db).close()
    holder = _hold_database(db, 2.0)
    try:
        with pytest.raises(StoreBusyError, match=rf"正被另一个程序使用（进程 {holder.pid}），等了 0.3 秒"):
            Store(db, lock_wait_s=0.3)
        waited = time.monotonic()
        with Store(db, lock_wait_s=30) as store:  # a writer waits for the reader to finish
            store.db.execute("SELECT 1")
        assert time.monotonic() - waited > 0.5
    finally:
        holder.wait()


def test_a_busy_database_fails_the_file_as_retryable(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    Store(db).close()
    short = _short_wav(tmp_path / "calls" / "short.wav")
    settings = Settings(db=db).model_copy(
        update={"batch": Settings().batch.model_copy(update={"db_lock_wait_s": 0.2})}
    )
    holder = _hold_database(db, 3.0, read_only=False)
    try:
        outcome = process_recording(short, settings)
    finally:
        holder.wait()
    assert (outcome.status, outcome.problem, outcome.retryable) == ("failed", "db_busy", True)
    assert "无法写入数据库" in outcome.message
    assert (
        process_recording(short, settings).status == "skipped"
    )  # nothing was recorded: it simply runs again


def test_intake_defaults_are_documented_values() -> None:
    intake = IntakeConfig()
    assert (intake.min_duration_s, intake.settle_s, intake.silent_dbfs) == (2.0, 60.0, -55.0)
    assert ".amr" in intake.unsupported_extensions
