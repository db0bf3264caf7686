"""``screening rank``: rank the results of a run directory and write ``ranked.parquet``."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import pandas as pd

from pipelines.partitions import frame_to_table
from pipelines.rundir import RunDir
from screening.errors import InputError
from screening.funnel import (
    FunnelResult,
    FunnelSettings,
    near_misses,
    rank_candidates,
    set_aside_for_incomplete_hull,
)
from screening.ranking import RankWeights
from screening.schema import RANKED_SCHEMA, Col, with_metadata

#: A probability of stability that reads as "certain".
CERTAIN_P = 0.99


#: Nearest misses kept and shown when fewer than the requested top passed the funnel.
NEAR_MISSES = 10


class Ranking(NamedTuple):
    """What :func:`rank_run` produced: the ranked candidates, those set aside for an incomplete hull,
    the funnel (what each stage removed) and the settings used."""

    ranked: pd.DataFrame
    aside: pd.DataFrame
    funnel: FunnelResult
    settings: FunnelSettings
    near_misses: pd.DataFrame | None = None


def _run_mobile_ion(results: pd.DataFrame, manifest: dict[str, Any], run_dir: RunDir) -> str:
    ion = manifest.get("science", {}).get("mobile_ion")
    if ion is None:
        ions = results[Col.MOBILE_ION].dropna().unique()
        if len(ions) != 1:
            raise InputError(
                f"cannot tell the mobile ion of {run_dir.path} (found {list(ions)}); pass --mobile-ion"
            )
        ion = str(ions[0])
    return ion


def rank_run(
    run_dir: str | os.PathLike,
    settings: FunnelSettings | None = None,
    *,
    config: str | os.PathLike | None = None,
    **overrides: Any,
) -> Ranking:
    """Rank the results of ``run_dir`` through the funnel, write ``RUN_DIR/ranked.parquet`` (the funnel
    and the settings in its metadata) and record both in ``run.json``.

    Args:
        run_dir: a run directory written by ``screening run``.
        settings: the funnel; default: read from ``config`` (a YAML file, its ``ranking:`` section or the
            whole file) with ``overrides`` on top, starting from its preset (``solid-electrolyte``).
        config: YAML file of ranking settings (see :class:`screening.funnel.FunnelSettings`).
        overrides: single settings (``max_e_above_hull_eV=0.1``, ``preset="electrode"``,
            ``weights="sigma=1,stability=2"``); None values are ignored.

    Returns:
        The :class:`Ranking`.
    """
    run_dir = RunDir(run_dir)
    if isinstance(overrides.get("weights"), str):
        overrides["weights"] = RankWeights.parse(overrides["weights"])
    if settings is None:
        settings = FunnelSettings.load(config, **overrides)
    manifest = run_dir.read_manifest() or {}
    results = run_dir.read_results()
    mobile_ion = settings.mobile_ion or _run_mobile_ion(results, manifest, run_dir)
    ranked, funnel = rank_candidates(results, settings, mobile_ion=mobile_ion)
    aside = set_aside_for_incomplete_hull(results, funnel)
    parameters = {**settings.as_dict(), "mobile_ion": mobile_ion}
    schema = with_metadata(RANKED_SCHEMA, "ranked", ranking=parameters, funnel=funnel.records())
    run_dir.write_ranked(frame_to_table(ranked, schema))
    if manifest:
        manifest["ranking"] = {
            **parameters,
            "n_results": len(results),
            "n_candidates": len(ranked),
            "funnel": funnel.records(),
            "set_aside_incomplete_hull": aside[Col.ID].tolist(),
        }
        run_dir.write_manifest(manifest)
    misses = near_misses(funnel, NEAR_MISSES)
    return Ranking(ranked, aside, funnel, settings, misses)


def format_ranking(ranking: Ranking, top: int = 20) -> str:
    """The funnel table, the ``top`` candidates and what was set aside, as terminal text."""
    from screening.funnel import format_funnel
    from screening.ranking import format_near_misses, format_set_aside, format_top

    ranked = ranking.ranked
    certain = int((ranked[Col.P_STABLE] >= CERTAIN_P).sum())
    parts = [
        format_funnel(ranking.funnel.table),
        f"\ntop candidates ({len(ranked)} passed the funnel, preset {ranking.settings.preset}; "
        f"{certain} of them stable with p_stable >= {CERTAIN_P}, i.e. a margin of 2.3 standard deviations "
        "of E_hull, the model's error included):",
        format_top(ranked, top),
    ]
    if ranking.near_misses is not None and len(ranked) < top:
        shown = ranking.near_misses.head(min(NEAR_MISSES, top - len(ranked)))
        if not shown.empty:
            parts.append("\n" + format_near_misses(shown))
    if not ranking.aside.empty:
        parts.append(format_set_aside(ranking.aside))
    return "\n".join(parts)
