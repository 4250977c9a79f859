"""ADELE's early-learning detector on one training-IoU curve: start rule, curve fit, trigger test.

Pure numpy/scipy, no torch. Notation of the paper (Liu et al., CVPR 2022, eq. 1-2):

    f(t) = a (1 - exp(-b t^c)),      f'(t) = a b c t^(c-1) exp(-b t^c)
    relative change  rc(t) = |f'(1) - f'(t)| / |f'(1)|,  memorisation is near once rc(t) > r.

Time ``t`` counts epochs since the class started learning: the IoU value at the learning-start epoch
sits at t = 0 (where f(0) = 0), the next epoch at t = 1, so f'(1) is the slope one epoch into learning.
The authors' code writes the same family as a (1 - exp(-t^b' / c')) with b' = c, c' = 1 / b; the fit
below runs in the code's letters with the code's p0, bounds and weights, then reports (a, b, c) in the
paper's letters.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import curve_fit

#: per-point sigma runs geometrically from 1 (first point) to this (last point): late points weigh
#: (1 / SIGMA_LAST)^2 = 100x more in the squared residuals (authors' code: geomspace(1, .1, n))
SIGMA_LAST = 0.1
#: the authors' code adds this to t before the derivative ("numerical robustness": t^(c-1) at t = 0)
DERIVATIVE_EPS = 1e-6

Params3 = tuple[float, float, float]


def curve(t: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray:
    """f(t) = a (1 - exp(-b t^c)), the paper's letters."""
    return a * (1.0 - np.exp(-b * np.power(t, c)))


def curve_derivative(t: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray:
    """f'(t) = a b c t^(c-1) exp(-b t^c), evaluated at t + 1e-6 as in the authors' ``derivation``."""
    t = np.asarray(t, dtype=np.float64) + DERIVATIVE_EPS
    return a * b * c * np.power(t, c - 1.0) * np.exp(-b * np.power(t, c))


def _code_curve(x: np.ndarray, a: float, bb: float, cc: float) -> np.ndarray:
    # the authors' curve_func: a (1 - exp(-x^bb / cc)); bb = paper c, cc = 1 / paper b
    return a * (1.0 - np.exp(-np.power(x, bb) / cc))


def fit_curve(t: np.ndarray, y: np.ndarray) -> Params3 | None:
    """Bounded weighted least squares of f on (t, y), exactly the authors' call::

        curve_fit(a(1-exp(-t^b'/c')), t, y, p0=(1, 1, 1), method='trf',
                  sigma=geomspace(1, 0.1, n), absolute_sigma=True, bounds=([0,0,0], [1,1,inf]))

    i.e. a in [0, 1], exponent c = b' in [0, 1] (f concave for t > 0), rate b = 1/c' >= 0.
    Returns the paper's (a, b, c), or None when the fit fails or is degenerate (then "not yet")."""
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0 or not np.all(np.isfinite(y)):
        return None
    sigma = np.geomspace(1.0, SIGMA_LAST, len(y))
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # OptimizeWarning: covariance not estimable, irrelevant here
            popt, _ = curve_fit(_code_curve, t, y, p0=(1.0, 1.0, 1.0), method="trf", sigma=sigma,
                                absolute_sigma=True, bounds=([0.0, 0.0, 0.0], [1.0, 1.0, np.inf]))
    except (RuntimeError, ValueError):
        return None
    a, bb, cc = (float(v) for v in popt)
    if not (np.isfinite(a) and np.isfinite(bb) and np.isfinite(cc)) or cc <= 0:
        return None
    return a, 1.0 / cc, bb


def relative_change(t: np.ndarray | float, params: Params3) -> np.ndarray:
    """rc(t) = | |f'(t)| - |f'(1)| | / |f'(1)| as in the authors' code, values above 1 set to 0 (the
    code's guard; for the concave family f' is positive and decreasing, so rc lies in [0, 1) and this
    equals the paper's |f'(1) - f'(t)| / |f'(1)|). NaN where f'(1) = 0 (a or b = 0: a flat fit)."""
    d1 = abs(float(curve_derivative(1.0, *params)))
    if not np.isfinite(d1) or d1 == 0.0:
        return np.full(np.shape(t), np.nan)
    with np.errstate(all="ignore"):
        rc = np.abs(np.abs(curve_derivative(t, *params)) - d1) / d1
    return np.where(rc > 1.0, 0.0, rc)


def update_time(params: Params3, r: float, horizon: int) -> int | None:
    """The authors' ``label_update_epoch``: u = #{t in 1..horizon-1 : rc(t) <= r} + 1, which for a
    monotone rc is the first integer t >= 1 with rc(t) > r (u = horizon when none is). None when rc is
    undefined (degenerate fit)."""
    rc = relative_change(np.arange(1, max(horizon, 1), dtype=np.float64), params)
    if np.any(np.isnan(rc)):
        return None
    return int(np.sum(rc <= r)) + 1


def learning_start(y: np.ndarray, rule: Literal["jump", "floor"], jump: float = 0.1,
                   floor: float = 0.05) -> int | None:
    """Index of the point that becomes t = 0, or None while the class has not started learning.

    ``jump`` (authors' SegTHOR ``if_update``): the first k with y[k+1] - y[k] >= jump; the flat part
    before it is dropped. A class whose IoU never gains ``jump`` within one epoch never starts.
    ``floor`` (ours, for slow classes): the point just before the first value >= floor (0 when the
    first value already passes), so that t = 0 still sits near IoU 0 where f(0) = 0. NaN counts as 0."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0)
    if rule == "jump":
        hits = np.flatnonzero(np.diff(y) >= jump)
        return int(hits[0]) if len(hits) else None
    if rule == "floor":
        hits = np.flatnonzero(y >= floor)
        return max(int(hits[0]) - 1, 0) if len(hits) else None
    raise ValueError(f"unknown start rule {rule!r}")


def time_grid(n: int, kind: Literal["epochs", "code"]) -> np.ndarray:
    """Abscissae of n IoU values from the learning start. ``epochs``: t = 0, 1, ..., n-1 (the paper:
    t in epochs). ``code``: np.linspace(0, n, n) as the authors' ``label_update_epoch`` writes it (an
    off-by-one that stretches time by n/(n-1))."""
    if kind == "epochs":
        return np.arange(n, dtype=np.float64)
    if kind == "code":
        return np.linspace(0.0, float(n), n)
    raise ValueError(f"unknown time grid {kind!r}")


@dataclass
class TriggerResult:
    """Outcome of one trigger test after epoch ``e`` (0-based) on the curve y[0..e]."""

    start: int | None  # learning-start index (t = 0), None = not started
    fit: Params3 | None  # (a, b, c), None = not fitted (too few points) or failed
    update_t: int | None  # u: first t (epochs since start) with rc(t) > r
    rc_now: float  # rc at t_now = e - start (NaN when undefined)
    triggered: bool


def trigger_test(y: np.ndarray, start: int | None, r: float, horizon: int, *, min_points: int = 3,
                 grid: Literal["epochs", "code"] = "epochs") -> TriggerResult:
    """Trigger test after the last epoch e = len(y) - 1 (authors' ``if_update``), given the learning
    start s (:func:`learning_start`, None = not started):

    fit f on y[s..e], which needs ``min_points`` values after the start (t >= 1: the value at t = 0
    carries no information since f(0) = 0 for every parameter; 3 = one per parameter); u =
    :func:`update_time`; triggered iff t_now = e - s >= u, i.e. rc(t_now) > r (the paper's test at the
    current epoch). ``horizon`` = total epochs of training (the code's n_epoch: u is searched in
    1..horizon-1). NaN IoUs (class in neither prediction nor label) count as 0."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0)
    if start is None or len(y) - 1 - start < min_points:
        return TriggerResult(start, None, None, float("nan"), False)
    seg = y[start:]
    fit = fit_curve(time_grid(len(seg), grid), seg)
    if fit is None:
        return TriggerResult(start, None, None, float("nan"), False)
    u = update_time(fit, r, horizon)
    t_now = len(seg) - 1
    rc_now = float(relative_change(float(t_now), fit))
    return TriggerResult(start, fit, u, rc_now, u is not None and t_now >= u)
