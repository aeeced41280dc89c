"""The Prefect flow `monthly_report`: runs by hand for any month, and is scheduled at 06:00 local
time on the 1st of each month beside the nightly batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures.reports.monthdata import EXPECTED, build

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
import flows
result = flows.monthly_report(month="2026-11", db={db!r}, with_audio=False)
schedules = {{
    d.name: [(s.schedule.cron, s.schedule.timezone) for s in d.schedules] for d in flows.deployments()
}}
print(json.dumps({{"result": result, "schedules": schedules}}))
"""


def test_monthly_report_flow_runs_by_hand_and_is_scheduled_on_the_first(tmp_path: Path) -> None:
    build(tmp_path / "qa.duckdb", tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=str(ROOT), db=str(tmp_path / "qa.duckdb"))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    result = answer["result"]
    assert result["month"] == "2026-11" and result["agents"] == 5 and result["ranked"] == 4
    assert result["money_total"] == sum(e[3] for e in EXPECTED.values())
    assert (tmp_path / result["ranking_html"]).is_file()
    assert (tmp_path / "reports" / "2026-11" / "ranking.xlsx").is_file()
    assert answer["schedules"] == {
        "nightly-qa": [["0 2 * * *", "Asia/Shanghai"]],
        "monthly-report": [["0 6 1 * *", "Asia/Shanghai"]],
    }
    assert "compute-month" in run.stderr + run.stdout
