"""`callqa rescore` that keeps the findings of unchanged rules stores exactly the rows of a rescore
that runs the whole engine on every call: points-only edits, one rule's phrases, no edit."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_rescore_bulk import _rows, _summary, scored_store  # noqa: F401 (a fixture)
from test_rules_store import _store_sample_calls, _tuned

from pipeline.rules import DEFAULT_SCORECARD, load_scorecard, parse_scorecard
from pipeline.rules.incremental import ENGINE_VERSION, plan, rule_fingerprints
from pipeline.rules.rescore import rescore
from pipeline.store import Store


def _every_deduction_plus_one() -> str:
    """Every rule's points changed (and one category): the cap rule must run, the others not."""
    text = DEFAULT_SCORECARD.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(    deduction: )(\d+)$", lambda m: f"{m[1]}{int(m[2]) % 100 + 1}", text)
    return text.replace("    category: 开场\n", "    category: 服务过程\n", 1)


def _greeting_phrase_added() -> str:
    """One rule's phrases changed: OPEN-GREETING accepts a new way of asking what the caller needs."""
    text = DEFAULT_SCORECARD.read_text(encoding="utf-8")
    anchor = "          - 请问您有什么需要\n"
    assert anchor in text
    return text.replace(anchor, anchor + "          - 您想办理什么\n", 1)


EDITS = {
    "points only (CLOSE-SURVEY 3 → 0)": _tuned,
    "every rule's points": _every_deduction_plus_one,
    "one rule's phrases": _greeting_phrase_added,
    "no change": lambda: DEFAULT_SCORECARD.read_text(encoding="utf-8"),
}


@pytest.fixture(scope="module")
def undecided_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample calls scored with the default card, no person's verdict on any."""
    db = tmp_path_factory.mktemp("undecided") / "qa.duckdb"
    _store_sample_calls(db)
    with Store(db) as store:
        rescore(store, [load_scorecard(DEFAULT_SCORECARD)], workers=1)
    return db


@pytest.mark.parametrize("decided", [False, True], ids=["no verdicts", "verdicts on two calls"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_incremental_rescore_stores_the_rows_of_a_full_rescore(
    scored_store: Path,  # noqa: F811
    undecided_store: Path,
    tmp_path: Path,
    edit: str,
    decided: bool,
) -> None:
    card = parse_scorecard(EDITS[edit](), "edited.yaml")
    full, incremental = tmp_path / "full.duckdb", tmp_path / "incremental.duckdb"
    shutil.copy(scored_store if decided else undecided_store, full)
    shutil.copy(scored_store if decided else undecided_store, incremental)
    with Store(full) as store:
        assert store.db.execute("SELECT count(*) FROM scores WHERE engine = ?", [ENGINE_VERSION]).fetchone()[
            0
        ]
        # findings of an unknown engine version: the whole engine runs on every call
        store.db.execute("UPDATE scores SET engine = NULL")
        by_engine = rescore(store, [card], workers=1)
        store.db.execute("UPDATE scores SET engine = ? WHERE engine IS NULL", [ENGINE_VERSION])
    with Store(incremental) as store:
        kept = rescore(store, [card], workers=1)
    assert _summary(kept) == _summary(by_engine)
    assert _rows(incremental) == _rows(full)
    if edit == "no change":
        assert not any(r.stored for r in kept)
    else:
        assert any(r.stored for r in kept)


def test_the_plan_runs_only_changed_rules() -> None:
    default = parse_scorecard(DEFAULT_SCORECARD.read_text(encoding="utf-8"), DEFAULT_SCORECARD)
    content = default.content
    unchanged = plan(default, content)
    assert unchanged is not None and not unchanged.needs_engine and not unchanged.reprice
    points = plan(parse_scorecard(_tuned()), content)
    assert points is not None and not points.needs_engine and set(points.reprice) == {"CLOSE-SURVEY"}
    everything = plan(parse_scorecard(_every_deduction_plus_one()), content)
    assert everything is not None and everything.evaluate == ("FORBIDDEN",)  # capped: its points spread
    phrase = plan(parse_scorecard(_greeting_phrase_added()), content)
    assert phrase is not None and phrase.evaluate == ("OPEN-GREETING",)
    assert plan(default, None) is None  # the stored card is unknown: everything runs
    # pricing is not part of a rule's fingerprint; its patterns, title and matching limits are
    prints = rule_fingerprints(default)
    assert rule_fingerprints(parse_scorecard(_tuned())) == prints
    retitled = parse_scorecard(content.replace("title: 标准开场白", "title: 开场白"))
    assert {k for k, v in rule_fingerprints(retitled).items() if prints[k] != v} == {"OPEN-GREETING"}


def test_an_edited_rule_of_calls_with_people_s_verdicts_runs_in_full(
    scored_store: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Verdicts change findings after the engine: those calls are scored by the whole engine, and
    their verdicts still stand (the other calls take the incremental path)."""
    db = tmp_path / "qa.duckdb"
    shutil.copy(scored_store, db)
    with Store(db) as store:
        decided = {r[0] for r in store.db.execute("SELECT call_id FROM finding_decisions").fetchall()}
        assert decided
        rescore(store, [parse_scorecard(_tuned())], workers=1)
        for call_id in decided:
            assert any("人工" in (f.evidence or "") for f in store.current_findings(call_id))


def test_calls_whose_metrics_were_computed_again_run_in_full(undecided_store: Path, tmp_path: Path) -> None:
    """`callqa rescore --metrics` computes metrics again before scoring: findings read from the old
    metrics must not be kept (the call's metrics are newer than its score)."""
    full, incremental = tmp_path / "full.duckdb", tmp_path / "incremental.duckdb"
    shutil.copy(undecided_store, incremental)
    with Store(incremental) as store:
        store.db.execute(
            "UPDATE call_metrics SET agent_chars_per_min = 400, computed_at = now() "
            "WHERE call_id = (SELECT min(call_id) FROM call_metrics)"
        )
    shutil.copy(incremental, full)
    card = parse_scorecard(_tuned(), "tuned.yaml")
    with Store(full) as store:
        store.db.execute("UPDATE scores SET engine = NULL")
        rescore(store, [card], workers=1)
        store.db.execute("UPDATE scores SET engine = ? WHERE engine IS NULL", [ENGINE_VERSION])
    with Store(incremental) as store:
        rescore(store, [card], workers=1)
    assert _rows(incremental) == _rows(full)
    with Store(incremental, read_only=True) as store:
        rate = store.db.execute(
            "SELECT f.passed FROM current_findings f WHERE f.rule_id = 'RATE' "
            "AND f.call_id = (SELECT min(call_id) FROM call_metrics)"
        ).fetchone()
    assert rate == (False,)  # 400 characters a minute fails the rate rule: read from the new metrics


def test_engine_version_covers_every_rules_module_the_engine_runs() -> None:
    """A change to any module the engine imports must change ENGINE_VERSION, or stored findings of
    unchanged rules would be kept although the code that wrote them changed."""
    import subprocess
    import sys

    from pipeline.rules.incremental import _ENGINE_SOURCES

    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pipeline.rules.engine; "
            "print('\\n'.join(m for m in sys.modules if m.startswith('pipeline.rules.')))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout.split()
    engine_modules = {
        "pipeline/" + name.removeprefix("pipeline.").replace(".", "/") + ".py"
        for name in listed
        if name != "pipeline.rules.incremental"  # the fingerprinting itself, not a matcher
    }
    assert "pipeline/rules/verdicts.py" in engine_modules
    assert engine_modules - set(_ENGINE_SOURCES) == set()
