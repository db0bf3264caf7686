"""Shared fixtures: small structures built from textbook crystallography."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Species, Structure


def pytest_configure(config):
    """Measurements the product remembers (the batch calibration) go to a folder of this test session,
    shared with the workers and commands it starts, never to the user's cache."""
    os.environ.setdefault("SCREENING_CACHE_DIR", tempfile.mkdtemp(prefix="screening-test-cache-"))


@pytest.fixture(scope="session")
def obelix_dir() -> Path:
    """The OBELiX training split shipped in ``data/obelix-train`` (CC BY 4.0; its README): ``cifs/`` and
    ``conductivity_train.csv``."""
    return Path(__file__).resolve().parents[1] / "data" / "obelix-train"


@pytest.fixture
def rocksalt_lif() -> Structure:
    """Ordered rock-salt LiF at its experimental lattice parameter (4.03 Å)."""
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture
def disordered_rocksalt() -> Structure:
    """Rock salt with a mixed, partially occupied cation site (Li0.5 Na0.3 vacancy0.2) and F- anions."""
    return Structure.from_spacegroup(
        "Fm-3m",
        Lattice.cubic(4.3),
        [{Species("Li", 1): 0.5, Species("Na", 1): 0.3}, Species("F", -1)],
        [[0, 0, 0], [0.5, 0.5, 0.5]],
    )


@pytest.fixture(scope="session")
def shipped_references():
    """The hull references that ship inside pymatgen (MP2020-corrected), loaded once."""
    import warnings

    from screening.thermo import bundled_reference_set

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # noble gases without electronegativity
        return bundled_reference_set()
