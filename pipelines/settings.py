"""The settings of a screening run, in one typed class.

Values come, from highest to lowest priority, from keyword arguments (the command line), a YAML file
(:meth:`RunSettings.from_yaml`), environment variables (``SCREENING_MODEL=chgnet``,
``SCREENING_SLURM__QUEUE=gpu``; the scheduler address also from ``DASK_SCHEDULER_ADDRESS``) and the
defaults below. Unknown keys are an error, so a typo in a config file never passes silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from screening.screen import ScreenConfig

ClusterKind = Literal["auto", "local", "cuda", "slurm"]


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


class RunSettings(BaseSettings):
    """Everything a screening run needs: input, output, science, cluster and execution."""

    model_config = SettingsConfigDict(
        env_prefix="SCREENING_",
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    # input and output
    structures: Path = Field(description="structures dataset (written by `screening ingest`)")
    out: Path = Field(description="run directory: results/, ranked.parquet, run.json")
    # stability
    model: str = "sevennet-0"
    device: str | None = Field(default=None, description="torch device; None: cuda when visible, else cpu")
    disorder: Literal["sample", "meanfield"] = "sample"
    n_samples: PositiveInt = 8
    seed: int = 0
    relax: bool = False
    max_atoms_per_batch: PositiveInt | None = Field(default=None, description="None: the device's default")
    references: Path | None = Field(default=None, description="reference entries; None: the bundled set")
    # transport
    mobile_ion: str = "Li"
    temperature_K: PositiveFloat = 300.0
    transport_method: str = "bvse"
    attempt_frequency_Hz: PositiveFloat = 1e13
    haven_ratio: PositiveFloat = 1.0
    # cluster
    scheduler: str | None = Field(
        default=None,
        validation_alias=AliasChoices("scheduler", "SCREENING_SCHEDULER", "DASK_SCHEDULER_ADDRESS"),
        description="address of an existing Dask scheduler (tcp://host:8786)",
    )
    cluster: ClusterKind = "auto"
    workers: PositiveInt | None = Field(
        default=None, description="None: one per core (local), per GPU (cuda)"
    )
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    # execution
    partition_size: PositiveInt = 8
    retries: int = Field(
        default=2, ge=0, description="re-runs of a partition whose worker died or which raised"
    )
    worker_wait_s: PositiveFloat = Field(default=120.0, description="how long to wait for the first worker")
    progress: bool = True

    @classmethod
    def from_yaml(cls, path: str | os.PathLike | None = None, **overrides: Any) -> RunSettings:
        """Settings from a YAML file, with ``overrides`` (None values ignored) taking precedence.

        Raises:
            ValueError: the file is not a YAML mapping.
            pydantic.ValidationError: a key is unknown or a value has the wrong type.
        """
        values: dict[str, Any] = {}
        if path is not None:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: a run config must be a YAML mapping, got {type(loaded).__name__}")
            values.update(loaded)
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "slurm" and isinstance(value, dict):
                values["slurm"] = {**values.get("slurm", {}), **value}
            else:
                values[key] = value
        return cls(**values)

    def screen_config(self, run_id: str) -> ScreenConfig:
        """The science part of the settings, as passed to :func:`screening.screen.screen_partition`."""
        return ScreenConfig(
            run_id=run_id,
            disorder_strategy=self.disorder,
            n_samples=self.n_samples,
            seed=self.seed,
            relax=self.relax,
            max_atoms_per_batch=self.max_atoms_per_batch,
            mobile_ion=self.mobile_ion,
            temperature_K=self.temperature_K,
            transport_method=self.transport_method,
            attempt_frequency_Hz=self.attempt_frequency_Hz,
            haven_ratio=self.haven_ratio,
        )

    def result_defining(self) -> dict[str, Any]:
        """The settings that determine the results (a rerun must match them to resume a run)."""
        keys = (
            "model",
            "disorder",
            "n_samples",
            "seed",
            "relax",
            "references",
            "mobile_ion",
            "temperature_K",
            "transport_method",
            "attempt_frequency_Hz",
            "haven_ratio",
            "partition_size",
        )
        dumped = self.model_dump(mode="json")
        return {key: dumped[key] for key in keys}
