"""Raw-material cost and supply risk from the data pymatgen ships (no network).

* Cost: ``pymatgen.analysis.cost`` with its element table (``costdb_elements.csv``: USD/kg of the pure
  elements, Wolfram Alpha and Wikipedia 2013). It prices the elements, not the precursors, so
  compounds of gaseous or hard-to-isolate elements look expensive (pure F2 at 1900 USD/kg makes LiF
  about 1400 USD/kg): read it as an order of magnitude, compare like with like.
* Supply risk: ``pymatgen.analysis.hhi`` (Gaultois et al., Chem. Mater. 25, 2911 (2013)): the
  Herfindahl-Hirschman index of the countries producing each element and holding its reserves,
  averaged by weight fraction; 0-10000, above 2500 a market counts as highly concentrated (US DoJ).
"""

from __future__ import annotations

from functools import lru_cache

from pymatgen.core import Composition


@lru_cache(maxsize=1)
def _cost_analyzer():
    from pymatgen.analysis.cost import CostAnalyzer, CostDBElements

    return CostAnalyzer(CostDBElements())


@lru_cache(maxsize=1)
def _hhi_model():
    from pymatgen.analysis.hhi import HHIModel

    return HHIModel()


def cost_USD_per_kg(composition: Composition | str) -> float:
    """Cost of the elements of ``composition``, USD per kg of compound.

    Raises:
        ValueError: an element without a price in pymatgen's table.
    """
    composition = Composition(composition)
    try:
        return float(_cost_analyzer().get_cost_per_kg(composition))
    except (KeyError, ValueError, IndexError) as exc:
        raise ValueError(f"no price for the elements of {composition.reduced_formula}: {exc}") from exc


def hhi(composition: Composition | str) -> tuple[float, float]:
    """(production, reserve) Herfindahl-Hirschman indices of ``composition``, weight-averaged.

    Raises:
        ValueError: an element without HHI data.
    """
    composition = Composition(composition)
    production, reserve = _hhi_model().get_hhi(composition)
    if production is None or reserve is None:
        raise ValueError(f"no HHI data for an element of {composition.reduced_formula}")
    return float(production), float(reserve)
