"""Personal data: the redaction rules on a fixture set of realistic sentences (both directions), on
whole calls (numbers split over utterances, echoes), on 250 real customer-service sentences, and at
every output: export, `callqa show`, the monthly report pages, log lines; the audit rows they write."""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import pytest
from conftest import MAGICDATA, ROOT
from fixtures.reports.monthdata import build as build_month

from pipeline.cli import main as callqa
from pipeline.config import PrivacyConfig
from pipeline.export import redact_record
from pipeline.privacy import (
    Redactor,
    install_log_redaction,
    redact_text,
    redact_utterances,
    redact_with_call,
)
from pipeline.store import Store

FIXTURES = ROOT / "tests" / "fixtures" / "privacy"


def _sentences() -> list[tuple[str, str, str]]:
    rows = []
    for line in (FIXTURES / "sentences.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            source, expected, why = line.split("\t")
            rows.append((source, expected, why))
    return rows


SENTENCES = _sentences()


@pytest.mark.parametrize(("source", "expected", "why"), SENTENCES, ids=[why for _, _, why in SENTENCES])
def test_sentence_redaction(source: str, expected: str, why: str) -> None:
    assert redact_text(source) == expected, why


def test_the_fixture_set_tests_both_directions() -> None:
    kept = [s for s, e, _ in SENTENCES if s == e]
    changed = [s for s, e, _ in SENTENCES if s != e]
    assert len(kept) >= 20 and len(changed) >= 25
    labels = (
        "****",
        "[座机号码]",
        "[电话号码]",
        "[身份证号]",
        "[银行卡号]",
        "[详细地址]",
        "[邮箱]",
        "[微信号]",
    )
    labels += ("[QQ号]", "[车牌号]", "[护照号]", "[验证码]", "[安全码]", "[有效期]", "[密码]", "[姓名]")
    for label in labels:
        assert any(label in e for _, e, _ in SENTENCES), label


@pytest.mark.parametrize(
    "case", json.loads((FIXTURES / "calls.json").read_text(encoding="utf-8")), ids=lambda c: c["why"]
)
def test_call_redaction_reads_each_speaker_as_one_text(case: dict) -> None:
    lines = [(speaker, text) for speaker, text in case["lines"]]
    assert redact_utterances(lines) == case["expected"]
    if "evidence" in case:  # a text quoting the call, redacted with the call around it
        text, expected = case["evidence"]
        assert redact_with_call(text, lines) == expected
        assert redact_text(text) != expected  # on its own it would leak: the call is needed


def test_redaction_is_idempotent() -> None:
    for source, _, _ in SENTENCES:
        once = redact_text(source)
        assert redact_text(once) == once


def test_real_customer_service_sentences_are_left_alone() -> None:
    """250 real agent sentences (insurance, finance, tourism …) hold amounts, ages, counts, product
    letters: none of it is personal data, so none of it may change — except the one that reads back
    a customer's QQ mail address."""
    with (MAGICDATA / "transcripts.tsv").open(encoding="utf-8") as handle:
        texts = [row["transcript"] for row in csv.DictReader(handle, delimiter="\t")]
    assert len(texts) == 250
    changed = [(t, redact_text(t)) for t in texts if redact_text(t) != t]
    assert changed == [
        (
            "好的，我跟您核对一下，是幺零九零二七九零九幺at QQ点com是吗？",
            "好的，我跟您核对一下，是[邮箱]是吗？",
        )
    ]


def test_a_disabled_redactor_passes_text_through() -> None:
    lines = [("customer", "我的手机号是幺三八"), ("customer", "一二三四五六七八")]
    assert Redactor(enabled=False).utterances(lines) == ["我的手机号是幺三八", "一二三四五六七八"]
    assert Redactor(enabled=True).utterances(lines) == ["我的手机号是138", "****5678"]
    assert PrivacyConfig().redacts("export") and not PrivacyConfig(unredacted_outputs=("show",)).redacts(
        "show"
    )


def test_export_evidence_is_redacted_with_the_call() -> None:
    """A finding's evidence quoting the masked middle digits of the customer's mobile: alone it is
    four harmless digits, next to the call it gives back what the transcript's mask hides."""
    record = {
        "utterances": [
            {"speaker": "customer", "text": "我手机13812345678"},
            {"speaker": "agent", "text": "一二三四是吧？"},
        ],
        "metrics": {},
        "error": None,
        "findings": [{"rule_id": "X", "evidence": "客服复述了一二三四"}],
    }
    redacted = redact_record(record, Redactor(enabled=True))
    assert [u["text"] for u in redacted["utterances"]] == ["我手机138****5678", "****是吧？"]
    assert redacted["findings"][0]["evidence"] == "客服复述了****"
    assert redact_record(record, Redactor(enabled=False))["findings"][0]["evidence"] == "客服复述了一二三四"


def test_log_lines_are_redacted_unless_configured(caplog: pytest.LogCaptureFixture) -> None:
    original = logging.getLogRecordFactory()
    logging.setLogRecordFactory(
        logging.LogRecord
    )  # as a fresh process starts (a CLI test may have installed it)
    try:
        install_log_redaction(PrivacyConfig())
        install_log_redaction(PrivacyConfig())  # twice: still redacted once, not wrapped twice
        with caplog.at_level(logging.INFO, logger="callqa"):
            logging.getLogger("callqa").info("客户说：%s", "身份证号是370283199003152214，电话13812345678")
        assert caplog.records[-1].getMessage() == "客户说：身份证号是[身份证号]，电话138****5678"
        try:
            raise ValueError("无法解析：身份证号是370283199003152214")
        except ValueError:
            logging.getLogger("callqa").exception("处理失败")
        formatted = logging.Formatter().format(caplog.records[-1])
        assert "身份证号是[身份证号]" in formatted and "370283199003152214" not in formatted
        assert "ValueError" in formatted and "Traceback" in formatted
        logging.setLogRecordFactory(logging.LogRecord)
        install_log_redaction(PrivacyConfig(unredacted_outputs=("logs",)))
        with caplog.at_level(logging.INFO, logger="callqa"):
            logging.getLogger("callqa").info("电话13812345678")
        assert caplog.records[-1].getMessage() == "电话13812345678"
    finally:
        logging.setLogRecordFactory(original)


# ---- every output of a store holding personal data ---------------------------------------------

RAW = ("一二三四五六七八", "370283199003152214", "6222021234567890", "建国路88号", "13912345678")
MASKS = ("138", "****5678", "[身份证号]", "[银行卡号]", "[详细地址]", "139****5678")


@pytest.fixture()
def month_with_pii(tmp_path: Path) -> tuple[Path, str]:
    """The report tests' constructed month, one call of which a customer filled with personal data."""
    db = tmp_path / "qa.duckdb"
    built = build_month(db, tmp_path)
    call_id = built.calls["A02"][0]
    lines = [
        ("agent", 0.5, 3.0, "您好，客户服务中心，请问有什么可以帮您？"),
        ("customer", 3.2, 6.0, "我的手机号是幺三八"),
        ("agent", 6.1, 6.4, "嗯"),
        ("customer", 6.5, 9.0, "一二三四五六七八"),
        ("customer", 9.2, 12.0, "身份证号是370283199003152214，卡号6222021234567890"),
        ("customer", 12.2, 15.0, "寄到北京市朝阳区建国路88号"),
        ("customer", 15.2, 18.0, "身份证号是要零要零要零要九九零零三零七要二三四"),  # ASR: 要 for 幺
        ("customer", 18.2, 21.0, "另一个号码是腰三九洞洞拐勾勾四三二"),
    ]
    with Store(db) as store:
        store.db.execute("DELETE FROM utterances WHERE call_id = ?", [call_id])
        store.db.executemany(
            "INSERT INTO utterances VALUES (?, ?, ?, ?, ?, ?, 0.9, 'channel', 1.0, "
            "(SELECT started_at FROM calls WHERE call_id = ?))",
            [[call_id, i, *line, call_id] for i, line in enumerate(lines)],
        )
        store.db.execute(
            "UPDATE findings SET evidence = '客服念出了客户电话13912345678' WHERE call_id = ?", [call_id]
        )
        store.db.execute(  # the scorecard behind the constructed scores, for show and export
            "INSERT INTO scorecards VALUES ('h1', 'default', NULL, 'rules: []', now()) ON CONFLICT DO NOTHING"
        )
        store.db.execute(  # the constructed month has no processing records: export lists recordings
            "INSERT INTO recordings (path, sha256, size_bytes, status, call_id, attempts, processed_at) "
            "SELECT path, sha256, 1000, 'ok', call_id, 1, now() FROM calls WHERE call_id = ?",
            [call_id],
        )
    return db, call_id


def _audit(db: Path) -> list[dict]:
    with Store(db, read_only=True) as store:
        return store.audit_rows()


def test_export_is_redacted_and_audited(month_with_pii: tuple[Path, str], tmp_path: Path) -> None:
    db, call_id = month_with_pii
    out = tmp_path / "calls.jsonl"
    assert callqa(["export", "--db", str(db), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert not [raw for raw in RAW if raw in text]
    record = next(r for r in map(json.loads, text.splitlines()) if r["call_id"] == call_id)
    said = [u["text"] for u in record["utterances"]]
    assert said[1:] == [
        "我的手机号是138",
        "嗯",
        "****5678",
        "身份证号是[身份证号]，卡号[银行卡号]",
        "寄到北京市朝阳区[详细地址]",
        "身份证号是[身份证号]",
        "另一个号码是139****9432",
    ]
    evidence = [f["evidence"] for f in record["findings"]]
    assert evidence and all(e == "客服念出了客户电话139****5678" for e in evidence)
    (row,) = _audit(db)
    assert row["action"] == "export" and row["target"] == str(out) and row["redacted"] is True
    assert row["records"] == len(text.splitlines()) and row["command"].startswith("callqa export")
    with Store(db, read_only=True) as store:  # the core store keeps what was said
        assert store.utterances(call_id)[3]["text"] == "一二三四五六七八"


def test_export_unredacted_only_where_configured(month_with_pii: tuple[Path, str], tmp_path: Path) -> None:
    db, _ = month_with_pii
    config = tmp_path / "callqa.toml"
    config.write_text('[privacy]\nunredacted_outputs = ["export"]\n', encoding="utf-8")
    out = tmp_path / "raw.jsonl"
    assert callqa(["--config", str(config), "export", "--db", str(db), "--out", str(out)]) == 0
    assert all(raw in out.read_text(encoding="utf-8") for raw in RAW)
    assert _audit(db)[-1]["redacted"] is False


def test_show_is_redacted_and_audited(
    month_with_pii: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, call_id = month_with_pii
    assert callqa(["show", call_id, "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert not [raw for raw in RAW if raw in shown]
    assert all(mask in shown for mask in MASKS)
    row = _audit(db)[-1]
    assert (row["action"], row["target"], row["records"], row["redacted"]) == ("show", call_id, 1, True)


def test_report_pages_are_redacted_and_audited(
    month_with_pii: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, call_id = month_with_pii
    monkeypatch.chdir(tmp_path)
    assert callqa(["report", "--month", "2026-11", "--db", str(db), "--no-audio"]) == 0
    pages = list((tmp_path / "reports" / "2026-11").rglob("*.*"))
    page = (tmp_path / "reports" / "2026-11" / "calls" / f"{call_id}.html").read_text(encoding="utf-8")
    assert all(mask in page for mask in MASKS), page
    for path in pages:
        if path.suffix in (".html", ".csv"):
            content = path.read_text(encoding="utf-8-sig")
            assert not [raw for raw in RAW if raw in content], path
    row = _audit(db)[-1]
    assert row["action"] == "report" and row["target"].endswith("2026-11") and row["redacted"] is True
    assert json.loads(row["details"])["month"] == "2026-11" and row["records"] > 0


def test_evidence_quoting_hidden_digits_is_masked_in_every_output(
    month_with_pii: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Evidence and a CRM note that quote only the middle of the customer's mobile (一二三四: harmless
    alone) are redacted with the call around them in the export, `callqa show` and the report pages."""
    db, call_id = month_with_pii
    with Store(db) as store:
        store.db.execute("UPDATE findings SET evidence = '客户说中间是一二三四' WHERE call_id = ?", [call_id])
        store.db.execute(  # a CRM complaint about the call, its note quoting the same digits
            "INSERT INTO agent_events VALUES ('crm-1', DATE '2026-11-12', 'A02', 'complaint', true, ?, "
            "'客户投诉：客服把中间是一二三四念出来了', 'crm.csv', 2, now())",
            [call_id],
        )
    monkeypatch.chdir(tmp_path)
    assert callqa(["export", "--db", str(db), "--out", str(tmp_path / "calls.jsonl")]) == 0
    assert callqa(["show", call_id, "--db", str(db)]) == 0
    assert callqa(["report", "--month", "2026-11", "--db", str(db), "--no-audio"]) == 0
    exported = (tmp_path / "calls.jsonl").read_text(encoding="utf-8")
    page = (tmp_path / "reports" / "2026-11" / "calls" / f"{call_id}.html").read_text(encoding="utf-8")
    for output in (exported, capsys.readouterr().out, page):
        assert "客户说中间是****" in output and "客户说中间是一二三四" not in output
    agent_page = (tmp_path / "reports" / "2026-11" / "agents" / "A02.html").read_text(encoding="utf-8")
    assert "客服把中间是****念出来了" in agent_page and "一二三四" not in agent_page


# Digits as the recogniser may write them: numerals, telephone readings and their homophones.
_AS_ARABIC = {
    **{c: str(i) for i, c in enumerate("零一二三四五六七八九")},
    **{c: str(i) for i, c in enumerate("０１２３４５６７８９")},
    **dict.fromkeys("〇洞", "0"),
    **dict.fromkeys("幺么要腰妖", "1"),
    "两": "2",
    "拐": "7",
    **dict.fromkeys("勾钩", "9"),
}
_DIGITISH = "0123456789" + "".join(_AS_ARABIC)


def _seven_digit_pieces(db: Path, call_id: str) -> set[str]:
    """Every 7 consecutive digits of every number said in the call, as said and in Arabic digits."""
    with Store(db, read_only=True) as store:
        texts = [u["text"] for u in store.utterances(call_id)]
    pieces: set[str] = set()
    for text in texts:
        for run in re.findall(f"[{_DIGITISH}]{{7,}}", text):
            for form in (run, "".join(_AS_ARABIC.get(c, c) for c in run)):
                pieces.update(form[i : i + 7] for i in range(len(form) - 6))
    return pieces


def test_no_seven_digit_run_of_a_spoken_number_leaves_the_store(
    month_with_pii: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The bar: no seven digits in a row of any number the fixture's customer said — written as
    digits, numerals, telephone readings or ASR homophones (要零要零…) — in the export, `callqa show`,
    the report pages or the log."""
    db, call_id = month_with_pii
    pieces = _seven_digit_pieces(db, call_id)
    assert "1010101" in pieces and "要零要零要零要" in pieces and "1390079" in pieces  # the test can fail
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.DEBUG):
        assert callqa(["export", "--db", str(db), "--out", str(tmp_path / "calls.jsonl")]) == 0
        assert callqa(["show", call_id, "--db", str(db)]) == 0
        assert callqa(["report", "--month", "2026-11", "--db", str(db), "--no-audio"]) == 0
        logging.getLogger("callqa").warning("客户原话：%s", "身份证号是要零要零要零要九九零零三零七要二三四")
    outputs = {
        "export": (tmp_path / "calls.jsonl").read_text(encoding="utf-8"),
        "show": capsys.readouterr().out,
    }
    outputs["log"] = "\n".join(r.getMessage() for r in caplog.records)
    for path in (tmp_path / "reports" / "2026-11").rglob("*.*"):
        if path.suffix in (".html", ".csv"):
            outputs[str(path)] = path.read_text(encoding="utf-8-sig")
    left = {name: sorted(p for p in pieces if p in text) for name, text in outputs.items()}
    assert {name: found for name, found in left.items() if found} == {}
