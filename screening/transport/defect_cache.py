"""Frenkel energies kept between runs, keyed by everything they are computed from.

The potential's defect calculation (:func:`screening.transport.defects.frenkel_energy_with_potential_eV`)
is the costly part of a physics-only transport row: minutes per structure on a CPU core, up to half an
hour for a 100-atom argyrodite configuration. Its result depends on its inputs alone (the structure as
given, the mobile ion, the site vacated, the interstitial candidates, the potential and its weights, the
:class:`~screening.transport.defects.DefectOptions`) and on the code that computes it. A rerun at
another temperature, with other bond-valence settings, or a benchmark row after a change to the
migration barrier asks the same question again; with a cache directory it is answered from disk.

One small JSON file per calculation, named by the SHA-256 of its key, holding the Frenkel energy. Only
results are kept: a refused calculation is computed again next time (a refusal may be the machine's, an
out-of-memory error, rather than the structure's). Each file is written
whole under a temporary name and then renamed, so workers that share a directory (one Dask worker per GPU,
SLURM jobs on a shared file system) never read half a file; a file that cannot be read is a miss. Nothing
is ever deleted: removing the directory empties the cache.

What the key holds beyond the inputs: the SHA-256 of the code of the modules the result follows (the
defect calculation, the fixed-cell relaxation, the configuration sampler, the supercell choice), so any
change to that code starts from an empty cache instead of serving an answer the new code would not give;
the code is read as Python's parser sees it, without comments and docstrings, so a change to the
documentation alone keeps the cache (the parser's trees differ between Python versions, so processes on
different Python versions do not share entries: a miss, never a wrong answer); and the potential's
``weights_sha256`` where the model has one. Not in the key: the device and the library versions (a GPU
and a CPU agree to well under the 0.01 eV the energies are reported to).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from screening.transport.defects import DefectOptions

#: Resolution of the positions in the key (fractional coordinates), far below any physical difference.
KEY_FRACTIONAL_RESOLUTION = 1e-9

#: Modules whose source decides the Frenkel energy (their SHA-256 is part of every key).
CODE_MODULES = (
    "screening.transport.defects",
    "screening.models.relax",
    "screening.models.disorder",
    "screening.transport.md",
)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` with the docstring of every module, class and function removed (in place)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def code_sha256(sources: list[str]) -> str:
    """SHA-256 of what ``sources`` (Python module texts, in order) compute: their syntax trees without
    docstrings, so comments, docstrings and layout do not enter."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(ast.dump(_without_docstrings(ast.parse(source))).encode())
    return digest.hexdigest()


def code_module_paths() -> list[Path]:
    """The files of :data:`CODE_MODULES`, in order."""
    return [Path(importlib.import_module(name).__file__) for name in CODE_MODULES]


@functools.cache
def _code_sha256() -> str:
    """:func:`code_sha256` of the :data:`CODE_MODULES`, read once per process (the code a process has
    imported does not change under it)."""
    return code_sha256([path.read_text() for path in code_module_paths()])


def _positions(frac: np.ndarray) -> list[list[int]]:
    return np.rint(np.atleast_2d(frac) / KEY_FRACTIONAL_RESOLUTION).astype(np.int64).tolist()


def frenkel_key(
    structure: Structure,
    mobile_ion: str,
    site_frac: np.ndarray,
    interstitial_candidates_frac: np.ndarray,
    energy_model: Any,
    options: DefectOptions,
) -> str:
    """SHA-256 (hex) of the inputs of one Frenkel calculation and of the code that computes it.

    The structure enters site by site in its given order (the configuration sampler draws in that order),
    with each site's species and occupancies; oxidation states do not enter (the calculation ignores
    them). Only the candidates the calculation uses (``options.interstitial_candidates``) enter.
    """
    sites = []
    for site, position in zip(structure, _positions(structure.frac_coords), strict=True):
        occupancy = sorted(
            (getattr(specie, "symbol", str(specie)), round(float(amount), 9))
            for specie, amount in site.species.items()
        )
        sites.append([position, occupancy])
    payload = {
        "code": _code_sha256(),
        "lattice": np.round(structure.lattice.matrix, 9).tolist(),
        "sites": sites,
        "mobile_ion": mobile_ion,
        "site": _positions(np.asarray(site_frac) % 1.0),
        "candidates": _positions(
            np.atleast_2d(interstitial_candidates_frac)[: options.interstitial_candidates]
        ),
        "model": energy_model.name,
        "weights_sha256": getattr(energy_model, "weights_sha256", None),
        "options": asdict(options),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class FrenkelCache:
    """A directory of computed Frenkel energies (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> float | None:
        """The Frenkel energy stored under ``key`` (eV), None where there is none or the file cannot be
        read."""
        try:
            value = json.loads(self._path(key).read_text())["frenkel_eV"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    def put(self, key: str, frenkel_eV: float) -> None:
        """Store ``frenkel_eV`` under ``key``: written whole to a temporary file, then renamed into place."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w") as stream:
                json.dump({"frenkel_eV": frenkel_eV}, stream)
            os.replace(temporary, self._path(key))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def frenkel_energy_eV(self, key: str, compute: Callable[[], float]) -> float:
        """The Frenkel energy stored under ``key``, else ``compute()``'s, which is stored (a
        :class:`~screening.transport.defects.DefectError` from it passes through, unstored)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        value = compute()
        self.put(key, value)
        return value
