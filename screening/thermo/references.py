"""Reference entries for convex hulls, MP2020-corrected, with one phase diagram per chemical system.

Two sources of references:

* entries pulled from the Materials Project for the chemical systems at hand (the references table of
  ``screening.sources.mp``, one ``entry_json`` per row), when the caller has them;
* otherwise the 423 Materials Project GGA/GGA+U entries that ship inside pymatgen
  (``pymatgen/analysis/compatibility/calc_compounds.json.gz``: every element plus common binaries and
  some ternaries). That file holds raw (uncorrected) VASP energies: every entry has ``correction == 0``
  and records its run type, Hubbard U values and POTCARs; it is the calculated side of the fit of the
  MP2020 corrections themselves.

Both are re-processed with ``MaterialsProject2020Compatibility`` (previous adjustments removed first, so an
entry is never corrected twice), and the predicted energy gets the same scheme (``corrections.py``).

A hull built from a reference set that misses phases lies too high, so candidates look more stable
than they are; the bundled set in particular has few ternaries. The name of the set used is recorded
with every result (``hull_reference``) so that such rows can be told apart.
"""

from __future__ import annotations

import copy
import gzip
import json
import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from monty.json import MontyDecoder
from pymatgen.analysis import compatibility as _compatibility_package
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition, Element
from pymatgen.entries.compatibility import CompatibilityError
from pymatgen.entries.computed_entries import ComputedEntry

from screening.thermo.corrections import mp2020_compatibility
from screening.thermo.errors import ThermoError

#: The pymatgen-shipped Materials Project entries (raw GGA/GGA+U energies).
CALC_COMPOUNDS_PATH = Path(_compatibility_package.__file__).parent / "calc_compounds.json.gz"

_LOG = logging.getLogger(__name__)

#: ``hull_reference`` of rows placed on the pymatgen-shipped hull.
BUNDLED_NAME = "pymatgen-calc_compounds"

ReferencesInput = pa.Table | pd.DataFrame | str | os.PathLike | None


#: Anions of battery materials: every metal (or metalloid) forms binary compounds with each of them,
#: which a complete hull must contain.
ANION_FORMERS = frozenset({"N", "O", "S", "Se", "Te", "F", "Cl", "Br", "I"})


def _symbols(composition: Composition) -> frozenset[str]:
    return frozenset(el.symbol for el in composition.elements if composition[el] > 0)


def chemical_system(symbols: Iterable[str]) -> str:
    """``Li-Co-O`` style key of a set of element symbols (alphabetical: ``Co-Li-O``)."""
    return "-".join(sorted(set(symbols)))


def mp2020_corrected(entries: Iterable[ComputedEntry]) -> tuple[list[ComputedEntry], int]:
    """Copies of ``entries`` carrying exactly the MP2020 corrections, and the number rejected.

    Previous energy adjustments are removed before the scheme is applied (never corrected twice).
    Entries the scheme cannot take (r2SCAN run types, wrong U values or POTCARs, missing calculation
    parameters) are rejected rather than mixed in with an inconsistent energy scale.
    """
    compatibility = mp2020_compatibility()
    kept: list[ComputedEntry] = []
    rejected: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # formula-only oxide typing and failed oxidation-state guesses
        for entry in entries:
            entry = copy.deepcopy(entry)
            try:
                processed = compatibility.process_entry(entry, clean=True, on_error="raise")
                reason = "conflicting previous adjustment"
            except (CompatibilityError, KeyError, ValueError) as exc:
                processed, reason = None, f"{type(exc).__name__}: {str(exc)[:120]}"
            if processed is None:
                rejected.append(f"{entry.entry_id} ({entry.composition.reduced_formula}): {reason}")
            else:
                kept.append(processed)
    if rejected:
        _LOG.warning(
            "MP2020 rejected %d reference entries, left out of the hull: %s%s",
            len(rejected),
            "; ".join(rejected[:5]),
            " ..." if len(rejected) > 5 else "",
        )
    return kept, len(rejected)


@dataclass(eq=False)
class ReferenceSet:
    """MP2020-corrected reference entries with a phase-diagram cache per chemical system.

    Attributes:
        name: what goes into ``hull_reference`` for rows placed on this set's hulls.
        entries: the corrected entries.
        fallback: the set to use for compositions this one does not cover (an element without an
            elemental entry), or None.
        n_rejected: entries dropped because the MP2020 scheme could not process them.
    """

    name: str
    entries: Sequence[ComputedEntry]
    fallback: ReferenceSet | None = None
    n_rejected: int = 0
    _by_system: dict[frozenset[str], list[ComputedEntry]] = field(
        default_factory=dict, init=False, repr=False
    )
    _diagrams: dict[str, PhaseDiagram] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            self._by_system.setdefault(_symbols(entry.composition), []).append(entry)

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[ComputedEntry],
        name: str,
        *,
        fallback: ReferenceSet | None = None,
    ) -> ReferenceSet:
        """A set from raw or MP-corrected computed entries, re-processed with MP2020 (see
        :func:`mp2020_corrected`).

        Raises:
            ThermoError: if no entry survives the correction scheme.
        """
        kept, n_rejected = mp2020_corrected(entries)
        if not kept:
            raise ThermoError(
                f"reference set {name!r}: none of its {n_rejected} entries is compatible with MP2020 "
                "(GGA/GGA+U run type, MPRelaxSet U values and POTCARs required)"
            )
        return cls(name=name, entries=kept, fallback=fallback, n_rejected=n_rejected)

    @cached_property
    def elements(self) -> frozenset[str]:
        """Elements that have an elemental entry (a hull needs one for each of its elements)."""
        return frozenset(next(iter(key)) for key in self._by_system if len(key) == 1)

    def missing_anion_binaries(self, composition: Composition) -> list[str]:
        """Metal-anion binary systems of ``composition`` with no compound in this set, e.g. ``La-O``.

        Such a hull is missing competing phases that certainly exist (every metal forms an oxide, a
        sulfide, halides ...), so the hull distance computed on it is only a lower bound, too negative
        by up to electronvolts. Other pairs (metal-metal, P-S, P-Cl) are not checked: many have no
        compound, or none that competes. Missing ternary phases cannot be detected this way.
        """
        symbols = _symbols(Composition(composition))
        metals = {s for s in symbols if Element(s).is_metal or Element(s).is_metalloid}
        return [
            chemical_system((metal, anion))
            for anion in sorted(symbols & ANION_FORMERS)
            for metal in sorted(metals)
            if frozenset((metal, anion)) not in self._by_system
        ]

    def missing_elements(self, composition: Composition) -> list[str]:
        """Elements of ``composition`` without an elemental reference entry, sorted."""
        return sorted(_symbols(Composition(composition)) - self.elements)

    def for_composition(self, composition: Composition) -> ReferenceSet:
        """This set if it covers ``composition``, else its fallback if that does.

        Raises:
            ThermoError: naming the missing elements when neither covers the composition.
        """
        missing = self.missing_elements(composition)
        if not missing:
            return self
        if self.fallback is not None and not self.fallback.missing_elements(composition):
            return self.fallback
        raise ThermoError(
            f"reference set {self.name!r} has no elemental entry for {', '.join(missing)} "
            f"(needed for {Composition(composition).reduced_formula}); no hull can be built"
        )

    def phase_diagram(self, symbols: Iterable[str]) -> PhaseDiagram:
        """The phase diagram of the chemical system spanned by ``symbols``, built once and cached.

        Raises:
            ThermoError: if an element of the system has no elemental entry in this set.
        """
        system = frozenset(symbols)
        key = chemical_system(system)
        if key not in self._diagrams:
            missing = sorted(system - self.elements)
            if missing:
                raise ThermoError(
                    f"reference set {self.name!r} has no elemental entry for {', '.join(missing)}"
                )
            entries = [entry for sub, group in self._by_system.items() if sub <= system for entry in group]
            self._diagrams[key] = PhaseDiagram(entries)
        return self._diagrams[key]


def _read_calc_compounds() -> list[ComputedEntry]:
    with gzip.open(CALC_COMPOUNDS_PATH, "rt") as handle:
        raw = json.load(handle)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No Pauling electronegativity")  # noble gases
        return [ComputedEntry.from_dict(entry) for entry in raw.values()]


@lru_cache(maxsize=1)
def bundled_reference_set() -> ReferenceSet:
    """The pymatgen-shipped Materials Project entries, MP2020-corrected (loaded once per process)."""
    return ReferenceSet.from_entries(_read_calc_compounds(), BUNDLED_NAME)


def _entries_from_table(references: pa.Table | pd.DataFrame) -> list[ComputedEntry]:
    frame = references.to_pandas() if isinstance(references, pa.Table) else references
    if "entry_json" not in frame.columns:
        raise ThermoError("references table has no 'entry_json' column (see REFERENCES_SCHEMA)")
    decoder = MontyDecoder()
    entries = []
    for i, text in enumerate(frame["entry_json"]):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="No Pauling electronegativity")  # noble gases
                entry = decoder.process_decoded(json.loads(text))
        except (TypeError, ValueError, KeyError) as exc:
            raise ThermoError(f"references row {i}: entry_json is not a computed entry ({exc})") from exc
        if not isinstance(entry, ComputedEntry):
            raise ThermoError(f"references row {i}: entry_json decodes to {type(entry).__name__}")
        entries.append(entry)
    return entries


def load_reference_entries(
    references: ReferencesInput = None, *, fallback_to_bundled: bool = True
) -> ReferenceSet:
    """The hull reference set: MP-pulled entries when given, else the pymatgen-shipped ones.

    Args:
        references: the references table of ``screening.sources.mp`` (pyarrow Table, pandas
            DataFrame, or the path of its Parquet file) or None for the pymatgen-shipped entries.
        fallback_to_bundled: with a references table, use the pymatgen-shipped set for compositions
            whose elements the table lacks (recorded per row in ``hull_reference``).

    Returns:
        A :class:`ReferenceSet` named ``"mp-api:<n> entries"`` or ``"pymatgen-calc_compounds"``.

    Raises:
        ThermoError: if the table is malformed or none of its entries is MP2020-compatible.
    """
    if references is None:
        return bundled_reference_set()
    if isinstance(references, str | os.PathLike):
        references = pq.read_table(references)
    entries = _entries_from_table(references)
    fallback = bundled_reference_set() if fallback_to_bundled else None
    kept, n_rejected = mp2020_corrected(entries)
    if not kept:
        raise ThermoError(f"none of the {len(entries)} reference entries is compatible with MP2020")
    return ReferenceSet(
        name=f"mp-api:{len(kept)} entries", entries=kept, fallback=fallback, n_rejected=n_rejected
    )
