# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Ranking the candidates of a screening run
#
# Loads a run directory written by `screening run` (and `screening rank`) and shows: the screening
# funnel (how many candidates each filter removed), the best candidates, the trade-off between stability
# (energy above the convex hull) and ionic conductivity with error bars on both and the Pareto front, the
# electrochemical stability window of each candidate with what it decomposes to, the distributions, and
# which elements the top candidates are made of.
#
# Set `RUN_DIR` below (or the environment variable `SCREENING_RUN_DIR`) and run all cells. The figures
# are also saved under `RUN_DIR/figures/`.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from pymatgen.util.plotting import periodic_table_heatmap

from pipelines.rank import rank_run
from pipelines.rundir import RunDir
from screening.ranking import readable_formula
from screening.schema import Col

# %% tags=["parameters"]
RUN_DIR = Path(os.environ.get("SCREENING_RUN_DIR", "screening-demo/run"))
TOP_N = 20
PRESET = "solid-electrolyte"  # used only if the run has not been ranked yet

# %%
run = RunDir(RUN_DIR)
FIG_DIR = run.figures_dir
FIG_DIR.mkdir(parents=True, exist_ok=True)
results = run.read_results()
if not run.ranked_path.exists():
    rank_run(RUN_DIR, preset=PRESET)
ranked = run.read_ranked()
info = run.info()
ranking = info.ranking
threshold_eV = ranking["max_e_above_hull_eV"]
mobile_ion = ranking.get("mobile_ion") or info.science.mobile_ion
temperature_K = info.science.temperature_K
print(f"run {info.run_id}: model {info.model_name}, hull {info.hull_reference}")
print(f"{len(results)} structures, outcomes {info.counts}; {len(ranked)} ranked (preset {ranking['preset']})")

# %% [markdown]
# ## The funnel
# Each stage keeps the candidates that pass its criterion (`screening/funnel.py`); `removed` counts those it
# took out. The settings are in `run.json` (`ranking`) and in `ranked.parquet`'s metadata.

# %%
funnel = pd.DataFrame(ranking["funnel"])
funnel["removed ids"] = funnel.pop("removed_ids").map(
    lambda ids: ", ".join(ids[:6]) + (" ..." * (len(ids) > 6))
)
funnel.style.hide(axis="index")

# %% [markdown]
# ## Top candidates
# `p_stable` is the probability that the energy above the hull lies below the threshold, given its standard
# deviation, which includes the energy model's own error; `margin` is how many standard deviations the
# candidate lies inside the threshold (certainty needs several). `score` is described in
# `screening/ranking.py`. The window is in V vs the mobile ion's metal.

# %%
top = ranked.head(TOP_N)[
    [
        Col.RANK,
        Col.ID,
        Col.CHEMICAL_FORMULA_REDUCED,
        Col.E_ABOVE_HULL,
        Col.E_ABOVE_HULL_STD,
        Col.P_STABLE,
        Col.STABILITY_MARGIN,
        Col.LOG10_SIGMA,
        Col.ECW_LOW,
        Col.ECW_HIGH,
        Col.ELECTRONIC_CONDUCTOR_REASON,
        Col.COST,
        Col.HHI_PRODUCTION,
        Col.SCORE,
        Col.PARETO_FRONT,
        Col.RANKING_FLAGS,
    ]
]
top.style.format(precision=3) if len(top) else top

# %% [markdown]
# ## Stability against conductivity
# Every structure that contains the mobile ion and went through both stages (grey; those whose hull lacks
# metal-anion phases are left out: their hull distance is only a lower bound), the ranked candidates in
# colour, the Pareto front of (energy above hull, -log10 sigma) as a line. Horizontal error bars: one
# standard deviation of the hull distance (configurations and model error); vertical: `log10_sigma_std`
# where the conductivity model gives one (the physics estimate has none).

# %%
usable = results[
    (results[Col.STATUS] == "ok")
    & results[Col.ELEMENTS].map(lambda els: mobile_ion in list(els) if els is not None else False)
].dropna(subset=[Col.E_ABOVE_HULL, Col.LOG10_SIGMA])
usable = usable[usable[Col.HULL_MISSING_SYSTEMS].isna()]


front = ranked[ranked[Col.PARETO_FRONT]].sort_values(Col.E_ABOVE_HULL)


def with_error_bars(ax, frame: pd.DataFrame, **style) -> None:
    """Hull distance against log10 sigma, one standard deviation each way (0 where unknown)."""
    ax.errorbar(
        frame[Col.E_ABOVE_HULL],
        frame[Col.LOG10_SIGMA],
        xerr=frame[Col.E_ABOVE_HULL_STD].astype(float).fillna(0.0),
        yerr=frame[Col.LOG10_SIGMA_STD].astype(float).fillna(0.0),
        fmt="o",
        **style,
    )


fig, ax = plt.subplots(figsize=(7.5, 5.5))
with_error_bars(ax, usable, color="0.75", ms=4, elinewidth=0.5, label="screened")
with_error_bars(ax, ranked, color="tab:blue", ms=5, elinewidth=0.8, label="ranked candidates", zorder=3)
ax.step(front[Col.E_ABOVE_HULL], front[Col.LOG10_SIGMA], where="post", color="tab:red", lw=1.5, zorder=4)
ax.scatter(front[Col.E_ABOVE_HULL], front[Col.LOG10_SIGMA], c="tab:red", s=50, label="Pareto front", zorder=5)
for _, row in ranked.head(TOP_N).iterrows():
    ax.annotate(
        readable_formula(row[Col.CHEMICAL_FORMULA_REDUCED]),
        (row[Col.E_ABOVE_HULL], row[Col.LOG10_SIGMA]),
        fontsize=7,
        xytext=(4, 4),
        textcoords="offset points",
    )
ax.axvline(threshold_eV, color="k", ls="--", lw=0.8, label=f"threshold {threshold_eV} eV/atom")
ax.set_xlabel("energy above hull (eV/atom)")
ax.set_ylabel(f"log10 sigma at {temperature_K:g} K (S/cm)")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(FIG_DIR / "pareto.png", dpi=120)
plt.show()

# %% [markdown]
# ## Electrochemical stability window
# The range of potential (V vs the mobile ion's metal) over which each candidate is thermodynamically
# stable, on the same hull as its stability (a metastable candidate is first shifted onto the hull), with
# the phases it decomposes to below and above it. Ranked candidates in colour, the others that went
# through the stability stage in grey; the dashed lines are the funnel's window thresholds.

# %%
windowed = results.dropna(subset=[Col.ECW_LOW, Col.ECW_HIGH])
windowed = windowed[windowed[Col.HULL_MISSING_SYSTEMS].isna()].sort_values([Col.ECW_HIGH, Col.ECW_LOW])
in_ranking = set(ranked[Col.ID])
fig, ax = plt.subplots(figsize=(9, 0.32 * max(len(windowed), 4) + 1.2))
for y, (_, row) in enumerate(windowed.iterrows()):
    color = "tab:blue" if row[Col.ID] in in_ranking else "0.7"
    ax.barh(y, row[Col.ECW_HIGH] - row[Col.ECW_LOW], left=row[Col.ECW_LOW], color=color, height=0.6)
    ax.text(row[Col.ECW_LOW] - 0.05, y, row[Col.ECW_REDUCTION_PRODUCTS], ha="right", va="center", fontsize=6)
    ax.text(row[Col.ECW_HIGH] + 0.05, y, row[Col.ECW_OXIDATION_PRODUCTS], ha="left", va="center", fontsize=6)
ax.set_yticks(range(len(windowed)), windowed[Col.CHEMICAL_FORMULA_REDUCED].map(readable_formula), fontsize=7)
for key in ("max_ecw_low_V", "min_ecw_high_V"):
    if ranking.get(key) is not None:
        ax.axvline(ranking[key], color="k", ls="--", lw=0.8)
ax.set_xlim(-4, 10)
ax.set_xlabel(f"potential (V vs {mobile_ion}/{mobile_ion}+)")
fig.tight_layout()
fig.savefig(FIG_DIR / "window.png", dpi=120)
plt.show()

# %% [markdown]
# ## Distributions

# %%
ok = results[results[Col.STATUS] == "ok"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
e_hull = ok[Col.E_ABOVE_HULL].dropna()
log_sigma = ok[Col.LOG10_SIGMA].dropna()
axes[0].hist(e_hull, bins=max(5, min(40, len(e_hull) // 2 or 1)), color="tab:blue")
axes[0].axvline(threshold_eV, color="k", ls="--", lw=0.8)
axes[0].set_xlabel("energy above hull (eV/atom)")
axes[0].set_ylabel("structures")
axes[1].hist(log_sigma, bins=max(5, min(40, len(log_sigma) // 2 or 1)), color="tab:green")
axes[1].set_xlabel(f"log10 sigma at {temperature_K:g} K (S/cm)")
fig.tight_layout()
fig.savefig(FIG_DIR / "distributions.png", dpi=120)
plt.show()

# %% [markdown]
# ## Elements among the top candidates
# How many of the top candidates contain each element, drawn with pymatgen's periodic-table heatmap
# (matplotlib; pymatviz draws the same with plotly, whose static export needs a Chrome binary, so it is not
# used here).

# %%
counts = pd.Series([el for els in ranked.head(TOP_N)[Col.ELEMENTS] for el in els]).value_counts()
if len(counts):
    periodic_table_heatmap(
        {el: int(n) for el, n in counts.items()},
        cbar_label=f"top-{TOP_N} candidates containing",
        cmap="YlOrRd",
        blank_color="whitesmoke",
        edge_color="0.6",
        value_format="%d",
        value_fontsize=7,
        symbol_fontsize=9,
        max_row=9,
        pymatviz=False,
    )
    fig = plt.gcf()
    fig.set_size_inches(12, 6)
    fig.savefig(FIG_DIR / "periodic_table.png", dpi=120)
    plt.show()

# %% [markdown]
# ## Where the energy comes from
# The occupancy-native ensemble distilled from the run's potential (`screening.models.native_energy`)
# splits each candidate's predicted energy over its sites: the potential's alchemical pass by its own site
# energies, the learned disorder correction by integrated gradients along the occupancy vectors from the
# empty lattice (`screening.models.attribution`); the bars sum the sites into the
# mobile-ion sublattice and each cation's polyhedron (its anions shared among the cations they bind),
# per element, in eV per atom of the cell. The parts add up to the ensemble's energy (completeness).
# Shown for the top candidates, or the best-conducting screened structures when the funnel kept none.

# %%
from pipelines.partitions import read_partition  # noqa: E402
from screening.models.attribution import attribute_ensemble, substructure_sums  # noqa: E402
from screening.models.native_energy import load_native_model  # noqa: E402
from screening.structures import row_to_structure  # noqa: E402

ATTRIBUTED = 3
chosen = ranked.head(ATTRIBUTED)[Col.ID].tolist()
if not chosen:
    chosen = ok.dropna(subset=[Col.LOG10_SIGMA]).nlargest(ATTRIBUTED, Col.LOG10_SIGMA)[Col.ID].tolist()
try:
    ensemble = load_native_model(info.science.native_model)
except Exception as error:  # noqa: BLE001 - a figure, not a result: say why it is missing
    ensemble = None
    print(f"no attribution: {error}")
if ensemble is not None and chosen:
    rows = read_partition(run.read_manifest()["input"]["structures"], chosen).set_index(Col.ID)
    parts_by_id = {}
    for structure_id in chosen:
        structure = row_to_structure(rows.loc[structure_id].to_dict() | {Col.ID: structure_id})
        gradients = attribute_ensemble(ensemble, structure).integrated_gradients_eV
        parts = substructure_sums(structure, gradients, mobile_ion=mobile_ion, per_element=True)
        atoms = structure.composition.num_atoms
        formula = readable_formula(rows.loc[structure_id, Col.CHEMICAL_FORMULA_REDUCED])
        parts_by_id[formula] = {name: value / atoms for name, value in parts.items()}
    table = pd.DataFrame(parts_by_id).T.fillna(0.0)
    display(table.round(3))  # noqa: F821 - IPython's display
    axis = table.plot.barh(stacked=True, figsize=(8, 1 + 0.6 * len(table)), colormap="tab20")
    axis.set_xlabel(
        "energy attributed, eV/atom (alchemical site energies + integrated gradients of the correction)"
    )
    axis.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    plt.tight_layout()
    plt.savefig(FIG_DIR / "attribution.png", dpi=120)
    plt.show()
