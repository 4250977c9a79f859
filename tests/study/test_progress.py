"""The study's ETA (study.progress): epochs left are priced at the measured epoch time of their own
configuration kind, so a replication whose costly ADELE replicas ran first does not promise the
cheap ce replicas at ADELE's price (the fault the newcomer met: 1h29m said, 31 min taken)."""
from __future__ import annotations

import pytest

from study.progress import estimate, kind


def _Trial(config: dict):
    """Ray's own Trial (a stub: no trainable is looked up)."""
    from ray.tune.experiment import Trial

    return Trial("train", config=config, stub=True)


def test_kind_is_the_replica_label_or_the_search() -> None:
    assert kind(_Trial({"replica": {"label": "tuned", "seed": 1}})) == "tuned"
    assert kind(_Trial({"replica": {"label": "ce", "seed": 2}})) == "ce"
    assert kind(_Trial({"trial": {}})) == "search"


def test_estimate_prices_each_kind_at_its_own_epoch_time() -> None:
    # 3 adele replicas at 4 s/epoch (1 started, 30 left; 2 to go) and 3 ce replicas at 1 s/epoch,
    # 40 epochs each, 2 at a time
    todo = [("tuned", 30), ("tuned", 40), ("tuned", 40), ("ce", 40), ("ce", 40), ("ce", 40)]
    eta = estimate(todo, {"tuned": 4.0, "ce": 1.0}, concurrency=2)
    assert eta == pytest.approx((110 * 4 + 120 * 1) / 2)
    # a kind not measured yet costs the mean of the measured ones
    assert estimate([("ce", 10)], {"tuned": 4.0, "search": 2.0}, 2) == pytest.approx(10 * 3.0)
    # the last trial runs alone: no division by slots it cannot use
    assert estimate([("tuned", 10)], {"tuned": 4.0}, 4) == pytest.approx(40.0)
    assert estimate(todo, {}, 2) is None  # nothing measured: no ETA


def test_estimate_beats_the_uniform_extrapolation_on_a_mixed_replication() -> None:
    """The replication of the main job: tuned ADELE and ADELE-global (4x) before ce (1x), 3 seeds,
    40 epochs, 2 at a time. After the first 10 epochs of the first two ADELE replicas, the true time
    left is what the per-kind estimate gives within 25%; the uniform one (every epoch at the mean
    time seen so far, all ADELE) overshoots it by far more."""
    cost = {"tuned": 4.0, "global": 4.0, "ce": 1.0}
    todo = [("tuned", 30), ("tuned", 30), ("tuned", 40), ("global", 40), ("global", 40), ("global", 40),
            ("ce", 40), ("ce", 40), ("ce", 40)]
    true = sum(n * cost[k] for k, n in todo) / 2
    measured = {"tuned": 4.0}  # only ADELE has run: ce is priced at the mean of the measured kinds
    per_kind = estimate(todo, {**measured, "ce": 1.0}, 2)
    assert abs(per_kind - true) / true <= 0.25
    uniform = sum(n for _, n in todo) * 4.0 / 2
    assert (uniform - true) / true > 0.25
    assert estimate(todo, measured, 2) == pytest.approx(uniform)  # before ce has run, no better guess


def test_a_kind_not_run_yet_is_priced_by_its_calibration() -> None:
    """The calibration before the study (study.estimate) ran ADELE at 2.0 s and ce at 0.5 s per
    epoch; the study runs 2x slower than calibrated (ADELE measured 4.0 s): ce, not run yet, costs
    0.5 x 2 = 1.0 s, which is the truth of the mixed replication above, right from its first epochs."""
    todo = [("tuned", 30), ("tuned", 30), ("tuned", 40), ("global", 40), ("global", 40), ("global", 40),
            ("ce", 40), ("ce", 40), ("ce", 40)]
    true = sum(n * {"tuned": 4.0, "global": 4.0, "ce": 1.0}[k] for k, n in todo) / 2
    priors = {"tuned": 2.0, "global": 2.0, "ce": 0.5}
    assert estimate(todo, {"tuned": 4.0}, 2, priors) == pytest.approx(true)
    assert estimate([("tuned#2", 10)], {"ce": 1.0}, 1, priors) == pytest.approx(10 * 4.0)  # tuned#k ~ tuned
    assert estimate([("ce", 10)], {"tuned": 4.0}, 1, {}) == pytest.approx(40.0)  # no calibration: the mean


def test_the_calibration_is_kept_for_the_live_eta(tmp_path) -> None:
    import pickle

    from study.estimate import Estimate, priors, write
    from study.progress import TrialLines

    est = Estimate(concurrency=2, conditions=[{"slug": "rate-1.0", "epoch_s": 3.0, "kinds": {"tuned": 3.0, "ce": 1.0},
                                               "search_low": 1, "search_high": 2, "final": 3}])
    write(tmp_path, est)
    assert priors(tmp_path, "rate-1.0") == {"search": 3.0, "tuned": 3.0, "ce": 1.0}
    assert priors(tmp_path, "other") == {} and priors(tmp_path / "none", "rate-1.0") == {}
    lines = TrialLines(slug="s", phase="final", total=1, epochs=1, metric="m", columns={}, namer=None,
                       early_stop=False, concurrency=1, priors={"ce": 1.0})
    assert pickle.loads(pickle.dumps(lines)).priors == {"ce": 1.0}
    old = pickle.loads(pickle.dumps(lines))
    del old.__dict__["priors"]  # a TrialLines pickled before priors existed
    assert pickle.loads(pickle.dumps(old)).priors == {}
