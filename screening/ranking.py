"""Ranking of screened candidates: an uncertainty-aware stability filter, a score, and the Pareto front.

Stability filter. The stability stage reports the energy above the hull ``E`` with a standard deviation
``s`` (eV/atom). Taking the true value as normally distributed around ``E``, the probability that the
material lies within ``t`` of the hull is::

    p_stable = P(E_true <= t) = Phi((t - E) / s)         (a step function at E = t when s = 0)

A candidate is kept when it contains the mobile ion, both stages succeeded, and ``p_stable >= p_min``
(0.5 by default, which for any s is the same cut as ``E <= t``; higher values demand more confidence).

Incomplete hulls. Where the stability stage reports ``hull_missing_systems`` (the reference set has no
compound for a metal-anion pair of the candidate, e.g. no La or Zr oxide for a garnet), ``E`` is only a
lower bound, often by electronvolts, and ``p_stable`` would be meaningless. Such candidates are set aside
(see :func:`set_aside_for_incomplete_hull`) unless ``allow_incomplete_hull`` is given.

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
from screening.schema import RANKED_SCHEMA, STATUS_OK, Col


@dataclass(frozen=True)
class RankWeights:
    """Weights of the score's two terms (see the module docstring)."""

    sigma: float = 1.0
    stability: float = 1.0

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
            if not math.isfinite(number) or number < 0:
                raise InputError(f"weight {name!r} must be finite and >= 0, got {number}")
            values[name] = number
        weights = cls(**values)
        if weights.sigma == 0 and weights.stability == 0:
            raise InputError("at least one weight must be positive")
        return weights


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


def _usable(results: pd.DataFrame, mobile_ion: str) -> pd.Series:
    """Rows that contain the mobile ion and have both a hull distance and a conductivity."""
    has_ion = results[Col.ELEMENTS].map(lambda els: els is not None and mobile_ion in list(els))
    return (
        (results[Col.STATUS] == STATUS_OK)
        & has_ion
        & np.isfinite(results[Col.E_ABOVE_HULL].astype(float))
        & np.isfinite(results[Col.LOG10_SIGMA].astype(float))
    )


def _hull_incomplete(results: pd.DataFrame) -> pd.Series:
    if Col.HULL_MISSING_SYSTEMS not in results:
        return pd.Series(False, index=results.index)
    return results[Col.HULL_MISSING_SYSTEMS].notna()


def set_aside_for_incomplete_hull(results: pd.DataFrame, *, mobile_ion: str) -> pd.DataFrame:
    """The otherwise usable candidates whose hull lacks metal-anion phases (id, formula, missing systems)."""
    rows = results.loc[_usable(results, mobile_ion) & _hull_incomplete(results)]
    return rows[[Col.ID, Col.CHEMICAL_FORMULA_REDUCED, Col.HULL_MISSING_SYSTEMS]].reset_index(drop=True)


def rank_candidates(
    results: pd.DataFrame,
    *,
    mobile_ion: str,
    max_e_above_hull_eV: float = 0.05,
    min_p_stable: float = 0.5,
    weights: RankWeights = RankWeights(),
    allow_incomplete_hull: bool = False,
) -> pd.DataFrame:
    """Filter, score and rank a results table.

    Args:
        results: the results table of a run (``RESULTS_SCHEMA`` columns).
        mobile_ion: element that must be present (``Li``).
        max_e_above_hull_eV: stability threshold, eV/atom.
        min_p_stable: least probability of lying within the threshold.
        weights: weights of the score.
        allow_incomplete_hull: also rank candidates whose hull distance is only a lower bound
            (``hull_missing_systems`` set); by default they are set aside.

    Returns:
        The kept candidates with ``p_stable``, ``score``, ``rank`` (1 = best) and ``pareto_front``, sorted by
        rank (ties broken by energy above hull, then id), with the columns of ``RANKED_SCHEMA``.
    """
    if not 0.0 < min_p_stable <= 1.0:
        raise InputError(f"min_p_stable must be in (0, 1], got {min_p_stable}")
    if max_e_above_hull_eV < 0:
        raise InputError(f"max_e_above_hull_eV must be >= 0, got {max_e_above_hull_eV}")
    usable = _usable(results, mobile_ion)
    if not allow_incomplete_hull:
        usable &= ~_hull_incomplete(results)
    frame = results.loc[usable].copy()
    frame[Col.P_STABLE] = probability_stable(
        frame[Col.E_ABOVE_HULL], frame[Col.E_ABOVE_HULL_STD], max_e_above_hull_eV
    )
    frame = frame.loc[frame[Col.P_STABLE] >= min_p_stable].copy()
    frame[Col.SCORE] = score(frame[Col.LOG10_SIGMA], frame[Col.P_STABLE], weights)
    frame[Col.PARETO_FRONT] = pareto_front(frame[Col.E_ABOVE_HULL], frame[Col.LOG10_SIGMA])
    frame = frame.sort_values(
        [Col.SCORE, Col.E_ABOVE_HULL, Col.ID], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)
    frame[Col.RANK] = np.arange(1, len(frame) + 1, dtype=np.int32)
    return frame[RANKED_SCHEMA.names]


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
        Col.EA: "Ea eV",
        Col.LOG10_SIGMA: "log10 sigma S/cm",
        Col.SCORE: "score",
        Col.PARETO_FRONT: "pareto",
    }
    table = ranked.head(top)[list(columns)].rename(columns=columns)
    return table.to_string(index=False, float_format=lambda x: f"{x:.3f}")
