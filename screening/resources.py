"""Files the package ships (``screening/data``), found with ``importlib.resources`` so that an installed
wheel finds them exactly as a source checkout does."""

from __future__ import annotations

from collections.abc import Mapping
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


def model_folder(name_or_path: str, shipped: Mapping[str, str], *, what: str, command: str) -> Path:
    """The folder of a shipped model (``shipped``: name -> folder under ``screening/data/models``) or the
    folder ``name_or_path``; it must hold a checkpoint (``model.json``).

    Raises:
        MissingInputError: no checkpoint there, naming the shipped ones and the ``command`` that writes one.
    """
    path = (
        package_data("models", shipped[name_or_path])
        if name_or_path in shipped
        else Path(name_or_path).expanduser()
    )
    if not (path / "model.json").is_file():
        raise MissingInputError(
            f"no {what} at {path}: give a shipped name ({', '.join(shipped)}) or a folder written by `{command}`"
        )
    return path
