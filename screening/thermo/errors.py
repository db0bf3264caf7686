"""The error raised for inputs the thermodynamics stage cannot place on a hull."""

from __future__ import annotations

from screening.errors import ScreeningError


class ThermoError(ScreeningError, ValueError):
    """A composition, energy or reference set that cannot give a formation energy or hull distance.

    The message says what is wrong (e.g. which elements the reference set lacks); the pipeline turns it
    into a failed row instead of losing the partition.
    """
