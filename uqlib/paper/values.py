"""The paper's numbers, in one place: each with the figure or section it comes from and its unit.

Every number of arXiv:2508.03405 that this compendium compares with, plots or quotes lives
here as a :class:`PaperValue`; the claim rules (:mod:`uqlib.paper.claims`), the notebooks and
the captions import it instead of typing it. Rates are fractions in [0, 1] (``unit="%"``
says how a reader sees them: :meth:`PaperValue.text` prints ``0.754`` as ``75.4 %``); errors
in the units the paper states them in. ``approximate`` marks the paper's "about" / "near" /
"more than" (a bound, not a measurement).

The dictionaries at the end (:data:`F_RMSE`, :data:`E_RMSE`, :data:`TOY_GRADES`) are the
shapes the rules use: keyed by the paper's model name or by (point, active set).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AB_GAMMA_MAX", "AD_DOPT_ATOM_RATE", "AD_DOPT_CFG_RATE", "AD_ENSEMBLE_ATOM_RATE", "AD_ENSEMBLE_CFG_RATE",
           "AD_ERROR_MODE_HIGH", "AD_ERROR_MODE_LOW", "AD_GAMMA_HIGH", "AD_GAMMA_LOW", "AD_TRAIN_PER_GROUP",
           "ABF_TRAIN_RHO_MAX", "ALL_VALUES", "CROSSOVER_F_RMSE", "DOPT_ATOM_RATE_LEAST", "DOPT_ATOM_RATE_MOST",
           "DOPT_CFG_DETECTION_MIN", "DOPT_CFG_RATE_FIG5", "DOPT_ATOM_RATE_FIG5", "ENSEMBLE_ATOM_RATE_FIG5",
           "ENSEMBLE_MISS_CBE", "ENSEMBLE_MISS_CBF", "ENSEMBLE_SIZE", "ENSEMBLE_SIZE_LARGE", "ENSEMBLE_SIZE_STABLE",
           "E_RMSE", "E_RMSE_FUNC15", "E_RMSE_FUNC945", "F_RMSE", "F_RMSE_FUNC15", "F_RMSE_FUNC945", "GAMMA_MAX_FUNC15",
           "GAMMA_MAX_FUNC945", "GAMMA_THRESHOLD", "IQR_FACTOR", "PaperValue", "TOY_GRADES", "TOY_GRADE_VALUES",
           "UNDERCONFIDENT_ERROR", "value_table"]


@dataclass(frozen=True)
class PaperValue:
    """One number of the paper: its value, unit, where it is stated and what it is.

    ``value`` is a float in the unit ``unit``, except rates (``unit == "%"``), which are
    fractions in [0, 1] as the claim rules use them. ``unit`` is ``""`` for a unitless number
    (a grade gamma, a rank correlation, a count of models).
    """

    value: float
    unit: str
    source: str  # the figure, caption or section of the paper, e.g. "Fig 6a"
    what: str  # what the number is, in a few words
    approximate: str = ""  # "about", "more than", "near", ... when the paper states a bound or a round figure

    def text(self, digits: int | None = None) -> str:
        """The value as a reader sees it, with its unit: ``75.4 %``, ``171.62 meV/Å``, ``about 1e6``."""
        unit = "" if not self.unit else f" {self.unit}"
        return f"{self.approximate} {self.number(digits)}{unit}".strip()

    def number(self, digits: int | None = None) -> str:
        """The number alone as the paper writes it (a rate in percent, a decade as 1e6): ``75.4``, ``1e-4``."""
        number = 100 * self.value if self.unit == "%" else self.value
        if digits is not None:
            shown = f"{number:.{digits}f}"
        elif number != 0 and not 1e-2 <= abs(number) < 1e3:  # a decade, as the paper writes it: 1e6, 1e-4
            mantissa, exponent = f"{number:e}".split("e")
            mantissa = mantissa.rstrip("0").rstrip(".")
            shown = f"{'' if mantissa == '1' else mantissa + 'x'}1e{int(exponent)}"
        else:
            shown = f"{number:g}"
        return shown

    def cited(self) -> str:
        """The value with its source: ``75.4 % (Fig 7a)``."""
        return f"{self.text()} ({self.source})"


# -- Fig 2: the least and the most accurate model ---------------------------------------------
F_RMSE_FUNC15 = PaperValue(171.62, "meV/Å", "Fig 2 caption", "training force RMSE of Func-15")
F_RMSE_FUNC945 = PaperValue(51.37, "meV/Å", "Fig 2 caption", "training force RMSE of Func-945")
E_RMSE_FUNC15 = PaperValue(9.05, "meV/atom", "Fig 2 caption", "training energy RMSE of Func-15")
E_RMSE_FUNC945 = PaperValue(1.46, "meV/atom", "Fig 2 caption", "training energy RMSE of Func-945")
ENSEMBLE_SIZE = PaperValue(6, "", "Results, Fig 2-3", "ensemble size K of the accuracy study (six-member ensemble)")

# -- Fig 3 and S1-S2: ensembles against accuracy and size -----------------------------------------
ABF_TRAIN_RHO_MAX = PaperValue(0.7, "", "Fig 3b", "ABF training Spearman rho stays below", "below")
CROSSOVER_F_RMSE = PaperValue(100.0, "meV/Å", "Fig 3f",
                              "training F_RMSE at which fixed and adaptive thresholds flag alike")
ENSEMBLE_SIZE_STABLE = PaperValue(10, "", "Fig S2a", "ensemble size from which selection rates are stable",
                                  "at least")
IQR_FACTOR = PaperValue(1.5, "", "Methods, eq 7", "factor of the IQR in the threshold eps = Q3 + 1.5 IQR")

# -- Fig 4-5: D-optimality against accuracy (A+B training) --------------------------------------
GAMMA_THRESHOLD = PaperValue(1.0, "", "Fig 4", "extrapolation grade separating ID (< 1) from OOD (> 1)")
GAMMA_MAX_FUNC15 = PaperValue(1e2, "", "Fig 4", "largest extrapolation grade of Func-15", "about")
GAMMA_MAX_FUNC945 = PaperValue(1e6, "", "Fig 4", "largest extrapolation grade of Func-945", "about")
DOPT_CFG_DETECTION_MIN = PaperValue(0.90, "%", "Fig 5a", "D-optimality's share of OOD configurations detected, "
                                    "at every accuracy", "more than")
DOPT_ATOM_RATE_LEAST = PaperValue(0.05, "%", "Fig 5a", "D-optimality's atom detection, least accurate model",
                                  "about")
DOPT_ATOM_RATE_MOST = PaperValue(0.70, "%", "Fig 5a", "D-optimality's atom detection, most accurate model", "about")
DOPT_CFG_RATE_FIG5 = PaperValue(0.99, "%", "Fig 5b-c", "D-optimality's share of test configurations flagged",
                                "more than")
ENSEMBLE_MISS_CBE = PaperValue(0.33, "%", "Fig 5b", "share of test configurations the ensemble misses by CBE",
                               "about")
ENSEMBLE_MISS_CBF = PaperValue(0.16, "%", "Fig 5c", "share of test configurations the ensemble misses by CBF",
                               "about")
DOPT_ATOM_RATE_FIG5 = PaperValue(0.64, "%", "Fig 5d", "D-optimality's share of test atoms flagged")
ENSEMBLE_ATOM_RATE_FIG5 = PaperValue(0.55, "%", "Fig 5d", "the ensemble's (ABF) share of test atoms flagged")
ENSEMBLE_SIZE_LARGE = PaperValue(30, "", "Fig 5 (Results)", "size of the larger ensemble D-optimality is compared with")
UNDERCONFIDENT_ERROR = PaperValue(0.05, "eV/Å", "Fig 5d", "force error of the low-error atoms both methods flag "
                                  "(under-confident)")

# -- Figs 6-7: heterogeneous training, A+D -> B+C+E+F ---------------------------------------------
AD_TRAIN_PER_GROUP = PaperValue(30, "", "Influence of data heterogeneity",
                                "training configurations from A and from D each")
AD_ENSEMBLE_CFG_RATE = PaperValue(0.00076, "%", "Fig 6a", "test configurations the ensemble flags (CBF)")
AD_ENSEMBLE_ATOM_RATE = PaperValue(0.00265, "%", "Fig 6b", "test atoms the ensemble flags (ABF)")
AD_ERROR_MODE_LOW = PaperValue(1e-4, "eV/Å", "Fig 6c", "lower mode of the per-atom force errors", "near")
AD_ERROR_MODE_HIGH = PaperValue(1e-1, "eV/Å", "Fig 6c", "upper mode of the per-atom force errors", "near")
AD_DOPT_CFG_RATE = PaperValue(0.754, "%", "Fig 7a", "test configurations D-optimality flags")
AD_DOPT_ATOM_RATE = PaperValue(0.10, "%", "Fig 7b", "test atoms D-optimality flags", "about")
AD_GAMMA_LOW = PaperValue(0.1, "", "Fig 7a-b", "smallest extrapolation grade of the A+D test set", "about")
AD_GAMMA_HIGH = PaperValue(10.0, "", "Fig 7a-b", "largest extrapolation grade of the A+D test set", "about")
AB_GAMMA_MAX = PaperValue(1e6, "", "Fig 4 (quoted with Fig 7)", "largest grade of the homogeneous A+B training",
                          "about")

# -- Fig 7c: the 2D example's grades (gamma_ij: the active set of vectors v_i, v_j) -----------------
TOY_GRADE_VALUES = {
    ("A", "union"): PaperValue(0.76, "", "Fig 7c", "point A, the union's active set (v1, v5): gamma_15"),
    ("A", "group a"): PaperValue(6.36, "", "Fig 7c", "point A, group a's active set (v1, v2): gamma_12"),
    ("A", "group b"): PaperValue(2.41, "", "Fig 7c", "point A, group b's active set (v3, v4): gamma_34"),
    ("A", "group c"): PaperValue(2.34, "", "Fig 7c", "point A, group c's active set (v5, v6): gamma_56"),
    ("B", "union"): PaperValue(1.17, "", "Fig 7c", "point B, the union's active set (v1, v5): gamma_15"),
    ("B", "group b"): PaperValue(0.88, "", "Fig 7c", "point B, group b's active set (v3, v4): gamma_34"),
}

# -- the shapes the rules use ------------------------------------------------------------------
F_RMSE: dict[str, float] = {"Func-15": F_RMSE_FUNC15.value, "Func-945": F_RMSE_FUNC945.value}  # meV/Å
E_RMSE: dict[str, float] = {"Func-15": E_RMSE_FUNC15.value, "Func-945": E_RMSE_FUNC945.value}  # meV/atom
TOY_GRADES: dict[tuple[str, str], float] = {key: v.value for key, v in TOY_GRADE_VALUES.items()}  # unitless

ALL_VALUES: dict[str, PaperValue] = {name: value for name, value in globals().items()
                                     if isinstance(value, PaperValue)}
ALL_VALUES |= {f"TOY_GRADE {point} {which}": value for (point, which), value in TOY_GRADE_VALUES.items()}


def value_table():
    """Every value of this module as a table (name, value as a reader sees it, unit, source, what it is)."""
    import pandas as pd

    return pd.DataFrame([{"name": name, "paper's value": v.text(), "unit": v.unit or "unitless",
                          "source": v.source, "what": v.what} for name, v in ALL_VALUES.items()]).set_index("name")
