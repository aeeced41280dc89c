"""The month read by column gives what the row path gave: `Store.columns` the values of
`Store.query`, the call pages' transcripts built from columns the lines built row by row from
Utterances, and `read_month` (the month's utterances read once, the findings' evidence redacted
with the same rows) the report of `compute_month` (which reads them itself) — with redaction on and
off, on the constructed month with recogniser evidence of every kind and a spoken phone number."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
from fixtures.reports.monthdata import MONTH, build
from test_store_call_time import _rounded

from pipeline.config import PrivacyConfig
from pipeline.records import Utterance
from pipeline.reports.monthly import (
    FindingRow,
    Month,
    _column_records,
    _records,
    compute_month,
    read_month,
)
from pipeline.reports.policy import load_policy
from pipeline.reports.privacy import report_privacy, transcript_for_output
from pipeline.reports.transcripts import TranscriptLine, read_transcripts
from pipeline.rules.evidence import recogniser_note_zh, scorecard_matching, weak_evidence
from pipeline.store import Store

NUMBER = "13812345678"


def _enrich(db: Path) -> None:
    """The constructed month, plus what its calls lack: the recogniser's evidence in every
    combination (NULLs, loops, low probabilities, speech left unheard), recognised utterances
    (a first timed character), word probabilities from 0 to 0.99, a phone number said whole in one
    call and spread over two utterances in another, and findings quoting it."""
    with Store(db) as store:
        con = store.db
        con.execute(
            "UPDATE utterances SET confidence = CASE WHEN (idx + hash(call_id)) % 5 = 0 THEN 0 "
            "ELSE ((idx * 37 + hash(call_id)) % 100) / 100.0 END"
        )
        con.execute(
            "INSERT INTO utterance_evidence (call_id, utterance_idx, avg_logprob, no_speech_prob, "
            "compression_ratio, looping, unheard_s, call_started_at) "
            "SELECT call_id, idx, CASE h % 4 WHEN 0 THEN -1.5 WHEN 1 THEN NULL ELSE -0.2 END, "
            "CASE h % 3 WHEN 0 THEN 0.9 WHEN 1 THEN NULL ELSE 0.1 END, "
            "CASE h % 5 WHEN 0 THEN 3.1 WHEN 1 THEN NULL ELSE 1.4 END, h % 7 = 0, "
            "CASE h % 6 WHEN 0 THEN end_s - start_s WHEN 1 THEN 0.5 WHEN 2 THEN NULL ELSE 0 END, "
            "call_started_at FROM (SELECT *, (hash(call_id) + idx) % 1000 AS h FROM utterances) "
            "WHERE h % 8 <> 0"  # some utterances have no evidence row (older rows)
        )
        con.execute(
            "INSERT INTO char_timings SELECT call_id, idx, 0, left(text, 1), start_s, start_s + 0.1, 0.9, "
            "call_started_at FROM utterances WHERE (hash(call_id) + idx) % 3 <> 0"
        )
        whole, spread = con.execute(
            "SELECT call_id FROM current_findings WHERE NOT passed AND agent_id IS NOT NULL "
            "AND started_at >= '2026-11-05' ORDER BY call_id LIMIT 2"
        ).fetchall()
        con.execute(
            "UPDATE utterances SET text = ? WHERE call_id = ? AND idx = 1",
            [f"我的手机号是{NUMBER}，麻烦查一下。", whole[0]],
        )
        con.execute(
            "UPDATE utterances SET text = CASE idx WHEN 1 THEN ? ELSE ? END WHERE call_id = ? AND idx IN (1, 2)",
            [f"号码是{NUMBER[:7]}", f"{NUMBER[7:]}，对。", spread[0]],
        )
        con.execute(
            "UPDATE findings SET evidence = ? WHERE call_id IN (?, ?) AND NOT passed",
            [f"客户说{NUMBER[:7]}", whole[0], spread[0]],
        )


@pytest.fixture(scope="module")
def month_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("month")
    db = work / "qa.duckdb"
    build(db, work)
    _enrich(db)
    return db


def _row_path(store: Store, call_ids: Sequence[str]) -> tuple[dict, dict]:
    """The transcripts as the report built them before: a dict per row, an Utterance per line."""
    rows = store.query(
        "SELECT u.call_id, u.idx, u.speaker, u.start_s, u.end_s, u.text, u.confidence, e.avg_logprob, "
        "e.no_speech_prob, e.compression_ratio, coalesce(e.looping, false) AS looping, e.unheard_s, "
        "EXISTS (SELECT 1 FROM char_timings t WHERE t.call_id = u.call_id AND t.utterance_idx = u.idx "
        "AND t.idx = 0) AS recognised FROM utterances u LEFT JOIN utterance_evidence e "
        "ON e.call_id = u.call_id AND e.utterance_idx = u.idx "
        "WHERE u.call_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY u.call_id, u.idx",
        [list(call_ids)],
    )
    cards = {
        r["call_id"]: scorecard_matching(r["content"])
        for r in store.query(
            "SELECT s.call_id, c.content FROM scores s LEFT JOIN scorecards c USING (scorecard_hash) "
            "WHERE s.is_current"
        )
    }
    by_call: dict[str, list[dict]] = {}
    for row in rows:
        by_call.setdefault(row["call_id"], []).append(row)
    transcripts, changed = {}, {}
    for call_id, lines in by_call.items():
        texts = transcript_for_output([(r["speaker"], r["text"]) for r in lines])
        built = []
        for r, text in zip(lines, texts, strict=True):
            heard = Utterance(
                r["speaker"], r["start_s"], r["end_s"], r["text"], confidence=r["confidence"],
                avg_logprob=r["avg_logprob"], no_speech_prob=r["no_speech_prob"],
                compression_ratio=r["compression_ratio"], looping=bool(r["looping"]), unheard_s=r["unheard_s"],
            )  # fmt: skip
            matching = cards.get(call_id) or scorecard_matching(None)
            note = recogniser_note_zh(heard, matching, r["recognised"])
            weak = weak_evidence(heard, matching, r["recognised"]) is not None
            built.append(TranscriptLine(r["idx"], r["speaker"], r["start_s"], r["end_s"], text, note, weak))
            if text != r["text"]:
                changed[(call_id, r["idx"])] = r["text"]
        transcripts[call_id] = tuple(built)
    return transcripts, changed


def _types(value: object) -> object:
    """The Python type of every value (a numpy number would compare equal and print the same)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple(_types(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, list | tuple):
        return tuple(_types(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _types(v)) for k, v in value.items()))
    return type(value).__name__


@pytest.mark.parametrize("redacted", [True, False])
def test_the_month_by_column_is_the_month_by_row(month_db: Path, redacted: bool) -> None:
    privacy = PrivacyConfig(unredacted_outputs=() if redacted else ("report",))
    month = Month.parse(MONTH)
    with report_privacy(privacy), Store(month_db, read_only=True) as store:
        read = read_month(store, month, load_policy(), "Asia/Shanghai")
        alone = compute_month(store, month, load_policy(), "Asia/Shanghai")
        call_ids = [c.call_id for c in alone.calls]
        by_row = _row_path(store, call_ids)
        by_column = read_transcripts(store, call_ids)
    # floats to 9 digits: DuckDB's parallel sums differ in the last bits from run to run
    assert _rounded(dataclasses.replace(read.report, generated_at=None)) == _rounded(
        dataclasses.replace(alone, generated_at=None)
    )
    assert (read.transcripts, read.changed) == by_column == by_row
    assert _types(read.transcripts) == _types(by_row[0])
    assert _types(read.report.findings) == _types(alone.findings)
    lines = [line for t in read.transcripts.values() for line in t]
    notes = {line.recogniser.split("，")[0] for line in lines}
    # the constructed evidence reaches every branch: weak and not, known and unknown probability
    assert {True, False} <= {line.weak for line in lines} and "无识别把握数据" in notes and len(notes) > 20
    quoting = [f.evidence for f in read.report.findings if f.evidence and "客户说" in f.evidence]
    assert len(quoting) > 1
    if redacted:  # the number is masked in the pages and in the evidence that quotes it
        assert len({c for c, _ in read.changed}) == 2
        assert not any(NUMBER in line.text for line in lines)
        assert all(NUMBER[:7] not in text for text in quoting)
    else:
        assert not read.changed and sum(NUMBER in line.text for line in lines) == 1


@pytest.mark.parametrize("redacted", [True, False])
def test_records_by_column_are_records_by_row(month_db: Path, redacted: bool) -> None:
    sql = (
        "SELECT f.call_id, c.agent_id, f.idx, f.rule_id, f.title, f.category, f.passed, f.deduction, "
        "f.fatal, f.start_s, f.end_s, f.speaker, f.evidence, f.confidence, f.needs_review, f.replacement "
        "FROM findings f JOIN calls c USING (call_id) WHERE c.agent_id IS NOT NULL ORDER BY ALL"
    )
    privacy = PrivacyConfig(unredacted_outputs=() if redacted else ("report",))
    with report_privacy(privacy), Store(month_db, read_only=True) as store:
        by_row = _records(FindingRow, store.query(sql))
        by_column = _column_records(FindingRow, store.columns(sql))
    assert by_column == by_row and _types(by_column) == _types(by_row)
    assert any(f.start_s is None for f in by_row) and any(f.replacement for f in by_row)


def test_columns_are_the_query_s_values_and_refuse_what_numpy_would_change(month_db: Path) -> None:
    sql = (
        "SELECT u.call_id, u.idx, u.start_s, u.text, e.avg_logprob, e.looping, "
        "CAST(u.idx AS BIGINT) AS big, CAST(u.confidence AS FLOAT) AS single "
        "FROM utterances u LEFT JOIN utterance_evidence e ON e.call_id = u.call_id AND e.utterance_idx = u.idx "
        "ORDER BY u.call_id, u.idx"
    )
    with Store(month_db, read_only=True) as store:
        rows = store.query(sql)
        columns = store.columns(sql)
        empty = store.columns("SELECT call_id, idx FROM utterances WHERE false")
        for refused in ("started_at FROM calls", "1.5 AS d", "[1, 2] AS l", "sum(idx) FROM utterances"):
            with pytest.raises(TypeError, match=r"Store\.query"):
                store.columns(f"SELECT {refused}")
    assert [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)] == rows
    assert _types(list(zip(*columns.values(), strict=True))) == _types([tuple(r.values()) for r in rows])
    assert any(r["avg_logprob"] is None for r in rows) and any(r["looping"] is None for r in rows)
    assert empty == {"call_id": [], "idx": []}
