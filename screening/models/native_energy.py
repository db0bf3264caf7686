"""A deep ensemble of occupancy-native energy models distilled from a teacher potential.

Two ways to build it (``NativeTrainingOptions.base``), both measured (BENCHMARKS.md):

- ``none``: the networks predict the energy themselves. Every labelled ordered configuration is an
  example (one-hot occupancies, target its teacher energy per atom), and every disordered parent is one
  more (its occupancy vectors, target the mean of its configurations' energies: what ``sample`` would
  report). Each member starts from the least-squares per-element energies of the training set. Measured
  on held-out families this does not transfer: a few hundred parents cannot teach the chemistry a
  universal potential learned from MPtrj.
- ``alchemical`` (default): the teacher's own one-pass alchemical energy of the disordered cell
  (``SevenNetModel.alchemical_energy_per_atom``: chemistry from the pretrained potential, transfer
  learning) plus a learned disorder correction (:class:`OccupancyEnergyNet` with ``correction=True``,
  exactly 0 on ordered sites, so every ordered configuration is reproduced exactly and the
  configurational means of the disordered parents are the targets).

Each member is trained from its own seed on its own bootstrap resample of the parents, with Adam. At
prediction the members give the mean and the epistemic spread (their standard deviation).
``threshold_eV`` is the spread above which ``--disorder auto`` asks the teacher instead; it is calibrated
on held-out families (:func:`calibrate_spread_threshold`) and saved with the weights.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pymatgen.core import Structure

from screening.errors import InputError
from screening.models.base import describe_error
from screening.models.checkpoint import load_checkpoint, save_checkpoint
from screening.models.distillation import configuration_structure
from screening.models.occupancy_net import OccupancyEnergyNet, batch_slot_graphs

#: Checkpoint kind of a native energy ensemble.
CHECKPOINT_KIND = "native-energy-ensemble"
#: Shipped ensembles (package data ``screening/data/models/<folder>``), by name.
SHIPPED_NATIVE_MODELS: dict[str, str] = {"native-sevennet-0": "native-sevennet-0"}
#: The largest gap to the teacher (eV/atom) that ``--disorder auto`` accepts on held-out structures.
DEFAULT_MAX_GAP_EV = 0.040


@dataclass(frozen=True)
class NativeTrainingOptions:
    """How the native ensemble is built and trained.

    Attributes:
        hidden, n_interactions, n_radial, cutoff_A: network shape (:class:`OccupancyEnergyNet`).
        n_members: ensemble members (at least 5 for a usable spread).
        epochs: passes over the training examples per member.
        batch_size: examples per optimisation step.
        learning_rate: Adam's initial rate (cosine decay to 5 % of it).
        parent_weight: weight of the disordered parents' configurational means against single
            configurations in the loss.
        bootstrap: train each member on a bootstrap resample of the parents.
        seed: member ``m`` uses ``seed + m``.
        base: ``alchemical`` (teacher's one-pass energy plus a learned disorder correction) or ``none``
            (the networks predict the energy); see the module docstring.
    """

    hidden: int = 32
    n_interactions: int = 2
    n_radial: int = 16
    cutoff_A: float = 5.0
    n_members: int = 5
    epochs: int = 60
    batch_size: int = 16
    learning_rate: float = 3e-3
    parent_weight: float = 2.0
    bootstrap: bool = True
    seed: int = 0
    base: Literal["alchemical", "none"] = "alchemical"

    def __post_init__(self) -> None:
        check_base(self.base)

    def constructor(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "n_interactions": self.n_interactions,
            "n_radial": self.n_radial,
            "cutoff_A": self.cutoff_A,
            "correction": self.base != "none",
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: How the ensemble's energy is built (see the module docstring).
BASES = ("alchemical", "none")


def check_base(base: str) -> None:
    """Refuse a base that is not one of :data:`BASES`."""
    if base not in BASES:
        raise InputError(f"base must be one of {', '.join(BASES)}, got {base!r}")


def structure_key(parent_id: str, configuration: int | None = None) -> str:
    """The name of a training or pool structure that stays the same across trainings (graph caches): a
    parent (``configuration`` None) or one of its labelled configurations."""
    return f"{parent_id}/{'mean' if configuration is None else configuration}"


@dataclass(frozen=True)
class Example:
    """One training example: a structure (ordered configuration or disordered parent), the teacher's
    energy of it (eV/atom; a parent's is the mean of its configurations), the base energy the networks
    add to (0, or the teacher's alchemical energy), and the parent it belongs to (the unit of resampling
    and of held-out splits)."""

    structure: Structure
    teacher_eV_per_atom: float
    parent_id: str
    is_parent_mean: bool
    base_eV_per_atom: float = 0.0
    configuration: int = -1

    @property
    def key(self) -> str:
        """A name of the example's structure that stays the same across trainings (graph caches)."""
        return structure_key(self.parent_id, None if self.is_parent_mean else self.configuration)

    @property
    def target_eV_per_atom(self) -> float:
        """What the networks must output: the teacher's energy minus the base."""
        return self.teacher_eV_per_atom - self.base_eV_per_atom


def distillation_examples(
    label_rows: Sequence[dict[str, Any]], parents: dict[str, Structure], *, base: str = "none"
) -> list[Example]:
    """Examples from label rows (rows with an ``error`` are skipped).

    ``none``: each labelled configuration, plus each disordered parent (in ``parents``) with the mean
    energy of its configurations. ``alchemical``: the disordered parents only, on top of the teacher's
    alchemical energy recorded with their labels (``base_energy_per_atom_eV``; a parent without one is
    skipped); the correction is 0 on ordered configurations by construction, so they teach nothing.
    """
    check_base(base)
    examples: list[Example] = []
    energies: dict[str, list[float]] = {}
    base_of: dict[str, float] = {}
    for row in label_rows:
        if row.get("error") or not math.isfinite(row["energy_per_atom_eV"]):
            continue
        if base == "none":
            structure = configuration_structure(row)
            examples.append(
                Example(
                    structure,
                    float(row["energy_per_atom_eV"]),
                    row["parent_id"],
                    False,
                    configuration=int(row["configuration"]),
                )
            )
        if not row["parent_is_ordered"]:
            energies.setdefault(row["parent_id"], []).append(float(row["energy_per_atom_eV"]))
            base_of[row["parent_id"]] = float(row.get("base_energy_per_atom_eV", math.nan))
    for parent_id, values in energies.items():
        if parent_id not in parents:
            continue
        offset = base_of[parent_id] if base == "alchemical" else 0.0
        if math.isfinite(offset):
            examples.append(Example(parents[parent_id], float(np.mean(values)), parent_id, True, offset))
    return examples


def _element_fractions(structure: Structure, n_elements: int) -> np.ndarray:
    fractions = np.zeros(n_elements)
    composition = structure.composition.element_composition
    total = composition.num_atoms
    for element, amount in composition.items():
        fractions[element.Z - 1] += amount / total
    return fractions


def element_reference_energies(examples: Sequence[Example], n_elements: int) -> np.ndarray:
    """Least-squares energy per atom of each element (eV), from the examples' compositions (ridge 1e-6;
    elements absent from the examples get 0)."""
    x = np.stack([_element_fractions(e.structure, n_elements) for e in examples])
    y = np.array([e.target_eV_per_atom for e in examples])
    present = x.any(axis=0)
    solution = np.linalg.solve(
        x[:, present].T @ x[:, present] + 1e-6 * np.eye(present.sum()), x[:, present].T @ y
    )
    references = np.zeros(n_elements)
    references[present] = solution
    return references


def cached_graphs(
    model: OccupancyEnergyNet,
    structures: Sequence[Structure],
    keys: Sequence[str | None],
    cache: dict[str, Any] | None,
) -> list[Any]:
    """Slot graphs of ``structures`` at ``model``'s cutoff, taken from and added to ``cache`` by key."""
    graphs = []
    for structure, key in zip(structures, keys, strict=True):
        if cache is not None and key is not None and key in cache:
            graphs.append(cache[key])
            continue
        graph = model.graph(structure)
        if cache is not None and key is not None:
            cache[key] = graph
        graphs.append(graph)
    return graphs


def _train_member(
    model: OccupancyEnergyNet,
    graphs: list[Any],
    targets: torch.Tensor,
    loss_weights: torch.Tensor,
    options: NativeTrainingOptions,
    seed: int,
) -> OccupancyEnergyNet:
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    steps_per_epoch = max(1, math.ceil(len(graphs) / options.batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=options.epochs * steps_per_epoch, eta_min=0.05 * options.learning_rate
    )
    model.train()
    for _ in range(options.epochs):
        order = torch.randperm(len(graphs), generator=generator)
        for start in range(0, len(graphs), options.batch_size):
            index = order[start : start + options.batch_size]
            batch = batch_slot_graphs([graphs[i] for i in index.tolist()])
            optimiser.zero_grad()
            error = model(batch) - targets[index]
            loss = (loss_weights[index] * error**2).sum() / loss_weights[index].sum()
            loss.backward()
            optimiser.step()
            schedule.step()
    return model.eval()


def fit_native_ensemble(
    examples: Sequence[Example],
    options: NativeTrainingOptions,
    *,
    teacher: str,
    progress: Callable[[str], None] | None = None,
    start: NativeEnergyEnsemble | None = None,
    graph_cache: dict[str, Any] | None = None,
) -> NativeEnergyEnsemble:
    """Train ``options.n_members`` members on ``examples`` (see the module docstring). Deterministic
    under ``options.seed`` on a CPU. With ``start`` (an ensemble of the same shape) each member continues
    from that ensemble's member instead of a fresh start (active learning's rounds); ``graph_cache``
    (example key -> slot graph) keeps the graphs between such calls."""
    if not examples:
        raise InputError("no training examples: every label row failed or none were given")
    constructor = options.constructor()
    template = OccupancyEnergyNet(**constructor)
    graphs = cached_graphs(template, [e.structure for e in examples], [e.key for e in examples], graph_cache)
    targets = torch.tensor([e.target_eV_per_atom for e in examples], dtype=torch.float32)
    kind_weight = torch.tensor([options.parent_weight if e.is_parent_mean else 1.0 for e in examples])
    references = (
        None
        if template.correction
        else torch.tensor(element_reference_energies(examples, template.n_elements), dtype=torch.float32)
    )
    parent_ids = sorted({e.parent_id for e in examples})
    parent_index = {parent: i for i, parent in enumerate(parent_ids)}
    parent_of = np.array([parent_index[e.parent_id] for e in examples])
    members = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small graphs: threads add synchronisation and reorder the scatter sums
    try:
        for m in range(options.n_members):
            initial = start.members[m] if start is not None else None
            members.append(
                _fit_member(
                    m, constructor, graphs, targets, kind_weight, references, parent_of, options, initial
                )
            )
            if progress is not None:
                progress(f"member {m + 1}/{options.n_members} trained")
    finally:
        torch.set_num_threads(threads)
    metadata = {"teacher": teacher, "training": options.as_dict(), "n_examples": len(examples)}
    return NativeEnergyEnsemble(
        members, teacher=teacher, threshold_eV=0.0, base=options.base, metadata=metadata
    )


def _fit_member(
    m: int,
    constructor: dict[str, Any],
    graphs: list[Any],
    targets: torch.Tensor,
    kind_weight: torch.Tensor,
    references: torch.Tensor | None,
    parent_of: np.ndarray,
    options: NativeTrainingOptions,
    initial: OccupancyEnergyNet | None = None,
) -> OccupancyEnergyNet:
    """Member ``m``: a seeded start from the per-element energies (or a copy of ``initial``), its
    bootstrap of the parents, trained."""
    seed = options.seed + m
    torch.manual_seed(seed)
    member = OccupancyEnergyNet(**constructor)
    if initial is not None:
        member.load_state_dict(initial.state_dict())
    elif references is not None:
        with torch.no_grad():
            member.element_energy.weight.copy_(references.unsqueeze(1))
    weights = kind_weight.clone()
    if options.bootstrap:  # how often each parent was drawn weights all of its examples
        n_parents = int(parent_of.max()) + 1
        draws = np.random.default_rng(seed).integers(n_parents, size=n_parents)
        counts = np.bincount(draws, minlength=n_parents)
        weights = weights * torch.from_numpy(counts[parent_of].astype(np.float32))
    keep = torch.nonzero(weights > 0).flatten().tolist()
    return _train_member(member, [graphs[i] for i in keep], targets[keep], weights[keep], options, seed)


@dataclass(frozen=True)
class NativePrediction:
    """Ensemble energies of several structures (arrays of shape ``(N,)``; NaN where ``errors[i]``).

    Attributes:
        energy_per_atom_eV: members' mean, eV per atom of the (disordered) composition.
        spread_eV: epistemic spread, the members' standard deviation (eV/atom).
        errors: why a structure could not be evaluated, else None.
    """

    energy_per_atom_eV: np.ndarray
    spread_eV: np.ndarray
    errors: list[str | None]


class NativeEnergyEnsemble:
    """Members of one architecture, the teacher they imitate, what they add to (``base``) and the spread
    threshold of ``auto``."""

    def __init__(
        self,
        members: Sequence[OccupancyEnergyNet],
        *,
        teacher: str,
        threshold_eV: float,
        base: str = "none",
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if not members:
            raise InputError("an ensemble needs at least one member")
        check_base(base)
        if any(member.correction != (base != "none") for member in members):
            raise InputError(
                f"members predicting {'energies' if base != 'none' else 'corrections'} for base {base!r}"
            )
        self.members = list(members)
        self.teacher = teacher
        self.threshold_eV = float(threshold_eV)
        self.base = base
        self.metadata = dict(metadata or {})
        self.name = name

    def base_energies(
        self, structures: Sequence[Structure], teacher_model: Any = None
    ) -> tuple[np.ndarray, list[str | None]]:
        """The energies the members add to (eV/atom): 0, or the teacher's alchemical energy (the run's
        model ``teacher_model`` when given, else the teacher loaded on the CPU)."""
        if self.base == "none":
            return np.zeros(len(structures)), [None] * len(structures)
        if teacher_model is None:
            from screening.models.registry import load_model

            teacher_model = load_model(self.teacher, "cpu")
        if not hasattr(teacher_model, "alchemical_energy_per_atom"):
            raise InputError(f"{teacher_model.name} has no alchemical mode: train with base 'none'")
        return teacher_model.alchemical_energy_per_atom(list(structures))

    def member_outputs(
        self,
        structures: Sequence[Structure],
        *,
        batch_size: int = 32,
        keys: Sequence[str] | None = None,
        graph_cache: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, list[str | None]]:
        """Each member's output (eV/atom: an energy, or a correction to the base), shape ``(M, N)``, one
        evaluation per structure and member; NaN and the reason where a structure cannot be evaluated.
        With ``keys`` and ``graph_cache`` the slot graphs are kept between calls."""
        outputs = np.full((len(self.members), len(structures)), np.nan)
        errors: list[str | None] = [None] * len(structures)
        graphs: dict[int, Any] = {}
        for index, structure in enumerate(structures):
            try:
                key = None if keys is None else keys[index]
                (graphs[index],) = cached_graphs(self.members[0], [structure], [key], graph_cache)
            except Exception as err:  # one structure's failure is its own error
                errors[index] = describe_error(err)
        ready = sorted(graphs)
        with torch.no_grad():
            for start in range(0, len(ready), batch_size):
                indices = ready[start : start + batch_size]
                batch = batch_slot_graphs([graphs[i] for i in indices])
                for m, member in enumerate(self.members):
                    outputs[m, indices] = member(batch).double().numpy()
        return outputs, errors

    def predict(
        self,
        structures: Sequence[Structure],
        *,
        teacher_model: Any = None,
        base_eV: Sequence[float] | None = None,
        keys: Sequence[str] | None = None,
        graph_cache: dict[str, Any] | None = None,
    ) -> NativePrediction:
        """Energies of ordered or disordered structures: the base (one teacher pass, ``alchemical``; or
        ``base_eV`` when already known) plus the members' mean output; the spread is the members'.
        ``keys`` and ``graph_cache`` as for :meth:`member_outputs`."""
        outputs, errors = self.member_outputs(structures, keys=keys, graph_cache=graph_cache)
        if base_eV is not None:
            base = np.asarray(base_eV, dtype=float)
        else:
            base, base_errors = self.base_energies(structures, teacher_model)
            errors = [e or b for e, b in zip(errors, base_errors, strict=True)]
        mean = np.where([e is None for e in errors], base + outputs.mean(axis=0), np.nan)
        return NativePrediction(mean, outputs.std(axis=0), errors)

    def save(self, directory: str | os.PathLike) -> Path:
        return save_checkpoint(
            directory,
            kind=CHECKPOINT_KIND,
            constructor=self.members[0].constructor(),
            state_dicts=[member.state_dict() for member in self.members],
            arrays={},
            metadata={
                **self.metadata,
                "teacher": self.teacher,
                "threshold_eV": self.threshold_eV,
                "base": self.base,
            },
        )

    @classmethod
    def load(cls, directory: str | os.PathLike, name: str | None = None) -> NativeEnergyEnsemble:
        checkpoint = load_checkpoint(directory, kind=CHECKPOINT_KIND)
        members = []
        for state in checkpoint.state_dicts:
            member = OccupancyEnergyNet(**checkpoint.constructor)
            member.load_state_dict(state)
            members.append(member.eval())
        metadata = dict(checkpoint.metadata)
        return cls(
            members,
            teacher=metadata.pop("teacher"),
            threshold_eV=metadata.pop("threshold_eV"),
            base=metadata.pop("base", "none"),
            metadata=metadata,
            name=name or str(directory),
        )


def calibrate_spread_threshold(
    spread_eV: np.ndarray, gap_eV: np.ndarray, max_gap_eV: float = DEFAULT_MAX_GAP_EV
) -> float:
    """The largest spread threshold under which every held-out structure trusted to the ensemble
    (spread <= threshold) is within ``max_gap_eV`` of the teacher; 0 when even the most confident
    one is not (then ``auto`` always asks the teacher). Never above the largest held-out spread: beyond
    what was checked, the teacher decides."""
    spread = np.asarray(spread_eV, dtype=float)
    gap = np.abs(np.asarray(gap_eV, dtype=float))
    order = np.argsort(spread, kind="stable")
    threshold = 0.0
    for i in order:
        if gap[i] > max_gap_eV:
            break
        threshold = float(spread[i])
    return threshold


def native_model_path(name_or_path: str) -> Path:
    """Folder of a shipped native ensemble name, or the given folder.

    Raises:
        MissingInputError: no checkpoint there.
    """
    from screening.resources import model_folder

    return model_folder(
        name_or_path, SHIPPED_NATIVE_MODELS, what="native energy model", command="screening train energy"
    )


def native_model_identity(name_or_path: str) -> dict[str, Any]:
    """What a run records of its native ensemble, from ``model.json`` alone (no torch): name, folder,
    weights hash, teacher, spread threshold and held-out gaps."""
    import json

    path = native_model_path(name_or_path)
    manifest = json.loads((path / "model.json").read_text())
    metadata = manifest.get("metadata", {})
    return {
        "name": name_or_path,
        "path": str(path.resolve()),
        "weights_sha256": manifest.get("weights_sha256"),
        "teacher": metadata.get("teacher"),
        "threshold_eV": metadata.get("threshold_eV"),
        "held_out": metadata.get("held_out"),
    }


@functools.cache
def load_native_model(name_or_path: str) -> NativeEnergyEnsemble:
    """A shipped native ensemble by name, or a saved folder; built once per process."""
    return NativeEnergyEnsemble.load(native_model_path(name_or_path), name=name_or_path)


def held_out_split(
    parent_groups: dict[str, str], holdout_fraction: float, seed: int
) -> tuple[set[str], set[str], set[str]]:
    """Parents for training, for calibrating the spread threshold and for testing it, whole groups
    (families, chemical systems) on one side only: groups are shuffled by ``seed`` and taken for the
    held-out part until it holds ``holdout_fraction`` of the parents; alternate held-out groups go to
    calibration and test."""
    groups = sorted(set(parent_groups.values()))
    order = np.random.default_rng(seed).permutation(len(groups))
    by_group: dict[str, list[str]] = {}
    for parent, group in parent_groups.items():
        by_group.setdefault(group, []).append(parent)
    train, calibration, test = set(), set(), set()
    held = 0
    for rank, g in enumerate(order):
        members = by_group[groups[g]]
        if held < holdout_fraction * len(parent_groups):
            (calibration if rank % 2 == 0 else test).update(members)
            held += len(members)
        else:
            train.update(members)
    return train, calibration, test


def gap_statistics_meV(gaps_eV: np.ndarray) -> dict[str, float]:
    """Median, 90th percentile and maximum of the absolute gaps, in meV/atom, and how many there were."""
    gaps = np.abs(np.asarray(gaps_eV, dtype=float)) * 1000
    if not len(gaps):
        return {"n": 0, "median_meV": math.nan, "p90_meV": math.nan, "max_meV": math.nan}
    return {
        "n": len(gaps),
        "median_meV": float(np.median(gaps)),
        "p90_meV": float(np.percentile(gaps, 90)),
        "max_meV": float(gaps.max()),
    }


def distill(
    examples: Sequence[Example],
    parent_groups: dict[str, str],
    options: NativeTrainingOptions,
    *,
    teacher: str,
    holdout_fraction: float = 0.3,
    max_gap_eV: float = DEFAULT_MAX_GAP_EV,
    progress: Callable[[str], None] | None = None,
) -> tuple[NativeEnergyEnsemble, dict[str, Any]]:
    """Train on the training groups, calibrate the spread threshold on the calibration groups' disordered
    parents, and report the gaps to the teacher and what ``auto`` does on the test groups' (never seen in
    training or calibration).

    Args:
        examples: from :func:`distillation_examples`.
        parent_groups: parent id -> group (family or chemical system); every example's parent needs one.
        holdout_fraction: share of the parents held out (half calibration, half test); 0 trains on all
            and leaves the threshold at 0 (``auto`` then always asks the teacher).

    Returns:
        The ensemble (its ``threshold_eV`` set) and a report (split sizes, gaps, threshold, auto on test).
    """
    missing = sorted({e.parent_id for e in examples} - set(parent_groups))
    if missing:
        raise InputError(f"no group for parents {', '.join(missing[:5])}")
    used = {e.parent_id: parent_groups[e.parent_id] for e in examples}
    train, calibration, test = held_out_split(used, holdout_fraction, options.seed)
    ensemble = fit_native_ensemble(
        [e for e in examples if e.parent_id in train], options, teacher=teacher, progress=progress
    )
    report: dict[str, Any] = {
        "parents": {"train": len(train), "calibration": len(calibration), "test": len(test)},
        "holdout_fraction": holdout_fraction,
        "max_gap_eV": max_gap_eV,
    }
    held_out = {}
    for name, parents in (("calibration", calibration), ("test", test)):
        disordered = [e for e in examples if e.is_parent_mean and e.parent_id in parents]
        prediction = ensemble.predict(
            [e.structure for e in disordered], base_eV=[e.base_eV_per_atom for e in disordered]
        )
        ok = np.array([error is None for error in prediction.errors], dtype=bool)
        teacher_eV = np.array([e.teacher_eV_per_atom for e in disordered])
        held_out[name] = (prediction.spread_eV[ok], (prediction.energy_per_atom_eV - teacher_eV)[ok])
        report[name] = {"native": gap_statistics_meV(held_out[name][1]), "failed": int((~ok).sum())}
    ensemble.threshold_eV = calibrate_spread_threshold(*held_out["calibration"], max_gap_eV=max_gap_eV)
    spread, gap = held_out["test"]
    trusted = spread <= ensemble.threshold_eV
    report["threshold_eV"] = ensemble.threshold_eV
    report["test"]["auto"] = {
        "teacher_share": float(1 - trusted.mean()) if len(trusted) else math.nan,
        **gap_statistics_meV(gap[trusted]),
    }
    ensemble.metadata["held_out"] = report
    return ensemble, report
