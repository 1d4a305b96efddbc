"""``han2mqtt export``: the ledger's intervals to standard output, as CSV or JSON.

The same intervals as ``GET /api/history`` (:mod:`han2mqtt.history.query`), read from
``<state.dir>/history.sqlite`` without disturbing a running daemon (a read-only connection).
Each interval's cost and revenue come from the prices cached in the same database
(:mod:`han2mqtt.history.costing`).  Exit codes: 0 intervals written, 1 nothing matched (no
database, or no interval in the period), 2 a bad argument or configuration (one line on
standard error).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TextIO

from han2mqtt.config import Settings
from han2mqtt.errors import ConfigError, StateError
from han2mqtt.history.costing import HistoryCosts
from han2mqtt.history.ledger import UNITS
from han2mqtt.history.query import csv_text, document, parse_query, resolve_meter
from han2mqtt.history.settings import history_path
from han2mqtt.history.writer import open_reader

__all__ = ["EXIT_NOTHING", "run_export"]

EXIT_NOTHING = 1


def run_export(  # noqa: PLR0913 - the command's options
    settings: Settings,
    *,
    resolution: str,
    start: str | None,
    end: str | None,
    meter: str | None,
    output_format: str,
    out: TextIO,
) -> int:
    """Write the intervals; returns the exit code.

    Raises:
        ConfigError: a bad argument (exit 2), or a database that cannot be read.
    """
    zone = settings.meter.zone()
    try:
        query = parse_query(
            resolution=resolution,
            start=start,
            end=end,
            meter=meter,
            zone=zone,
            now=datetime.now(UTC),
        )
        store = open_reader(history_path(settings), zone)
        if store is None:
            return EXIT_NOTHING
        try:
            found = resolve_meter(store, query.meter)
        except ValueError:
            if query.meter is not None:
                return EXIT_NOTHING  # a meter the database does not hold: nothing matched
            raise
        rows = [] if found is None else store.read(found, query.resolution, query.start, query.end)
        if not rows or found is None:
            return EXIT_NOTHING
        kind = store.kind(found)
        costs = HistoryCosts.of(settings, store)
        money = None if costs is None else costs.money(store, found, query.resolution, rows, kind)
    except (ValueError, StateError) as exc:
        raise ConfigError(str(exc)) from exc
    if output_format == "json":
        answer = document(
            found,
            query.resolution,
            rows,
            zone,
            money=money,
            currency=None if costs is None else costs.currency,
            unit=UNITS[kind],
        )
        out.write(json.dumps(answer, indent=1) + "\n")
    else:
        out.write(csv_text(rows, zone, money))
    return 0
