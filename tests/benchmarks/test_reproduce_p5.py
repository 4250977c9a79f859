"""Protocol 5's tables: best-val and last-epoch claims, and LNCIS's isolation per epoch (medians over seeds)."""
from __future__ import annotations

from benchmarks._reproduce_tables import isolation, p5


def rep(best: float, last: float, iso: list[tuple[int, float, float]] | None = None) -> dict:
    hist = [{"epoch": e + 1, **({"isolation/pixels": n, "isolation/precision": p, "isolation/recall": r}
                                if iso else {})} for e, (n, p, r) in enumerate(iso or [(0, 0, 0)] * 10)]
    return {"last": {"best_val": best, "last": last}, "history": hist}


def test_last_epoch_claims_and_the_isolation_table():
    iso = [(10 * e, 0.5 if e else None, e / 10) for e in range(10)]
    reps = {"ce": {s: rep(0.5, 0.40) for s in (1, 2, 3)},
            "gce": {s: rep(0.5, 0.5) for s in (1, 2, 3)}, "sce": {s: rep(0.5, 0.5) for s in (1, 2, 3)},
            "tuned": {1: rep(0.5, 0.50, iso), 2: rep(0.5, 0.51, iso), 3: rep(0.5, 0.52, iso)}}
    lines, claims = p5([("sym 0.4", reps)])
    by = {c[1]: c for c in claims}
    assert by["lncis beats ce at the last epoch (every noise setting)"][3] == "reproduced"  # +10 to +12 points
    assert by["lncis beats ce (every noise setting)"][3] == "not reproduced"  # best-val: equal
    row = next(x for x in lines if x.startswith("| sym 0.4 |"))
    assert "1: 0 px, P —, R 0.00" in row and "5: 40 px, P 0.50, R 0.40" in row and "10: 90 px" in row
    assert "2: " not in row  # epochs 1, 5, 10 only
    assert isolation([("sym 0.4", {"tuned": {1: rep(0.5, 0.5)}})]) == []  # no isolation recorded
