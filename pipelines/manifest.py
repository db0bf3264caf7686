"""``run.json``: what a run was (configuration, versions, model and hull) and how it went (timings, counts)."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

MANIFEST_NAME = "run.json"

#: Packages whose versions decide the numbers a run produces.
TRACKED_PACKAGES = (
    "screening",
    "torch",
    "torch-geometric",
    "sevenn",
    "chgnet",
    "pymatgen",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "dask",
    "distributed",
)


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed versions of ``packages`` (None for one that is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def now_iso() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``run.json`` of ``run_dir``, or None when there is none yet."""
    path = Path(run_dir) / MANIFEST_NAME
    return json.loads(path.read_text()) if path.exists() else None


def write_manifest(run_dir: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    """Write ``run.json`` atomically (temporary file, then rename)."""
    path = Path(run_dir) / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{MANIFEST_NAME}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path


def base_manifest(run_id: str, config: dict[str, Any], input_info: dict[str, Any]) -> dict[str, Any]:
    """The parts of ``run.json`` known before any work is done."""
    return {
        "run_id": run_id,
        "config": config,
        "input": input_info,
        "versions": package_versions(),
        "host": {"platform": platform.platform(), "python": sys.executable},
    }
