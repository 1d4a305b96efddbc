"""Fixtures of the daemon's integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.helpers import AIDON, MeterSimulator


@pytest.fixture
def meter() -> Iterator[MeterSimulator]:
    """A TCP serial server with the Aidon meter's lists 2, 1 and 3 behind it, every 0.1 s."""
    simulator = MeterSimulator(AIDON)
    simulator.start()
    yield simulator
    simulator.stop()
