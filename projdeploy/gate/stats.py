"""Noise-aware comparison of measured timings between two jobs (two machines, two days).

    python -c "from projdeploy.gate.stats import compare_timings as c; print(c([1.3]*9, [1.0]*9, [1.0]*9, [1.0]*9, 0.1))"

A timing from CI is ``true cost x machine speed x noise``. Dividing each
job's samples by the median of a fixed calibration micro-benchmark timed in
the *same* job removes the machine-speed factor (a 1.5x slower runner makes
both slower). What remains is noise: lognormal jitter, outliers from other
processes, and the calibration's own noise. So the gate

1. compares the ratio of calibration-normalised medians (medians ignore
   outliers),
2. puts a percentile-bootstrap confidence interval on that ratio, resampling
   all four sample sets (model and calibration, current and baseline), and
3. confirms with a one-sided Mann-Whitney U test that the current normalised
   samples are larger than the baseline's *inflated by the tolerance*.

A slowdown is a regression only when the whole one-sided interval lies above
``1 + tolerance`` and the rank test agrees: "confidently slower than
allowed". A ratio above the tolerance that the data cannot confirm is
reported as *suspect*, never failed, so that a noisy runner does not make
the gate flaky. Everything is seeded: the same inputs give the same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SAMPLES = 5  # below this per side, a timing is reported but never failed
DEFAULT_ALPHA = 0.05  # one-sided: 95% bootstrap bound, 5% rank-test level
DEFAULT_BOOT = 2000
_SEED = 20240901  # fixed: the verdict is a pure function of the numbers


@dataclass(frozen=True)
class TimingComparison:
    """Current vs baseline cost (time-like: higher is worse), calibration-normalised."""

    ratio: float  # median(cur)/cal_cur  /  median(base)/cal_base
    ci_low: float  # one-sided (1 - alpha) lower bound of ratio
    ci_high: float  # one-sided (1 - alpha) upper bound of ratio
    p_slower: float  # Mann-Whitney p for "cur > base * (1 + tol)"
    p_faster: float  # Mann-Whitney p for "cur < base * (1 - tol)"
    n_cur: int
    n_base: int
    slower: bool  # confidently slower than 1 + tol
    faster: bool  # confidently faster than 1 - tol
    enough: bool  # both sides have MIN_SAMPLES samples

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _medians(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.median(x[idx], axis=1)


def bootstrap_ratio(
    cur, cal_cur, base, cal_base, alpha: float = DEFAULT_ALPHA, n_boot: int = DEFAULT_BOOT, seed: int = _SEED
) -> tuple[float, float, float]:
    """Point ratio of normalised medians and its one-sided (alpha, 1-alpha) bootstrap bounds."""
    arrays = [np.asarray(a, dtype=np.float64) for a in (cur, cal_cur, base, cal_base)]
    point = (np.median(arrays[0]) / np.median(arrays[1])) / (np.median(arrays[2]) / np.median(arrays[3]))
    rng = np.random.default_rng(seed)
    meds = [_medians(a, rng.integers(0, len(a), size=(n_boot, len(a)))) for a in arrays]
    boot = (meds[0] / meds[1]) / (meds[2] / meds[3])
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return float(point), float(lo), float(hi)


def mann_whitney_greater(x, y) -> float:
    """One-sided p-value that ``x`` is stochastically greater than ``y`` (scipy's U test)."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(np.asarray(x, float), np.asarray(y, float), alternative="greater").pvalue)


def compare_timings(
    cur, cal_cur, base, cal_base, tolerance: float, alpha: float = DEFAULT_ALPHA, n_boot: int = DEFAULT_BOOT
) -> TimingComparison:
    """Decide whether ``cur`` timings are confidently slower (or faster) than ``base`` beyond ``tolerance``.

    ``cal_cur`` / ``cal_base`` are the calibration timings of the job that
    produced each side. All inputs are positive, time-like numbers.
    """
    cur, base = np.asarray(cur, float), np.asarray(base, float)
    cal_cur, cal_base = np.asarray(cal_cur, float), np.asarray(cal_base, float)
    enough = min(len(cur), len(base)) >= MIN_SAMPLES and min(len(cal_cur), len(cal_base)) >= 1
    ratio, lo, hi = bootstrap_ratio(cur, cal_cur, base, cal_base, alpha, n_boot)
    ncur, nbase = cur / np.median(cal_cur), base / np.median(cal_base)
    p_slow = mann_whitney_greater(ncur, nbase * (1 + tolerance))
    p_fast = mann_whitney_greater(nbase * (1 - tolerance), ncur) if tolerance < 1 else 1.0
    slower = enough and lo > 1 + tolerance and p_slow < alpha
    faster = enough and hi < 1 - tolerance and p_fast < alpha
    return TimingComparison(
        ratio, lo, hi, p_slow, p_fast, len(cur), len(base), bool(slower), bool(faster), bool(enough)
    )
