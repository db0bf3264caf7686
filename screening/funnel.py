"""The screening funnel: the filters of ``screening rank``, written down as settings (YAML), applied in a
fixed order, each stage reporting how many candidates it removed.

The stages, in order (a stage whose threshold is unset removes nothing):

=================== ==========================================================================================
stage               keeps a candidate when
=================== ==========================================================================================
screened            both stages succeeded, it contains the mobile ion, it has a hull distance and a sigma
elements            it contains none of ``exclude_elements``
complete hull       its hull has a compound for every metal-anion pair (else ``e_above_hull`` is only a
                    lower bound; ``allow_incomplete_hull`` keeps it)
stability           ``p_stable >= min_p_stable`` (``screening.ranking.probability_stable``)
conductivity        ``p_superionic >= min_p_superionic`` where the learned model gave ``p_superionic``;
                    where it is null (physics estimate), ``log10_sigma >= min_log10_sigma_S_per_cm`` if set
model domain        not ``conductivity_out_of_domain``, if ``exclude_out_of_domain`` (else only flagged)
electronic          not flagged an electronic conductor (``screening.criteria.electronic``), if
                    ``exclude_electronic_conductors``; an unknown flag is kept and flagged
window              ``ecw_low_V <= max_ecw_low_V`` and ``ecw_high_V >= min_ecw_high_V`` (a candidate
                    without a window is removed while either is set)
cost                ``cost_USD_per_kg <= max_cost_USD_per_kg`` (unknown cost kept)
supply              ``hhi_production <= max_hhi_production`` (unknown kept)
=================== ==========================================================================================

Presets (:data:`PRESETS`):

* ``solid-electrolyte`` (the default), after Sendek et al., Energy Environ. Sci. 10, 306 (2017): stable,
  electronically insulating, with a window around 2 V vs M/M+: not reduced above 2.0 V (Ti4+ and
  transition-metal frameworks such as LATP are reduced at 2.2-2.5 V) and not oxidised below 2.0 V (the
  nitrides, phosphides, hydrides and tellurides oxidise at 0.4-1.8 V). The thermodynamic windows of even
  the best sulfide conductors are narrow (1.7-2.3 V, Richards et al., Chem. Mater. 28, 266 (2016)); they
  work through passivating interphases, so a wider demand would leave only binary salts. Conductivity:
  ``p_superionic >= 0.5`` where the learned model is used; no absolute threshold on the physics estimate
  (it is meant for ordering: see BENCHMARKS.md), the score orders the survivors.
* ``electrode``: electrode materials conduct electrons and react with the mobile ion by design, so the
  electronic and window filters are off, as is the superionic one.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from screening.errors import InputError
from screening.ranking import RankWeights, pareto_front, probability_stable, score
from screening.schema import RANKED_SCHEMA, STATUS_OK, Col, is_missing

#: Key of the funnel's section in a YAML file that holds other settings too (a run config).
SECTION = "ranking"


class FunnelSettings(BaseModel):
    """The filters and weights of a ranking (see the module docstring for what each one does)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = "solid-electrolyte"
    mobile_ion: str | None = None
    exclude_elements: tuple[str, ...] = ()
    allow_incomplete_hull: bool = False
    max_e_above_hull_eV: float = Field(0.05, ge=0)
    min_p_stable: float = Field(0.5, gt=0, le=1)
    min_p_superionic: float | None = Field(0.5, ge=0, le=1)
    min_log10_sigma_S_per_cm: float | None = None
    exclude_out_of_domain: bool = False
    exclude_electronic_conductors: bool = True
    max_ecw_low_V: float | None = 2.0
    min_ecw_high_V: float | None = 2.0
    max_cost_USD_per_kg: float | None = Field(None, gt=0)
    max_hhi_production: float | None = Field(None, gt=0)
    weights: RankWeights = RankWeights()

    @field_validator("exclude_elements", mode="before")
    @classmethod
    def _element_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [part for part in value.replace(",", " ").split() if part]
        return tuple(str(v).strip().capitalize() for v in value)

    @classmethod
    def from_preset(cls, name: str = "solid-electrolyte", **overrides: Any) -> FunnelSettings:
        """The preset ``name`` with ``overrides`` (an explicit None turns a threshold off).

        Raises:
            InputError: an unknown preset.
        """
        if name not in PRESETS:
            raise InputError(f"unknown ranking preset {name!r}; available: {', '.join(PRESETS)}")
        values = {**PRESETS[name], **overrides, "preset": name}
        return cls(**values)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **overrides: Any) -> FunnelSettings:
        """Settings from a YAML file (its ``ranking:`` section when it has one, else the whole file; a
        ``null`` there turns a threshold off), the file's ``preset`` (or the default) filled in, then
        ``overrides`` (the command line: None values mean "not given" and are ignored) on top.

        Raises:
            InputError: a missing file or one that is not a YAML mapping.
            pydantic.ValidationError: an unknown key or a value out of range.
        """
        values: dict[str, Any] = {}
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise InputError(f"ranking config {path} not found")
            try:
                loaded = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise InputError(f"{path}: not valid YAML: {exc}") from exc
            if not isinstance(loaded, dict):
                raise InputError(f"{path}: a ranking config must be a YAML mapping")
            values = dict(loaded.get(SECTION, loaded))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_preset(values.pop("preset", "solid-electrolyte"), **values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (what ``ranked.parquet``'s metadata and ``run.json`` record)."""
        values = self.model_dump(mode="json")
        values["weights"] = asdict(self.weights)
        return values


#: Named starting points; a YAML file or options override single values.
PRESETS: dict[str, dict[str, Any]] = {
    "solid-electrolyte": {},
    "electrode": {
        "exclude_electronic_conductors": False,
        "max_ecw_low_V": None,
        "min_ecw_high_V": None,
        "min_p_superionic": None,
    },
}


@dataclass
class FunnelResult:
    """What the funnel kept and what each stage removed.

    Attributes:
        kept: the candidates that passed every stage (with ``p_stable``, ``stability_margin_std`` and
            ``ranking_flags`` added).
        table: one row per stage: ``stage``, ``criterion``, ``in``, ``removed``, ``out``.
        removed: stage -> ids it removed.
        scored: every row of the results with ``p_stable`` and ``stability_margin_std`` added (what
            :func:`near_misses` shows of the rows the filters removed).
    """

    kept: pd.DataFrame
    table: pd.DataFrame
    removed: dict[str, list[str]] = field(default_factory=dict)
    scored: pd.DataFrame = field(default_factory=pd.DataFrame)

    def records(self) -> list[dict[str, Any]]:
        """The table as JSON-ready rows, each with the ids its stage removed."""
        return [
            {**{k: (int(v) if isinstance(v, np.integer) else v) for k, v in row.items()}, "removed_ids": ids}
            for row, ids in zip(self.table.to_dict("records"), self.removed.values(), strict=True)
        ]


def _column(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col] if col in frame else pd.Series(None, index=frame.index, dtype=object)


def _floats(frame: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(_column(frame, col), errors="coerce").astype(float)


def _truthy(column: pd.Series) -> pd.Series:
    """True where a nullable boolean column is true (null counts as false)."""
    return column.map(lambda v: not is_missing(v) and bool(v)).astype(bool)


def _flags(frame: pd.DataFrame) -> pd.Series:
    """What a reader should know about each kept candidate (``ranking_flags``)."""
    out_of_domain = _truthy(_column(frame, Col.CONDUCTIVITY_OUT_OF_DOMAIN))
    electronic = _column(frame, Col.ELECTRONIC_CONDUCTOR)
    p_superionic = _floats(frame, Col.P_SUPERIONIC)
    flags = []
    for i in frame.index:
        row = []
        if out_of_domain[i]:
            row.append("conductivity out of the learned model's domain")
        if is_missing(electronic[i]):
            row.append("electronic conduction unknown")
        elif bool(electronic[i]):
            row.append("electronic conductor")
        if np.isnan(p_superionic[i]):
            row.append("sigma: physics estimate (no p_superionic)")
        flags.append(row)
    return pd.Series(flags, index=frame.index, dtype=object)


def apply_funnel(results: pd.DataFrame, settings: FunnelSettings, *, mobile_ion: str) -> FunnelResult:
    """Run ``results`` through the funnel of ``settings`` (see the module docstring).

    Args:
        results: a results table (``RESULTS_SCHEMA`` columns).
        settings: the filters.
        mobile_ion: the element every candidate must contain (``settings.mobile_ion`` wins when set).

    Returns:
        The :class:`FunnelResult`.
    """
    ion = settings.mobile_ion or mobile_ion
    t = settings.max_e_above_hull_eV
    frame = results.copy()
    e_hull = _floats(frame, Col.E_ABOVE_HULL)
    e_std = _floats(frame, Col.E_ABOVE_HULL_STD)
    frame[Col.P_STABLE] = probability_stable(e_hull, e_std, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame[Col.STABILITY_MARGIN] = np.where(e_std > 0, (t - e_hull) / e_std, np.nan)
    elements = _column(frame, Col.ELEMENTS).map(lambda els: set(els) if els is not None else set())

    stages: list[tuple[str, str, pd.Series]] = []  # (stage, criterion, keep mask over frame)

    def stage(name: str, criterion: str, keep: pd.Series) -> None:
        stages.append((name, criterion, keep.astype(bool)))

    stage(
        "screened",
        f"status ok, contains {ion}, hull distance and sigma known",
        (frame[Col.STATUS] == STATUS_OK)
        & elements.map(lambda els: ion in els)
        & np.isfinite(e_hull)
        & np.isfinite(_floats(frame, Col.LOG10_SIGMA)),
    )
    excluded = set(settings.exclude_elements)
    stage(
        "elements",
        f"none of {', '.join(sorted(excluded))}" if excluded else "off",
        elements.map(lambda els: not (els & excluded)),
    )
    complete = _column(frame, Col.HULL_MISSING_SYSTEMS).isna()
    stage(
        "complete hull",
        "off (allow_incomplete_hull)" if settings.allow_incomplete_hull else "no metal-anion system missing",
        complete | settings.allow_incomplete_hull,
    )
    stage(
        "stability",
        f"p(E_hull <= {t:g} eV/atom) >= {settings.min_p_stable:g}",
        frame[Col.P_STABLE] >= settings.min_p_stable,
    )
    p_sup = _floats(frame, Col.P_SUPERIONIC)
    log_sigma = _floats(frame, Col.LOG10_SIGMA)
    keep = pd.Series(True, index=frame.index)
    parts = []
    if settings.min_p_superionic is not None:
        keep &= p_sup.isna() | (p_sup >= settings.min_p_superionic)
        parts.append(f"p_superionic >= {settings.min_p_superionic:g} where known")
    if settings.min_log10_sigma_S_per_cm is not None:
        keep &= p_sup.notna() | (log_sigma >= settings.min_log10_sigma_S_per_cm)
        parts.append(f"log10 sigma >= {settings.min_log10_sigma_S_per_cm:g} where p_superionic is not")
    stage("conductivity", "; ".join(parts) or "off", keep)
    out_of_domain = _truthy(_column(frame, Col.CONDUCTIVITY_OUT_OF_DOMAIN))
    stage(
        "model domain",
        "inside the conductivity model's domain" if settings.exclude_out_of_domain else "off (flagged only)",
        ~out_of_domain | (not settings.exclude_out_of_domain),
    )
    conductor = _truthy(_column(frame, Col.ELECTRONIC_CONDUCTOR))
    stage(
        "electronic",
        "not an electronic conductor" if settings.exclude_electronic_conductors else "off",
        ~conductor | (not settings.exclude_electronic_conductors),
    )
    low, high = _floats(frame, Col.ECW_LOW), _floats(frame, Col.ECW_HIGH)
    keep = pd.Series(True, index=frame.index)
    parts = []
    if settings.max_ecw_low_V is not None:
        keep &= low <= settings.max_ecw_low_V
        parts.append(f"reduced only below {settings.max_ecw_low_V:g} V")
    if settings.min_ecw_high_V is not None:
        keep &= high >= settings.min_ecw_high_V
        parts.append(f"oxidised only above {settings.min_ecw_high_V:g} V")
    stage("window", ", ".join(parts) + f" vs {ion}/{ion}+" if parts else "off", keep)
    cost = _floats(frame, Col.COST)
    stage(
        "cost",
        f"<= {settings.max_cost_USD_per_kg:g} USD/kg" if settings.max_cost_USD_per_kg else "off",
        cost.isna() | (cost <= (settings.max_cost_USD_per_kg or np.inf)),
    )
    hhi = _floats(frame, Col.HHI_PRODUCTION)
    stage(
        "supply",
        f"HHI production <= {settings.max_hhi_production:g}" if settings.max_hhi_production else "off",
        hhi.isna() | (hhi <= (settings.max_hhi_production or np.inf)),
    )

    alive = pd.Series(True, index=frame.index)
    rows, removed = [], {}
    for name, criterion, keep in stages:
        before = int(alive.sum())
        gone = alive & ~keep
        removed[name] = frame.loc[gone, Col.ID].astype(str).tolist()
        alive &= keep
        rows.append({"stage": name, "criterion": criterion, "in": before, "removed": int(gone.sum())})
        rows[-1]["out"] = int(alive.sum())
    kept = frame.loc[alive].copy()
    kept[Col.RANKING_FLAGS] = _flags(kept)
    return FunnelResult(kept=kept, table=pd.DataFrame(rows), removed=removed, scored=frame)


def rank_candidates(
    results: pd.DataFrame, settings: FunnelSettings | None = None, *, mobile_ion: str
) -> tuple[pd.DataFrame, FunnelResult]:
    """Filter (the funnel of ``settings``), score and rank a results table.

    Args:
        results: the results table of a run (``RESULTS_SCHEMA`` columns).
        settings: the funnel's filters and the score's weights (default: the ``solid-electrolyte``
            preset).
        mobile_ion: element that must be present (``Li``), unless ``settings.mobile_ion`` names one.

    Returns:
        The kept candidates with ``p_stable``, ``score``, ``rank`` (1 = best), ``pareto_front``,
        ``stability_margin_std`` and ``ranking_flags``, sorted by rank (ties broken by energy above
        hull, then id), with the columns of ``RANKED_SCHEMA``; and the funnel (what each stage removed).
    """
    settings = settings or FunnelSettings()
    funnel = apply_funnel(results, settings, mobile_ion=mobile_ion)
    frame = funnel.kept
    frame[Col.SCORE] = score(frame[Col.LOG10_SIGMA], frame[Col.P_STABLE], settings.weights)
    frame[Col.PARETO_FRONT] = pareto_front(frame[Col.E_ABOVE_HULL], frame[Col.LOG10_SIGMA])
    frame = frame.sort_values(
        [Col.SCORE, Col.E_ABOVE_HULL, Col.ID], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)
    frame[Col.RANK] = np.arange(1, len(frame) + 1, dtype=np.int32)
    return frame[RANKED_SCHEMA.names], funnel


def set_aside_for_incomplete_hull(results: pd.DataFrame, funnel: FunnelResult) -> pd.DataFrame:
    """The candidates the funnel set aside because their hull lacks metal-anion phases (id, formula,
    missing systems)."""
    ids = set(funnel.removed.get("complete hull", []))
    rows = results.loc[results[Col.ID].isin(ids)]
    return rows[[Col.ID, Col.CHEMICAL_FORMULA_REDUCED, Col.HULL_MISSING_SYSTEMS]].reset_index(drop=True)


#: Funnel stages that judge a complete candidate (what falls here was screened and had a full hull).
_JUDGING_STAGES_AFTER = "complete hull"


def near_misses(funnel: FunnelResult, n: int) -> pd.DataFrame:
    """Up to ``n`` candidates that a filter removed after the hull check, nearest first: those removed
    by a later stage came further through the funnel; within a stage, higher log10 sigma first. Columns:
    the result columns, ``p_stable``, ``stability_margin_std`` and ``removed_by`` (stage: criterion). Not
    candidates: what a scientist looks at next when the funnel leaves few or none."""
    results = funnel.scored
    stages = list(funnel.removed)
    later = stages[stages.index(_JUDGING_STAGES_AFTER) + 1 :] if _JUDGING_STAGES_AFTER in stages else []
    criteria = dict(zip(funnel.table["stage"], funnel.table["criterion"], strict=True))
    frames = [
        results.loc[results[Col.ID].isin(funnel.removed[stage])].assign(
            removed_by=f"{stage}: {criteria[stage]}", _order=order
        )
        for order, stage in enumerate(reversed(later))
    ]
    empty = results.iloc[0:0].assign(removed_by=pd.Series(dtype=object), _order=0)
    frame = (pd.concat(frames, ignore_index=True) if frames else empty).sort_values(
        ["_order", Col.LOG10_SIGMA, Col.ID], ascending=[True, False, True], kind="stable", na_position="last"
    )
    return frame.drop(columns="_order").head(n).reset_index(drop=True)


def format_funnel(table: pd.DataFrame) -> str:
    """The funnel table as plain text."""
    return "funnel:\n" + table.to_string(index=False)
