"""The portal while the batch writes: another process writes the store the way the nightly batch does
(a short transaction per recording, tests/test_concurrency.py's WRITER) while agents file appeals —
each sent twice, from parallel clients — and a supervisor reviews and browses. Every appeal is
stored exactly once, the decision is stored, and the writer is never refused."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT
from portaldata import build_portal_db, call_url, login
from test_concurrency import ENV, WRITER, _has_call
from test_e2e import _copy_sample

from pipeline.portal.app import create_app
from pipeline.store import Store


def test_appeals_and_reviews_while_the_batch_writes(tmp_path: Path) -> None:
    data = build_portal_db(tmp_path)
    app = create_app(data.settings)
    surveyed = data.month.calls["A01"][10:20]  # each fails CLOSE-SURVEY (−10)
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data.settings.db), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        deadline = time.monotonic() + 30
        while not _has_call(data.settings.db, "W001") and time.monotonic() < deadline:
            time.sleep(0.2)
        agents = [login(app, "zhangsan") for _ in range(2)]
        qa, qa_token = login(app, "qa")

        def appeal(job: tuple[int, str]) -> int:
            client, token = agents[job[0] % 2]
            form = {
                "csrf": token,
                "call_id": job[1],
                "rule_id": "CLOSE-SURVEY",
                "start_s": "2.000",
                "reason": "有邀评",
            }
            return client.post("/appeals", data=form).status_code

        def supervisor(_: int) -> int:
            assert qa.get("/review").status_code == 200
            return qa.get(call_url(data.month.calls["A03"][0])).status_code

        with ThreadPoolExecutor(6) as pool:
            sent = list(pool.map(appeal, enumerate(surveyed * 2)))  # every appeal sent twice
            browsed = list(pool.map(supervisor, range(4)))
        review = {"csrf": qa_token, "call_id": data.review_call, "rule_id": "RATE", "start_s": "2.000"}
        assert qa.post("/review", data={**review, "verdict": "confirm"}).status_code == 303
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=300)
    assert sent == [303] * 20 and browsed == [200] * 4
    assert writer.returncode == 0
    written, _slowest = out.split()
    assert int(written) >= 3  # the batch kept writing meanwhile
    with Store(data.settings.db, read_only=True) as store:
        stored = store.query("SELECT call_id, count(*) AS n FROM appeals GROUP BY call_id ORDER BY call_id")
        audited = store.query("SELECT count(*) AS n FROM audit_log WHERE action = 'appeal'")[0]["n"]
        decided = store.query("SELECT count(*) AS n FROM finding_decisions")[0]["n"]
        score = store.current_score(data.review_call)
    assert [(r["call_id"], r["n"]) for r in stored] == [(c, 1) for c in sorted(surveyed)]
    assert audited == 10 and decided == 1 and score is not None and score.score == 97.0


@pytest.mark.e2e
def test_appeals_while_a_real_batch_runs(tmp_path: Path) -> None:
    """The same, with the real thing writing: `callqa run` over two sample recordings (real ASR and
    diarization) in another process while agents file appeals (each twice) and the portal serves."""
    data = build_portal_db(tmp_path)
    app = create_app(data.settings)
    folder = tmp_path / "calls"
    for stem in ("1003_20261120-143010", "1002_20261120-101233"):
        _copy_sample(stem, folder)  # finished recordings, an hour old
    batch = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", str(folder), "--db", str(data.settings.db)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "PYTHONPATH": str(ROOT)},
    )
    surveyed = data.month.calls["A01"][10:16]
    agents = [login(app, "zhangsan") for _ in range(2)]
    sent: list[int] = []
    rounds = 0
    try:
        while batch.poll() is None or rounds == 0:  # appeals for as long as the batch writes
            call_id = surveyed[rounds % len(surveyed)]
            for client, token in agents:  # the same appeal from two tabs at once
                form = {"csrf": token, "call_id": call_id, "rule_id": "CLOSE-SURVEY", "start_s": "2.000"}
                sent.append(client.post("/appeals", data={**form, "reason": "有邀评"}).status_code)
            assert agents[0][0].get("/calls").status_code == 200
            rounds += 1
            time.sleep(0.5)
        out, err = batch.communicate(timeout=600)
    finally:
        if batch.poll() is None:
            batch.kill()
    assert batch.returncode == 0, err[-3000:]
    assert "共 2 个录音：完成 2" in out
    assert rounds >= 4 and set(sent) == {303}
    with Store(data.settings.db, read_only=True) as store:
        stored = store.query("SELECT call_id, count(*) AS n FROM appeals GROUP BY call_id ORDER BY call_id")
        analysed = store.query(
            "SELECT count(*) AS n FROM calls WHERE call_id IN ('HX20261120-0002', 'HX20261120-0003')"
        )
    appealed = sorted({surveyed[i % len(surveyed)] for i in range(rounds)})
    assert [(r["call_id"], r["n"]) for r in stored] == [(c, 1) for c in appealed]
    assert analysed[0]["n"] == 2
