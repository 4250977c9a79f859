"""The study's metric (``metric.name``): one the trials report, and a validation number (model
selection never looks at test scores)."""
from __future__ import annotations

from trainables.typed import suggest
from trainables.errors import ConfigError
from trainables.metric_names import EPOCH, EVALUATION, SUMMARY, is_metric, known_names

TEST_SUMMARIES = ("best_val", "max_test", "last")  # test mIoU numbers (the papers' summary)


def check_reported_metric(name: str) -> None:
    """``metric.name`` must be a metric the trials report (a typo would otherwise fail in Ray after a
    full epoch)."""
    if is_metric(name):
        return
    families = [n for n in known_names() if "<" in n]
    usable = EPOCH + EVALUATION + SUMMARY
    raise ConfigError(f"metric.name: trials never report {name!r}{suggest(name, usable)}; allowed: "
                      f"{', '.join(usable)}, or {', '.join(families)}")


def check_selection_metric(name: str) -> None:
    """Model selection (the search and the choice of the replicated configuration) uses
    validation numbers only."""
    if name in TEST_SUMMARIES or name.startswith("test_"):
        raise ConfigError(f"metric.name: {name!r} is a test score; model selection must use validation "
                          "numbers only: use best_val_miou (best validation mIoU so far) or val_miou")

