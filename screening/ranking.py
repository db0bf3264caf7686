"""Ranking of screened candidates: the stability probability, the score, the Pareto front.

The filters that come first (stability, conductivity, electronic insulator, window, cost ...) are the
funnel of :mod:`screening.funnel`, which also composes the ranking (``rank_candidates``); this module is the
one place where the stability probability, the score and the Pareto front are defined.

Stability probability. The stability stage reports the energy above the hull ``E`` with a standard
deviation ``s`` (eV/atom) that combines the configurational spread of a disordered structure with the
energy model's own error (:mod:`screening.thermo.model_error`, about 0.06 eV/atom for SevenNet-0).
Taking the true value as normally distributed around ``E``, the probability that the material lies
within ``t`` of the hull is::

    p_stable = P(E_true <= t) = Phi((t - E) / s)         (a step function at E = t when s = 0)

so a candidate is "certainly" stable (p_stable > 0.99) only when its margin ``(t - E) / s``
(``stability_margin_std``) exceeds 2.3 error scales. The funnel keeps candidates with
``p_stable >= min_p_stable`` (0.5 by default, the same cut as ``E <= t``; higher values demand more
confidence).

Incomplete hulls. Where the stability stage reports ``hull_missing_systems`` (the reference set has no
compound for a metal-anion pair of the candidate, e.g. no La or Zr oxide for a garnet), ``E`` is only a
lower bound, often by electronvolts, and ``p_stable`` would be meaningless: the funnel sets such
candidates aside unless ``allow_incomplete_hull`` is given.

Score. With weights ``w_sigma`` and ``w_stab`` (both 1 by default)::

    score = w_sigma * log10(sigma / (S/cm)) + w_stab * log10(p_stable)

With unit weights this is log10 of the expected conductivity when an unstable material counts as
non-conducting (``sigma * p_stable``): a decade of conductivity is worth a factor 10 in the probability of
being stable. Larger ``w_stab`` punishes uncertain stability harder.

Pareto front. Of the kept candidates, those not dominated in (energy above hull, -log10 sigma), both to be
minimised: no other candidate is at least as close to the hull and at least as conductive, and strictly
better in one of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from screening.errors import InputError
from screening.schema import Col


@dataclass(frozen=True)
class RankWeights:
    """Weights of the score's two terms (see the module docstring)."""

    sigma: float = 1.0
    stability: float = 1.0

    def __post_init__(self) -> None:
        for name in ("sigma", "stability"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InputError(f"weight {name!r} must be finite and >= 0, got {value!r}")
        if self.sigma == 0 and self.stability == 0:
            raise InputError("at least one weight must be positive")

    @classmethod
    def parse(cls, text: str | None) -> RankWeights:
        """Weights from ``"sigma=1,stability=2"`` (missing names keep their default).

        Raises:
            ValueError: an unknown name, a value that is not a finite non-negative number, or both zero.
        """
        if not text:
            return cls()
        values: dict[str, float] = {}
        for part in text.split(","):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in ("sigma", "stability"):
                raise InputError(f"weights look like 'sigma=1,stability=1', got {part!r}")
            try:
                number = float(value)
            except ValueError as exc:
                raise InputError(f"weight {name!r} is not a number: {value!r}") from exc
            values[name] = number
        return cls(**values)


def probability_stable(
    e_above_hull_eV: np.ndarray, e_above_hull_std_eV: np.ndarray, max_e_above_hull_eV: float
) -> np.ndarray:
    """P(true energy above hull <= threshold) for normal errors; a step where the spread is 0 or unknown.

    Args:
        e_above_hull_eV: predicted energies above the hull, eV/atom.
        e_above_hull_std_eV: their standard deviations, eV/atom (NaN: unknown, treated as 0).
        max_e_above_hull_eV: the threshold, eV/atom.
    """
    e = np.asarray(e_above_hull_eV, dtype=float)
    s = np.nan_to_num(np.asarray(e_above_hull_std_eV, dtype=float), nan=0.0)
    if np.any(s < 0):
        raise InputError("standard deviations must be >= 0")
    step = (e <= max_e_above_hull_eV).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        smooth = ndtr((max_e_above_hull_eV - e) / s)
    p = np.where(s > 0, smooth, step)
    return np.where(np.isnan(e), np.nan, p)


def pareto_front(e_above_hull_eV: np.ndarray, log10_sigma: np.ndarray) -> np.ndarray:
    """Mask of the points not dominated when minimising energy above hull and maximising log10 sigma.

    Identical points are all on the front if one of them is. O(n log n).
    """
    e = np.asarray(e_above_hull_eV, dtype=float)
    s = np.asarray(log10_sigma, dtype=float)
    if e.shape != s.shape:
        raise InputError(f"shapes differ: {e.shape} vs {s.shape}")
    if np.isnan(e).any() or np.isnan(s).any():
        raise InputError("the Pareto front needs finite values")
    order = np.lexsort((-s, e))  # by e ascending, then s descending
    front = np.zeros(e.shape, dtype=bool)
    best_s = -np.inf
    best_point: tuple[float, float] | None = None
    for i in order:
        point = (e[i], s[i])
        if s[i] > best_s:
            front[i] = True
            best_s, best_point = s[i], point
        elif point == best_point:
            front[i] = True
    return front


def score(log10_sigma: np.ndarray, p_stable: np.ndarray, weights: RankWeights = RankWeights()) -> np.ndarray:
    """``w_sigma * log10 sigma + w_stab * log10 p_stable`` (see the module docstring)."""
    with np.errstate(divide="ignore"):
        return weights.sigma * np.asarray(log10_sigma, float) + weights.stability * np.log10(
            np.asarray(p_stable, float)
        )


def format_set_aside(aside: pd.DataFrame, shown: int = 5) -> str:
    """Why candidates were left out of the ranking for an incomplete hull ("" when none was)."""
    if aside.empty:
        return ""
    examples = "; ".join(
        f"{row[Col.ID]} (no {row[Col.HULL_MISSING_SYSTEMS]} compound)"
        for _, row in aside.head(shown).iterrows()
    )
    more = f" and {len(aside) - shown} more" if len(aside) > shown else ""
    return (
        f"{len(aside)} candidate(s) set aside: the hull reference lacks metal-anion phases, so their energy "
        f"above hull is only a lower bound: {examples}{more}. Ingest from Materials Project "
        "(--source mp, which pulls complete reference hulls) or rank with --allow-incomplete-hull."
    )


def format_near_misses(misses: pd.DataFrame) -> str:
    """The nearest misses of :func:`screening.funnel.near_misses` as a plain-text table ("" when none)."""
    if misses.empty:
        return ""
    columns = {
        Col.ID: "id",
        Col.CHEMICAL_FORMULA_REDUCED: "formula",
        "removed_by": "removed by",
        Col.E_ABOVE_HULL: "E_hull eV/at",
        Col.P_STABLE: "p_stable",
        Col.LOG10_SIGMA: "log10 sigma S/cm",
        Col.P_SUPERIONIC: "p_superionic",
        Col.ECW_LOW: "ECW low V",
        Col.ECW_HIGH: "ECW high V",
    }
    table = misses[[c for c in columns if c in misses]].rename(columns=columns)
    table["formula"] = table["formula"].map(readable_formula)
    return (
        f"nearest misses ({len(misses)}; removed by the last filters, not candidates: to rank them, loosen a "
        "filter, e.g. screening rank RUN_DIR --preset electrode, or --min-p-superionic):\n"
        + table.to_string(index=False, float_format=lambda x: f"{x:.3f}")
    )


def readable_formula(formula: str) -> str:
    """A formula the way chemists write it (``LiBr``, not OPTIMADE's alphabetical ``BrLi``); the text
    itself when it is no formula."""
    from pymatgen.core import Composition

    try:
        return Composition(formula).reduced_formula
    except (ValueError, TypeError):
        return str(formula)


def format_top(ranked: pd.DataFrame, top: int = 20) -> str:
    """The ``top`` best candidates as a plain-text table."""
    if ranked.empty:
        return "no candidate passed the filters"
    columns = {
        Col.RANK: "rank",
        Col.ID: "id",
        Col.CHEMICAL_FORMULA_REDUCED: "formula",
        Col.E_ABOVE_HULL: "E_hull eV/at",
        Col.E_ABOVE_HULL_STD: "+-",
        Col.P_STABLE: "p_stable",
        Col.LOG10_SIGMA: "log10 sigma S/cm",
        Col.ECW_LOW: "ECW low V",
        Col.ECW_HIGH: "ECW high V",
        Col.ELECTRONIC_CONDUCTOR: "e-cond",
        Col.COST: "USD/kg",
        Col.SCORE: "score",
        Col.PARETO_FRONT: "pareto",
    }
    table = ranked.head(top)[list(columns)].rename(columns=columns)
    table["formula"] = table["formula"].map(readable_formula)
    return table.to_string(index=False, float_format=lambda x: f"{x:.3f}")
