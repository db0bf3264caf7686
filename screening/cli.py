"""The ``screening`` command: ``ingest`` here; ``run``, ``rank`` and ``demo`` in :mod:`screening.cli_pipeline`."""

from __future__ import annotations

import os
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="High-throughput screening of crystalline battery materials: stability and ionic conductivity.",
)


class SourceName(StrEnum):
    bundled = "bundled"
    files = "files"
    mp = "mp"


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def ingest_summary(rows: list[dict[str, Any]], out_dir: Path) -> str:
    """One screen of text about an ingested structures table."""
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    disordered = sum(1 for r in ok if not r["is_ordered"])
    elements = Counter(el for r in ok for el in r["elements"])
    lines = [
        f"structures table: {out_dir}",
        f"  rows: {len(rows)}   ok: {len(ok)}   failed: {len(failed)}   disordered: {disordered}",
        f"  sites per structure: {min((r['nsites'] for r in ok), default=0)}"
        f"-{max((r['nsites'] for r in ok), default=0)}",
        f"  elements ({len(elements)}): "
        + " ".join(f"{el}:{n}" for el, n in sorted(elements.items(), key=lambda kv: (-kv[1], kv[0]))),
    ]
    for row in failed[:10]:
        lines.append(f"  failed {row['id']}: {row['error']}")
    if len(failed) > 10:
        lines.append(f"  ... and {len(failed) - 10} more failed rows (column 'error')")
    return "\n".join(lines)


@app.command()
def ingest(
    out: Annotated[Path, typer.Option("--out", help="Directory of the structures dataset to write.")],
    source: Annotated[SourceName, typer.Option(help="Where the structures come from.")] = SourceName.bundled,
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or directories (--source files).")] = None,
    elements: Annotated[str | None, typer.Option(help="mp: must contain all of these, e.g. Li,O")] = None,
    exclude_elements: Annotated[str | None, typer.Option(help="mp: must contain none of these")] = None,
    chemsys: Annotated[str | None, typer.Option(help="mp: chemical system(s), e.g. Li-P-S")] = None,
    max_e_above_hull_eV: Annotated[float | None, typer.Option("--max-e-above-hull-eV")] = None,
    max_nsites: Annotated[int | None, typer.Option(help="mp: at most this many sites")] = None,
    theoretical: Annotated[bool | None, typer.Option("--theoretical/--experimental", help="mp")] = None,
    limit: Annotated[int | None, typer.Option(help="mp: at most this many structures")] = None,
    workers: Annotated[int, typer.Option(help="files: parse in this many processes")] = os.cpu_count() or 1,
) -> None:
    """Read structures from a source into a Parquet structures table (partitioned by a hash bucket)."""
    from screening.io import write_dataset

    if source is SourceName.bundled:
        from screening.sources.bundled import iter_bundled_rows

        rows = list(iter_bundled_rows())
    elif source is SourceName.files:
        from screening.sources.files import iter_file_rows

        if not paths:
            raise typer.BadParameter(
                "--source files needs at least one file or directory", param_hint="PATHS"
            )
        rows = list(iter_file_rows(paths, workers=workers, progress=True))
    else:
        rows = _ingest_mp(
            out,
            elements=_split(elements),
            exclude_elements=_split(exclude_elements),
            chemsys=_split(chemsys),
            max_energy_above_hull_eV=max_e_above_hull_eV,
            max_nsites=max_nsites,
            theoretical=theoretical,
            limit=limit,
        )
    if not rows:
        typer.echo("no structures matched; nothing written", err=True)
        raise typer.Exit(1)
    write_dataset(rows, out, source=source.value)
    typer.echo(ingest_summary(rows, out))


def _ingest_mp(out: Path, **filters: Any) -> list[dict[str, Any]]:
    """Query Materials Project, and write the reference entries of the systems found beside the table."""
    import pyarrow.parquet as pq

    from screening.sources.mp import (
        MPQuery,
        MPSourceError,
        fetch_reference_entries,
        iter_mp_rows,
        references_to_table,
    )

    try:
        query = MPQuery(**filters)
        rows = list(iter_mp_rows(query))
        systems = sorted({r["chemical_system"] for r in rows if r["status"] == "ok"})
        entries = fetch_reference_entries(systems) if systems else []
    except (MPSourceError, ValueError) as exc:
        typer.echo(f"Materials Project query failed: {exc}", err=True)
        raise typer.Exit(2) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    references_path = out.parent / f"{out.name}_references.parquet"
    pq.write_table(references_to_table(entries), references_path)
    typer.echo(f"reference entries for the hull: {len(entries)} -> {references_path}")
    return rows


# registers `run`, `rank` and `demo` on `app` (kept in their own module: they drive pipelines/)
from screening import cli_pipeline  # noqa: E402, F401
