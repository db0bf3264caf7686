"""Column names and explicit pyarrow schemas of the pipeline's tables.

Every table the pipeline writes is described here once: the column names (one enum, reused by every
stage), their pyarrow types, and the units, which travel in the Parquet file metadata together with the
schema version. Units are also part of the column names where a column has one (``ea_eV``).
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any

import pandas as pd
import pyarrow as pa

SCHEMA_VERSION = "1.4.0"
METADATA_KEY = b"screening"

#: Status values of a row in any table.
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_NOT_APPLICABLE = "not applicable"

#: OPTIMADE's name for an empty part of a site.
VACANCY = "vacancy"


class Col(StrEnum):
    """Canonical column names, shared by every table and stage."""

    # identity and bookkeeping
    ID = "id"
    SOURCE = "source"
    SOURCE_PATH = "source_path"
    BUCKET = "bucket"
    STATUS = "status"
    STAGE = "stage"
    ERROR = "error"
    #: readable notes about an input structure that was kept although something in it looks odd
    #: (overfilled split positions, short contacts, composition differing from the published formula)
    WARNINGS = "warnings"
    #: SHA-256 of the physical content of a structure (``screening.structures.content_sha256``)
    STRUCTURE_SHA256 = "structure_sha256"
    # OPTIMADE-style structure description
    LATTICE_VECTORS = "lattice_vectors"
    CARTESIAN_SITE_POSITIONS = "cartesian_site_positions"
    SPECIES_AT_SITES = "species_at_sites"
    SPECIES = "species"
    NSITES = "nsites"
    ELEMENTS = "elements"
    NELEMENTS = "nelements"
    CHEMICAL_FORMULA_REDUCED = "chemical_formula_reduced"
    CHEMICAL_SYSTEM = "chemical_system"
    IS_ORDERED = "is_ordered"
    STRUCTURE_FEATURES = "structure_features"
    # labels that came with the structure
    MP_ID = "_mp_material_id"
    MP_ENERGY_ABOVE_HULL = "_mp_energy_above_hull"
    MP_FORMATION_ENERGY_PER_ATOM = "_mp_formation_energy_per_atom"
    MP_BAND_GAP = "_mp_band_gap"
    MP_IS_STABLE = "_mp_is_stable"
    MP_ENERGY_PER_ATOM = "_mp_energy_per_atom"
    MP_UNCORRECTED_ENERGY_PER_ATOM = "_mp_uncorrected_energy_per_atom"
    MP_THEORETICAL = "_mp_theoretical"
    NAME = "_name"
    REFERENCE = "_reference"
    EXP_SIGMA_RT = "_exp_sigma_rt_S_per_cm"
    EXP_EA = "_exp_ea_eV"
    EXP_REFERENCE = "_exp_reference"
    # results
    RUN_ID = "run_id"
    MODEL = "model"
    ENERGY_PER_ATOM = "energy_per_atom_eV"
    ENERGY_PER_ATOM_STD = "energy_per_atom_std_eV"
    E_FORM_PER_ATOM = "e_form_per_atom_eV"
    E_ABOVE_HULL = "e_above_hull_eV"
    E_ABOVE_HULL_STD = "e_above_hull_std_eV"
    HULL_REFERENCE = "hull_reference"
    HULL_MISSING_SYSTEMS = "hull_missing_systems"
    CONFIG_ENTROPY_TERM = "config_entropy_term_eV"
    DISORDER_STRATEGY = "disorder_strategy"
    N_CONFIGURATIONS = "n_configurations"
    #: largest atom-fraction difference between the sampled configurations and the published composition
    #: (supercell rounding, atoms of overfilled split positions left out; ``sample`` only)
    SAMPLED_COMPOSITION_ERROR = "sampled_composition_error"
    #: epistemic spread of the occupancy-native ensemble on a disordered structure (``native``/``auto``)
    NATIVE_SPREAD = "native_spread_eV"
    #: the energy model's own error scale on e_above_hull (``screening.thermo.model_error``), included in
    #: e_above_hull_std_eV
    E_ABOVE_HULL_MODEL_STD = "e_above_hull_model_std_eV"
    MOBILE_ION = "mobile_ion"
    MOBILE_ION_DENSITY = "mobile_ion_density_cm3"
    SITE_FILLING = "site_filling"
    VACANCY_FRACTION = "vacancy_fraction"
    #: mobile ions beyond one per site (the file's excess, or inferred from charge balance), per mobile ion
    INTERSTITIAL_FRACTION = "interstitial_fraction"
    DEFECT_FORMATION = "defect_formation_eV"
    CONDUCTION_MECHANISM = "conduction_mechanism"
    CARRIER_DENSITY = "carrier_density_cm3"
    EA_MIGRATION = "ea_migration_eV"
    EA = "ea_eV"
    EA_STD = "ea_std_eV"
    EA_METHOD = "ea_method"
    PERCOLATION_DIMENSIONALITY = "percolation_dimensionality"
    EA_1D = "ea_1d_eV"
    EA_2D = "ea_2d_eV"
    EA_3D = "ea_3d_eV"
    #: a polycrystal's conductivity over that of its grains' fastest direction (``bvse``)
    POLYCRYSTAL_FACTOR = "polycrystal_factor"
    #: where the mobile ions sit in the migration landscape, above its minimum: the barriers start there
    OCCUPIED_SITE_ENERGY = "occupied_site_energy_eV"
    JUMP_DISTANCE = "jump_distance_A"
    ATTEMPT_FREQUENCY = "attempt_frequency_Hz"
    HAVEN_RATIO = "haven_ratio"
    DIFFUSIVITY = "diffusivity_cm2_per_s"
    TEMPERATURE = "temperature_K"
    SIGMA = "sigma_S_per_cm"
    LOG10_SIGMA = "log10_sigma_S_per_cm"
    #: total standard deviation of log10 sigma (learned model: epistemic and aleatoric together)
    LOG10_SIGMA_STD = "log10_sigma_std"
    #: the ensemble members' spread alone (what more data would remove)
    LOG10_SIGMA_EPISTEMIC_STD = "log10_sigma_epistemic_std"
    #: the physics estimate of log10 sigma, kept beside a learned one
    LOG10_SIGMA_PHYSICS = "log10_sigma_physics_S_per_cm"
    #: probability that sigma >= 1e-4 S/cm at the run temperature
    P_SUPERIONIC = "p_superionic"
    #: the structure lies outside the learned model's training domain (its prediction is an extrapolation)
    CONDUCTIVITY_OUT_OF_DOMAIN = "conductivity_out_of_domain"
    #: distance to the training set in the model's feature space, in units of the training set's own
    #: typical nearest-neighbour distance
    CONDUCTIVITY_DOMAIN_DISTANCE = "conductivity_domain_distance"
    OXIDATION_STATES_GUESSED = "oxidation_states_guessed"
    OXIDATION_STATES = "oxidation_states"
    TRANSPORT_NOTES = "transport_notes"
    # screening criteria (``screening.criteria``)
    #: electrochemical stability window vs the mobile ion's metal, V vs M/M+ (reduction and oxidation limits)
    ECW_LOW = "ecw_low_V"
    ECW_HIGH = "ecw_high_V"
    #: phases formed below ecw_low_V and above ecw_high_V (" + "-joined formulas)
    ECW_REDUCTION_PRODUCTS = "ecw_reduction_products"
    ECW_OXIDATION_PRODUCTS = "ecw_oxidation_products"
    #: how far the candidate was moved down onto the hull for its window, eV/atom
    ECW_ENERGY_SHIFT = "ecw_energy_shift_eV"
    #: likely electronic conductor (band gap below the threshold, or a redox-active cation), and why
    ELECTRONIC_CONDUCTOR = "electronic_conductor"
    ELECTRONIC_CONDUCTOR_REASON = "electronic_conductor_reason"
    #: raw-material cost from pymatgen's element price table, USD per kg of the compound
    COST = "cost_USD_per_kg"
    #: Herfindahl-Hirschman index of the elements' production and reserves (0-10000; >2500 concentrated)
    HHI_PRODUCTION = "hhi_production"
    HHI_RESERVE = "hhi_reserve"
    #: criteria that could not be computed, and why
    CRITERIA_NOTES = "criteria_notes"
    # ranking
    P_STABLE = "p_stable"
    SCORE = "score"
    RANK = "rank"
    PARETO_FRONT = "pareto_front"
    #: (threshold - e_above_hull) / e_above_hull_std: how many error scales inside the threshold
    STABILITY_MARGIN = "stability_margin_std"
    #: what the reader should know about a ranked candidate (out of the conductivity model's domain ...)
    RANKING_FLAGS = "ranking_flags"


SPECIES_TYPE = pa.struct(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("chemical_symbols", pa.list_(pa.string()), nullable=False),
        pa.field("concentration", pa.list_(pa.float64()), nullable=False),
        # one entry per chemical symbol; null where the species carries no oxidation state
        pa.field("oxidation_states", pa.list_(pa.float64())),
    ]
)

_IDENTITY_FIELDS = [
    pa.field(Col.ID, pa.string(), nullable=False),
    pa.field(Col.SOURCE, pa.string(), nullable=False),
    pa.field(Col.SOURCE_PATH, pa.string()),
    pa.field(Col.STATUS, pa.string(), nullable=False),
    pa.field(Col.ERROR, pa.string()),
]

STRUCTURES_SCHEMA = pa.schema(
    _IDENTITY_FIELDS
    + [
        # never null: an empty list when there is nothing to note (failed rows included)
        pa.field(Col.WARNINGS, pa.list_(pa.string()), nullable=False),
        # null for failed rows
        pa.field(Col.STRUCTURE_SHA256, pa.string()),
        pa.field(Col.LATTICE_VECTORS, pa.list_(pa.list_(pa.float64(), 3), 3)),
        pa.field(Col.CARTESIAN_SITE_POSITIONS, pa.list_(pa.list_(pa.float64(), 3))),
        pa.field(Col.SPECIES_AT_SITES, pa.list_(pa.string())),
        pa.field(Col.SPECIES, pa.list_(SPECIES_TYPE)),
        pa.field(Col.NSITES, pa.int32()),
        pa.field(Col.ELEMENTS, pa.list_(pa.string())),
        pa.field(Col.NELEMENTS, pa.int32()),
        pa.field(Col.CHEMICAL_FORMULA_REDUCED, pa.string()),
        pa.field(Col.CHEMICAL_SYSTEM, pa.string()),
        pa.field(Col.IS_ORDERED, pa.bool_()),
        pa.field(Col.STRUCTURE_FEATURES, pa.list_(pa.string())),
        pa.field(Col.MP_ID, pa.string()),
        pa.field(Col.MP_ENERGY_ABOVE_HULL, pa.float64()),
        pa.field(Col.MP_FORMATION_ENERGY_PER_ATOM, pa.float64()),
        pa.field(Col.MP_BAND_GAP, pa.float64()),
        pa.field(Col.MP_IS_STABLE, pa.bool_()),
        pa.field(Col.MP_ENERGY_PER_ATOM, pa.float64()),
        pa.field(Col.MP_UNCORRECTED_ENERGY_PER_ATOM, pa.float64()),
        pa.field(Col.MP_THEORETICAL, pa.bool_()),
        pa.field(Col.NAME, pa.string()),
        pa.field(Col.REFERENCE, pa.string()),
        pa.field(Col.EXP_SIGMA_RT, pa.float64()),
        pa.field(Col.EXP_EA, pa.float64()),
        pa.field(Col.EXP_REFERENCE, pa.string()),
        pa.field(Col.BUCKET, pa.int32(), nullable=False),
    ]
)

#: Reference entries for convex hulls (one row per computed entry).
REFERENCES_SCHEMA = pa.schema(
    [
        pa.field("entry_id", pa.string(), nullable=False),
        pa.field("composition", pa.string(), nullable=False),
        pa.field("chemical_system", pa.string(), nullable=False),
        pa.field("energy_eV", pa.float64(), nullable=False),
        pa.field("correction_eV", pa.float64(), nullable=False),
        pa.field("run_type", pa.string()),
        pa.field("compatibility", pa.string()),
        pa.field("entry_json", pa.string(), nullable=False),
    ]
)

UNITS: dict[str, str] = {
    Col.LATTICE_VECTORS: "angstrom",
    Col.CARTESIAN_SITE_POSITIONS: "angstrom",
    Col.MP_ENERGY_ABOVE_HULL: "eV/atom",
    Col.MP_FORMATION_ENERGY_PER_ATOM: "eV/atom",
    Col.MP_BAND_GAP: "eV",
    Col.MP_ENERGY_PER_ATOM: "eV/atom",
    Col.MP_UNCORRECTED_ENERGY_PER_ATOM: "eV/atom",
    Col.EXP_SIGMA_RT: "S/cm",
    Col.EXP_EA: "eV",
    Col.ENERGY_PER_ATOM: "eV/atom",
    Col.ENERGY_PER_ATOM_STD: "eV/atom",
    Col.NATIVE_SPREAD: "eV/atom",
    Col.E_FORM_PER_ATOM: "eV/atom",
    Col.E_ABOVE_HULL: "eV/atom",
    Col.E_ABOVE_HULL_STD: "eV/atom",
    Col.CONFIG_ENTROPY_TERM: "eV/atom",
    Col.CARRIER_DENSITY: "cm^-3",
    Col.MOBILE_ION_DENSITY: "cm^-3",
    Col.DEFECT_FORMATION: "eV",
    Col.EA_MIGRATION: "eV",
    Col.EA: "eV",
    Col.EA_STD: "eV",
    Col.EA_1D: "eV",
    Col.EA_2D: "eV",
    Col.EA_3D: "eV",
    Col.OCCUPIED_SITE_ENERGY: "eV",
    Col.JUMP_DISTANCE: "angstrom",
    Col.ATTEMPT_FREQUENCY: "Hz",
    Col.DIFFUSIVITY: "cm^2/s",
    Col.TEMPERATURE: "K",
    Col.SIGMA: "S/cm",
    Col.LOG10_SIGMA: "log10(S/cm)",
    Col.LOG10_SIGMA_STD: "log10(S/cm)",
    Col.LOG10_SIGMA_EPISTEMIC_STD: "log10(S/cm)",
    Col.LOG10_SIGMA_PHYSICS: "log10(S/cm)",
    Col.E_ABOVE_HULL_MODEL_STD: "eV/atom",
    Col.ECW_LOW: "V vs M/M+",
    Col.ECW_HIGH: "V vs M/M+",
    Col.ECW_ENERGY_SHIFT: "eV/atom",
    Col.COST: "USD/kg",
    Col.STABILITY_MARGIN: "standard deviations",
    "energy_eV": "eV (total, per formula unit of the entry's composition)",
    "correction_eV": "eV (total)",
}


def with_metadata(schema: pa.Schema, table_name: str, **extra: object) -> pa.Schema:
    """Return ``schema`` with the schema version, table name, units and ``extra`` in its metadata."""
    units = {name: unit for name, unit in UNITS.items() if name in schema.names}
    payload = {"schema_version": SCHEMA_VERSION, "table": table_name, "units": units, **extra}
    return schema.with_metadata({METADATA_KEY: json.dumps(payload, sort_keys=True).encode()})


def read_metadata(schema: pa.Schema) -> dict:
    """Decode the metadata written by :func:`with_metadata` (empty dict if absent)."""
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


#: Results of a screening run: one row per input structure, failed rows kept with ``stage`` and ``error``.
RESULTS_SCHEMA = pa.schema(
    [
        pa.field(Col.ID, pa.string(), nullable=False),
        pa.field(Col.NAME, pa.string()),
        pa.field(Col.CHEMICAL_FORMULA_REDUCED, pa.string()),
        pa.field(Col.CHEMICAL_SYSTEM, pa.string()),
        pa.field(Col.ELEMENTS, pa.list_(pa.string())),
        pa.field(Col.NSITES, pa.int32()),
        pa.field(Col.IS_ORDERED, pa.bool_()),
        pa.field(Col.STRUCTURE_SHA256, pa.string()),
        pa.field(Col.MP_ID, pa.string()),
        pa.field(Col.MP_ENERGY_ABOVE_HULL, pa.float64()),
        pa.field(Col.EXP_SIGMA_RT, pa.float64()),
        pa.field(Col.EXP_EA, pa.float64()),
        pa.field(Col.MP_BAND_GAP, pa.float64()),
        pa.field(Col.RUN_ID, pa.string(), nullable=False),
        pa.field(Col.MODEL, pa.string()),
        # stability
        pa.field(Col.ENERGY_PER_ATOM, pa.float64()),
        pa.field(Col.ENERGY_PER_ATOM_STD, pa.float64()),
        pa.field(Col.E_FORM_PER_ATOM, pa.float64()),
        pa.field(Col.E_ABOVE_HULL, pa.float64()),
        pa.field(Col.E_ABOVE_HULL_STD, pa.float64()),
        pa.field(Col.HULL_REFERENCE, pa.string()),
        # metal-anion systems the hull has no compound for: e_above_hull is then only a lower bound
        pa.field(Col.HULL_MISSING_SYSTEMS, pa.string()),
        # -T * S_config of the ideal site disorder at the run temperature (not included in e_above_hull)
        pa.field(Col.CONFIG_ENTROPY_TERM, pa.float64()),
        pa.field(Col.DISORDER_STRATEGY, pa.string()),
        pa.field(Col.N_CONFIGURATIONS, pa.int32()),
        pa.field(Col.SAMPLED_COMPOSITION_ERROR, pa.float64()),
        pa.field(Col.NATIVE_SPREAD, pa.float64()),
        pa.field(Col.E_ABOVE_HULL_MODEL_STD, pa.float64()),
        # transport
        pa.field(Col.MOBILE_ION, pa.string()),
        pa.field(Col.OXIDATION_STATES_GUESSED, pa.bool_()),
        # element -> mean oxidation state (mixed valence as a fraction), as JSON text
        pa.field(Col.OXIDATION_STATES, pa.string()),
        pa.field(Col.MOBILE_ION_DENSITY, pa.float64()),
        pa.field(Col.SITE_FILLING, pa.float64()),
        pa.field(Col.VACANCY_FRACTION, pa.float64()),
        pa.field(Col.INTERSTITIAL_FRACTION, pa.float64()),
        pa.field(Col.DEFECT_FORMATION, pa.float64()),
        pa.field(Col.CONDUCTION_MECHANISM, pa.string()),
        pa.field(Col.CARRIER_DENSITY, pa.float64()),
        pa.field(Col.EA_MIGRATION, pa.float64()),
        pa.field(Col.EA, pa.float64()),
        pa.field(Col.EA_STD, pa.float64()),
        pa.field(Col.EA_METHOD, pa.string()),
        pa.field(Col.PERCOLATION_DIMENSIONALITY, pa.int32()),
        pa.field(Col.EA_1D, pa.float64()),
        pa.field(Col.EA_2D, pa.float64()),
        pa.field(Col.EA_3D, pa.float64()),
        pa.field(Col.POLYCRYSTAL_FACTOR, pa.float64()),
        pa.field(Col.OCCUPIED_SITE_ENERGY, pa.float64()),
        pa.field(Col.JUMP_DISTANCE, pa.float64()),
        pa.field(Col.ATTEMPT_FREQUENCY, pa.float64()),
        pa.field(Col.HAVEN_RATIO, pa.float64()),
        pa.field(Col.DIFFUSIVITY, pa.float64()),
        pa.field(Col.TEMPERATURE, pa.float64()),
        pa.field(Col.SIGMA, pa.float64()),
        pa.field(Col.LOG10_SIGMA, pa.float64()),
        pa.field(Col.LOG10_SIGMA_STD, pa.float64()),
        pa.field(Col.LOG10_SIGMA_EPISTEMIC_STD, pa.float64()),
        pa.field(Col.LOG10_SIGMA_PHYSICS, pa.float64()),
        pa.field(Col.P_SUPERIONIC, pa.float64()),
        pa.field(Col.CONDUCTIVITY_OUT_OF_DOMAIN, pa.bool_()),
        pa.field(Col.CONDUCTIVITY_DOMAIN_DISTANCE, pa.float64()),
        # documented fallbacks the transport stage took (charge imbalance, substituted bond-valence pairs)
        pa.field(Col.TRANSPORT_NOTES, pa.list_(pa.string())),
        # criteria (null where they do not apply: no mobile ion, or an earlier stage failed)
        pa.field(Col.ECW_LOW, pa.float64()),
        pa.field(Col.ECW_HIGH, pa.float64()),
        pa.field(Col.ECW_REDUCTION_PRODUCTS, pa.string()),
        pa.field(Col.ECW_OXIDATION_PRODUCTS, pa.string()),
        pa.field(Col.ECW_ENERGY_SHIFT, pa.float64()),
        pa.field(Col.ELECTRONIC_CONDUCTOR, pa.bool_()),
        pa.field(Col.ELECTRONIC_CONDUCTOR_REASON, pa.string()),
        pa.field(Col.COST, pa.float64()),
        pa.field(Col.HHI_PRODUCTION, pa.float64()),
        pa.field(Col.HHI_RESERVE, pa.float64()),
        pa.field(Col.CRITERIA_NOTES, pa.list_(pa.string())),
        # bookkeeping
        pa.field(Col.STATUS, pa.string(), nullable=False),
        pa.field(Col.STAGE, pa.string()),
        pa.field(Col.ERROR, pa.string()),
        # the input structure's warnings (an empty list when none; null only where the structures
        # table was written before the column existed)
        pa.field(Col.WARNINGS, pa.list_(pa.string())),
    ]
)

#: The ranked candidates: results columns plus the stability probability, score, rank and Pareto flag.
RANKED_SCHEMA = pa.schema(
    list(RESULTS_SCHEMA)
    + [
        pa.field(Col.P_STABLE, pa.float64(), nullable=False),
        pa.field(Col.SCORE, pa.float64(), nullable=False),
        pa.field(Col.RANK, pa.int32(), nullable=False),
        pa.field(Col.PARETO_FRONT, pa.bool_(), nullable=False),
        pa.field(Col.STABILITY_MARGIN, pa.float64()),
        pa.field(Col.RANKING_FLAGS, pa.list_(pa.string()), nullable=False),
    ]
)


def is_missing(value: Any) -> bool:
    """Whether a table cell holds no value: None, pandas' NA, or a float NaN."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)
