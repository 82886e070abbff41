"""CO2 by the TopicBERT paper's equation, next to CodeCarbon's measurement."""

from __future__ import annotations


def paper_co2_g(hours: float, power_kw: float = 0.07, grid_kg_per_kwh: float = 0.61, devices: int = 1) -> float:
    """The paper's estimate, CO2 = power x hours x grid intensity, in grams.

    Defaults are the paper's: one T4 GPU at 0.07 kW and 0.61 kg CO2 per kWh.
    """
    return power_kw * devices * hours * grid_kg_per_kwh * 1000.0
