"""Hyperparameter studies of noisy-label segmentation: Ray Tune schedules trials of the trial engine,
Optuna (seeded TPE, persistent storage) chooses parameters, W&B records curves.

The modules stay flat but for the spec (a decision, not an accident): Ray pickles the study's
callbacks, searcher and search space into every experiment by module path (``study.space.Space``,
``study.progress.TrialLines``, ``study.wandb_log.StudyWandbCallback``,
``study.searcher.PrunedAwareOptunaSearch``, ``study.relocation.RelocatableSearchGenerator``,
``study.trial_info.TrialNamer``), so a move breaks ``--resume`` of every experiment written before it
unless each old path stays importable, and ``python -m study.run`` / ``python -m study.report`` are
the public commands. By kind:

- the study spec: the package ``spec`` (study YAML -> StudySpec: schema, load, the three parameter
  kinds, the define-by-run Optuna space, W&B Sweeps spellings, and the checks named for what they
  check: keys, baselines, seeds, metric, combinations); ``space``, ``sweeps``, ``parameters``,
  ``validate`` and ``spec_checks`` are its older paths, kept importable;
- execution: ``tuner`` (search and replication of one condition on Ray Tune, resumable), ``searcher``
  (OptunaSearch over a storage; ASHA stops recorded PRUNED), ``replication`` (the replication grid),
  ``parallel`` (conditions side by side), ``relocation`` (a moved experiment folder),
  ``wandb_log`` (one W&B run per trial), ``progress`` / ``terminal`` / ``trial_info`` (what the
  driver prints), ``estimate`` (the wall time from a short calibration);
- driver safety, before anything runs: ``preflight`` (cluster resources), ``dryrun`` (``--dry-run``),
  ``lock`` (one driver per experiment), ``leftovers`` (Ray processes of a killed driver), ``trust``
  (a resumed folder is ours before Ray unpickles it);
- results: ``results`` (the one reader of an experiment folder and its rules: full budget, best
  trials, replica labels, failures), ``stats`` (intervals, paired differences), ``report`` and
  ``figures`` (report/), ``failures`` (an older name, kept importable);
- the CLI: ``run`` (``python -m study.run``), ``cli`` (the ``noisyseg`` command).
"""
from .spec import StudySpec, load_study

__all__ = ["StudySpec", "load_study"]
