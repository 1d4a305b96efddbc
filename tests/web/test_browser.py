"""The page's script in a real headless Chromium, against a page served in this test's loop:
the energy and tariff blocks (values the energy stage derives) are drawn and kept live."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from han2mqtt.model import FieldValue
from tests.web.chromium import CHROMIUM, Chromium
from tests.web.conftest import AIDON, AIDON_ID

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test.sh)"),
]

DERIVED: dict[str, FieldValue] = {
    "meter_time": "2026-01-15T13:20:00+01:00",
    "energy_import_last_hour": 1.25,
    "energy_import_last_hour_start": "2026-01-15T12:00:00+01:00",
    "energy_import_hour": 0.42,
    "energy_import_today": 7.5,
    "phase_load_l1": 12.5,
    "phase_load_l2": 30.0,
    "phase_load_l3": 2.0,
    "tariff_tier": "5-10",
    "tariff_average": 6.2,
    "tariff_window_energy": 0.42,
    "tariff_window_projection": 1.3,
    "tariff_headroom": 3.1,
    "tariff_headroom_power": 4400,
    "tariff_peaks": '[{"start":"2026-01-03T18:00:00+01:00","kwh":6.1}]',
}


def _derive(page, derived: dict[str, FieldValue]) -> None:
    state = page.bridge.tracker.meters[AIDON_ID]
    for listener in page.bridge.listeners:
        listener(AIDON_ID, state.last_reading, derived, datetime.now(UTC))


async def test_energy_and_tariff_blocks_drawn_and_kept_live(page, tmp_path):
    page.feed(AIDON)
    _derive(page, DERIVED)
    section = f"document.querySelector('section[data-meter=\"{AIDON_ID}\"]')"
    profile = tmp_path / "profile"
    profile.mkdir()
    async with Chromium(profile) as browser:
        await browser.open(page.url + "/")
        await browser.wait_for("document.getElementById('live').textContent === 'live'")
        assert not await browser.evaluate(f"{section}.querySelector('.hours').hidden")
        assert not await browser.evaluate(f"{section}.querySelector('.tariff').hidden")
        rects = f"{section}.querySelectorAll('svg[data-bars] rect').length"
        assert await browser.evaluate(rects) == 2  # 12:00 closed, 13:00 running
        tier = f"{section}.querySelector('[data-v=tariff_tier]').textContent"
        assert await browser.evaluate(tier) == "5-10"
        bar = f"{section}.querySelector('meter[data-bar=phase_load_l2]').value"
        assert await browser.evaluate(bar) == 30
        # The next hour closes and the tariff moves: the script redraws from the event.
        _derive(
            page,
            {
                "meter_time": "2026-01-15T14:00:05+01:00",
                "energy_import_last_hour": 2.5,
                "energy_import_last_hour_start": "2026-01-15T13:00:00+01:00",
                "energy_import_hour": 0.01,
                "tariff_tier": "10-15",
                "tariff_peaks": '[{"start":"2026-01-15T13:00:00+01:00","kwh":11.0},'
                '{"start":"2026-01-03T18:00:00+01:00","kwh":6.1}]',
                "phase_load_l2": 95.0,
            },
        )
        await browser.wait_for(f"{tier} === '10-15'")
        assert await browser.evaluate(rects) == 3  # 12:00, 13:00 closed, 14:00 running
        peaks = f"{section}.querySelectorAll('[data-peaks] li').length"
        assert await browser.evaluate(peaks) == 2
        assert await browser.evaluate(bar) == 95
        net = f"{section}.querySelector('[data-v=net]').textContent"
        assert await browser.evaluate(net) == "1743"  # the newest import (list 3), export 0
        await browser.screenshot(tmp_path / "status-page-energy.png")
        assert browser.errors == [], browser.errors


async def test_rejected_frames_appear_live_and_copy_works(page, tmp_path):
    page.feed(AIDON[:1])
    profile = tmp_path / "profile"
    profile.mkdir()
    async with Chromium(profile) as browser:
        await browser.open(page.url + "/")
        await browser.wait_for("document.getElementById('live').textContent === 'live'")
        page.bridge.handle_content(AIDON[2][:60])
        page.feed(AIDON[1:2])  # a reading: its event carries the new decode error count
        text = "document.getElementById('rejects').textContent"
        await browser.wait_for(f"{text}.includes('{AIDON[2][:60].hex()}')")
        origin = page.url
        await browser.send(
            "Browser.grantPermissions",
            origin=origin,
            permissions=["clipboardReadWrite", "clipboardSanitizedWrite"],
        )
        await browser.evaluate("document.getElementById('copy').click()")
        await browser.wait_for("document.getElementById('copy').textContent === 'Copied'")
        copied = await browser.evaluate("navigator.clipboard.readText()")
        assert copied == await browser.evaluate(text)
        assert AIDON[2][:60].hex() in copied
        assert browser.errors == [], browser.errors
