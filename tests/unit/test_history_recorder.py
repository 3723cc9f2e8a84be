"""The history recorder never writes over a saved history: new ones get dated names."""

from datetime import date
from pathlib import Path

import pytest

from tests.histories.record import SCENARIOS, HistoryExists, histories_of, main, plan

DAY = date(2026, 12, 3)


def test_a_dated_history_that_exists_stops_the_recorder_before_it_records(tmp_path: Path, capsys):
    saved = tmp_path / "lead_crm_rejects_the_write_2026-12-03.json"
    saved.write_text("{}")
    with pytest.raises(HistoryExists, match=r"lead_crm_rejects_the_write_2026-12-03\.json"):
        plan(["lead_crm_rejects_the_write"], tmp_path, DAY)
    args = ["lead_crm_rejects_the_write", "--into", str(tmp_path), "--date", DAY.isoformat()]
    assert main(args) == 1
    assert "never rewritten" in capsys.readouterr().err
    assert saved.read_text() == "{}"
    # Another day's recording stands beside it.
    assert [s.names for s in plan(["lead_crm_rejects_the_write"], tmp_path, date(2026, 12, 4))] == [
        ("lead_crm_rejects_the_write",)
    ]


def test_by_default_only_the_scenarios_without_a_history_are_recorded(tmp_path: Path):
    saved = [name for scenario in SCENARIOS for name in scenario.names if name != "reports_two_days"]
    for n, name in enumerate(saved):
        # From before dated names, and dated: both count as saved.
        (tmp_path / (f"{name}.json" if n % 2 else f"{name}_2026-01-01.json")).write_text("{}")
    assert [s.names for s in plan([], tmp_path, DAY)] == [("reports_two_days",)]
    (tmp_path / "reports_two_days_after_the_fix.json").write_text("{}")  # another scenario's name
    assert histories_of("reports_two_days", tmp_path) == []


def test_an_unknown_scenario_is_named(tmp_path: Path):
    with pytest.raises(SystemExit, match="no such scenario: nope"):
        plan(["nope"], tmp_path, DAY)
