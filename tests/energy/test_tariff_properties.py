"""Properties of the headroom under every rule: spent exactly, it lands on the boundary.

Random months of closed windows under random models (peaks, distinct days, tiers or none,
night weights, floor, rolling mean with past months, public holidays); for a random window of
the month and energy used so far, closing that window with the energy plus its headroom makes
the billed value exactly the boundary (the tier's upper threshold, or without tiers the value
already billed).  A headroom of 0 means the window has already crossed it.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from han2mqtt.energy import CapacityTariff, TariffModel, Weight
from han2mqtt.energy.calendar import PublicHolidays

ZONE = ZoneInfo("Europe/Stockholm")
SWEDEN = PublicHolidays("SE", de_facto=True)

energies = st.floats(min_value=0.0, max_value=30.0, allow_nan=False)
windows = st.tuples(st.integers(1, 31), st.integers(0, 23), energies)
recorded = st.dictionaries(st.sampled_from(["2026-11", "2026-09", "2026-01"]), energies)


@st.composite
def models(draw: st.DrawFn) -> TariffModel:
    tiers = draw(st.sampled_from([(), (2.0, 5.0, 10.0, 15.0, 20.0, 25.0), (5.0, 10.0)]))
    factor = draw(st.sampled_from([1.0, 0.5, 0.25]))
    return TariffModel(
        60,
        draw(st.integers(1, 5)),
        draw(st.booleans()),
        tiers,
        period=draw(st.sampled_from(["month", "rolling-12"])),
        floor=draw(st.sampled_from([0.0, 2.5])),
        weights=(Weight(factor, ((22, 24), (0, 6))),),
        holidays=draw(st.sampled_from([None, SWEDEN])),
        past=tuple(
            draw(
                st.dictionaries(st.sampled_from(["2026-10", "2026-11", "2025-12"]), energies)
            ).items()
        ),
    )


def _start(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=ZONE)


Window = tuple[int, int, float]


def _month_so_far(
    model: TariffModel,
    closed: list[Window],
    current: Window,
    history: dict[str, float] | None = None,
) -> tuple[CapacityTariff, datetime, float]:
    """December under ``model``: ``history`` kept, the ``closed`` windows closed but the open one.

    Returns the tariff, the open window's start and the energy it has used so far.
    """
    tariff = CapacityTariff(model, ZONE)
    tariff.roll(_start(1, 0))
    tariff.history = dict(history or {})  # months han2mqtt kept (the state file)
    day, hour, used = current
    start = _start(day, hour)
    for other_day, other_hour, energy in closed:
        if _start(other_day, other_hour) != start:  # the open window has not closed yet
            tariff.close(_start(other_day, other_hour), energy)
    return tariff, start, used


@settings(max_examples=400, deadline=None)
@given(models(), recorded, st.lists(windows, max_size=40), windows)
def test_spending_the_headroom_lands_on_the_boundary(model, history, closed, current):
    tariff, start, used = _month_so_far(model, closed, current, history)
    boundary = tariff.boundary()
    room = tariff.headroom(start, used)
    if room is None:
        assert boundary is None or not model.counts(start)
        return
    assert room >= 0
    if room == 0:
        return  # already at or past it
    tariff.close(start, used + room)
    assert tariff.average() == pytest.approx(boundary, rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(models(), st.lists(windows, max_size=40), windows, st.floats(0.01, 5.0))
def test_a_little_more_than_the_headroom_crosses_the_boundary(model, closed, current, extra):
    tariff, start, used = _month_so_far(model, closed, current)
    boundary = tariff.boundary()
    room = tariff.headroom(start, used)
    if room is None or boundary is None:
        return
    tariff.close(start, used + room + extra)
    average = tariff.average()
    assert average is not None
    assert average > boundary or average == pytest.approx(boundary)
