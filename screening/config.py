"""The science settings of a run: one typed, frozen object, each field declared once.

:class:`ScienceConfig` is everything that decides the numbers a screen produces: which model, how
disorder is handled, which ion, temperature and migration-barrier method, and that method's options. Its
choices are drawn from the registries themselves (:data:`screening.models.registry.MODEL_NAMES`,
:data:`screening.transport.registry.MOBILE_IONS`, ``TRANSPORT_METHODS``), so a name that is not
registered fails at construction with the allowed values listed. The Python API takes it as it is; the
run settings of :mod:`pipelines.settings` nest it, and the command line, YAML files and ``SCREENING_*``
environment variables all fill this one object.

Example::

    from screening.config import ScienceConfig

    config = ScienceConfig(model="chgnet-0.3.0", mobile_ion="Na", temperature_K=330)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from screening.models.registry import (
    DEFAULT_DISORDER_STRATEGY,
    DEFAULT_MODEL,
    DEFAULT_NATIVE_MODEL,
    MODEL_NAMES,
    DisorderStrategy,
)
from screening.transport.bvse import BVSEOptions
from screening.transport.cleanup import CleanupOptions
from screening.transport.defects import DefectOptions
from screening.transport.md import MDOptions
from screening.transport.potential_frenkel import DEFAULT_FRENKEL_CONFIGURATIONS
from screening.transport.registry import (
    AUTO_TRANSPORT_METHOD,
    DEFAULT_CONDUCTIVITY_MODEL,
    MOBILE_IONS,
    CoordinateCleanup,
    FrenkelMethod,
    TransportMethod,
    default_transport_method,
)

ModelName = Literal[MODEL_NAMES]  # type: ignore[valid-type]
MobileIon = Literal[tuple(MOBILE_IONS)]  # type: ignore[valid-type]

#: Fields that change how the work is executed, not its result (left out of the result identity).
EXECUTION_FIELDS = frozenset({"device", "max_atoms_per_batch", "defect_cache_dir"})


def _element_symbol(value: Any) -> Any:
    return value.strip().capitalize() if isinstance(value, str) else value


class ScienceConfig(BaseModel):
    """The science of a screening run (frozen, validated, pickles to any Dask worker).

    Attributes:
        model: registered energy model (``screening.models.available_models()``).
        device: torch device of the model (``cpu``, ``cuda``, ``cuda:1``); None: CUDA when visible, else CPU.
        disorder: how disordered structures get energies: ``sample`` (ordered configurations),
            ``meanfield`` (occupancy vectors through the potential), ``native`` (the occupancy-native
            ensemble, one evaluation) or ``auto`` (``native`` unless its spread calls for ``sample``).
        native_model: the occupancy-native ensemble of ``native``/``auto``: a shipped name or a folder
            written by ``screening train energy``; distilled from ``model``.
        n_samples: configurations sampled per disordered structure (``sample``).
        seed: random seed of the disorder sampling and of MD.
        relax: relax each structure (or sampled configuration) with the model before taking its energy.
        max_atoms_per_batch: cap on atoms per model forward pass; None: the cap measured for the model on its
            device (:mod:`screening.models.batch_calibration`).
        mobile_ion: element whose conduction is estimated (case-insensitive: ``li`` means ``Li``).
        temperature_K: temperature of the conductivity, K.
        transport_method: conductivity estimator: ``bvse`` or ``md`` (physics alone) or ``learned`` (a
            model trained on measured conductivities, on top of the ``bvse`` physics with the bond-valence
            Frenkel estimate and the potential's node features; see :mod:`screening.transport.learned`).
            Not given (or ``auto``): ``learned`` for the ions the shipped model knows (Li) with sampled
            disorder, else ``bvse`` (:func:`~screening.transport.registry.default_transport_method`);
            the resolved method is what the run records.
        conductivity_model: the learned model (``learned``): a shipped name or a checkpoint folder.
        attempt_frequency_Hz: hop attempt frequency nu0 of the Arrhenius prefactor (bvse), Hz.
        haven_ratio: ratio of tracer to charge diffusivity in Nernst-Einstein.
        frenkel_method: Frenkel energy of a fully occupied sublattice: ``potential`` (the run's model on a
            defect supercell; a disordered structure through ``frenkel_configurations`` ordered
            configurations unless ``defects.include_disordered`` is off) or ``bvse`` (the landscape's
            estimate, no relaxation).
        frenkel_configurations: ordered configurations of a disordered structure whose potential Frenkel
            energies are computed; the carriers take the mean of their Frenkel fractions
            (:mod:`screening.transport.potential_frenkel`). Each is one more defect calculation.
        coordinate_cleanup: ``relax`` relaxes the framework with the run's model before the barrier
            (removes coordinate errors; costs a relaxation per structure, worth it on a GPU); ``none``.
        bvse: options of the bvse method.
        md: options of the md method (the potential is the run's ``model`` on its ``device``).
        defects: supercell and relaxation of the potential's defect calculation.
        defect_cache_dir: directory (shared by the workers) where the potential's Frenkel energies are
            kept and reused by later runs with the same inputs (:mod:`screening.transport.defect_cache`);
            None: none kept. It does not change any result, so it is not part of the run's identity.
        cleanup: settings of the framework relaxation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName = DEFAULT_MODEL
    device: str | None = None
    disorder: DisorderStrategy = DEFAULT_DISORDER_STRATEGY
    n_samples: PositiveInt = 8
    native_model: str = DEFAULT_NATIVE_MODEL
    seed: int = 0
    relax: bool = False
    max_atoms_per_batch: PositiveInt | None = None
    mobile_ion: MobileIon = "Li"
    temperature_K: PositiveFloat = 300.0
    transport_method: TransportMethod = "learned"  # never used: _resolve_transport_method sets it
    conductivity_model: str = DEFAULT_CONDUCTIVITY_MODEL
    attempt_frequency_Hz: PositiveFloat = 1e13
    haven_ratio: PositiveFloat = 1.0
    frenkel_method: FrenkelMethod = "potential"
    frenkel_configurations: PositiveInt = DEFAULT_FRENKEL_CONFIGURATIONS
    coordinate_cleanup: CoordinateCleanup = "none"
    bvse: BVSEOptions = Field(default_factory=BVSEOptions)
    md: MDOptions = Field(default_factory=MDOptions)
    defects: DefectOptions = Field(default_factory=DefectOptions)
    defect_cache_dir: str | None = None
    cleanup: CleanupOptions = Field(default_factory=CleanupOptions)

    @model_validator(mode="before")
    @classmethod
    def _resolve_transport_method(cls, values: Any) -> Any:
        """A missing or ``auto`` transport method becomes :func:`default_transport_method`'s choice."""
        if not isinstance(values, Mapping):
            return values
        if values.get("transport_method", AUTO_TRANSPORT_METHOD) == AUTO_TRANSPORT_METHOD:
            ion = _element_symbol(values.get("mobile_ion", cls.model_fields["mobile_ion"].default))
            disorder = values.get("disorder", cls.model_fields["disorder"].default)
            values = {**values, "transport_method": default_transport_method(ion, disorder)}
        return values

    @field_validator("mobile_ion", mode="before")
    @classmethod
    def _element_case(cls, value: Any) -> Any:
        """``li``/``LI`` -> ``Li`` (element symbols have one capital)."""
        return _element_symbol(value)

    def as_dict(self) -> dict[str, Any]:
        """Every field as JSON-serialisable values (what ``run.json`` records)."""
        return self.model_dump(mode="json")

    def result_defining(self) -> dict[str, Any]:
        """The fields that decide the results (all but :data:`EXECUTION_FIELDS`)."""
        return {k: v for k, v in self.as_dict().items() if k not in EXECUTION_FIELDS}

    def sha256(self) -> str:
        """Hex SHA-256 of :meth:`result_defining` (two configs with one hash give the same results)."""
        payload = json.dumps(self.result_defining(), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def physics_method(self) -> str:
        """The :func:`screening.transport.compute_transport` method of the run (``learned`` builds on
        ``bvse``)."""
        return "bvse" if self.transport_method == "learned" else self.transport_method

    def transport_options(self) -> dict[str, Any]:
        """Keyword options of :func:`screening.transport.compute_transport` for :attr:`physics_method`.

        Under ``learned`` the Frenkel energy is the bond-valence estimate, as in the model's training
        features (the potential's defect relaxation would describe a different input)."""
        if self.transport_method == "md":
            return {**asdict(self.md), "model_name": self.model, "device": self.device, "seed": self.seed}
        learned = self.transport_method == "learned"
        return {
            **asdict(self.bvse),
            "frenkel_method": "bvse" if learned else self.frenkel_method,
            "defect_options": self.defects,
            "frenkel_configurations": self.frenkel_configurations,
            "defect_cache_dir": self.defect_cache_dir,
            "coordinate_cleanup": self.coordinate_cleanup,
            "cleanup_options": self.cleanup,
        }

    def prediction_options(self) -> dict[str, Any]:
        """Keyword options of :func:`screening.models.predict_energies`."""
        return {
            "disorder_strategy": self.disorder,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "max_atoms_per_batch": self.max_atoms_per_batch,
            "relax": self.relax,
            "native_model": self.native_model,
        }


#: Names of the science fields (the run settings accept them at their top level too).
SCIENCE_FIELDS: tuple[str, ...] = tuple(ScienceConfig.model_fields)
