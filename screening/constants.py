"""Physical constants (CODATA 2018, exact in the SI), defined once for the whole package."""

from __future__ import annotations

#: Boltzmann constant, J/K.
BOLTZMANN_J_PER_K = 1.380649e-23
#: Boltzmann constant, eV/K.
BOLTZMANN_eV_PER_K = 8.617333262e-5
#: Elementary charge, C.
ELEMENTARY_CHARGE_C = 1.602176634e-19
