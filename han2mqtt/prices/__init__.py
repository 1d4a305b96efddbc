"""Prices and cost (sans-IO): price-source parsers, the price table, grid rates, the cost sums.

Nothing here opens a socket, reads a clock or knows the configuration: the daemon fetches the
sources' bytes (:mod:`han2mqtt.io.prices`), hands them to these parsers, and feeds the energy of
each interval to a :class:`~han2mqtt.prices.cost.CostAccumulator`.
"""

from han2mqtt.prices.areas import AREAS, Area, area
from han2mqtt.prices.cost import CostAccumulator, CostTotals, IntervalPrice, PriceRules, Pricing
from han2mqtt.prices.ecb import parse_ecb_rates, rate_on
from han2mqtt.prices.entsoe import parse_entsoe
from han2mqtt.prices.grid import EnergyRule, GridRates, Norgespris, Stromstotte, parse_hours
from han2mqtt.prices.jsonsources import (
    parse_elprisetjustnu,
    parse_energidataservice,
    parse_hvakosterstrommen,
    parse_mqtt_prices,
)
from han2mqtt.prices.model import DayPrices, PricePoint
from han2mqtt.prices.table import PriceTable, convert, day_bounds, whole_day

__all__ = [
    "AREAS",
    "Area",
    "CostAccumulator",
    "CostTotals",
    "DayPrices",
    "EnergyRule",
    "GridRates",
    "IntervalPrice",
    "Norgespris",
    "PricePoint",
    "PriceRules",
    "PriceTable",
    "Pricing",
    "Stromstotte",
    "area",
    "convert",
    "day_bounds",
    "parse_ecb_rates",
    "parse_elprisetjustnu",
    "parse_energidataservice",
    "parse_entsoe",
    "parse_hours",
    "parse_hvakosterstrommen",
    "parse_mqtt_prices",
    "rate_on",
    "whole_day",
]
