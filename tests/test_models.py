"""The pretrained models themselves: offline loading, agreement with each package's own calculator,
batching, invariances, the mean-field path and per-structure errors. Small cells keep this CPU-cheap."""

from __future__ import annotations

import hashlib
import socket

import numpy as np
import pytest
import torch
from pymatgen.core import Composition, Element, Lattice, Species, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from scipy.spatial.transform import Rotation

from screening.models import (
    DEFAULT_MODEL,
    EnergyModel,
    available_models,
    load_model,
    predict_energies,
    registry,
)

ALL_MODELS = ["sevennet-0", "sevennet-l3i5", "chgnet-0.3.0"]
FAST_MODELS = ["sevennet-0", "chgnet-0.3.0"]


@pytest.fixture(scope="module")
def sevennet() -> EnergyModel:
    return load_model("sevennet-0", device="cpu")


def _lif() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5] * 3])


def _nacl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])


def _small_set() -> list[Structure]:
    """Ordered cells of different sizes and chemistries (2 to 16 atoms)."""
    li_bcc = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    li2o = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25] * 3])
    lfp_like = Structure(
        Lattice.from_parameters(4.2, 4.5, 5.1, 88, 92, 95),
        ["Li", "Fe", "P", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.3, 0.7], [0.1, 0.6, 0.3], [0.7, 0.15, 0.55]],
    )
    return [_lif().get_primitive_structure(), _nacl(), li_bcc, li2o, lfp_like, _lif()]


def test_registry_names_and_unknown_model() -> None:
    assert DEFAULT_MODEL == "sevennet-0"
    assert available_models()[0] == DEFAULT_MODEL
    assert set(available_models()) == set(ALL_MODELS)
    with pytest.raises(ValueError, match="unknown model 'mace'.*sevennet-0"):
        load_model("mace")


class _NoNetwork:
    """Refuse every socket connection that is not to loopback, for the duration of a ``with``."""

    def __enter__(self) -> None:
        self._connect = socket.socket.connect

        def guarded(sock: socket.socket, address: object) -> object:
            host = address[0] if isinstance(address, tuple) else str(address)
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise OSError(f"test forbids network access (to {address!r})")
            return self._connect(sock, address)

        socket.socket.connect = guarded  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        socket.socket.connect = self._connect  # type: ignore[method-assign]


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "sevennet-l3i5" else n for n in ALL_MODELS]
)
def test_each_model_loads_offline_from_its_wheel(name: str) -> None:
    with _NoNetwork():
        model = registry._load.__wrapped__(name, torch.device("cpu"))  # a fresh load, bypassing the cache
        energies = model.predict_energy_per_atom([_lif()])
    assert model.name == name and model.device == torch.device("cpu")
    assert model.weights_path.is_file() and "site-packages" in str(model.weights_path)
    assert model.weights_sha256 == hashlib.sha256(model.weights_path.read_bytes()).hexdigest()
    # SevenNet trained on MPtrj's uncorrected_total_energy, CHGNet on MPtrj's MP2020-corrected energy_per_atom
    assert model.training_energies_corrected is name.startswith("chgnet")
    assert {"Li", "O", "La", "Zr", "Pu"} <= model.supported_elements and "Po" not in model.supported_elements
    assert -6.0 < energies[0] < -4.0  # LiF near its MPtrj-scale energy (about -4.8 to -5.0 eV/atom)


def test_load_model_is_cached_per_device(sevennet: EnergyModel) -> None:
    assert load_model("sevennet-0", device="cpu") is sevennet
    assert load_model("sevennet-0", device=torch.device("cpu")) is sevennet
    if not torch.cuda.is_available():
        assert load_model() is sevennet  # default device falls back to CPU
        with pytest.raises(ValueError, match="CUDA is not available"):
            load_model("sevennet-0", device="cuda")


@pytest.mark.parametrize("name", FAST_MODELS)
def test_energies_match_the_packages_own_ase_calculator(name: str) -> None:
    """Our graph construction and batching reproduce what the package itself computes."""
    model = load_model(name, device="cpu")
    structures = [_small_set()[i] for i in (0, 3, 4)]  # fcc, antifluorite, triclinic five-element cell
    ours = model.predict_energy_per_atom(structures)
    calculator = model.ase_calculator()
    for structure, energy in zip(structures, ours, strict=True):
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = calculator
        assert energy == pytest.approx(atoms.get_potential_energy() / len(atoms), abs=1e-5)


@pytest.mark.parametrize("name", FAST_MODELS)
def test_batched_equals_one_by_one(name: str) -> None:
    model = load_model(name, device="cpu")
    structures = _small_set()
    batched = model.predict_energy_per_atom(structures, max_atoms_per_batch=4096)  # one batch
    capped = model.predict_energy_per_atom(structures, max_atoms_per_batch=9)  # several batches
    single = np.array([model.predict_energy_per_atom([s])[0] for s in structures])
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)
    np.testing.assert_allclose(capped, single, atol=1e-5, rtol=0)


def test_energy_invariances(sevennet: EnergyModel) -> None:
    base = _small_set()[4]  # triclinic, five species: no symmetry to hide mistakes
    rotation = Rotation.from_euler("zyx", [31.0, -47.0, 12.0], degrees=True).as_matrix()
    rotated = Structure(
        Lattice(base.lattice.matrix @ rotation.T),
        base.species,
        base.cart_coords @ rotation.T,
        coords_are_cartesian=True,
    )
    translated = base.copy()
    translated.translate_sites(
        list(range(len(base))), [0.37, -0.21, 0.58], frac_coords=True, to_unit_cell=True
    )
    order = np.random.default_rng(0).permutation(len(base))
    permuted = Structure(base.lattice, [base.species[i] for i in order], base.frac_coords[order])
    supercell = base * (2, 2, 2)
    energies = sevennet.predict_energy_per_atom([base, rotated, translated, permuted, supercell])
    np.testing.assert_allclose(energies[1:], energies[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", FAST_MODELS)
def test_meanfield_of_ordered_structures_equals_ordinary_prediction(name: str) -> None:
    model = load_model(name, device="cpu")
    structures = _small_set()
    ordinary = model.predict_energy_per_atom(structures)
    meanfield, errors = model.try_predict_energy_per_atom(structures, meanfield=True)
    assert errors == [None] * len(structures)
    # one-hot occupancy vectors: the same arithmetic up to float32 summation order
    np.testing.assert_allclose(meanfield, ordinary, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", FAST_MODELS)
def test_a_disordered_site_fully_of_one_element_gives_the_ordered_energy(name: str) -> None:
    model = load_model(name, device="cpu")
    ordered = _lif()
    # Li+ and neutral Li sharing a site: disordered for pymatgen, 100 % lithium for the model
    split = Structure(
        ordered.lattice, [{Species("Li", 1): 0.5, Element("Li"): 0.5}] * 4 + ["F"] * 4, ordered.frac_coords
    )
    assert not split.is_ordered
    (reference,) = model.predict_energy_per_atom([ordered])
    meanfield, sample = (
        predict_energies(model, [split], disorder_strategy=strategy, n_samples=2, max_supercell_sites=8)[0]
        for strategy in ("meanfield", "sample")
    )
    assert meanfield.error is None and meanfield.disorder_strategy == "meanfield"
    assert meanfield.energy_per_atom_eV == pytest.approx(reference, abs=1e-6)
    assert sample.error is None and sample.n_configurations == 2
    assert sample.energy_per_atom_eV == pytest.approx(reference, abs=1e-5)
    assert sample.energy_per_atom_std_eV == pytest.approx(0.0, abs=1e-5)


def _li_na_cl() -> Structure:
    """Rock-salt Li0.5Na0.5Cl (primitive cell, one mixed cation site)."""
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.35), [{"Li": 0.5, "Na": 0.5}, "Cl"], [[0, 0, 0], [0.5] * 3]
    ).get_primitive_structure()


def test_sample_strategy_statistics_are_reproducible_and_consistent(sevennet: EnergyModel) -> None:
    from screening.models import sample_configurations

    parent = _li_na_cl()
    settings = {"n_samples": 4, "max_supercell_sites": 16}  # 2x2x2 primitive cells, 16 sites
    first, again = (predict_energies(sevennet, [parent], seed=11, **settings)[0] for _ in range(2))
    other = predict_energies(sevennet, [parent], seed=12, **settings)[0]
    assert first == again
    assert (
        first.disorder_strategy == "sample" and first.n_configurations == 4 and first.composition_error == 0
    )
    assert other.energy_per_atom_eV != first.energy_per_atom_eV
    # the statistics are those of the configurations' own energies
    configurations = sample_configurations(parent, 4, seed=11, max_supercell_sites=16).structures
    for configuration in configurations:
        assert configuration.composition.reduced_composition == Composition("LiNaCl2")
    energies = sevennet.predict_energy_per_atom(configurations)
    assert first.energy_per_atom_eV == pytest.approx(energies.mean(), abs=1e-9)
    assert first.energy_per_atom_std_eV == pytest.approx(energies.std(ddof=1), abs=1e-9)
    assert first.energy_per_atom_std_eV > 0


def test_meanfield_of_a_mixed_site_lies_between_its_end_members(sevennet: EnergyModel) -> None:
    """Li0.5Na0.5Cl at a fixed lattice: the mean-field energy interpolates between LiCl and NaCl."""
    mixed = _li_na_cl()
    ends = [Structure(mixed.lattice, [el, "Cl"], mixed.frac_coords) for el in ("Li", "Na")]
    e_li, e_na = sevennet.predict_energy_per_atom(ends)
    (prediction,) = predict_energies(sevennet, [mixed], disorder_strategy="meanfield")
    assert prediction.n_configurations == 1 and prediction.energy_per_atom_std_eV == 0
    assert min(e_li, e_na) < prediction.energy_per_atom_eV < max(e_li, e_na)


def test_alchemical_route_is_the_potential_on_ordered_structures_and_weights_partial_sites(
    sevennet: EnergyModel,
) -> None:
    """Route (a): on an ordered structure it is the plain potential; a site emptied to occupancy ~0
    sends no message and carries no energy, so the cell behaves as if the site were gone."""
    ordered = _small_set()[:2]
    energies, errors = sevennet.alchemical_energy_per_atom(ordered)
    assert errors == [None, None]
    np.testing.assert_allclose(energies, sevennet.predict_energy_per_atom(ordered), atol=1e-6)
    lattice = Lattice.cubic(4.2)
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]]
    ghost = Structure(lattice, ["Li", "F", {"Li": 1e-9}], coords)
    without = Structure(lattice, ["Li", "F"], coords[:2])
    (ghost_eV,), _ = sevennet.alchemical_energy_per_atom([ghost])
    assert ghost_eV == pytest.approx(sevennet.predict_energy_per_atom([without])[0], abs=1e-5)


def test_one_bad_structure_never_fails_the_others(sevennet: EnergyModel) -> None:
    good = _small_set()
    isolated = Structure(Lattice.cubic(20.0), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    polonium = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    mixed = [good[0], isolated, good[1], polonium, "not a structure", good[2]]
    predictions = predict_energies(sevennet, mixed, max_atoms_per_batch=4096)  # type: ignore[list-item]
    expected = sevennet.predict_energy_per_atom(good[:3])
    assert [p.error is None for p in predictions] == [True, False, True, False, False, True]
    assert "no neighbour within the cutoff" in predictions[1].error
    assert "Po" in predictions[3].error
    assert "pymatgen Structure" in predictions[4].error
    assert all(np.isnan(predictions[i].energy_per_atom_eV) for i in (1, 3, 4))
    np.testing.assert_allclose([predictions[i].energy_per_atom_eV for i in (0, 2, 5)], expected, atol=1e-5)
    with pytest.raises(ValueError, match="structure 1: IsolatedAtomError"):
        sevennet.predict_energy_per_atom([good[0], isolated])
    with pytest.raises(ValueError, match="disordered"):
        sevennet.predict_energy_per_atom([_li_na_cl()])


@pytest.mark.slow
def test_relaxation_lowers_the_energy_of_a_strained_cell(sevennet: EnergyModel) -> None:
    from screening.models import relax_structure

    strained = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.25), ["Li", "F"], [[0, 0, 0], [0.5] * 3])
    strained = strained.get_primitive_structure()
    (unrelaxed,) = sevennet.predict_energy_per_atom([strained])
    result = relax_structure(sevennet, strained, fmax_eV_per_A=0.05, max_steps=60)
    assert result.converged and 0 < result.n_steps <= 60
    assert result.energy_per_atom_eV < unrelaxed - 1e-3
    # rock-salt LiF contracts towards its PBE lattice parameter (about 4.06-4.1 angstrom; experiment 4.03)
    a_conventional = result.structure.lattice.a * 2**0.5
    assert 3.95 < a_conventional < 4.2
    (via_predict,) = predict_energies(
        sevennet, [strained], relax=True, fmax_eV_per_A=0.05, max_relax_steps=60
    )
    assert via_predict.relax_converged is True
    assert via_predict.energy_per_atom_eV == pytest.approx(result.energy_per_atom_eV, abs=1e-4)


def test_graphs_prefetched_on_a_thread_give_the_same_energies_and_errors(sevennet: EnergyModel) -> None:
    """The GPU path builds the next batch's graphs while the model evaluates; forced on here, on the CPU."""
    good = _small_set()
    polonium = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    mixed = [good[0], polonium, good[1], "not a structure", good[2], good[3]]
    assert sevennet.prefetch_graphs is False  # the CPU default: the two would compete for cores
    plain = sevennet.try_predict_energy_per_atom(mixed, max_atoms_per_batch=9)  # type: ignore[arg-type]
    sevennet.prefetch_graphs = True
    try:
        prefetched = sevennet.try_predict_energy_per_atom(mixed, max_atoms_per_batch=9)  # type: ignore[arg-type]
    finally:
        sevennet.prefetch_graphs = None
    np.testing.assert_array_equal(prefetched[0], plain[0])
    assert prefetched[1] == plain[1] and plain[1][1] is not None and plain[1][3] is not None


def test_the_plain_tensor_products_on_a_cpu() -> None:
    from screening.models._sevennet import available_accelerator

    assert available_accelerator(torch.device("cpu")) == "e3nn"
    assert load_model("sevennet-0", device="cpu").accelerator == "e3nn"
