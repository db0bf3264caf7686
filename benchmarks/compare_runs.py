"""Compare the results of two runs over the same structures: does a code change move any number?

Usage: ``python benchmarks/compare_runs.py RUN_A RUN_B`` (run directories or their ``results/``). Prints the
row and status agreement, every float column's largest absolute and relative difference, every other
column that differs (nulls equal nulls), and both runs' wall and busy times from ``run.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

#: Columns that name the run rather than describe the structure.
RUN_COLUMNS = ("run_id",)


def _results(path: Path) -> pd.DataFrame:
    folder = path / "results" if (path / "results").is_dir() else path
    return pd.read_parquet(folder).set_index("id").sort_index()


def _times(path: Path) -> str:
    manifest = path / "run.json"
    if not manifest.is_file():
        return "no run.json"
    attempt = json.loads(manifest.read_text())["attempts"][-1]
    busy = sum(attempt["partition_seconds"].values())
    return f"wall {attempt['wall_time_s']:.0f} s, busy {busy:.0f} s"


def compare(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    lines = [f"rows {len(a)} / {len(b)}; same ids: {a.index.equals(b.index)}"]
    b = b.reindex(a.index)
    lines.append(f"same status everywhere: {bool((a['status'] == b['status']).all())}")
    for column in a.columns:
        if column in RUN_COLUMNS:
            continue
        if column not in b.columns:
            lines.append(f"{column}: only in the first run")
            continue
        x, y = a[column], b[column]
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
            if (x.isna() != y.isna()).any():
                lines.append(f"{column}: null in one run only in {int((x.isna() != y.isna()).sum())} rows")
            both = x.notna() & y.notna() & np.isfinite(x) & np.isfinite(y)
            diff = (x[both] - y[both]).abs()
            if len(diff) and diff.max() > 0:
                rel = diff / np.maximum(y[both].abs(), 1e-300)
                lines.append(f"{column}: max abs {diff.max():.2e}, max rel {rel.max():.2e} ({diff.idxmax()})")
        else:
            same = (x.astype(str) == y.astype(str)) | (x.isna() & y.isna())
            if not same.all():
                lines.append(
                    f"{column}: {int((~same).sum())} rows differ, e.g. {x[~same].iloc[0]!r} vs {y[~same].iloc[0]!r}"
                )
    return lines


def main() -> None:
    first, second = (Path(p) for p in sys.argv[1:3])
    for line in compare(_results(first), _results(second)):
        print(line)
    print(f"first: {_times(first)}; second: {_times(second)}")


if __name__ == "__main__":
    main()
