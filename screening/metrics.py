"""Scores of predicted against measured conductivities, with censored measurements handled explicitly.

A measurement reported only as an upper bound ("< 1e-10 S/cm") is *censored*: it is never compared as a
value where that would be wrong. Spearman rho is given on the uncensored entries (and, separately, with
bounds as values); for the superionic classification a bound below the threshold is a certain negative;
calibration and likelihood use the probability of lying below the bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import log_ndtr
from scipy.stats import rankdata, spearmanr

#: Superionic: sigma >= 1e-4 S/cm.
SUPERIONIC_S_PER_CM = 1e-4


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, int]:
    """Spearman rho over the pairs where both values are finite, and how many pairs that is.

    Returns NaN for rho when fewer than 3 pairs remain or either side is constant.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    n = int(keep.sum())
    if n < 3 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return math.nan, n
    return float(spearmanr(a[keep], b[keep]).statistic), n


def censored_spearman(
    predicted: Sequence[float], measured: Sequence[float], is_upper_bound: Sequence[bool]
) -> dict[str, tuple[float, int]]:
    """Spearman rho of predicted vs measured log10 sigma, two ways.

    Args:
        predicted: predicted log10 sigma (non-finite = no prediction, left out).
        measured: measured log10 sigma; for a censored entry, its upper bound.
        is_upper_bound: True where ``measured`` is only an upper bound.

    Returns:
        ``{"uncensored": (rho, n), "bounds": (rho, n)}``: on the uncensored entries only, and on all entries
        with each bound taken as the value.
    """
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    bound = np.asarray(is_upper_bound, dtype=bool)
    return {"uncensored": spearman(p[~bound], m[~bound]), "bounds": spearman(p, m)}


def superionic_labels(
    measured_log10_sigma: Sequence[float],
    is_upper_bound: Sequence[bool],
    threshold_S_per_cm: float = SUPERIONIC_S_PER_CM,
) -> np.ndarray:
    """1.0 for measured sigma >= threshold, 0.0 below it, NaN where unknown.

    A censored entry (``sigma < bound``) is 0 when its bound is below the threshold and NaN (unknown)
    otherwise; a non-finite measurement is NaN.
    """
    m = np.asarray(measured_log10_sigma, dtype=float)
    bound = np.asarray(is_upper_bound, dtype=bool)
    cut = math.log10(threshold_S_per_cm)
    labels = np.where(m >= cut, 1.0, 0.0)
    labels[bound & (m >= cut)] = math.nan
    labels[~np.isfinite(m)] = math.nan
    return labels


def auc(scores: Sequence[float], labels: Sequence[float]) -> tuple[float, int]:
    """ROC-AUC of ``scores`` for the binary ``labels`` (Mann-Whitney U / (n_pos n_neg); ties count 1/2).

    Entries with a non-finite score or label are left out. Returns ``(auc, n)``; AUC is NaN when one class
    is empty.
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    keep = np.isfinite(s) & np.isfinite(y)
    s, y = s[keep], y[keep] > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return math.nan, int(keep.sum())
    ranks = rankdata(s)  # average ranks: a tie between a positive and a negative counts one half
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg)), int(keep.sum())


def missing_as_lowest(scores: Sequence[float]) -> np.ndarray:
    """``scores`` with every non-finite value replaced by one value below all finite ones."""
    s = np.asarray(scores, dtype=float).copy()
    finite = np.isfinite(s)
    s[~finite] = (s[finite].min() - 1.0) if finite.any() else 0.0
    return s


def mae(predicted: Sequence[float], measured: Sequence[float]) -> tuple[float, int]:
    """Mean absolute error over the pairs where both are finite, and how many pairs that is."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    keep = np.isfinite(p) & np.isfinite(m)
    n = int(keep.sum())
    return (float(np.abs(p[keep] - m[keep]).mean()) if n else math.nan), n


def rmse(predicted: Sequence[float], measured: Sequence[float]) -> tuple[float, int]:
    """Root mean squared error over the pairs where both are finite, and how many pairs that is."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    keep = np.isfinite(p) & np.isfinite(m)
    n = int(keep.sum())
    return (float(np.sqrt(((p[keep] - m[keep]) ** 2).mean())) if n else math.nan), n


def interval_coverage(
    mean: Sequence[float], std: Sequence[float], measured: Sequence[float], k: float
) -> tuple[float, int]:
    """Share of the measured values inside ``mean +- k std`` (finite entries only), and how many.

    For calibrated Gaussian predictions the share is 68.3 % at k = 1 and 95.4 % at k = 2.
    """
    mu, s, m = (np.asarray(v, dtype=float) for v in (mean, std, measured))
    keep = np.isfinite(mu) & np.isfinite(s) & np.isfinite(m)
    n = int(keep.sum())
    return (float((np.abs(m[keep] - mu[keep]) <= k * s[keep]).mean()) if n else math.nan), n


def censored_gaussian_nll(
    mean: Sequence[float], std: Sequence[float], measured: Sequence[float], is_upper_bound: Sequence[bool]
) -> tuple[float, int]:
    """Mean negative log-likelihood of the measurements under ``N(mean, std^2)``; an upper bound ``b``
    contributes ``-log P(y <= b)``. Returns ``(nll, n)`` over the finite entries."""
    mu, s, m = (np.asarray(v, dtype=float) for v in (mean, std, measured))
    bound = np.asarray(is_upper_bound, dtype=bool)
    keep = np.isfinite(mu) & np.isfinite(s) & np.isfinite(m) & (s > 0)
    z = (m[keep] - mu[keep]) / s[keep]
    terms = np.where(bound[keep], -log_ndtr(z), 0.5 * z**2 + np.log(s[keep]) + 0.5 * math.log(2 * math.pi))
    n = int(keep.sum())
    return (float(terms.mean()) if n else math.nan), n
