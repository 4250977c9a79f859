"""Hyperparameter studies of noisy-label segmentation: Ray Tune schedules trials of the trial engine,
Optuna (seeded TPE, persistent storage) chooses parameters, W&B records curves.

Modules, one concern each: ``spec`` (study YAML -> StudySpec), ``space`` (define-by-run Optuna space),
``searcher`` (OptunaSearch over a storage, ASHA stops recorded PRUNED), ``tuner`` (search and
replication of one condition, resumable), ``wandb_log`` (one W&B run per trial), ``report``
(tables, figures, best trial YAML), ``run`` (the CLI: ``python -m study.run SPACE.yaml``).
"""
from .spec import StudySpec, load_study

__all__ = ["StudySpec", "load_study"]
