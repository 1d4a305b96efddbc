"""Where the history database is and how long it keeps what: from the configuration."""

from __future__ import annotations

from pathlib import Path

from han2mqtt.config import HistorySettings, Settings
from han2mqtt.history.db import HISTORY_FILE
from han2mqtt.history.ledger import Retention
from han2mqtt.statefile import state_directory

__all__ = ["history_path", "retention"]


def history_path(settings: Settings) -> Path:
    """``<state.dir>/history.sqlite`` (``state.dir`` as the state file finds it)."""
    return state_directory(settings.state.dir) / HISTORY_FILE


def retention(history: HistorySettings) -> Retention:
    """``history.retention`` as the store takes it."""
    kept = history.retention
    return Retention(quarter=kept.quarter, hour=kept.hour, day=kept.day, month=kept.month)
