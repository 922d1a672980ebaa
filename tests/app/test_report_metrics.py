"""``perfloop report`` with the participation figures (issue 20 #8) and the period before, on the fixture of
``tests/flows/test_metrics_more.py`` (cycle 2026-Q4 = 11-10 … 11-23; the period before: 10-27 … 11-09).

The clock is 11-24 10:00 local and inbound events are kept 7 days, so the daily-active rate covers the
workdays 11-18, 11-19, 11-20, 11-23 (周销售 on 11-23: 1 of 7 × 4) and the period before has none left.
"""

from __future__ import annotations

import csv
import io
import json

from bot.app.report import FIGURES, build_report
from bot.app.service import Service
from tests.flows.test_metrics_more import seed_participation
from tests.support.factories import Org


async def test_report_has_the_participation_figures_and_the_period_before(service: Service, org: Org) -> None:
    await seed_participation(service, org)
    data = json.loads(await build_report(service, cycle="2026-Q4", fmt="json"))
    now, before = data["company"], data["previous"]["company"]
    assert (data["previous"]["from"], data["previous"]["to"]) == ("2026-10-27", "2026-11-09")
    assert (now["self_assessments_requested"], now["self_assessments_submitted"]) == (3, 2)
    assert now["self_assessment_rate"] == 0.6667 and before["self_assessment_rate"] == 0.0
    assert now["review_actions_72h_rate"] == 0.3333 and before["review_actions_72h_rate"] == 1.0
    assert now["cross_department_rate"] == 0.8 and before["cross_department_rate"] is None
    assert (now["workdays"], now["active_person_days"], now["daily_active_rate"]) == (4, 1, 0.0357)
    assert (before["workdays"], before["daily_active_rate"]) == (0, None)
    assert now["feedback_per_person_week"] == 0.71 and before["feedback_per_person_week"] == 0.07
    depts = {d["department"]: d for d in data["departments"]}
    assert depts["研发部"]["cross_department_rate"] == 0.6667
    assert depts["销售部"]["peer_answers"] is None  # 2 answers: under the anonymity threshold
    zhang = next(p for p in data["people"] if p["name"] == "张三")
    assert zhang["cross_department_rate"] is None and zhang["feedback_per_person_week"] == 3.0
    assert "陈人事" not in {p["name"] for p in data["people"]}  # inactive and without figures


async def test_report_csv_has_a_period_column(service: Service, org: Org) -> None:
    await seed_participation(service, org)
    rows = list(csv.DictReader(io.StringIO(await build_report(service, cycle="2026-Q4", fmt="csv"))))
    assert set(FIGURES) <= set(rows[0])
    company = [(r["period"], r["self_assessment_rate"]) for r in rows if r["level"] == "company"]
    assert company == [("current", "0.6667"), ("previous", "0.0")]
    rnd = [(r["period"], r["cross_department_rate"]) for r in rows if r["name"] == "研发部"]
    assert rnd == [("current", "0.6667"), ("previous", "")]
    assert {r["period"] for r in rows if r["level"] == "person"} == {"current"}
