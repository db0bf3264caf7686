"""Fill a Frenkel-energy cache (:mod:`screening.transport.defect_cache`) from a finished potential row of
``bench_conductivity.py``, so that the next row computes again only the energies whose inputs or code
changed (a potential row otherwise takes about 7 CPU-hours here, two thirds of them in defect supercells).

    nice .venv/bin/python benchmarks/seed_defect_cache.py --label LABEL --cache DIR
    nice .venv/bin/python benchmarks/bench_conductivity.py --label NEW --frenkel-method potential \\
        --include-disordered --defect-cache DIR --write

Each structure of the row whose Frenkel energy came from SevenNet-0 goes through the transport stage
again, with the row's recorded energy standing in for the defect calculation (the bond-valence part takes
seconds); the cache key is built there, from the inputs the stage hands the calculation. An entry is kept
only where this replay reproduces the row's log10 sigma to 1e-9, the evidence that the key describes the
calculation the row made; and nothing is seeded unless the code of the modules the key holds
(``defect_cache.CODE_MODULES``, read without comments and docstrings) is that of the row's code revision.
The replay draws one configuration per structure: a row whose disordered structures averaged several
(``Frenkel energy from ..., mean Frenkel fraction of N ordered configuration(s)``) records only their mean,
so those structures are not seeded.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))

from bench_conductivity import (  # noqa: E402
    DATA_DIR,
    MOBILE_ION,
    RESULTS_DIR,
    TEMPERATURE_K,
    _float,
    load_obelix,
    obelix_id,
    read_csv,
    slugify,
)

#: The replay must give the row's log10 sigma to this (the same numbers in the same order).
REPLAY_TOLERANCE = 1e-9


def _changed_code(revision: str) -> list[str]:
    """The key's code modules whose code (docstrings and comments aside) differs from ``revision``'s."""
    from screening.transport.defect_cache import code_module_paths, code_sha256

    changed = []
    for path in code_module_paths():
        relative = str(path.resolve().relative_to(_REPO))
        then = subprocess.run(
            ["git", "show", f"{revision}:{relative}"], cwd=_REPO, capture_output=True, text=True
        )
        if then.returncode != 0:
            raise SystemExit(f"cannot read {relative} at revision {revision!r}: {then.stderr.strip()}")
        if code_sha256([then.stdout]) != code_sha256([path.read_text()]):
            changed.append(relative)
    return changed


def _structures(needed: set[tuple[str, str]]) -> dict[tuple[str, str], object]:
    """Structures of the row's entries, read as ``bench_conductivity.py`` reads them."""
    from screening.sources.bundled import iter_bundled_rows
    from screening.structures import row_to_structure

    rows = {("bundled", r["id"]): r for r in iter_bundled_rows()}
    if any(dataset == "obelix" for dataset, _ in needed):
        rows |= {("obelix", obelix_id(r)): r for r in load_obelix(DATA_DIR, workers=1)[0]}
    return {key: row_to_structure(rows[key]) for key in needed if key in rows}


def seed(label: str, cache_dir: Path, energy_model: Any = None) -> tuple[int, list[str]]:
    """Seed ``cache_dir`` from the row ``label`` (its Frenkel energies from ``energy_model``, by default
    SevenNet-0, the potential of every potential row): the number of entries stored, and why the others
    were not."""
    import screening.transport.potential_frenkel as potential_frenkel
    from screening.transport import compute_transport
    from screening.transport.defects import DefectOptions
    from screening.transport.potential_frenkel import MEAN_OF_CONFIGURATIONS

    if energy_model is None:
        from screening.models import load_model

        energy_model = load_model("sevennet-0", device="cpu")
    records = read_csv(RESULTS_DIR / f"conductivity-{slugify(label)}.csv")
    source = f"Frenkel energy from {energy_model.name}"
    potential = [
        r
        for r in records
        if r["status"] == "ok"
        and source in r["transport_notes"]
        and MEAN_OF_CONFIGURATIONS not in r["transport_notes"]
    ]
    if not potential:
        raise SystemExit(f"no {source} in the row {label!r}")
    revisions = {r["code"] for r in potential}
    if len(revisions) != 1:
        raise SystemExit(f"the row mixes code revisions {sorted(revisions)}")
    changed = _changed_code(revisions.pop())
    if changed:
        raise SystemExit(
            f"the defect code changed since the row was computed ({', '.join(changed)}): nothing to seed"
        )

    structures = _structures({(r["set"], r["id"]) for r in potential})
    stored, skipped = 0, []
    cache_dir.mkdir(parents=True, exist_ok=True)
    original = potential_frenkel.frenkel_energy_with_potential_eV
    try:
        for index, record in enumerate(potential, 1):
            entry = f"{record['set']}/{record['id']}"
            structure = structures.get((record["set"], record["id"]))
            if structure is None:
                skipped.append(f"{entry}: not found in its set")
                continue
            recorded_eV = _float(record["defect_formation_eV"])
            potential_frenkel.frenkel_energy_with_potential_eV = lambda *inputs, value=recorded_eV: value
            with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".seed-") as staging:
                replay = compute_transport(
                    structure,
                    mobile_ion=MOBILE_ION,
                    temperature_K=TEMPERATURE_K,
                    energy_model=energy_model,
                    frenkel_method="potential",
                    defect_options=DefectOptions(include_disordered=True),
                    frenkel_configurations=1,
                    defect_cache_dir=staging,
                )
                keys = list(Path(staging).glob("*.json"))
                expected = _float(record["log10_sigma_S_per_cm"])
                if len(keys) != 1 or not math.isclose(
                    replay["log10_sigma_S_per_cm"], expected, rel_tol=0, abs_tol=REPLAY_TOLERANCE
                ):
                    replayed = replay["log10_sigma_S_per_cm"]
                    skipped.append(
                        f"{entry}: the replay gives log10 sigma {replayed:.6g}, the row {expected:.6g}"
                    )
                    continue
                os.replace(keys[0], cache_dir / keys[0].name)
                stored += 1
            print(
                f"[{index}/{len(potential)}] {entry}: E_F {recorded_eV:.3f} eV stored",
                file=sys.stderr,
                flush=True,
            )
    finally:
        potential_frenkel.frenkel_energy_with_potential_eV = original
    return stored, skipped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", required=True, help="a finished bench_conductivity.py potential row")
    parser.add_argument("--cache", required=True, type=Path, help="the cache directory to fill")
    args = parser.parse_args(argv)
    stored, skipped = seed(args.label, args.cache.resolve())
    print(f"{stored} Frenkel energies stored in {args.cache}; {len(skipped)} not stored")
    for reason in skipped:
        print(f"  {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
