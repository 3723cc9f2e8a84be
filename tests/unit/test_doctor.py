"""`journeys doctor`: the configuration's API versions, warned of before their sunsets."""

from datetime import date

from cli.main import cmd_doctor, main
from runtime.settings import Settings


def test_the_doctor_passes_the_defaults_and_names_each_version(capsys):
    assert cmd_doctor(Settings(), today=date(2026, 12, 3)) == 0
    out = capsys.readouterr().out
    assert "ok: linkedin API version 202603 (served until 2027-03-16)" in out
    assert "ok: salesforce API version v62.0 (no end date published)" in out
    assert "warning" not in out and "error" not in out


def test_the_doctor_warns_of_a_near_sunset_and_fails_on_a_passed_one(capsys):
    near = Settings(facebook_graph_version="v21.0")
    assert cmd_doctor(near, today=date(2026, 12, 3)) == 0
    assert (
        "warning: facebook API version v21.0 (JOURNEYS_FACEBOOK_GRAPH_VERSION) is retired on 2027-01-21"
        in (capsys.readouterr().out)
    )
    retired = Settings(linkedin_version="202411")
    assert cmd_doctor(retired, today=date(2026, 12, 3)) == 1
    assert "error: linkedin API version 202411 (JOURNEYS_LINKEDIN_VERSION) was retired on 2025-11-17" in (
        capsys.readouterr().out
    )


def test_the_doctor_reads_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("JOURNEYS_KLAVIYO_REVISION", "2025-01-15")
    main(["doctor"])
    assert "klaviyo API version 2025-01-15 (JOURNEYS_KLAVIYO_REVISION)" in capsys.readouterr().out
