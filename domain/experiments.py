"""Experiments: A/B(/n) tests on sequences (a split step), emails and landing pages, and holdouts
that measure a journey's lift. Assignment is deterministic (`domain.sequences.assign_variant`, or
the page's own for landing pages); here are the exposure record, the conversion rule and the
statistics: a two-proportion z-test against the control, the confidence interval of the difference,
and the sample size each arm needs to detect a given lift.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from domain.sequences import HOLDOUT

EXPERIMENT_VIEWED = "experiment viewed"  # Segment's A/B testing spec event


def sequence_experiment_id(sequence_id: str, step_id: str) -> str:
    return f"{sequence_id}:{step_id}"


class ExposureInput(BaseModel):
    """A lead saw a variant: recorded once per (experiment, lead); the answer is the variant to use,
    which is the promoted winner for leads that had not been exposed before a promotion."""

    experiment_id: str = Field(min_length=1, max_length=200)
    lead_id: str
    variant: str = Field(min_length=1, max_length=100)
    exposed_at: datetime
    source: Literal["sequence", "page", "email"] = "sequence"


class Arm(BaseModel):
    variant: str
    exposed: int
    converted: int

    @property
    def rate(self) -> float:
        return self.converted / self.exposed if self.exposed else 0.0


def _normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def z_test(control: Arm, treatment: Arm) -> tuple[float, float]:
    """Two-proportion z-test (pooled): the z statistic and the two-sided p-value."""
    n1, n2 = control.exposed, treatment.exposed
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    pooled = (control.converted + treatment.converted) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 0.0, 1.0
    z = (treatment.rate - control.rate) / spread
    return z, 2 * (1 - _normal_cdf(abs(z)))


def difference_interval(control: Arm, treatment: Arm, z_crit: float = 1.959964) -> tuple[float, float]:
    """The 95% confidence interval of treatment rate - control rate (unpooled)."""
    if control.exposed == 0 or treatment.exposed == 0:
        return -1.0, 1.0
    p1, p2 = control.rate, treatment.rate
    spread = math.sqrt(p1 * (1 - p1) / control.exposed + p2 * (1 - p2) / treatment.exposed)
    diff = p2 - p1
    return diff - z_crit * spread, diff + z_crit * spread


def sample_size(baseline: float, relative_lift: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Leads per arm to detect `relative_lift` over `baseline` (two-sided, normal approximation)."""
    target = baseline * (1 + relative_lift)
    if not 0 < baseline < 1 or not 0 < target < 1 or relative_lift == 0:
        return None
    z_alpha = _inverse_normal(1 - alpha / 2)
    z_beta = _inverse_normal(power)
    mean = (baseline + target) / 2
    numerator = (
        z_alpha * math.sqrt(2 * mean * (1 - mean))
        + z_beta * math.sqrt(baseline * (1 - baseline) + target * (1 - target))
    ) ** 2
    return math.ceil(numerator / (target - baseline) ** 2)


def _inverse_normal(p: float) -> float:
    """The standard normal quantile (Acklam's rational approximation; |error| < 1.2e-9)."""
    a = (
        -39.69683028665376,
        220.9460984245205,
        -275.9285104469687,
        138.3577518672690,
        -30.66479806614716,
        2.506628277459239,
    )
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (
        -0.007784894002430293,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    )
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    low = 0.02425
    if p < low:
        q = math.sqrt(-2 * math.log(p))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    if p > 1 - low:
        return -_inverse_normal(1 - p)
    q = p - 0.5
    r = q * q
    return (
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
        * q
        / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    )


class ArmResult(BaseModel):
    variant: str
    exposed: int
    converted: int
    rate: float
    lift_vs_control: float | None = None
    difference_ci95: tuple[float, float] | None = None
    p_value: float | None = None
    significant: bool = False


class ExperimentResult(BaseModel):
    experiment_id: str
    control: str
    arms: list[ArmResult]
    winner: str | None
    verdict: str
    needed_per_arm: int | None
    lift_vs_holdout: dict[str, float] = Field(default_factory=dict)
    promoted: str | None = None


def analyse(
    experiment_id: str,
    arms: list[Arm],
    *,
    control: str | None = None,
    alpha: float = 0.05,
    minimum_lift: float = 0.2,
    promoted: str | None = None,
) -> ExperimentResult:
    """Each arm against the control (the named one, else the first that is not the holdout); the
    winner is the best arm that beats the control significantly (Bonferroni-corrected over arms);
    the holdout, when present, gives each arm's lift over no journey at all."""
    tested = [a for a in arms if a.variant != HOLDOUT]
    holdout = next((a for a in arms if a.variant == HOLDOUT), None)
    if not tested:
        raise ValueError("an experiment needs at least one variant besides the holdout")
    base = next((a for a in tested if a.variant == control), tested[0])
    comparisons = max(len(tested) - 1, 1)
    results, significant = [], []
    for arm in tested:
        result = ArmResult(
            variant=arm.variant, exposed=arm.exposed, converted=arm.converted, rate=round(arm.rate, 4)
        )
        if arm is not base:
            _, p = z_test(base, arm)
            low, high = difference_interval(base, arm)
            result.p_value = round(p, 6)
            result.difference_ci95 = (round(low, 4), round(high, 4))
            result.lift_vs_control = round(arm.rate / base.rate - 1, 4) if base.rate else None
            result.significant = p < alpha / comparisons
            if result.significant and arm.rate > base.rate:
                significant.append(arm)
        results.append(result)
    winner = max(significant, key=lambda a: a.rate).variant if significant else None
    needed = sample_size(base.rate, minimum_lift, alpha=alpha / comparisons) if base.rate else None
    smallest = min(a.exposed for a in tested)
    if winner:
        verdict = f"{winner} beats {base.variant}"
    elif needed is not None and smallest < needed:
        more = needed - smallest
        verdict = f"no difference yet: about {more} more leads per arm to see a {minimum_lift:.0%} lift"
    else:
        verdict = f"no difference of {minimum_lift:.0%} or more between the arms"
    lift_vs_holdout = {}
    if holdout is not None:
        if holdout.rate:
            lift_vs_holdout = {a.variant: round(a.rate / holdout.rate - 1, 4) for a in tested}
        results.append(
            ArmResult(
                variant=HOLDOUT,
                exposed=holdout.exposed,
                converted=holdout.converted,
                rate=round(holdout.rate, 4),
            )
        )
    return ExperimentResult(
        experiment_id=experiment_id,
        control=base.variant,
        arms=results,
        winner=winner,
        verdict=verdict,
        needed_per_arm=needed,
        lift_vs_holdout=lift_vs_holdout,
        promoted=promoted,
    )


CONVERSION_WINDOW = timedelta(days=30)
