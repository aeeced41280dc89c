"""Doubtful roles end in review, not in ranking or money: a stereo call whose channels are swapped
(no sidecar to say so), or one where nobody uses a service phrase, is stored whole but not ranked
until a person swaps or confirms the roles; swapping re-scores without ASR."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT

from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.diarize.roles import ROLE_REVIEW_BELOW, check_stereo_roles
from pipeline.records import Utterance
from pipeline.reports.build import load_month
from pipeline.reports.monthly import Month
from pipeline.store import Store

CUES = ("您好", "客服", "工号", "为您服务", "请问有什么可以帮")


def _said(speaker: str, text: str, start: float) -> Utterance:
    return Utterance(speaker, start, start + 2, text)


def test_a_layout_the_text_contradicts_or_cannot_confirm_is_doubtful() -> None:
    curt = [_said("agent", "喂，说吧", 0), _said("customer", "我的快递还没到", 3)]
    swapped = [
        _said("agent", "我的快递还没到", 3),
        _said("customer", "您好，客服中心，请问有什么可以帮您", 0),
    ]
    polite = [_said("agent", "您好，客服中心，请问有什么可以帮您", 0), _said("customer", "我的快递还没到", 3)]
    for utterances in (curt, swapped):
        roles, warning = check_stereo_roles(utterances, "stereo-agent-left", "config", CUES, 3)
        assert roles.confidence < ROLE_REVIEW_BELOW and warning
    roles, warning = check_stereo_roles(polite, "stereo-agent-left", "config", CUES, 3)
    assert roles.confidence >= ROLE_REVIEW_BELOW and warning is None


@pytest.mark.e2e
def test_a_swapped_stereo_call_waits_for_a_person_then_swap_rescores_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the model call 1001 (agent left) with its channels swapped and no sidecar: the default layout
    # (agent left) now points at the customer
    audio, rate = sf.read(ROOT / "recordings_sample" / "1001_20261120-091502.wav", dtype="int16")
    folder = tmp_path / "calls"
    folder.mkdir()
    path = folder / "1001_20261120-091502.wav"
    sf.write(path, np.ascontiguousarray(audio[:, ::-1]), rate, subtype="PCM_16")
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    db = tmp_path / "qa.duckdb"
    config = tmp_path / "callqa.toml"
    config.write_text(f'db = "{db}"\nreports_dir = "{tmp_path / "reports"}"\n', encoding="utf-8")
    settings = load_settings(config)

    assert main(["--config", str(config), "run", str(folder)]) == 0
    assert "角色待确认" in capsys.readouterr().out
    call_id = "1001_20261120-091502"
    with Store(db, read_only=True) as store:
        (pending,) = store.role_reviews(ROLE_REVIEW_BELOW)
        assert pending["call_id"] == call_id
        assert store.current_score(call_id) is not None  # stored whole, for a person to look at
    month = load_month(settings, Month.parse("2026-11")).report
    assert month.notes.calls_awaiting_roles == 1
    assert not month.agents and not month.calls  # not ranked, no money

    assert main(["--config", str(config), "failures"]) == 0
    assert call_id in capsys.readouterr().out

    assert main(["--config", str(config), "roles", call_id, "--swap"]) == 0
    assert "已对调客服与客户" in capsys.readouterr().out
    with Store(db, read_only=True) as store:
        assert store.role_reviews(ROLE_REVIEW_BELOW) == []
        agent_text = "".join(u["text"] for u in store.utterances(call_id) if u["speaker"] == "agent")
        assert "请问您贵姓" in agent_text  # the agent's questions are the agent's again
        first_agent = next(u for u in store.utterances(call_id) if u["speaker"] == "agent")
        assert "客户服务中心" in first_agent["text"]  # the agent opens the call again
        assert len(store.score_history(call_id)) == 2  # the score before the swap is kept
        (audit,) = [row for row in store.audit_rows() if row["action"] == "roles"]
        assert audit["target"] == call_id
    month = load_month(settings, Month.parse("2026-11")).report
    assert month.notes.calls_awaiting_roles == 0
    assert [a.agent_id for a in month.agents] == ["1001"] and len(month.calls) == 1
