"""Post-hoc calibration of a predictive standard deviation by one scale factor (variance scaling).

An ensemble trained on a few hundred entries is usually over-confident on entries unlike its training
data: the spread of its members and its learned noise miss the error of a new chemistry. The remedy of
Levi et al. (2022, "Evaluating and calibrating uncertainty prediction in regression tasks") and Kuleshov
et al. (2018) is a single factor ``s`` on every predicted standard deviation, fitted on predictions the
model did not train on (out-of-fold predictions of a grouped cross-validation): the ``s`` that minimises
the Gaussian negative log-likelihood of those held-out truths. Upper bounds ("sigma < 1e-10 S/cm")
enter as censored observations, ``-log P(y <= bound)``, as they do in training.

Without censored entries the optimum has the closed form ``s^2 = mean(z^2)`` of the held-out z-scores;
with them it is found numerically on ``log s``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from screening import metrics

#: The factor is searched in [1/MAX_STD_SCALE, MAX_STD_SCALE]: a model whose spread is off by more has
#: a problem that one factor should not hide.
MAX_STD_SCALE = 10.0


def fit_std_scale(
    mean: Sequence[float],
    std: Sequence[float],
    measured: Sequence[float],
    is_upper_bound: Sequence[bool] | None = None,
) -> float:
    """The factor on ``std`` that minimises the censored Gaussian NLL of ``measured`` (1.0 if fewer than
    two finite entries).

    Args:
        mean: held-out predictive means.
        std: held-out predictive standard deviations (> 0).
        measured: the truths (an upper bound where ``is_upper_bound``).
        is_upper_bound: which truths are upper bounds (default: none).
    """
    mu, s, y = (np.asarray(v, dtype=float) for v in (mean, std, measured))
    bound = np.zeros(len(y), dtype=bool) if is_upper_bound is None else np.asarray(is_upper_bound, bool)
    keep = np.isfinite(mu) & np.isfinite(s) & np.isfinite(y) & (s > 0)
    if keep.sum() < 2:
        return 1.0
    mu, s, y, bound = mu[keep], s[keep], y[keep], bound[keep]

    def nll(log_scale: float) -> float:
        return metrics.censored_gaussian_nll(mu, s * math.exp(log_scale), y, bound)[0]

    limit = math.log(MAX_STD_SCALE)
    best = minimize_scalar(nll, bounds=(-limit, limit), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(best.x))
