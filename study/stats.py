"""Summary statistics of replicates: mean ± std, Student-t 95% intervals, paired differences.

Replicates of different configurations that share a seed share the noisy labels (the seed is also
the noise seed) and the initialisation, so a configuration is compared with a baseline through the
per-seed differences (a paired t interval), which removes the seed-to-seed spread they share.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats as _scipy_stats

LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for n = 1
    lo: float  # Student-t interval of the mean at LEVEL; NaN for n < 2
    hi: float


def finite(values) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def summarize(values) -> Summary:
    """n, mean, std and the t interval of the mean of the finite ``values``."""
    xs = finite(values)
    n = len(xs)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.fmean(xs)
    if n == 1:
        return Summary(1, mean, 0.0, math.nan, math.nan)
    std = statistics.stdev(xs)
    half = float(_scipy_stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def paired(a: dict, b: dict) -> tuple[Summary, list]:
    """Summary of a[s] - b[s] over the seeds s both have (finite values only), and those seeds."""
    seeds = sorted(s for s in a if s in b and finite([a[s]]) and finite([b[s]]))
    return summarize([a[s] - b[s] for s in seeds]), seeds


def verdict(diff: Summary) -> str:
    """'better' / 'worse' when the paired interval excludes 0, else 'no clear difference'
    (also when fewer than 2 pairs make an interval impossible)."""
    if diff.n < 2 or math.isnan(diff.lo):
        return "no clear difference"
    if diff.lo > 0:
        return "better"
    if diff.hi < 0:
        return "worse"
    return "no clear difference"
