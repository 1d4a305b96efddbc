"""Prices and cost (sans-IO): price-source parsers, the price table, grid rates, the cost sums.

Nothing here opens a socket, reads a clock or knows the configuration: the daemon fetches the
sources' bytes (:mod:`han2mqtt.io.prices`), hands them to these parsers, and feeds the energy of
each interval to a :class:`~han2mqtt.prices.cost.CostAccumulator`.
"""
