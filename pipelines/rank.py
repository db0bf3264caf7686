"""``screening rank``: rank the results of a run directory and write ``ranked.parquet``."""

from __future__ import annotations

import os

import pandas as pd

from pipelines.partitions import frame_to_table
from pipelines.rundir import RunDir
from screening.errors import InputError
from screening.ranking import RankWeights, rank_candidates, set_aside_for_incomplete_hull
from screening.schema import RANKED_SCHEMA, Col, with_metadata


def rank_run(
    run_dir: str | os.PathLike,
    *,
    max_e_above_hull_eV: float = 0.05,
    min_p_stable: float = 0.5,
    weights: RankWeights | str | None = None,
    mobile_ion: str | None = None,
    allow_incomplete_hull: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rank the results of ``run_dir``, write ``RUN_DIR/ranked.parquet`` and record the settings in
    ``run.json``.

    Args:
        run_dir: a run directory written by ``screening run``.
        max_e_above_hull_eV: stability threshold, eV/atom.
        min_p_stable: least probability of being within the threshold.
        weights: score weights (or their ``"sigma=1,stability=1"`` text).
        mobile_ion: the ion that must be present; default: the run's.
        allow_incomplete_hull: also rank candidates whose hull lacks metal-anion phases.

    Returns:
        The ranked candidates (see :func:`screening.ranking.rank_candidates`), and the candidates set
        aside for an incomplete hull (see :func:`screening.ranking.set_aside_for_incomplete_hull`; empty
        when ``allow_incomplete_hull``).
    """
    run_dir = RunDir(run_dir)
    if not isinstance(weights, RankWeights):
        weights = RankWeights.parse(weights)
    manifest = run_dir.read_manifest() or {}
    results = run_dir.read_results()
    if mobile_ion is None:
        mobile_ion = manifest.get("science", {}).get("mobile_ion")
    if mobile_ion is None:
        ions = results[Col.MOBILE_ION].dropna().unique()
        if len(ions) != 1:
            raise InputError(
                f"cannot tell the mobile ion of {run_dir.path} (found {list(ions)}); pass --mobile-ion"
            )
        mobile_ion = str(ions[0])
    ranked = rank_candidates(
        results,
        mobile_ion=mobile_ion,
        max_e_above_hull_eV=max_e_above_hull_eV,
        min_p_stable=min_p_stable,
        weights=weights,
        allow_incomplete_hull=allow_incomplete_hull,
    )
    aside = results.iloc[:0] if allow_incomplete_hull else results
    aside = set_aside_for_incomplete_hull(aside, mobile_ion=mobile_ion)
    parameters = {
        "mobile_ion": mobile_ion,
        "max_e_above_hull_eV": max_e_above_hull_eV,
        "min_p_stable": min_p_stable,
        "weights": {"sigma": weights.sigma, "stability": weights.stability},
        "allow_incomplete_hull": allow_incomplete_hull,
    }
    schema = with_metadata(RANKED_SCHEMA, "ranked", ranking=parameters)
    run_dir.write_ranked(frame_to_table(ranked, schema))
    if manifest:
        manifest["ranking"] = {
            **parameters,
            "n_results": len(results),
            "n_candidates": len(ranked),
            "set_aside_incomplete_hull": aside[Col.ID].tolist(),
        }
        run_dir.write_manifest(manifest)
    return ranked, aside
