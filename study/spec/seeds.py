"""The seeds of a study: every seed the search can use, and the check that replication seeds
(``final.seeds``) are fresh."""
from __future__ import annotations

from trainables.errors import ConfigError

from .schema import StudySpec

SEED_KEYS = ("seed", "noise_seed")


def search_seeds(spec: StudySpec) -> dict[int, str]:
    """Every seed (trial seed or noise seed) a search trial can use -> where it comes from."""
    used: dict[int, str] = {}
    trial = spec.condition({}).config  # the trial as configured
    used.setdefault(trial.seed, "trial.seed")
    if trial.noise_seed is not None:
        used.setdefault(trial.noise_seed, "trial.noise_seed")
    for key in SEED_KEYS:
        for i, v in enumerate(spec.conditions.get(key, [])):
            if isinstance(v, int):
                used.setdefault(v, f"conditions.{key}[{i}]")
        p = spec.parameters.get(key)
        if p is None:
            continue
        if not p.kind.finite:  # a range: every integer in it may be drawn
            for v in range(int(p.min), int(p.max) + 1):
                used.setdefault(v, f"parameters.{key}")
        else:
            for _, v in p.kind.samples():
                if isinstance(v, int):
                    used.setdefault(v, f"parameters.{key}")
    return used


def check_fresh_seeds(spec: StudySpec) -> None:
    """Replicates must not reuse a search seed: the winning search trial would then be one of its
    own replicates (same seed, same numbers) and the ± would contain the selected run."""
    used = search_seeds(spec)
    clash = [s for s in spec.final.seeds if s in used]
    if not clash:
        return
    fresh, candidate = [], 0
    while len(fresh) < len(spec.final.seeds):
        if candidate not in used:
            fresh.append(candidate)
        candidate += 1
    where = ", ".join(f"{s} ({used[s]})" for s in clash)
    raise ConfigError(f"final.seeds: {where} also seeded the search; replication needs fresh seeds so that "
                      f"the selected trial is not one of its own replicates: use e.g. {fresh}")

