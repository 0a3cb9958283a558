"""The one interface every uncertainty criterion implements.

A criterion is fitted on a training set and scores any set of structures, in the
manner of a scikit-learn estimator: parameters in ``__init__``, ``fit(train)`` returns
the criterion with fitted attributes ending in ``_``, ``score(data)`` returns two tidy
tables, one row per configuration and one per atom, holding the criterion's
uncertainties and, where the structures carry reference labels, the errors of the
criterion's own model (eqs 4-6).

What a criterion reports is declared by its :class:`Signal` s: which column of which
table is an uncertainty, which error it should track, and whether it is judged against
a fixed threshold (gamma > 1) or against eq 7 on the training errors. Evaluation
(:mod:`uqlib.paper.studies`) reads nothing else, so a new criterion is one class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from uqlib import ace
from uqlib.ace import DesignMatrix
from uqlib.exceptions import NotFittedError
from uqlib.tables import atoms_of, per_atom, per_structure_max

LEVELS = ("config", "atom")
Columns = dict[str, np.ndarray]  # named columns of one table: uncertainties per configuration or per atom


@dataclass(frozen=True)
class Signal:
    """One uncertainty of a criterion and the error it is meant to track.

    ``threshold`` is a fixed threshold (1.0 for gamma) or ``None`` for eq 7 on the
    training errors, in which case uncertainty and error share ``unit``.
    """

    name: str  # e.g. "CBF" or "gamma_atom"
    level: str  # "config" or "atom"
    column: str  # the uncertainty's column in the level's table
    error: str  # the error column it tracks, e.g. "err_F"
    threshold: float | None = None
    unit: str = ""  # of the uncertainty: "eV/atom", "eV/Å" or "" (dimensionless)


@dataclass
class FeaturizedSet:
    """A structure table with what criteria read of it: its design matrix and per-atom B projections.

    ``projections`` has shape ``(n_atom, n_func)``, atoms in table order.
    """

    table: pd.DataFrame
    dm: DesignMatrix
    projections: np.ndarray
    # other per-atom arrays computed on demand (e.g. QUESTS descriptors), kept so a race computes them once
    per_atom_arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        """Whether every structure has finite reference energies and forces."""
        return bool(np.isfinite(self.dm.energy_per_atom).all() and np.isfinite(self.dm.forces).all())

    @property
    def n_atoms(self) -> np.ndarray:
        return self.dm.n_atoms

    def select(self, preset: str) -> FeaturizedSet:
        """The same structures for a smaller nested preset: a column selection, no pyace pass, no disk read."""
        dm = self.dm.select(preset)
        return FeaturizedSet(self.table, dm, dm.projections, self.per_atom_arrays)

    def subset(self, configs: np.ndarray) -> FeaturizedSet:
        """The configurations ``configs`` (indices, in that order) with their rows and projections."""
        configs = np.asarray(configs, dtype=int)
        atoms = atoms_of(configs, self.dm.n_atoms)
        return FeaturizedSet(self.table.iloc[configs].reset_index(drop=True), self.dm.subset(configs),
                             self.projections[atoms], {k: v[atoms] for k, v in self.per_atom_arrays.items()})


def featurize(table: pd.DataFrame, preset: str, *, largest: str | None = None, progress: bool = True
              ) -> FeaturizedSet:
    """The design matrix and B projections of ``table`` for ``preset``, from one cached pyace pass.

    ``largest``: the largest preset the caller will need of these structures (see
    :func:`uqlib.ace.design_matrix`); smaller presets are column selections of that pass.
    """
    dm = ace.design_matrix(table, preset, largest=largest, progress=progress)
    return FeaturizedSet(table, dm, dm.projections)


@dataclass
class Scores:
    """What a criterion says of a set of structures: one table per configuration, one per atom.

    ``configs``: ``structure_id``, ``subset``, ``n_atoms``, the uncertainty columns, and
    ``err_E`` (eV/atom, eq 4), ``err_F`` (eV/Å, eq 6) when labelled. ``atoms``: ``config``
    (row of ``configs``), ``structure_id``, ``subset``, the uncertainty columns, and ``err_F``
    (eV/Å, eq 5) when labelled.
    """

    configs: pd.DataFrame
    atoms: pd.DataFrame

    def level(self, level: str) -> pd.DataFrame:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        return self.configs if level == "config" else self.atoms

    def values(self, signal: Signal) -> tuple[np.ndarray, np.ndarray]:
        """``(uncertainty, error)`` of one signal; the error is NaN where there are no labels."""
        table = self.level(signal.level)
        error = table[signal.error].to_numpy() if signal.error in table else np.full(len(table), np.nan)
        return table[signal.column].to_numpy(), error


def model_errors(dm: DesignMatrix, energy_per_atom: np.ndarray, forces: np.ndarray) -> dict[str, np.ndarray]:
    """Errors of predictions against the reference labels: eq 4 (eV/atom), eq 5 and eq 6 (eV/Å).

    ``energy_per_atom`` has shape ``(n_cfg,)``, ``forces`` ``(n_atom, 3)``. Returns
    ``err_E`` and ``err_F_cfg`` per configuration and ``err_F_atom`` per atom.
    """
    err_atom = np.linalg.norm(forces - dm.forces, axis=1)  # eq 5
    return {"err_E": np.abs(energy_per_atom - dm.energy_per_atom),  # eq 4
            "err_F_cfg": per_structure_max(err_atom, dm.n_atoms),  # eq 6
            "err_F_atom": err_atom}


class Criterion(ABC):
    """An uncertainty criterion: ``fit(train)`` then ``score(data)``; see the module docstring.

    Subclasses set :attr:`name` and :attr:`signals` and implement :meth:`fit` and
    :meth:`uncertainties`; :meth:`predictions` (energy per atom and forces of the
    criterion's model) gives the error columns where the data are labelled.
    """

    name: ClassVar[str]
    signals: ClassVar[tuple[Signal, ...]]
    # configuration rules that combine signals: flagged if any of them is
    rules: ClassVar[dict[str, tuple[str, ...]]] = {}

    @abstractmethod
    def fit(self, train: FeaturizedSet) -> Self:
        """Fit on the training set; returns ``self``."""

    @abstractmethod
    def uncertainties(self, data: FeaturizedSet) -> tuple[Columns, Columns]:
        """Uncertainty columns per configuration and per atom."""

    def predictions(self, data: FeaturizedSet) -> tuple[np.ndarray, np.ndarray] | None:
        """Energy per atom ``(n_cfg,)`` (eV/atom) and forces ``(n_atom, 3)`` (eV/Å) of the criterion's model."""
        return None

    def signal(self, name: str) -> Signal:
        for signal in self.signals:
            if signal.name == name:
                return signal
        raise KeyError(f"{type(self).__name__} has no signal {name!r}; it has {[s.name for s in self.signals]}")

    def _check_fitted(self) -> None:
        if not any(key.endswith("_") and not key.startswith("_") for key in vars(self)):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call .fit(train) first")

    def score(self, data: FeaturizedSet) -> Scores:
        """The criterion's uncertainties of ``data``, with the errors of its model where labelled."""
        self._check_fitted()
        config_columns, atom_columns = self.uncertainties(data)
        n_atoms = data.dm.n_atoms
        subsets = data.table["subset"].to_numpy() if "subset" in data.table else np.full(len(n_atoms), "")
        configs = pd.DataFrame({"structure_id": data.dm.structure_ids, "subset": subsets, "n_atoms": n_atoms,
                                **config_columns})
        atoms = pd.DataFrame({"config": np.repeat(np.arange(len(n_atoms)), n_atoms),
                              "structure_id": per_atom(data.dm.structure_ids, n_atoms),
                              "subset": per_atom(subsets, n_atoms), **atom_columns})
        predicted = self.predictions(data)
        if predicted is not None and data.labelled:
            errors = model_errors(data.dm, *predicted)
            configs["err_E"], configs["err_F"] = errors["err_E"], errors["err_F_cfg"]
            atoms["err_F"] = errors["err_F_atom"]
        return Scores(configs, atoms)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_"))
        return f"{type(self).__name__}({params})"
