"""High-throughput screening of crystalline battery materials: stability and ionic conductivity.

The public API (imported on first use, so ``import screening`` stays light)::

    import screening

    results = screening.screen(structures)              # Structure(s) or a structures table -> results
    model = screening.load_model("sevennet-0", device="cpu")
    table = screening.read_structures("runs/demo/structures")
    config = screening.ScienceConfig(mobile_ion="Na", temperature_K=330)

Every error raised on purpose derives from :class:`ScreeningError`. The science lives here; the Dask
orchestration, the run directory and the command line live in the ``pipelines`` package, which this
package never imports.
"""

from __future__ import annotations

from screening._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "screen": "screening.api",
    "ScienceConfig": "screening.config",
    "ScreeningError": "screening.errors",
    "InputError": "screening.errors",
    "load_model": "screening.models.registry",
    "available_models": "screening.models.registry",
    "read_structures": "screening.io",
    "load_reference_entries": "screening.thermo.references",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
