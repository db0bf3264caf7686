"""Files the package ships (``screening/data``), found with ``importlib.resources`` so that an installed
wheel finds them exactly as a source checkout does."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from screening.errors import MissingInputError


def package_data(*parts: str) -> Path:
    """Path of ``screening/data/<parts...>`` in the installed package.

    Raises:
        FileNotFoundError: the package was installed without that file (a broken build).
    """
    path = Path(str(resources.files("screening").joinpath("data", *parts)))
    if not path.exists():
        raise MissingInputError(
            f"package data {'/'.join(parts)} missing from {path.parent}: reinstall screening"
        )
    return path
