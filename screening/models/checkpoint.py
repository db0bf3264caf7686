"""Checkpoints of our own models: a folder that rebuilds the model without the training script.

Layout (the matgl habit: constructor arguments, weights and a version side by side):

- ``model.json``: ``format_version``, ``kind`` (what the folder holds), ``screening_version``, the
  ``constructor`` keyword arguments of every member network, the number of members, and free
  ``metadata`` (feature set, training manifest...).
- ``weights.pt``: the members' ``state_dict``s and named numpy arrays (as tensors), loaded with
  ``torch.load(weights_only=True)``, so a checkpoint can never run code.

Each file is written under a temporary name and renamed into place, so an interrupted save leaves the
previous checkpoint intact; ``weights_sha256`` in the manifest identifies the weights (a run records it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from screening.errors import InputError, MissingInputError
from screening.models.base import sha256_of_file

FORMAT_VERSION = 1
MANIFEST_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` reads back."""

    kind: str
    constructor: dict[str, Any]
    state_dicts: list[dict[str, torch.Tensor]]
    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]


def _screening_version() -> str:
    try:
        return version("screening")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "unknown"


def save_checkpoint(
    directory: str | os.PathLike,
    *,
    kind: str,
    constructor: dict[str, Any],
    state_dicts: list[dict[str, torch.Tensor]],
    arrays: dict[str, np.ndarray],
    metadata: dict[str, Any],
) -> Path:
    """Write a checkpoint into ``directory`` (see the module docstring); returns its path.

    Only ``model.json`` and ``weights.pt`` are written, each atomically (the weights first, so a reader
    never finds a manifest without its weights); other files in the folder are left alone.
    """
    from screening.io import write_file_atomic, write_text_atomic

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dicts": [{k: v.detach().cpu() for k, v in sd.items()} for sd in state_dicts],
        "arrays": {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)) for k, v in arrays.items()},
    }
    weights = write_file_atomic(target / WEIGHTS_FILE, lambda tmp: torch.save(payload, tmp))
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "screening_version": _screening_version(),
        "constructor": constructor,
        "n_members": len(state_dicts),
        "weights_sha256": sha256_of_file(weights),
        "metadata": metadata,
    }
    write_text_atomic(json.dumps(manifest, indent=1, sort_keys=True) + "\n", target / MANIFEST_FILE)
    return target


def load_checkpoint(directory: str | os.PathLike, *, kind: str) -> Checkpoint:
    """Read a checkpoint folder written by :func:`save_checkpoint` holding a model of ``kind``.

    Raises:
        MissingInputError: the folder or one of its files is missing.
        InputError: another kind of model, or a format this version cannot read.
    """
    folder = Path(directory)
    manifest_path, weights_path = folder / MANIFEST_FILE, folder / WEIGHTS_FILE
    for path in (manifest_path, weights_path):
        if not path.is_file():
            raise MissingInputError(f"{path} is missing: not a complete checkpoint folder")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{folder}: checkpoint format {manifest.get('format_version')} is not {FORMAT_VERSION}"
        )
    if manifest.get("kind") != kind:
        raise InputError(f"{folder} holds a {manifest.get('kind')!r} model, not a {kind!r} one")
    if manifest.get("weights_sha256") not in (None, sha256_of_file(weights_path)):
        raise InputError(f"{weights_path} does not match its manifest (weights changed or damaged)")
    payload = torch.load(weights_path, map_location="cpu", weights_only=True)
    state_dicts = payload["state_dicts"]
    if len(state_dicts) != manifest["n_members"]:
        raise InputError(f"{folder}: {len(state_dicts)} weight sets for {manifest['n_members']} members")
    arrays = {k: v.numpy() for k, v in payload["arrays"].items()}
    return Checkpoint(manifest["kind"], manifest["constructor"], state_dicts, arrays, manifest["metadata"])
