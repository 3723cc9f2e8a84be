"""config/email_templates.toml: every template a journey sends has its Kit message, and a bad
entry is refused naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest

from domain.consent import CONFIRMATION_TEMPLATE
from domain.email_templates import load_email_templates
from runtime.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "config"


def templates_the_journeys_send() -> set[str]:
    names: set[str] = set()
    for path in [*sorted((CONFIG / "sequences").glob("*.toml")), CONFIG / "customer.toml"]:
        names |= set(re.findall(r'^\s*(?:nudge_)?template = "([a-z0-9_]+)"', path.read_text(), re.M))
    return names | {"rep_mql_alert", CONFIRMATION_TEMPLATE}


def test_every_template_a_journey_sends_has_its_kit_sequence_or_tag():
    kit = load_email_templates(CONFIG / "email_templates.toml").kit
    sent = templates_the_journeys_send()
    assert len(sent) > 20, "the scan found the sequences' templates"
    assert sent <= set(kit), f"no Kit message for {sorted(sent - set(kit))}"


def test_a_missing_file_is_no_templates(tmp_path: Path):
    assert load_email_templates(tmp_path / "none.toml").kit == {}


@pytest.mark.parametrize("value", ["7001", "sequence:abc", "list:5"])
def test_a_kit_entry_that_is_not_a_sequence_or_tag_is_refused_by_name(tmp_path: Path, value: str):
    path = tmp_path / "templates.toml"
    path.write_text(f'[kit]\nwelcome_1 = "{value}"\n')
    with pytest.raises(pydantic.ValidationError) as raised:
        load_email_templates(path)
    assert raised.value.errors()[0]["loc"] == ("kit", "welcome_1")


def test_an_unknown_platform_table_is_refused(tmp_path: Path):
    path = tmp_path / "templates.toml"
    path.write_text('[mailchimp]\nwelcome_1 = "x"\n')
    with pytest.raises(pydantic.ValidationError) as raised:
        load_email_templates(path)
    assert raised.value.errors()[0]["loc"] == ("mailchimp",)
