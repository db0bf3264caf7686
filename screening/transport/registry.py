"""What the transport stage offers by name: mobile ions and migration-barrier methods (no heavy imports,
so the run settings can validate against them)."""

from __future__ import annotations

from typing import Literal, get_args

#: Mobile ions the pipeline offers, with their usual charge.
MOBILE_IONS: dict[str, int] = {"Li": 1, "Na": 1, "K": 1, "Mg": 2, "Ag": 1, "Cu": 1}

#: Physical migration-barrier estimators of :func:`screening.transport.compute_transport`.
PhysicsMethod = Literal["bvse", "md"]
PHYSICS_METHODS: tuple[str, ...] = get_args(PhysicsMethod)

#: Conductivity estimators a run can choose (``ea_method``): the physics alone, or ``learned``, a model
#: trained on measured conductivities on top of the ``bvse`` physics and the potential's node features
#: (:mod:`screening.transport.learned`).
TransportMethod = Literal["bvse", "md", "learned"]
TRANSPORT_METHODS: tuple[str, ...] = get_args(TransportMethod)
#: What a run given no transport method (or ``auto``) gets: :func:`default_transport_method`.
AUTO_TRANSPORT_METHOD = "auto"
#: Mobile ions the shipped learned model was trained on (it predicts their conductivity only).
LEARNED_MOBILE_IONS: tuple[str, ...] = ("Li",)


def default_transport_method(mobile_ion: str, disorder: str) -> TransportMethod:
    """``learned`` where the shipped model applies, ``bvse`` elsewhere.

    The learned model beats the physics in grouped cross-validation against experiment (OBELiX, families
    held out: Spearman 0.65 against 0.40, ROC-AUC 0.81 against 0.69; BENCHMARKS.md), so it is the
    default for the ions it was trained on, when disordered structures are sampled (the ``sample``
    configurations give its node features; ``meanfield`` does not)."""
    return "learned" if mobile_ion in LEARNED_MOBILE_IONS and disorder == "sample" else "bvse"


#: The learned conductivity model shipped with the package (``screening/data/models/``).
DEFAULT_CONDUCTIVITY_MODEL = "conductivity-obelix"

#: Where the Frenkel energy of a fully occupied sublattice comes from: the run's potential on a defect
#: supercell, or the bond-valence landscape (the fallback).
FrenkelMethod = Literal["potential", "bvse"]

#: What is done to the coordinates before the barrier: nothing, or a framework relaxation with the potential.
CoordinateCleanup = Literal["none", "relax"]
