"""Every saved history must replay on today's code: a change that would break runs in flight fails here."""

from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from runtime.codec import new_key_spec
from runtime.settings import Settings
from runtime.temporal import data_converter
from workers.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).resolve().parents[1] / "histories").glob("*.json"))


def test_there_are_histories_to_replay():
    assert len(HISTORIES) >= 3


ENCRYPTED = data_converter(Settings(codec_keys=SecretStr(new_key_spec())))


@pytest.mark.parametrize("converter", [pydantic_data_converter, ENCRYPTED], ids=["plain", "with-codec"])
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path, converter):
    """Also with encryption on: histories written before it still replay."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=converter)
    await replayer.replay_workflow(history)
