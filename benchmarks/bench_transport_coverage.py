"""Transport-stage coverage: the share of Li-containing structures that pass ingest and get a
conductivity, on the bundled set and on Li-M-O structures of Materials Project's kind (mixed valence,
delithiated; :mod:`li_m_o`). The OBELiX coverage comes from ``bench_conductivity.py``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_transport_coverage.py`` (prints Markdown).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from li_m_o import li_m_o_structures  # noqa: E402

from screening.schema import STATUS_OK, Col  # noqa: E402
from screening.sources.bundled import iter_bundled_rows  # noqa: E402
from screening.structures import row_to_structure  # noqa: E402
from screening.transport import TransportError, compute_transport  # noqa: E402


def coverage(named_structures, grid_spacing_A: float = 0.25) -> tuple[Counter, list[tuple[str, str]], float]:
    """Outcome counts, the failures with their reasons, and the seconds taken."""
    counts: Counter = Counter()
    failures = []
    start = time.perf_counter()
    for name, structure in named_structures:
        try:
            row = compute_transport(structure, grid_spacing_A=grid_spacing_A)
            counts[row[Col.STATUS]] += 1
        except TransportError as exc:
            counts["failed"] += 1
            failures.append((name, str(exc)))
    return counts, failures, time.perf_counter() - start


def _bundled():
    for row in iter_bundled_rows():
        if row[Col.STATUS] == STATUS_OK and "Li" in row[Col.ELEMENTS]:
            yield row[Col.ID], row_to_structure(row)


def main() -> None:
    print("| set | Li structures | conductivity | not applicable | failed | failed % | s |")
    print("|---|---|---|---|---|---|---|")
    for label, items in (("bundled", _bundled()), ("generated Li-M-O", li_m_o_structures())):
        counts, failures, seconds = coverage(items)
        total = sum(counts.values())
        print(
            f"| {label} | {total} | {counts[STATUS_OK]} | {counts['not applicable']} | {counts['failed']} | "
            f"{100 * counts['failed'] / max(total, 1):.1f} | {seconds:.0f} |"
        )
        for name, reason in failures[:10]:
            print(f"|   failed: {name} | {reason[:140]} | | | | | |")


if __name__ == "__main__":
    main()
