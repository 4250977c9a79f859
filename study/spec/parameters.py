"""The three kinds of a study parameter, each knowing how to suggest, enumerate, grid and describe
itself (as optuna/distributions.py's distributions do): a :class:`Constant` (``value:``), a
:class:`Choice` (``values: [...]``) and a :class:`Range` (``distribution:`` with ``min`` / ``max``
and an optional step ``q``).

A YAML parameter is read and validated as :class:`study.spec.Parameter` (the file's form, also what
an experiment's pickled search space holds); :meth:`study.spec.Parameter.kind` gives its kind here,
and every consumer (the Optuna space, the grid, the dry run, the checks, the terminal) asks the kind
instead of telling the three apart by hand."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from trainables.errors import ConfigError


@dataclass(frozen=True)
class Constant:
    """A key fixed for every trial of the search (returned, never sampled)."""
    value: Any
    searched = False  # Optuna samples it
    finite = True  # samples() lists every value it can take

    def suggest(self, trial, key: str) -> Any:
        return self.value

    def grid(self, key: str) -> list | None:
        """Not a grid axis (the constant is set on every trial)."""
        return None

    def samples(self) -> list[tuple[str, Any]]:
        """(YAML sub-key, value) pairs that stand for the parameter in the checks."""
        return [("value", self.value)]

    def enumerate(self, limit: int) -> list[Any]:
        """The values to try when checking combinations (at most about ``limit``)."""
        return [self.value]

    def describe(self) -> str:
        return f"constant {self.value!r}"


@dataclass(frozen=True)
class Choice:
    """One of a list of values (Optuna's categorical)."""
    values: tuple
    searched = True
    finite = True

    def suggest(self, trial, key: str) -> Any:
        return trial.suggest_categorical(key, list(self.values))

    def grid(self, key: str) -> list | None:
        return list(self.values)

    def samples(self) -> list[tuple[str, Any]]:
        return [(f"values[{i}]", v) for i, v in enumerate(self.values)]

    def enumerate(self, limit: int) -> list[Any]:
        return list(self.values)

    def describe(self) -> str:
        return f"one of {list(self.values)!r}"


@dataclass(frozen=True)
class Range:
    """A number from ``min`` to ``max``: ``uniform``, ``log_uniform_values``, ``int_uniform`` or
    ``q_uniform`` (step ``q``; ``int_uniform`` takes one too)."""
    distribution: Literal["uniform", "log_uniform_values", "int_uniform", "q_uniform"]
    min: float
    max: float
    q: float | None = None
    searched = True
    finite = False  # samples() gives the extremes only

    def suggest(self, trial, key: str) -> Any:
        if self.distribution == "int_uniform":
            return trial.suggest_int(key, int(self.min), int(self.max), step=int(self.q or 1))
        if self.distribution == "log_uniform_values":
            return trial.suggest_float(key, self.min, self.max, log=True)
        return trial.suggest_float(key, self.min, self.max, step=self.q)  # uniform, q_uniform

    def grid(self, key: str) -> list | None:
        raise ConfigError(f"parameters.{key}: grid search needs values: [...] (got distribution "
                          f"{self.distribution}); use values or another search.algorithm")

    def samples(self) -> list[tuple[str, Any]]:
        """The extremes."""
        cast = int if self.distribution == "int_uniform" else float
        return [("min", cast(self.min)), ("max", cast(self.max))]

    def enumerate(self, limit: int) -> list[Any]:
        """Every integer of an ``int_uniform`` range when there are at most ``limit``, else the extremes."""
        if self.distribution == "int_uniform":
            values = list(range(int(self.min), int(self.max) + 1, int(self.q or 1)))
            return values if len(values) <= limit else [values[0], values[-1]]
        return [float(self.min), float(self.max)]

    def describe(self) -> str:
        return f"{self.distribution} [{self.min:g}, {self.max:g}]" + (f" step {self.q:g}" if self.q is not None else "")


Kind = Constant | Choice | Range
