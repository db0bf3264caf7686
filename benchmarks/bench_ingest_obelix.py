"""Ingest of the OBELiX training CIFs through the ``files`` source: how many are kept, why any fail, and
what the kept ones are warned about.

The 254 CIFs (``data/obelix-train/cifs``, CC BY 4.0, Therrien et al., arXiv:2502.14234) are
published disordered structures with added coordinate noise; ingest should keep them, disorder and all.

Run from the repository root::

    python -m benchmarks.bench_ingest_obelix [--data PATH] [--workers N]
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from screening.schema import Col
from screening.sources.files import iter_file_rows

_REPO = Path(__file__).resolve().parents[1]


def default_data_path() -> Path | None:
    """The project's copy of the OBELiX training folder (``data/obelix-train``), if present."""
    candidate = _REPO / "data" / "obelix-train"
    return candidate if (candidate / "cifs").is_dir() else None


def warning_kind(warning: str) -> str:
    """The fixed phrase a warning starts with (``"short contacts"``)."""
    return warning.split(":", 1)[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_path(), help="the obelix-train folder")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.data is None or not (args.data / "cifs").is_dir():
        parser.error("OBELiX data not found; pass --data .../obelix-train")

    partial = {}
    table = args.data / "conductivity_train.csv"
    if table.exists():
        with table.open(newline="") as handle:
            partial = {row["id"]: row["cif_has_partial_occupancy"] == "1" for row in csv.DictReader(handle)}

    start = time.perf_counter()
    rows = list(iter_file_rows([args.data / "cifs"], workers=args.workers))
    elapsed_s = time.perf_counter() - start
    ok = [row for row in rows if row[Col.STATUS] == "ok"]
    failed = [row for row in rows if row[Col.STATUS] != "ok"]
    disordered = sum(1 for row in ok if not row[Col.IS_ORDERED])
    published_partial = sum(1 for row in ok if partial.get(Path(row[Col.ID]).stem))
    kept_partial = sum(1 for row in ok if partial.get(Path(row[Col.ID]).stem) and not row[Col.IS_ORDERED])

    print(f"OBELiX training CIFs: {len(rows)} rows in {elapsed_s:.1f} s ({args.workers} worker(s))")
    print(f"  ok: {len(ok)}   failed: {len(failed)}   ok and disordered: {disordered}")
    if partial:
        print(f"  partial occupancies kept: {kept_partial} of {published_partial} ok rows whose CIF has them")
    print(f"  ok rows with warnings: {sum(1 for row in ok if row[Col.WARNINGS])}")
    for row in failed:
        print(f"  failed {row[Col.ID]}: {row[Col.ERROR][:240]}")
    kinds = Counter(warning_kind(w) for row in ok for w in row[Col.WARNINGS])
    print("  most common warnings (structures):")
    for kind, count in kinds.most_common(10):
        print(f"    {count:4d}  {kind}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
