"""The md method with the real SevenNet-0 potential on a tiny cell (a few hundred steps on CPU)."""

from __future__ import annotations

import math

import pytest
from pymatgen.core import Lattice, Structure

from screening.schema import STATUS_OK, Col
from screening.transport import TransportError, compute_transport
from screening.transport.md import MDError, md_transport, supercell_multiples


def li3n() -> Structure:
    return Structure(
        Lattice.hexagonal(3.648, 3.875),
        ["N", "Li", "Li", "Li"],
        [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]],
    )


def test_supercell_multiples_use_perpendicular_widths():
    # hexagonal a = 3.648: width perpendicular to a is a * sin(60 deg) = 3.159 A
    assert supercell_multiples(li3n(), 10.0) == (4, 4, 3)
    assert supercell_multiples(Structure(Lattice.cubic(5.0), ["Li"], [[0, 0, 0]]), 10.0) == (2, 2, 2)


def test_md_rejects_disordered_and_single_temperature():
    disordered = li3n()
    disordered.add_oxidation_state_by_element({"Li": 1, "N": -3})
    disordered.replace_species({"Li+": {"Li+": 0.9}})
    with pytest.raises(MDError, match="ordered"):
        md_transport(disordered, "Li", 300.0, calculator=object())
    with pytest.raises(MDError, match="two distinct temperatures"):
        md_transport(li3n(), "Li", 300.0, temperatures_K=(800.0,), calculator=object())
    with pytest.raises(TransportError, match="ordered"):
        compute_transport(disordered, method="md", calculator=object())


@pytest.mark.slow
def test_md_arrhenius_on_li3n():
    row = compute_transport(
        li3n(),
        method="md",
        temperature_K=300.0,
        temperatures_K=(900.0, 1200.0, 1500.0),
        n_steps=20,
        equilibration_steps=4,
        step_skip=2,
        supercell_min_length_A=3.0,
    )
    assert row[Col.STATUS] == STATUS_OK and row[Col.EA_METHOD] == "md"
    assert math.isfinite(row[Col.EA]) and row[Col.EA_STD] is not None and row[Col.EA_STD] >= 0
    assert row[Col.DIFFUSIVITY] > 0 and row[Col.SIGMA] > 0
    assert row[Col.EA_1D] is None and row[Col.JUMP_DISTANCE] is None
    assert math.log10(row[Col.SIGMA]) == pytest.approx(row[Col.LOG10_SIGMA])
