"""The settings of a screening run: input, output, the science (nested), cluster and execution.

The science is :class:`screening.config.ScienceConfig`, nested as ``science``; its fields are also
accepted at the top level (``model: chgnet-0.3.0`` in YAML, ``--model`` on the command line,
``SCREENING_MODEL`` in the environment), so every layer fills the same object and no default is written
twice. Values come, from highest to lowest priority, from keyword arguments (the command line), a YAML
file, environment variables (``SCREENING_WORKERS=4``, ``SCREENING_SLURM__QUEUE=gpu``,
``SCREENING_BVSE__GRID_SPACING_A=0.3``; the scheduler address also from ``DASK_SCHEDULER_ADDRESS``) and
the defaults. An unknown key in a file or in the arguments is an error listing the known ones; an unknown
``SCREENING_*`` variable is warned about (a typo such as ``SCREENING_WORKRS`` would otherwise be ignored).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from screening.config import SCIENCE_FIELDS, ScienceConfig
from screening.errors import InputError
from screening.funnel import SECTION as RANKING_SECTION

ClusterKind = Literal["auto", "local", "cuda", "slurm"]

ENV_PREFIX = "SCREENING_"
_NESTED = "__"
#: Environment variables read outside the settings (by a notebook, by a test helper).
_ENV_NOT_SETTINGS = frozenset(
    {
        "SCREENING_RUN_DIR",
        "SCREENING_CACHE_DIR",  # where measurements are remembered (screening.models.batch_calibration)
    }
)


class SlurmSettings(BaseModel):
    """Options of a dask-jobqueue ``SLURMCluster`` (one Dask worker process per job unless ``processes``)."""

    model_config = ConfigDict(extra="forbid")

    queue: str | None = None
    account: str | None = None
    walltime: str = "01:00:00"
    cores: PositiveInt = 8
    memory: str = "32GB"
    processes: PositiveInt = 1
    gpus_per_job: int = Field(default=0, ge=0)
    jobs: PositiveInt = 1
    job_extra_directives: list[str] = Field(default_factory=list)
    log_directory: str | None = Field(default=None, description="job output (default: RUN_DIR/slurm-logs)")
    scheduler_host: str | None = Field(
        default=None, description="address the workers reach the scheduler at (default: this host's)"
    )


class RunSettings(BaseModel):
    """Everything a screening run needs: input, output, science, cluster and execution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # input and output
    structures: Path = Field(description="structures dataset (written by `screening ingest`)")
    out: Path = Field(description="run directory: results/, ranked.parquet, run.json")
    references: Path | None = Field(
        default=None, description="reference entries; None: beside the structures, else pymatgen's"
    )
    # the science, declared once
    science: ScienceConfig = Field(default_factory=ScienceConfig)
    # cluster
    scheduler: str | None = Field(
        default=None, description="address of an existing Dask scheduler (tcp://host:8786)"
    )
    cluster: ClusterKind = "auto"
    workers: PositiveInt | None = Field(
        default=None, description="None: one per core (local), per GPU (cuda)"
    )
    memory_limit_fraction: float = Field(
        default=0.8, gt=0, le=1, description="local cluster: the machine's memory shared by the workers"
    )
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    # execution
    partition_size: PositiveInt = 8
    max_sites_per_structure: PositiveInt = Field(
        default=1000, description="larger cells fail with the reason instead of exhausting a worker's memory"
    )
    retries: int = Field(
        default=2, ge=0, description="re-runs of a partition whose worker died or which raised"
    )
    worker_wait_s: PositiveFloat = Field(default=120.0, description="how long to wait for the first worker")
    lock_wait_s: float = Field(
        default=0.0, ge=0, description="how long to wait for another run on the directory"
    )
    progress: bool = True

    @model_validator(mode="before")
    @classmethod
    def _lift_science_fields(cls, values: Any) -> Any:
        """Science fields given at the top level (``model=...``) go into ``science``."""
        if not isinstance(values, Mapping):
            return values
        values = dict(values)
        lifted = {key: values.pop(key) for key in list(values) if key in SCIENCE_FIELDS}
        if lifted:
            science = values.get("science", {})
            if isinstance(science, ScienceConfig):
                science = science.model_dump()
            values["science"] = {**dict(science), **lifted}
        return values

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **overrides: Any) -> RunSettings:
        """Settings from the environment, a YAML file and ``overrides`` (None values ignored), in rising
        priority.

        Raises:
            InputError: the file is missing or not YAML mapping.
            pydantic.ValidationError: a key is unknown or a value is out of range (the message lists them).
        """
        values = environment_values(os.environ)
        if path is not None:
            from_file = _read_yaml(Path(path))
            from_file.pop(RANKING_SECTION, None)  # read by `screening rank` (screening.funnel)
            _merge(values, from_file)
        _merge(values, {key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def result_defining(self) -> dict[str, Any]:
        """What determines the results of a run: the science and the partition plan."""
        return {"science": self.science.result_defining(), "partition_size": self.partition_size}


def known_keys() -> set[str]:
    """Top-level keys the settings accept (their own fields and the science fields)."""
    return (set(RunSettings.model_fields) | set(SCIENCE_FIELDS)) - {"science"}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"run config {path} not found")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(loaded, dict):
        raise InputError(f"{path}: a run config must be a YAML mapping, got {type(loaded).__name__}")
    return loaded


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Merge ``values`` into ``into``; nested mappings (``slurm``, ``bvse``, ``science``) key by key."""
    for key, value in values.items():
        if isinstance(value, BaseModel):
            value = value.model_dump()
        if isinstance(value, Mapping) and isinstance(into.get(key), Mapping):
            merged = dict(into[key])
            _merge(merged, value)
            into[key] = merged
        else:
            into[key] = value


def _env_value(text: str) -> Any:
    """Lists and mappings as JSON (``[600, 800]``); everything else as text for pydantic to convert."""
    stripped = text.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    return text


def _sub_fields(owner: Any, name: str) -> dict[str, str]:
    """Lower-case -> real names of the fields of the (model or dataclass) type of ``owner``'s field."""
    import dataclasses

    field_info = getattr(owner, "model_fields", {}).get(name)
    kind = getattr(field_info, "annotation", None)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return {f.lower(): f for f in kind.model_fields}
    if dataclasses.is_dataclass(kind):
        return {f.name.lower(): f.name for f in dataclasses.fields(kind)}
    return {}


def _real_path(path: list[str]) -> list[str] | None:
    """``["bvse", "grid_spacing_a"]`` -> ``["bvse", "grid_spacing_A"]`` (environment names are upper case,
    fields carry units such as ``_K`` and ``_A``); None when no setting has that name."""
    top = {k.lower(): k for k in known_keys()}
    if path[0] not in top:
        return None
    real = [top[path[0]]]
    owner: Any = ScienceConfig if real[0] in SCIENCE_FIELDS else RunSettings
    for part in path[1:]:
        names = _sub_fields(owner, real[-1])
        if part not in names:
            return None
        field_info = owner.model_fields[real[-1]] if hasattr(owner, "model_fields") else None
        owner = getattr(field_info, "annotation", None)
        real.append(names[part])
    return real


def environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from ``SCREENING_*`` variables (``__`` nests: ``SCREENING_SLURM__QUEUE``) and the
    scheduler from ``DASK_SCHEDULER_ADDRESS``; unknown ``SCREENING_*`` names are warned about."""
    values: dict[str, Any] = {}
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_SETTINGS:
            continue
        path = _real_path(name[len(ENV_PREFIX) :].lower().split(_NESTED))
        if path is None:
            warnings.warn(
                f"environment variable {name} is not a screening setting and is ignored "
                f"(known: {', '.join(ENV_PREFIX + k.upper() for k in sorted(known_keys()))}; '__' nests)",
                stacklevel=2,
            )
            continue
        target = values
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = _env_value(text)
    if "scheduler" not in values and environ.get("DASK_SCHEDULER_ADDRESS"):
        values["scheduler"] = environ["DASK_SCHEDULER_ADDRESS"]
    return values
