"""What ``run.json`` records beyond the settings: package versions, host, time stamps."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

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


def base_manifest(run_id: str) -> dict[str, Any]:
    """The parts of ``run.json`` known before any work is done (the run directory writes it)."""
    return {
        "run_id": run_id,
        "versions": package_versions(),
        "host": {"platform": platform.platform(), "python": sys.executable},
    }
