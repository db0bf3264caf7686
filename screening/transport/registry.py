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
DEFAULT_TRANSPORT_METHOD: TransportMethod = "bvse"

#: The learned conductivity model shipped with the package (``screening/data/models/``).
DEFAULT_CONDUCTIVITY_MODEL = "conductivity-obelix"

#: Where the Frenkel energy of a fully occupied sublattice comes from: the run's potential on a defect
#: supercell, or the bond-valence landscape (the fallback).
FrenkelMethod = Literal["potential", "bvse"]

#: What is done to the coordinates before the barrier: nothing, or a framework relaxation with the potential.
CoordinateCleanup = Literal["none", "relax"]
