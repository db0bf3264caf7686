"""Published crystal structures as records: space group, lattice parameters and asymmetric unit.

The YAML format of the package data that describes structures (the bundled default set,
``screening/data/bundled/*.yaml``, and the hull binaries, ``screening/data/hull_binaries.yaml``): each
entry gives a space group, lattice parameters and the asymmetric unit (Wyckoff positions with fractional
coordinates and occupancies, species with oxidation states) as published, plus the structure reference
and, where the literature gives them, the measured room-temperature ionic conductivity and activation
energy. Structures are generated with ``Structure.from_spacegroup``; disordered sites stay disordered.
Parsing only: validation belongs to the sources that turn records into table rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.symmetry.groups import SpaceGroup

from screening.errors import InputError
from screening.resources import package_data
from screening.schema import Col
from screening.structures import OCCUPANCY_TOLERANCE

Category = Literal["solid_electrolyte", "cathode", "anode", "reference_binary"]
CATEGORIES: tuple[str, ...] = ("solid_electrolyte", "cathode", "anode", "reference_binary")

_REQUIRED_KEYS = ("id", "name", "formula", "spacegroup", "lattice", "sites", "reference", "category")
_LATTICE_KEYS = ("a", "b", "c", "alpha", "beta", "gamma")


def bundled_data_path() -> Path:
    """Folder of the bundled set's YAML files (package data, found with ``importlib.resources``)."""
    return package_data("bundled")


@cache
def _space_group(spacegroup: str | int) -> SpaceGroup:
    """The space group, built once per process.

    Generating a cubic group's 192 operations takes ~0.4 s. pymatgen caches ``SpaceGroup`` instances by
    their arguments, but only while someone holds a reference; holding them here makes every later
    ``Structure.from_spacegroup`` with the same symbol reuse the group.
    """
    try:
        return SpaceGroup.from_int_number(int(spacegroup))
    except ValueError:
        return SpaceGroup(str(spacegroup))


def _fraction(value: Any) -> float:
    """A coordinate given as a number or as a fraction string such as ``"1/3"``."""
    if isinstance(value, bool):
        raise InputError(f"not a coordinate: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    return float(Fraction(str(value).strip()))


@dataclass(frozen=True)
class BundledSite:
    """One site of the asymmetric unit.

    Attributes:
        label: crystallographic label (``Li1``, ``O2``).
        species: species string with oxidation state (``"Li+"``) -> occupancy (0..1].
        coords: fractional coordinates.
    """

    label: str
    species: Mapping[str, float]
    coords: tuple[float, float, float]


@dataclass(frozen=True)
class BundledEntry:
    """A bundled material: published structure plus measured transport data.

    Attributes:
        id: unique id (``bundled-Li7La3Zr2O12-cubic``).
        name: readable name.
        formula: published formula the structure's composition must match.
        spacegroup: Hermann-Mauguin symbol or number.
        lattice_A_deg: a, b, c (angstrom), alpha, beta, gamma (degrees).
        sites: asymmetric unit.
        reference: literature reference of the structure.
        category: solid_electrolyte, cathode, anode or reference_binary.
        mobile_ion: element symbol of the conducting ion, if any.
        sigma_rt_S_per_cm: measured room-temperature ionic conductivity (S/cm).
        sigma_kind: what ``sigma_rt_S_per_cm`` is (``total``, ``bulk``, ``single crystal ...``).
        ea_eV: measured activation energy of ionic conduction (eV).
        conductivity_reference: literature reference of the transport data.
        note: free-text remarks (setting, model choices).
    """

    id: str
    name: str
    formula: str
    spacegroup: str | int
    lattice_A_deg: tuple[float, float, float, float, float, float]
    sites: tuple[BundledSite, ...]
    reference: str
    category: str
    mobile_ion: str | None = None
    sigma_rt_S_per_cm: float | None = None
    sigma_kind: str | None = None
    ea_eV: float | None = None
    conductivity_reference: str | None = None
    note: str | None = None

    @property
    def is_disordered(self) -> bool:
        """Whether any site is mixed or partially occupied."""
        return any(len(site.species) > 1 or sum(site.species.values()) < 1 for site in self.sites)

    def structure(self) -> Structure:
        """The full unit cell generated from the space group (disordered sites kept disordered)."""
        lattice = Lattice.from_parameters(*self.lattice_A_deg)
        species = [Composition(dict(site.species)) for site in self.sites]
        coords = [list(site.coords) for site in self.sites]
        labels = [site.label for site in self.sites]
        try:
            _space_group(self.spacegroup)
            return Structure.from_spacegroup(
                self.spacegroup, lattice, species, coords, tol=1e-3, labels=labels
            )
        except Exception as error:
            raise InputError(f"{self.id}: cannot build structure: {error}") from error

    def row_labels(self) -> dict[str, Any]:
        """Label columns of the structures table that this entry fills."""
        return {
            Col.NAME: self.name,
            Col.REFERENCE: self.reference,
            Col.EXP_SIGMA_RT: self.sigma_rt_S_per_cm,
            Col.EXP_EA: self.ea_eV,
            Col.EXP_REFERENCE: self.conductivity_reference,
        }


def _optional_float(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    return None if value is None else float(value)


def parse_entry(record: Mapping[str, Any]) -> BundledEntry:
    """Turn one YAML record into a :class:`BundledEntry`, with a clear error for malformed input."""
    if not isinstance(record, Mapping):
        raise InputError(f"entry is not a mapping: {record!r}")
    entry_id = record.get("id", "<no id>")
    missing = [key for key in _REQUIRED_KEYS if record.get(key) is None]
    if missing:
        raise InputError(f"{entry_id}: missing field(s) {', '.join(missing)}")
    if record["category"] not in CATEGORIES:
        raise InputError(f"{entry_id}: category {record['category']!r} is not one of {CATEGORIES}")
    lattice = record["lattice"]
    if not isinstance(lattice, Mapping) or any(key not in lattice for key in _LATTICE_KEYS):
        raise InputError(f"{entry_id}: lattice needs {', '.join(_LATTICE_KEYS)}")
    sites = []
    for site in record["sites"]:
        coords = tuple(_fraction(x) for x in site["coords"])
        if len(coords) != 3:
            raise InputError(f"{entry_id}: site {site.get('label')} needs 3 coordinates")
        species = {str(name): float(occ) for name, occ in site["species"].items()}
        total = sum(species.values())
        if not 0 < total <= 1 + OCCUPANCY_TOLERANCE or min(species.values()) <= 0:
            raise InputError(
                f"{entry_id}: site {site.get('label')} has total occupancy {total:g} (must be in (0, 1])"
            )
        sites.append(BundledSite(label=str(site["label"]), species=species, coords=coords))
    return BundledEntry(
        id=str(entry_id),
        name=str(record["name"]),
        formula=str(record["formula"]),
        spacegroup=record["spacegroup"],
        lattice_A_deg=tuple(float(lattice[key]) for key in _LATTICE_KEYS),
        sites=tuple(sites),
        reference=str(record["reference"]),
        category=str(record["category"]),
        mobile_ion=record.get("mobile_ion"),
        sigma_rt_S_per_cm=_optional_float(record, "sigma_rt_S_per_cm"),
        sigma_kind=record.get("sigma_kind"),
        ea_eV=_optional_float(record, "ea_eV"),
        conductivity_reference=record.get("conductivity_reference"),
        note=record.get("note"),
    )


def load_records(path: Path | None = None) -> list[Mapping[str, Any]]:
    folder = bundled_data_path() if path is None else Path(path)
    files = [folder] if folder.is_file() else sorted(folder.glob("*.yaml"))
    records: list[Mapping[str, Any]] = []
    for file in files:
        content = yaml.safe_load(file.read_text(encoding="utf-8")) or []
        if not isinstance(content, list):
            raise InputError(f"{file}: expected a list of entries")
        records.extend(content)
    ids = [record.get("id") for record in records if isinstance(record, Mapping)]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"duplicate bundled id(s): {', '.join(map(str, duplicates))}")
    return records


def load_bundled_entries(path: Path | None = None) -> list[BundledEntry]:
    """All bundled entries (strict: a malformed entry raises ``ValueError``).

    Args:
        path: a YAML file or a folder of them; default :func:`bundled_data_path`.
    """
    return [parse_entry(record) for record in load_records(path)]
