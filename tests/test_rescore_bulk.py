"""`callqa rescore` in chunks (bulk reads, bulk writes, engine in worker processes) stores exactly
the rows that re-scoring call by call stores, and stays idempotent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_rules_store import _store_sample_calls, _tuned

from pipeline.cli import main
from pipeline.decisions import record_decision
from pipeline.rules import DEFAULT_SCORECARD, load_scorecard, parse_scorecard
from pipeline.rules.rescore import Rescored, rescore, rescore_call
from pipeline.store import Store

ROWS = {
    "scores": "SELECT * EXCLUDE (scored_at) FROM scores ORDER BY call_id, scored_at",
    "findings": "SELECT * EXCLUDE (scored_at) FROM findings ORDER BY call_id, scored_at, idx",
    "scorecards": "SELECT * EXCLUDE (first_used_at) FROM scorecards ORDER BY scorecard_hash",
}


def _rows(db: Path) -> dict[str, list[tuple]]:
    with Store(db, read_only=True) as store:
        return {table: store.db.execute(sql).fetchall() for table, sql in ROWS.items()}


def _summary(results: list[Rescored]) -> list[tuple]:
    return [(r.call_id, r.before, r.after, r.fatal, r.stored, r.scorecard.hash) for r in results]


@pytest.fixture(scope="module")
def scored_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample calls scored with the default card, one finding voided and one confirmed by a person."""
    db = tmp_path_factory.mktemp("bulk") / "qa.duckdb"
    ids = _store_sample_calls(db)
    default = load_scorecard(DEFAULT_SCORECARD)
    with Store(db) as store:
        rescore(store, [default], workers=1)
        decided = 0
        for call_id in ids:
            findings = store.current_findings(call_id)
            failed = next((f for f in findings if not f.passed and not f.needs_review), None)
            unsure = next((f for f in findings if not f.passed and f.needs_review), None)
            if failed is not None and decided == 0:
                record_decision(
                    store, call_id, failed.rule_id, failed.start, "void", "appeal", "主管", default
                )
                decided += 1
            if unsure is not None and decided == 1:
                record_decision(
                    store, call_id, unsure.rule_id, unsure.start, "deducts", "review", "主管", default
                )
                decided += 1
        assert decided == 2, "the sample calls should give one sure and one unsure violation to decide"
    return db


@pytest.mark.parametrize("workers", [1, 2])
def test_bulk_rescore_stores_the_rows_of_a_per_call_rescore(
    scored_store: Path, tmp_path: Path, workers: int
) -> None:
    per_call, bulk = tmp_path / "per_call.duckdb", tmp_path / "bulk.duckdb"
    shutil.copy(scored_store, per_call)
    shutil.copy(scored_store, bulk)
    tuned = [parse_scorecard(_tuned(), "tuned.yaml")]
    with Store(per_call) as store:
        one_by_one = [rescore_call(store, call_id, tuned) for call_id in store.call_ids_since(None)]
    with Store(bulk) as store:
        chunked = rescore(store, tuned, workers=workers)
    assert _summary(chunked) == _summary([r for r in one_by_one if r is not None])
    assert any(r.stored for r in chunked) and any(r.before != r.after for r in chunked)
    expected = _rows(per_call)
    assert _rows(bulk) == expected
    # NULL evidence times stay NULL
    assert any(row[9] is None for row in expected["findings"])  # start_s
    with Store(bulk) as store:
        again = rescore(store, tuned, workers=workers)
        assert not any(r.stored for r in again)  # idempotent: nothing new the second time
        current = store.db.execute(
            "SELECT count(*), count(DISTINCT call_id) FROM scores WHERE is_current"
        ).fetchone()
        assert current[0] == current[1] == len(again)
    assert _rows(bulk) == expected


def test_people_s_verdicts_survive_a_bulk_rescore(scored_store: Path, tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    shutil.copy(scored_store, db)
    with Store(db) as store:
        decided = store.db.execute("SELECT DISTINCT call_id FROM finding_decisions").fetchall()
        before = {cid: store.current_score(cid) for (cid,) in decided}
        rescore(store, [parse_scorecard(_tuned(), "tuned.yaml")], workers=1)
        for (call_id,) in decided:
            notes = [f.evidence or "" for f in store.current_findings(call_id)]
            assert any("人工" in note for note in notes), (call_id, before[call_id])


def test_cli_rescore_with_workers(
    scored_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "qa.duckdb"
    shutil.copy(scored_store, db)
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text(_tuned(), encoding="utf-8")
    assert main(["rescore", "--db", str(db), "--scorecard", str(tuned), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert "重新评分 5 通电话" in captured.err
    with Store(db, read_only=True) as store:
        hashes = store.db.execute("SELECT DISTINCT scorecard_hash FROM scores WHERE is_current").fetchall()
    assert hashes == [(parse_scorecard(_tuned()).hash,)]


def test_points_only_rescore_in_sql_stores_the_rows_of_the_python_path(
    scored_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A points-only edit is re-priced by set-based SQL (pipeline/store/reprice.py); the calls it
    takes get exactly the rows that re-pricing in Python (incremental.assemble) writes, and the
    calls with people's verdicts still go through Python."""
    import pipeline.rules.rescore as rescore_module

    in_sql, in_python = tmp_path / "sql.duckdb", tmp_path / "python.duckdb"
    shutil.copy(scored_store, in_sql)
    shutil.copy(scored_store, in_python)
    tuned = [parse_scorecard(_tuned(), "tuned.yaml")]
    taken: list[str] = []
    original = rescore_module._reprice_in_sql

    def counted(*args: object) -> list[Rescored]:
        done = original(*args)  # type: ignore[arg-type]
        taken.extend(r.call_id for r in done)
        return done

    monkeypatch.setattr(rescore_module, "_reprice_in_sql", counted)
    with Store(in_sql) as store:
        by_sql = rescore(store, tuned, workers=1)
        decided = {r[0] for r in store.db.execute("SELECT call_id FROM finding_decisions").fetchall()}
    monkeypatch.setattr(rescore_module, "_reprice_in_sql", lambda *args: [])
    with Store(in_python) as store:
        by_python = rescore(store, tuned, workers=1)
    assert taken and decided and not decided & set(taken)
    assert len(taken) + len(decided) == len(by_sql)
    assert _summary(by_sql) == _summary(by_python)
    assert _rows(in_sql) == _rows(in_python)
