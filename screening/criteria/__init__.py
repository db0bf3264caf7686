"""Screening criteria beyond stability and conductivity: electrochemical window, electronic conduction,
raw-material cost and supply risk. One small module per criterion; :func:`compute_criteria` fills the
results columns of one structure (the stages call it after stability and transport)."""

from __future__ import annotations

from screening.criteria.compute import compute_criteria
from screening.criteria.electronic import BAND_GAP_THRESHOLD_eV, electronic_conductor
from screening.criteria.supply import cost_USD_per_kg, hhi

__all__ = ["BAND_GAP_THRESHOLD_eV", "compute_criteria", "cost_USD_per_kg", "electronic_conductor", "hhi"]
