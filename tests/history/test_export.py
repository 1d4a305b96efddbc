"""``han2mqtt export``: exit codes, CSV header and JSON shape, on a real database file."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from han2mqtt.cli import main
from han2mqtt.energy.ledger import LedgerInterval
from han2mqtt.history.ledger import Retention
from han2mqtt.history.writer import HistoryWriter
from tests.history.test_ledger_store import OSLO, day_of_hours, utc


@pytest.fixture
def config(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    writer = HistoryWriter(state / "history.sqlite", OSLO, Retention())
    writer.open()
    writer.submit(day_of_hours(utc(2026, 11, 2)))
    writer.submit([LedgerInterval("other", utc(2026, 11, 2), 1.0, None, False, 60)])
    writer.close()
    path = tmp_path / "config.yaml"
    settings = {"meter": {"timezone": "Europe/Oslo"}, "state": {"dir": str(state)}}
    path.write_text(yaml.safe_dump(settings))
    return path


def _export(config: Path, *args: str) -> int:
    return main(["export", "--config", str(config), *args])


def _exit_code(config: Path, *args: str) -> int | str | None:
    """The exit code, whether main returns it or argparse exits with it."""
    try:
        return _export(config, *args)
    except SystemExit as exited:
        return exited.code


def test_csv_of_a_day(config: Path, capsys: pytest.CaptureFixture[str]):
    code = _export(config, "--meter", "m", "--from", "2026-11-02", "--to", "2026-11-03")
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0] == "start,import_kwh,export_kwh,cost,revenue,estimated"
    assert lines[1] == "2026-11-02T00:00:00+01:00,0.5,0.04,,,false"
    assert len(lines) == 25


def test_json_of_quarters(config: Path, capsys: pytest.CaptureFixture[str]):
    args = ("--meter", "m", "--resolution", "quarter", "--format", "json")
    code = _export(config, *args, "--from", "2026-11-02T06:00", "--to", "2026-11-02T07:00")
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["meter"] == "m"
    assert document["resolution"] == "quarter"
    assert document["currency"] is None
    starts = [i["start"] for i in document["intervals"]]
    assert starts == [f"2026-11-02T06:{m:02}:00+01:00" for m in (0, 15, 30, 45)]
    assert document["intervals"][0] == {
        "start": "2026-11-02T06:00:00+01:00",
        "import": 0.125,
        "export": 0.01,
        "cost": None,
        "revenue": None,
        "estimated": True,
    }


def test_nothing_matched_is_exit_1(config: Path, capsys: pytest.CaptureFixture[str]):
    assert _export(config, "--meter", "m", "--from", "2025-01-01", "--to", "2025-01-02") == 1
    assert _export(config, "--meter", "nobody", "--from", "2026-11-02") == 1
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "args",
    [
        ("--resolution", "week"),
        ("--meter", "m", "--from", "the day before"),
        ("--meter", "m", "--from", "2026-11-03", "--to", "2026-11-02"),
        ("--from", "2026-11-02"),  # two meters stored: which?
        ("--format", "xml"),
    ],
)
def test_bad_arguments_are_exit_2(config: Path, args: tuple[str, ...], capsys):
    assert _exit_code(config, *args) == 2
    error = capsys.readouterr().err.strip()
    assert error
    assert "\n" not in error[error.rfind("error") :]


def test_no_database_is_exit_1(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"state": {"dir": str(tmp_path / "none")}}))
    assert _export(path) == 1


def test_query_times_with_offsets_and_defaults():
    from datetime import UTC, datetime  # noqa: PLC0415

    from han2mqtt.history.query import parse_query  # noqa: PLC0415

    now = datetime(2026, 10, 25, 12, tzinfo=UTC)
    query = parse_query(
        resolution="quarter",
        start="2026-10-25T02:00:00 01:00",  # "+01:00" unencoded in a URL
        end="2026-10-25T03:00:00+01:00",
        meter=None,
        zone=OSLO,
        now=now,
    )
    second_two_o_clock = datetime(2026, 10, 25, 1, tzinfo=UTC)  # 02:00+01:00
    assert (query.start, query.end) == (second_two_o_clock, second_two_o_clock + timedelta(hours=1))
    day = parse_query(resolution="day", start=None, end=None, meter=None, zone=OSLO, now=now)
    assert (day.start, day.end) == (utc(2026, 10, 1), utc(2026, 11, 1))
    hours = parse_query(resolution=None, start=None, end=None, meter=None, zone=OSLO, now=now)
    assert (hours.resolution, hours.start, hours.end) == (
        "hour",
        utc(2026, 10, 25),
        utc(2026, 10, 26),
    )
    assert hours.end - hours.start == timedelta(hours=25)
