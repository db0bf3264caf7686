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
# Loads a run directory written by `screening run` (and `screening rank`), shows the best candidates,
# the trade-off between stability (energy above the convex hull) and ionic conductivity with its Pareto
# front, the distributions of both, and which elements the top candidates are made of.
#
# Set `RUN_DIR` below (or the environment variable `SCREENING_RUN_DIR`) and run all cells. The figures
# are also saved under `RUN_DIR/figures/`.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.colors import Normalize
from pymatgen.core import Element

from pipelines.rank import rank_run
from pipelines.rundir import RunDir
from screening.schema import Col

# %% tags=["parameters"]
RUN_DIR = Path(os.environ.get("SCREENING_RUN_DIR", "screening-demo/run"))
TOP_N = 20
MAX_E_ABOVE_HULL_EV = 0.05  # used only if the run has not been ranked yet

# %%
run = RunDir(RUN_DIR)
FIG_DIR = run.figures_dir
FIG_DIR.mkdir(parents=True, exist_ok=True)
results = run.read_results()
if not run.ranked_path.exists():
    rank_run(RUN_DIR, max_e_above_hull_eV=MAX_E_ABOVE_HULL_EV)
ranked = run.read_ranked()
info = run.info()
ranking = info.ranking
threshold_eV = ranking.get("max_e_above_hull_eV", MAX_E_ABOVE_HULL_EV)
mobile_ion = info.science.mobile_ion
temperature_K = info.science.temperature_K
print(f"run {info.run_id}: model {info.model_name}, hull {info.hull_reference}")
print(f"{len(results)} structures, outcomes {info.counts}; {len(ranked)} ranked candidates")
set_aside = ranking.get("set_aside_incomplete_hull", [])
if set_aside:
    print(f"set aside (hull lacks metal-anion phases, E_hull only a lower bound): {', '.join(set_aside)}")

# %% [markdown]
# ## Top candidates
# `p_stable` is the probability that the energy above the hull lies below the threshold, given the
# uncertainty the stability stage reports; `score` is described in `screening/ranking.py`.

# %%
top = ranked.head(TOP_N)[
    [
        Col.RANK,
        Col.ID,
        Col.CHEMICAL_FORMULA_REDUCED,
        Col.E_ABOVE_HULL,
        Col.E_ABOVE_HULL_STD,
        Col.P_STABLE,
        Col.EA,
        Col.LOG10_SIGMA,
        Col.SCORE,
        Col.PARETO_FRONT,
    ]
]
top.style.format(precision=3) if len(top) else top

# %% [markdown]
# ## Stability against conductivity
# Every structure that contains the mobile ion and went through both stages; ranked candidates in colour,
# the Pareto front of (energy above hull, -log10 sigma) as a line. Structures whose hull lacks metal-anion
# phases (`hull_missing_systems`) are left out: their hull distance is only a lower bound.

# %%
usable = results[
    (results[Col.STATUS] == "ok")
    & results[Col.ELEMENTS].map(lambda els: mobile_ion in list(els) if els is not None else False)
].dropna(subset=[Col.E_ABOVE_HULL, Col.LOG10_SIGMA])
usable = usable[usable[Col.HULL_MISSING_SYSTEMS].isna()]
front = ranked[ranked[Col.PARETO_FRONT]].sort_values(Col.E_ABOVE_HULL)

fig, ax = plt.subplots(figsize=(7, 5))
ax.errorbar(
    usable[Col.E_ABOVE_HULL],
    usable[Col.LOG10_SIGMA],
    xerr=usable[Col.E_ABOVE_HULL_STD].fillna(0.0),
    fmt="o",
    color="0.7",
    ms=4,
    elinewidth=0.5,
    label="screened",
)
ax.scatter(
    ranked[Col.E_ABOVE_HULL], ranked[Col.LOG10_SIGMA], c="tab:blue", s=25, label="candidates", zorder=3
)
ax.step(front[Col.E_ABOVE_HULL], front[Col.LOG10_SIGMA], where="post", color="tab:red", lw=1.5, zorder=4)
ax.scatter(front[Col.E_ABOVE_HULL], front[Col.LOG10_SIGMA], c="tab:red", s=50, label="Pareto front", zorder=5)
for _, row in front.iterrows():
    ax.annotate(
        row[Col.CHEMICAL_FORMULA_REDUCED],
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
# How many of the top candidates contain each element.

# %%
counts = pd.Series([el for els in ranked.head(TOP_N)[Col.ELEMENTS] for el in els]).value_counts()


def table_position(element: Element) -> tuple[int, int]:
    """(row, column) of an element in the usual 18-column layout, f-block below."""
    if element.is_lanthanoid or element.is_actinoid:
        row = 8 if element.is_lanthanoid else 9
        first = 57 if element.is_lanthanoid else 89
        return row, 3 + element.Z - first
    return element.row, element.group


fig, ax = plt.subplots(figsize=(12, 6))
norm = Normalize(vmin=0, vmax=max(1, counts.max() if len(counts) else 1))
cmap = plt.get_cmap("viridis")
for z in range(1, 95):
    element = Element.from_Z(z)
    row, col = table_position(element)
    n = int(counts.get(element.symbol, 0))
    face = cmap(norm(n)) if n else "whitesmoke"
    ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 0.95, 0.95, facecolor=face, edgecolor="0.6"))
    text_color = "white" if n and norm(n) < 0.6 else "black"
    ax.text(col - 0.03, row - 0.1, element.symbol, ha="center", va="center", fontsize=8, color=text_color)
    if n:
        ax.text(col - 0.03, row + 0.22, str(n), ha="center", va="center", fontsize=6, color=text_color)
ax.set_xlim(0.4, 18.6)
ax.set_ylim(9.6, 0.4)
ax.set_aspect("equal")
ax.axis("off")
fig.colorbar(
    plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, label=f"top-{TOP_N} candidates containing"
)
fig.tight_layout()
fig.savefig(FIG_DIR / "periodic_table.png", dpi=120)
plt.show()
