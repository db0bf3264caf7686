"""``screening rank``: rank the results of a run directory and write ``ranked.parquet``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from pipelines.manifest import read_manifest, write_manifest
from pipelines.partitions import frame_to_table, read_results, write_atomic
from screening.ranking import RankWeights, rank_candidates, set_aside_for_incomplete_hull
from screening.schema import RANKED_SCHEMA, Col, with_metadata

RANKED_NAME = "ranked.parquet"


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
    run_dir = Path(run_dir)
    if not isinstance(weights, RankWeights):
        weights = RankWeights.parse(weights)
    manifest = read_manifest(run_dir) or {}
    results = read_results(run_dir)
    if mobile_ion is None:
        mobile_ion = manifest.get("config", {}).get("mobile_ion")
    if mobile_ion is None:
        ions = results[Col.MOBILE_ION].dropna().unique()
        if len(ions) != 1:
            raise ValueError(f"cannot tell the mobile ion of {run_dir} (found {list(ions)}); pass mobile_ion")
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
    write_atomic(frame_to_table(ranked, schema), run_dir / RANKED_NAME)
    if manifest:
        manifest["ranking"] = {
            **parameters,
            "n_results": len(results),
            "n_candidates": len(ranked),
            "set_aside_incomplete_hull": aside[Col.ID].tolist(),
        }
        write_manifest(run_dir, manifest)
    return ranked, aside


def read_ranked(run_dir: str | os.PathLike) -> pd.DataFrame:
    """``RUN_DIR/ranked.parquet`` as a DataFrame, sorted by rank."""
    path = Path(run_dir) / RANKED_NAME
    if not path.exists():
        raise FileNotFoundError(f"no {RANKED_NAME} in {run_dir} (run `screening rank {run_dir}` first)")
    return pd.read_parquet(path).sort_values(Col.RANK).reset_index(drop=True)
