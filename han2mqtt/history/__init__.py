"""The history database: one SQLite file under ``state.dir`` (``history.sqlite``).

This package is the one place that runs SQL.  Each part of the store (the interval ledger, the
price cache, ...) owns its tables and migrates them on its own through :func:`migrate`, keyed by a
component name, so parts can grow their schemas independently in one file.
"""

from han2mqtt.history.db import HISTORY_FILE, Migration, migrate, open_database, schema_version

__all__ = ["HISTORY_FILE", "Migration", "migrate", "open_database", "schema_version"]
