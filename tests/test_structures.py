"""The Structure <-> row round trip is exact, for ordered, mixed and partially occupied structures."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Element, Lattice, Species, Structure

from screening.schema import STRUCTURES_SCHEMA, VACANCY, Col
from screening.structures import (
    bucket_of,
    content_sha256,
    failed_row,
    reduced_formula,
    row_to_structure,
    structure_to_row,
)

SYMBOLS = [
    "H",
    "Li",
    "Na",
    "K",
    "Mg",
    "Al",
    "Si",
    "P",
    "S",
    "Cl",
    "O",
    "F",
    "La",
    "Zr",
    "Ta",
    "Ge",
    "Ti",
    "Fe",
]
OXIDATION = {"H": 1, "Li": 1, "Na": 1, "K": 1, "Mg": 2, "Al": 3, "Si": 4, "P": 5, "S": -2, "Cl": -1, "O": -2,
             "F": -1, "La": 3, "Zr": 4, "Ta": 5, "Ge": 4, "Ti": 4, "Fe": 2}  # fmt: skip


@st.composite
def occupancies(draw: st.DrawFn, with_oxidation: bool) -> dict:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3, unique=True))
    if len(symbols) == 1 and draw(st.booleans()):
        weights = [1.0]
    else:
        raw = draw(st.lists(st.floats(0.01, 1.0), min_size=len(symbols), max_size=len(symbols)))
        total = sum(raw) / draw(st.floats(0.3, 1.0))  # total occupancy between 0.3 and 1
        weights = [w / total for w in raw]
    make = (lambda s: Species(s, OXIDATION[s])) if with_oxidation else Element
    return {make(s): w for s, w in zip(symbols, weights, strict=True)}


@st.composite
def structures(draw: st.DrawFn) -> Structure:
    lengths = draw(st.lists(st.floats(2.5, 15.0), min_size=3, max_size=3))
    angles = draw(st.lists(st.floats(60.0, 120.0), min_size=3, max_size=3))
    try:
        lattice = Lattice.from_parameters(*lengths, *angles)
    except ValueError:
        lattice = Lattice.from_parameters(*lengths, 90, 90, 90)
    if lattice.volume < 1.0:
        lattice = Lattice.from_parameters(*lengths, 90, 90, 90)
    with_oxidation = draw(st.booleans())
    nsites = draw(st.integers(1, 12))
    species = [draw(occupancies(with_oxidation)) for _ in range(nsites)]
    coords = draw(
        st.lists(st.lists(st.floats(-0.2, 1.2), min_size=3, max_size=3), min_size=nsites, max_size=nsites)
    )
    return Structure(lattice, species, coords)


def assert_same_structure(a: Structure, b: Structure) -> None:
    np.testing.assert_allclose(a.lattice.matrix, b.lattice.matrix, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.cart_coords, b.cart_coords, rtol=0, atol=1e-10)
    assert len(a) == len(b)
    for site_a, site_b in zip(a, b, strict=True):
        assert dict(site_a.species.items()) == dict(site_b.species.items())  # exact occupancies
        assert [type(sp) for sp in site_a.species] == [type(sp) for sp in site_b.species]
        for sp_a, sp_b in zip(site_a.species, site_b.species, strict=True):
            assert getattr(sp_a, "oxi_state", None) == getattr(sp_b, "oxi_state", None)


def through_parquet(row: dict) -> dict:
    """Write one row to Parquet bytes with the explicit schema and read it back."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([row], schema=STRUCTURES_SCHEMA), buffer)
    return pq.read_table(io.BytesIO(buffer.getvalue())).to_pylist()[0]


@settings(max_examples=150, deadline=None)
@given(structures())
def test_round_trip_is_exact_for_generated_structures(structure: Structure) -> None:
    row = structure_to_row(structure, "gen", "test")
    assert_same_structure(structure, row_to_structure(row))
    assert_same_structure(structure, row_to_structure(through_parquet(row)))


@settings(max_examples=60, deadline=None)
@given(structures())
def test_disorder_is_flagged_and_vacancies_complete_each_site(structure: Structure) -> None:
    row = structure_to_row(structure, "gen", "test")
    ordered = all(site.is_ordered for site in structure)
    assert row[Col.IS_ORDERED] is ordered
    assert ("disorder" in row[Col.STRUCTURE_FEATURES]) is (not ordered)
    for entry in row[Col.SPECIES]:
        assert sum(entry["concentration"]) == pytest.approx(1.0, abs=1e-12)
        if VACANCY in entry["chemical_symbols"]:
            assert entry["concentration"][entry["chemical_symbols"].index(VACANCY)] > 0
    assert len({e["name"] for e in row[Col.SPECIES]}) == len(row[Col.SPECIES])


def test_garnet_like_partial_site_keeps_vacancy(disordered_rocksalt: Structure) -> None:
    row = structure_to_row(disordered_rocksalt, "x", "test")
    cation = next(e for e in row[Col.SPECIES] if "Li" in e["chemical_symbols"])
    assert cation["chemical_symbols"] == ["Li", "Na", VACANCY]
    assert cation["concentration"][:2] == [0.5, 0.3]
    assert cation["concentration"][2] == pytest.approx(0.2)
    assert cation["oxidation_states"][:2] == [1.0, 1.0]
    assert row[Col.ELEMENTS] == ["F", "Li", "Na"]
    assert row[Col.CHEMICAL_SYSTEM] == "F-Li-Na"
    assert row[Col.IS_ORDERED] is False


def test_ordered_row_columns(rocksalt_lif: Structure) -> None:
    row = structure_to_row(rocksalt_lif, "lif", "test", _mp_band_gap=8.7)
    assert row[Col.NSITES] == 8
    assert row[Col.CHEMICAL_FORMULA_REDUCED] == "FLi"
    assert row[Col.IS_ORDERED] is True and row[Col.STRUCTURE_FEATURES] == []
    assert row[Col.MP_BAND_GAP] == 8.7
    assert row[Col.BUCKET] == bucket_of("lif")
    assert set(row) <= set(STRUCTURES_SCHEMA.names)


def test_reduced_formula() -> None:
    from pymatgen.core import Composition

    assert reduced_formula(Composition("Li14La6Zr4O24")) == "La3Li7O12Zr2"
    assert reduced_formula(Composition("Li6.4La3Zr1.4Ta0.6O12")) == "La3Li6.4O12Ta0.6Zr1.4"


def test_failed_row_cannot_become_a_structure() -> None:
    row = failed_row("bad", "files", "unparsable CIF", warnings=["short contacts: ..."])
    assert row[Col.STATUS] == "failed"
    assert row[Col.STRUCTURE_SHA256] is None
    assert row[Col.WARNINGS] == ["short contacts: ..."]
    assert failed_row("bad", "files", "x")[Col.WARNINGS] == []
    with pytest.raises(ValueError, match="unparsable CIF"):
        row_to_structure(row)
    with pytest.raises(ValueError, match="unparsable CIF"):
        content_sha256(row)


def test_rows_carry_warnings_never_null(rocksalt_lif: Structure) -> None:
    assert structure_to_row(rocksalt_lif, "a", "test")[Col.WARNINGS] == []
    row = structure_to_row(rocksalt_lif, "a", "test", warnings=("composition does not match LiCl",))
    assert row[Col.WARNINGS] == ["composition does not match LiCl"]
    assert through_parquet(row)[Col.WARNINGS] == ["composition does not match LiCl"]


@settings(max_examples=80, deadline=None)
@given(structures())
def test_content_hash_survives_the_round_trip(structure: Structure) -> None:
    row = structure_to_row(structure, "gen", "test")
    digest = row[Col.STRUCTURE_SHA256]
    assert len(digest) == 64 and digest == content_sha256(structure)
    assert content_sha256(row) == digest
    assert content_sha256(row_to_structure(through_parquet(row))) == digest
    assert through_parquet(row)[Col.STRUCTURE_SHA256] == digest


def test_content_hash_ignores_order_images_labels_and_oxidation_states(
    disordered_rocksalt: Structure,
) -> None:
    digest = content_sha256(disordered_rocksalt)
    reordered = Structure.from_sites(list(reversed(disordered_rocksalt.sites)))
    assert content_sha256(reordered) == digest
    shifted = disordered_rocksalt.copy()
    shifted.translate_sites([0], [1.0, -1.0, 2.0], frac_coords=True, to_unit_cell=False)
    assert content_sha256(shifted) == digest
    plain = disordered_rocksalt.copy()
    plain.remove_oxidation_states()
    assert content_sha256(plain) == digest
    assert structure_to_row(plain, "x", "a")[Col.STRUCTURE_SHA256] == digest


def test_content_hash_sees_physical_changes(disordered_rocksalt: Structure) -> None:
    digest = content_sha256(disordered_rocksalt)
    moved = disordered_rocksalt.copy()
    moved.translate_sites([0], [1e-3, 0, 0], frac_coords=False)  # 0.001 A
    assert content_sha256(moved) != digest
    strained = disordered_rocksalt.copy()
    strained.scale_lattice(disordered_rocksalt.volume * 1.0001)
    assert content_sha256(strained) != digest
    richer = disordered_rocksalt.copy()
    richer.replace(0, {Species("Li", 1): 0.5001, Species("Na", 1): 0.3})
    assert content_sha256(richer) != digest
