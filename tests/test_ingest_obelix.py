"""The OBELiX training CIFs (published, disordered, with coordinate noise) ingest with their disorder kept."""

from __future__ import annotations

import csv
from pathlib import Path

from screening.schema import Col
from screening.sources.files import iter_file_rows

# the project's own copy (data/obelix-train, CC BY 4.0, with its attribution), which every checkout has


def test_obelix_training_cifs_ingest_with_their_disorder(obelix_dir: Path) -> None:
    n_files = len(list((obelix_dir / "cifs").glob("*.cif")))
    rows = list(iter_file_rows([obelix_dir / "cifs"], workers=2))
    assert len(rows) == n_files == 254
    ok = {Path(row[Col.ID]).stem: row for row in rows if row[Col.STATUS] == "ok"}
    failed = {row[Col.ID]: row[Col.ERROR] for row in rows if row[Col.STATUS] != "ok"}
    assert len(ok) >= 252, failed
    with (obelix_dir / "conductivity_train.csv").open(newline="") as handle:
        partial = {row["id"] for row in csv.DictReader(handle) if row["cif_has_partial_occupancy"] == "1"}
    assert {key for key in partial if key in ok and ok[key][Col.IS_ORDERED]} == set()  # disorder kept
    assert all(
        isinstance(row[Col.WARNINGS], list) and len(row[Col.STRUCTURE_SHA256]) == 64 for row in ok.values()
    )
