"""What the transport stage offers by name: mobile ions and migration-barrier methods (no heavy imports,
so the run settings can validate against them)."""

from __future__ import annotations

from typing import Literal, get_args

#: Mobile ions the pipeline offers, with their usual charge.
MOBILE_IONS: dict[str, int] = {"Li": 1, "Na": 1, "K": 1, "Mg": 2, "Ag": 1, "Cu": 1}

#: Migration-barrier estimators (``ea_method``).
TransportMethod = Literal["bvse", "md"]
TRANSPORT_METHODS: tuple[str, ...] = get_args(TransportMethod)
DEFAULT_TRANSPORT_METHOD: TransportMethod = "bvse"

#: Where the Frenkel energy of a fully occupied sublattice comes from: the run's potential on a defect
#: supercell, or the bond-valence landscape (the fallback).
FrenkelMethod = Literal["potential", "bvse"]

#: What is done to the coordinates before the barrier: nothing, or a framework relaxation with the potential.
CoordinateCleanup = Literal["none", "relax"]
