"""The seed's roster and sequences with every rep on duty and every send window open around the
clock, for a stack whose results must not depend on the hour it runs at (the e2e tests, the
benchmarks). The product's files are not touched: copies are written into the stack's folder."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

from domain.hours import WeeklyHours
from domain.roster import load_roster
from domain.sequences import load_sequences
from runtime.settings import PROJECT_ROOT

# [start, end) within a day: an end one microsecond before midnight leaves the shortest gap the
# model can say (next_send_time then opens the next day at 00:00).
ALWAYS = WeeklyHours(days=[0, 1, 2, 3, 4, 5, 6], start=time(0), end=time.max)
_DAYS = "[0, 1, 2, 3, 4, 5, 6]"
_START, _END = ALWAYS.start.isoformat(), ALWAYS.end.isoformat()

_WORKING_HOURS = re.compile(r"^working_hours\s*=.*$", re.MULTILINE)
_OUT_OF_OFFICE = re.compile(r"^out_of_office\s*=.*\n", re.MULTILINE)
# A [send_window] table: its header and every line up to the next table or the end of the file.
_SEND_WINDOW = re.compile(r"^\[send_window\][^\n]*\n(?:(?!\[)[^\n]*\n?)*", re.MULTILINE)


def always_open_config(into: Path, *, config: Path = PROJECT_ROOT / "config") -> tuple[Path, Path]:
    """Writes `roster.toml` and `sequences/` into `into`; returns (roster file, sequences folder).

    Each copy is loaded back and checked, so a seed file this rewrite does not understand (a rep
    without a working_hours line, a sequence without a [send_window] table) fails here, by name.
    """
    into.mkdir(parents=True, exist_ok=True)
    roster_file = into / "roster.toml"
    text = (config / "roster.toml").read_text(encoding="utf-8")
    text = _WORKING_HOURS.sub(
        f'working_hours = {{ days = {_DAYS}, start = "{_START}", end = "{_END}" }}', text
    )
    roster_file.write_text(_OUT_OF_OFFICE.sub("", text), encoding="utf-8")
    for rep in load_roster(roster_file).reps:
        if rep.working_hours.model_dump() != ALWAYS.model_dump() or rep.out_of_office:
            raise ValueError(f"{roster_file}: rep {rep.id!r} is not on duty around the clock")

    sequences_dir = into / "sequences"
    sequences_dir.mkdir(exist_ok=True)
    window = f'[send_window]\ndays = {_DAYS}\nstart = "{_START}"\nend = "{_END}"\n\n'
    for path in sorted((config / "sequences").glob("*.toml")):
        (sequences_dir / path.name).write_text(
            _SEND_WINDOW.sub(window, path.read_text(encoding="utf-8")), encoding="utf-8"
        )
    for sequence in load_sequences(sequences_dir).values():
        if sequence.send_window.model_dump() != ALWAYS.model_dump():
            raise ValueError(f"{sequences_dir}: sequence {sequence.id!r} does not send around the clock")
    return roster_file, sequences_dir
