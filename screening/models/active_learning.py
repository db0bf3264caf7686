"""Cost-aware active learning of the native ensemble from its teacher.

A pool of parent structures is labelled in rounds (the disordered ones only when the ensemble learns a
correction to the teacher's alchemical energy, which is exactly 0 on ordered structures). Each round trains the ensemble on everything labelled
so far (after the first round, each member continues from its previous weights), predicts the rest of
the pool, and acquires the next batch:

- ``spread_per_cost``: the largest epistemic spread (eV/atom) per unit of teacher cost, the atoms the
  teacher would evaluate (:func:`teacher_cost_atoms`: supercell atoms x configurations for a disordered
  parent, its atoms for an ordered one);
- ``random``: uniformly at random (the baseline of the learning curve).

**Stopping rule.** The expected error reduction of the next batch is the drop in the pool's mean spread
if the batch's spreads went to zero, ``sum_batch(spread) / n_pool`` (meV/atom), and its expected cost is
the batch's atoms times the teacher CPU seconds per atom measured so far. The loop stops when that ratio
falls below ``min_gain_meV_per_cpu_s`` (default 1e-3 meV/atom per teacher CPU-second: labelling another
structure whose spread is 5 meV/atom in a pool of 300 must cost at most ~17 CPU-seconds), when the teacher
budget is spent, when ``max_rounds`` is reached, or when the pool is exhausted. The reason is reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pymatgen.core import Structure

from screening.errors import InputError
from screening.models.disorder import DEFAULT_MAX_SUPERCELL_SITES, choose_supercell
from screening.models.native_energy import (
    Example,
    NativeEnergyEnsemble,
    NativeTrainingOptions,
    distillation_examples,
    fit_native_ensemble,
    structure_key,
)

#: Label ids -> (label rows, teacher CPU seconds spent on them).
LabelFunction = Callable[[list[str]], tuple[list[dict[str, Any]], float]]


@dataclass(frozen=True)
class ActiveLearningOptions:
    """Rounds, batch sizes, acquisition and stopping (see the module docstring).

    Attributes:
        acquisition: ``spread_per_cost`` or ``random``.
        initial: parents labelled at random before the first training.
        batch: parents acquired per round.
        max_rounds: rounds at most (a round = label, train, predict).
        budget_cpu_s: teacher CPU seconds at most (the round that crosses it is the last).
        min_gain_meV_per_cpu_s: the stopping threshold on expected error reduction per teacher CPU-second.
        later_epochs: epochs of each member in rounds after the first (they continue from the previous
            weights); None: ``training.epochs`` (measured: 3 more epochs per round left the members
            undertrained and the learning curve flat; 40 made it fall, BENCHMARKS.md).
        n_samples: configurations per disordered parent (the teacher's cost and labels).
        seed: of the initial draw, the random acquisition and the training.
        training: the ensemble's training options.
    """

    acquisition: Literal["spread_per_cost", "random"] = "spread_per_cost"
    initial: int = 16
    batch: int = 16
    max_rounds: int = 20
    budget_cpu_s: float = math.inf
    min_gain_meV_per_cpu_s: float = 1e-3
    later_epochs: int | None = None
    n_samples: int = 8
    seed: int = 0
    training: NativeTrainingOptions = field(default_factory=NativeTrainingOptions)

    def __post_init__(self) -> None:
        if self.acquisition not in ("spread_per_cost", "random"):
            raise InputError(f"acquisition must be spread_per_cost or random, got {self.acquisition!r}")
        if self.initial < 1 or self.batch < 1:
            raise InputError("initial and batch must be at least 1")


@dataclass(frozen=True)
class RoundRecord:
    """One round of the loop (what the learning curve plots).

    Attributes:
        round: 0-based.
        n_labelled: parents labelled so far.
        teacher_cpu_s: teacher CPU seconds spent so far.
        pool_mean_spread_meV: mean spread over the parents not yet labelled.
        validation_mae_meV: mean absolute gap to the teacher on the validation examples (NaN without).
        expected_gain_meV_per_cpu_s: the stopping criterion of the next batch.
        acquired: parents chosen for the next round.
    """

    round: int
    n_labelled: int
    teacher_cpu_s: float
    pool_mean_spread_meV: float
    validation_mae_meV: float
    expected_gain_meV_per_cpu_s: float
    acquired: list[str]


def teacher_cost_atoms(
    structure: Structure, n_samples: int, max_supercell_sites: int = DEFAULT_MAX_SUPERCELL_SITES
) -> float:
    """Atoms the teacher evaluates to label ``structure``: its atoms if ordered, else the sampling
    supercell's atoms (vacancies removed) times ``n_samples``."""
    if structure.is_ordered:
        return float(len(structure))
    scaling, _ = choose_supercell(structure, max_supercell_sites=max_supercell_sites)
    return float(structure.composition.num_atoms * np.prod(scaling) * n_samples)


def validation_mae_meV(
    ensemble: NativeEnergyEnsemble, validation: Sequence[Example], graph_cache: dict[str, Any] | None = None
) -> float:
    """Mean absolute gap (meV/atom) between the ensemble and the teacher on ``validation`` (each
    example's base energy as recorded with its labels)."""
    if not validation:
        return math.nan
    prediction = ensemble.predict(
        [e.structure for e in validation],
        base_eV=[e.base_eV_per_atom for e in validation],
        keys=[e.key for e in validation],
        graph_cache=graph_cache,
    )
    target = np.array([e.teacher_eV_per_atom for e in validation])
    return float(np.nanmean(np.abs(prediction.energy_per_atom_eV - target)) * 1000)


def active_learning(
    pool: dict[str, Structure],
    label: LabelFunction,
    options: ActiveLearningOptions,
    *,
    teacher: str,
    validation: Sequence[Example] = (),
    progress: Callable[[str], None] | None = None,
    graph_cache: dict[str, Any] | None = None,
) -> tuple[NativeEnergyEnsemble, list[RoundRecord], str]:
    """Run the loop (see the module docstring). ``graph_cache`` (key -> slot graph) may be shared by
    several loops over the same pool (a comparison of acquisitions).

    Returns:
        The last ensemble, one record per round, and why the loop stopped.
    """
    rng = np.random.default_rng(options.seed)
    if options.training.base != "none":  # a correction is 0 on ordered structures: nothing to learn there
        pool = {i: s for i, s in pool.items() if not s.is_ordered}
    ids = sorted(pool)
    cost = {i: teacher_cost_atoms(pool[i], options.n_samples) for i in ids}
    chosen = [ids[i] for i in rng.permutation(len(ids))[: options.initial]]
    rows: list[dict[str, Any]] = []
    labelled: set[str] = set()
    spent_s = atoms_labelled = 0.0
    ensemble: NativeEnergyEnsemble | None = None
    history: list[RoundRecord] = []
    graph_cache = {} if graph_cache is None else graph_cache  # slot graphs, built once per structure
    for round_index in range(options.max_rounds):
        new_rows, seconds = label(chosen)
        rows.extend(new_rows)
        labelled.update(chosen)
        spent_s += seconds
        atoms_labelled += sum(cost[i] for i in chosen)
        training = options.training
        if ensemble is not None and options.later_epochs is not None:
            training = replace(training, epochs=options.later_epochs)
        examples = distillation_examples(rows, {i: pool[i] for i in labelled}, base=options.training.base)
        ensemble = fit_native_ensemble(
            examples, training, teacher=teacher, start=ensemble, graph_cache=graph_cache
        )
        remaining = [i for i in ids if i not in labelled]
        spread = np.array([])
        if remaining:  # the members' disagreement needs no teacher pass
            outputs, _ = ensemble.member_outputs(
                [pool[i] for i in remaining],
                keys=[structure_key(i) for i in remaining],
                graph_cache=graph_cache,
            )
            spread = outputs.std(axis=0) * 1000
        usable = np.isfinite(spread)
        if options.acquisition == "random":
            order = [int(i) for i in rng.permutation(len(remaining)) if usable[i]]
        else:
            value = np.where(usable, spread / np.array([cost[i] for i in remaining]), -np.inf)
            order = [int(i) for i in np.argsort(-value, kind="stable") if usable[i]]
        batch = order[: options.batch]
        seconds_per_atom = spent_s / max(atoms_labelled, 1.0)
        batch_seconds = seconds_per_atom * sum(cost[remaining[i]] for i in batch)
        gain = float(spread[batch].sum() / len(ids)) / batch_seconds if batch and batch_seconds > 0 else 0.0
        chosen = [remaining[i] for i in batch]
        history.append(
            RoundRecord(
                round_index,
                len(labelled),
                spent_s,
                float(np.mean(spread[usable])) if usable.any() else math.nan,
                validation_mae_meV(ensemble, validation, graph_cache),
                gain,
                chosen,
            )
        )
        if progress is not None:
            last = history[-1]
            progress(
                f"round {round_index}: {last.n_labelled} labelled, teacher {last.teacher_cpu_s:.0f} CPU-s, "
                f"pool spread {last.pool_mean_spread_meV:.1f} meV/atom, validation MAE "
                f"{last.validation_mae_meV:.1f} meV/atom, expected gain {gain:.2g} meV/atom per CPU-s"
            )
        if not chosen:
            return ensemble, history, "pool exhausted"
        if spent_s >= options.budget_cpu_s:
            return ensemble, history, f"teacher budget of {options.budget_cpu_s:g} CPU-s spent"
        if options.acquisition != "random" and gain < options.min_gain_meV_per_cpu_s:
            return (
                ensemble,
                history,
                (f"expected gain {gain:.2g} < {options.min_gain_meV_per_cpu_s:g} meV/atom per teacher CPU-s"),
            )
    assert ensemble is not None
    return ensemble, history, f"{options.max_rounds} rounds"
