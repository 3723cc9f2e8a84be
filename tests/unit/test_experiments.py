"""Experiment statistics against known values, and the experiment catalog."""

from datetime import timedelta
from pathlib import Path

import pytest

from domain.experiments import Arm, analyse, difference_interval, sample_size, z_test
from store.experiments import load_catalog

ROOT = Path(__file__).resolve().parents[2]


def arm(name: str, exposed: int, converted: int) -> Arm:
    return Arm(variant=name, exposed=exposed, converted=converted)


def test_two_proportion_z_test():
    # 10% of 1,000 against 13% of 1,000: pooled 11.5%, z = 0.03 / 0.014267 = 2.1027, p = 0.0355.
    z, p = z_test(arm("a", 1000, 100), arm("b", 1000, 130))
    assert z == pytest.approx(2.1027, abs=1e-4)
    assert p == pytest.approx(0.0355, abs=1e-4)
    low, high = difference_interval(arm("a", 1000, 100), arm("b", 1000, 130))
    assert (round(low, 4), round(high, 4)) == (0.0021, 0.0579)
    assert z_test(arm("a", 0, 0), arm("b", 10, 1)) == (0.0, 1.0)
    assert z_test(arm("a", 10, 0), arm("b", 10, 0)) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("baseline", "lift", "needed"),
    [(0.10, 0.20, 3841), (0.05, 0.10, 31234), (0.30, 0.10, 3763), (0.0, 0.2, None), (0.9, 0.2, None)],
)
def test_sample_size_per_arm(baseline, lift, needed):
    # alpha 0.05 two-sided, power 0.8: the textbook normal-approximation figures.
    assert sample_size(baseline, lift) == needed


def test_a_significant_winner_and_the_lift_over_the_holdout():
    result = analyse("x", [arm("a", 1000, 100), arm("b", 1000, 130), arm("holdout", 200, 10)], control="a")
    assert result.control == "a" and result.winner == "b" and result.verdict == "b beats a"
    b = next(r for r in result.arms if r.variant == "b")
    assert b.significant and b.lift_vs_control == 0.3 and b.p_value == pytest.approx(0.0355, abs=1e-4)
    # The journey's lift: 10% and 13% against 5% with no journey at all.
    assert result.lift_vs_holdout == {"a": 1.0, "b": 1.6}


def test_no_winner_yet_says_how_many_more_leads():
    result = analyse("x", [arm("a", 500, 50), arm("b", 500, 55)])
    assert result.winner is None and result.needed_per_arm == 3841
    assert result.verdict.startswith("no difference yet: about 3341 more leads per arm")


def test_more_arms_need_stronger_evidence():
    # p = 0.0355 beats alpha 0.05 with one comparison, not 0.05 / 2 with two (Bonferroni).
    arms = [arm("a", 1000, 100), arm("b", 1000, 130), arm("c", 1000, 100)]
    assert analyse("x", arms).winner is None


def test_the_catalog_resolves_conversions():
    catalog = load_catalog(ROOT / "config" / "experiments.toml")
    hero = catalog.resolved("homepage_hero", ROOT / "config" / "sequences")
    assert hero.conversion is not None and hero.conversion.type.value == "form_submitted"
    assert hero.window == timedelta(days=14) and hero.control == "feature"
    # A split with no entry: its sequence's goal, the default window.
    other = catalog.resolved("content_followup:none", ROOT / "config" / "sequences")
    assert other.window == timedelta(days=30) and other.minimum_lift == 0.2
    unknown = catalog.resolved("made_up", None)
    assert unknown.conversion is not None and unknown.conversion.type.value == "meeting_booked"
