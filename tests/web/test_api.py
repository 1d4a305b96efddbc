"""Every endpoint of the status page, over real HTTP, with real frames through a real bridge."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from han2mqtt.bridge import Bridge, PrintPublisher
from han2mqtt.daemon import _start_page
from han2mqtt.web.server import ASSETS, SECURITY_HEADERS
from tests.web.conftest import AIDON, AIDON_ID, CONTENTS, make_settings

PATHS = ["/", "/app.js", "/app.css", "/favicon.svg", "/api/state", "/api/history", "/metrics"]


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_a_password_guards_every_route(page_factory, caplog):
    from pydantic import SecretStr  # noqa: PLC0415

    settings = make_settings()
    web = settings.web.model_copy(update={"username": "me", "password": SecretStr("pässword")})
    page = await page_factory(settings.model_copy(update={"web": web}))
    page.feed(AIDON)
    good = _basic("me", "pässword")
    for path in [*PATHS, "/api/events"]:
        refused = await page.get(path)
        assert refused.status == 401, path
        assert refused.headers["WWW-Authenticate"].startswith('Basic realm="han2mqtt"')
        assert "1743" not in await refused.text()
        for wrong in (_basic("me", "wrong"), _basic("you", "pässword"), _basic("me", "pässwor")):
            assert (await page.get(path, headers=wrong)).status == 401, path
    for path in PATHS:
        assert (await page.get(path, headers=good)).status == 200, path
    garbled = await page.get("/api/state", headers={"Authorization": "Basic ***"})
    assert garbled.status == 401
    assert "open to the network without a password" not in caplog.text  # 127.0.0.1


async def test_state_before_any_frame(page):
    state = await page.json("/api/state")
    assert state["meters"] == {}
    assert state["rejects"] == []
    bridge = state["bridge"]
    assert (bridge["frames"], bridge["decoded"], bridge["decode_errors"]) == (0, 0, 0)
    assert bridge["last_frame_age"] is None
    assert bridge["versions"]["han2mqtt"]
    html = await (await page.get("/")).text()
    assert "Waiting for the first frame" in html


async def test_state_has_the_merged_reading_and_the_counters(page):
    page.feed(AIDON)
    state = await page.json("/api/state")
    meter = state["meters"][AIDON_ID]
    assert meter["fields"]["active_power_import"] == 1743  # list 3, the newest
    assert meter["fields"]["voltage_l1"] == 234.3  # merged from list 2/3
    assert meter["fields"]["active_power_import_total"] == 163777.25
    assert (meter["online"], meter["frames"], meter["manufacturer"]) == (True, 3, "Aidon")
    # The energy stage's values, and none invented: no tariff (off), no hour not yet known.
    assert meter["derived"]["power_net"] == 1743
    assert meter["derived"]["energy_import"] == 163777.25
    assert not any(name.startswith("tariff_") for name in meter["derived"])
    assert "energy_import_last_hour" not in meter["derived"]
    assert meter["hours"] == {"date": "2022-10-15", "kwh": []}  # the list 3's meter_time
    assert meter["received"] == "2026-01-15T12:00:04+00:00"
    bridge = state["bridge"]
    assert (bridge["frames"], bridge["decoded"], bridge["decode_errors"]) == (3, 3, 0)
    published = len(page.printed)
    assert bridge["mqtt"]["published"] == published > 0
    assert bridge["source"]["type"] == "serial"


async def test_net_power_follows_the_newest_import(page):
    """A list 1 (import only) after a list 2: the net is not the list 2's (issue 18, item 2)."""
    page.feed(AIDON[:2])  # list 2 (1672 W, export 0), then list 1 (512 W)
    meter = (await page.json("/api/state"))["meters"][AIDON_ID]
    assert meter["fields"]["active_power_import"] == 512
    assert meter["derived"]["power_net"] == 512
    html = await (await page.get("/")).text()
    assert '<b data-v="net" data-dp="0">512</b>' in html
    metrics = await (await page.get("/metrics")).text()
    assert f'han2mqtt_meter_power_net_watts{{meter="{AIDON_ID}"}} 512.0' in metrics


async def test_a_linky_shows_its_apparent_power_in_va_and_no_net(page):
    from han2mqtt.simulator.linky import LINKY_ID, linky_frames  # noqa: PLC0415

    page.feed(linky_frames(1))
    html = await (await page.get("/")).text()
    section = html[html.index(f'data-meter="{LINKY_ID}"') :]
    assert re.search(r'<b data-v="apparent_power_import" data-dp="0">\d+</b><i>VA</i>', section)
    assert 'data-v="active_power_import"' not in section
    assert 'data-v="net"' not in section
    metrics = await (await page.get("/metrics")).text()
    assert f'han2mqtt_meter_apparent_power_import_volt_amperes{{meter="{LINKY_ID}"}}' in metrics
    assert f'han2mqtt_meter_power_import_watts{{meter="{LINKY_ID}"}}' not in metrics


async def test_page_is_rendered_on_the_server_with_the_values(page):
    page.feed(AIDON)
    response = await page.get("/")
    html = await response.text()
    assert response.content_type == "text/html"
    assert f'data-meter="{AIDON_ID}"' in html
    assert '<b data-v="active_power_import" data-dp="0">1743</b>' in html
    assert '<b data-v="current_l2" data-dp="2">5.40</b>' in html
    assert '<b data-v="voltage_l3" data-dp="1">236.1</b>' in html
    # Without the tariff (off by default) its block is there, but hidden.
    assert re.search(r'<div class="tariff" data-need="[^"]*" hidden>', html)


async def test_page_has_no_inline_script_style_or_handlers(page):
    page.feed(AIDON)
    html = await (await page.get("/")).text()
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/app.js" defer>']
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert "javascript:" not in html


async def test_derived_values_are_shown_when_present(page):
    page.feed(AIDON[:1])
    derived = {
        "energy_import_hour": 0.42,
        "energy_import_today": 7.5,
        "energy_import_last_hour": 1.25,
        "energy_import_last_hour_start": "2026-01-15T12:00:00+01:00",
        "meter_time": "2026-01-15T13:20:00+01:00",
        "phase_load_l1": 12.5,
        "tariff_tier": "5-10",
        "tariff_capacity_cost": 270.0,
        "tariff_peaks": '[{"start": "2026-01-03T18:00:00+01:00", "kwh": 6.1}]',
    }
    state = page.bridge.tracker.meters[AIDON_ID]
    assert state.last_reading is not None
    for listener in page.bridge.listeners:
        listener(AIDON_ID, state.last_reading, derived, datetime.now(UTC))
    meter = (await page.json("/api/state"))["meters"][AIDON_ID]
    assert meter["derived"]["tariff_tier"] == "5-10"
    assert meter["hours"] == {"date": "2026-01-15", "kwh": [[12, 1.25]]}
    html = await (await page.get("/")).text()
    assert re.search(r'<figure class="hours" data-need="[^"]*">', html)  # not hidden
    assert '<b data-v="tariff_tier">5-10</b>' in html
    assert '<b data-v="tariff_capacity_cost" data-dp="2">270.00</b>' in html
    assert "2026-01-03T18:00:00+01:00: 6.10 kWh" in html
    assert '<b data-v="net" data-dp="0">1672</b>' in html  # the list 2's import, export 0
    assert 'value="12" data-bar="phase_load_l1"' in html
    assert 'class="now" x="131"' in html  # the current hour (13) drawn beside the closed one


@pytest.mark.parametrize("path", [*PATHS, "/nothing", "/api/history?minutes=abc"])
async def test_every_response_carries_the_security_headers(page, path):
    response = await page.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


async def test_the_event_stream_and_method_errors_carry_the_headers_too(page):
    async with page.session.get(page.url + "/api/events") as response:
        assert (
            response.headers["Content-Security-Policy"]
            == SECURITY_HEADERS["Content-Security-Policy"]
        )
        assert response.headers["Content-Type"] == "text/event-stream"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        async with page.session.request(method, page.url + "/") as response:
            assert response.status == 405
            assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_assets_come_from_the_package_with_etags(page):
    for path, (content, content_type, etag) in ASSETS.items():
        response = await page.get(path)
        assert response.status == 200
        assert await response.read() == content
        assert response.headers["Content-Type"] == content_type
        again = await page.get(path, headers={"If-None-Match": etag})
        assert again.status == 304


async def test_page_script_and_style_stay_under_50_kb(page):
    page.feed(CONTENTS)  # three meters
    total = 0
    for path in ("/", "/app.js", "/app.css", "/favicon.svg"):
        total += len(await (await page.get(path)).read())
    assert total < 50_000, total


async def test_history_returns_the_window_in_order(page):
    # 5 minutes of the Aidon lists, one every 2 s; the window ends at the newest sample.
    page.feed(AIDON * 50, step=2.0)
    history = await page.json("/api/history?minutes=1")
    series = history["meters"][AIDON_ID]
    assert history["minutes"] == 1
    assert len(series["t"]) == 31  # 60 s at 2 s, both ends included
    assert series["t"] == sorted(series["t"])
    assert series["t"][-1] - series["t"][0] == 60
    assert set(series["import"]) == {1672.0, 512.0, 1743.0}
    assert None in series["export"]  # list 1 carries no export power: absent, never 0
    default = await page.json("/api/history")
    assert default["minutes"] == 10
    assert len(default["meters"][AIDON_ID]["t"]) == 150
    assert (await page.json("/api/history?minutes=60"))["minutes"] == 60


@pytest.mark.parametrize(
    "query",
    [
        "minutes=0",
        "minutes=61",
        "minutes=-1",
        "minutes=abc",
        "minutes=1.5",
        "minutes=1e3",
        "minutes=",
        "minutes=99999999999999999999999999999999",
        "minutes=%00",
        "minutes=%205",
        "minutes=%D9%A3",  # an Arabic-Indic digit: isdigit() but no plain number
        "minutes=5&minutes=6",
    ],
)
async def test_history_refuses_bad_minutes(page, query):
    response = await page.get("/api/history?" + query)
    assert response.status == 400
    assert "minutes" in (await response.json())["error"]


async def test_metrics_parse_and_follow_the_bridge(page):
    page.feed(AIDON)
    page.bridge.handle_content(AIDON[0][:50])  # truncated
    page.bridge.handle_content(b"\x00\x01")
    response = await page.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert samples[("han2mqtt_frames_total", ())] == 5
    assert samples[("han2mqtt_decoded_total", ())] == 3
    kinds = {
        dict(labels)["kind"]: value
        for (name, labels), value in samples.items()
        if name == "han2mqtt_decode_errors_total"
    }
    assert sum(kinds.values()) == 2
    assert kinds == dict(page.bridge.errors_by_kind)
    assert samples[("han2mqtt_mqtt_published_total", ())] == len(page.printed)
    assert samples[("han2mqtt_mqtt_dropped_total", ())] == 0
    assert samples[("han2mqtt_meter_power_import_watts", (("meter", AIDON_ID),))] == 1743
    assert samples[("han2mqtt_meter_energy_import_kwh_total", (("meter", AIDON_ID),))] == 163777.25
    current = ("han2mqtt_meter_current_amperes", (("meter", AIDON_ID), ("phase", "L2")))
    assert samples[current] == 5.4
    assert samples[("han2mqtt_meter_online", (("meter", AIDON_ID),))] == 1
    assert ("han2mqtt_last_frame_age_seconds", ()) in samples
    assert samples[("process_resident_memory_bytes", ())] > 0
    assert samples[("han2mqtt_web_event_streams", ())] == 0
    assert samples[("han2mqtt_web_event_streams_dropped_total", ())] == 0
    assert samples[("han2mqtt_web_failures_total", ())] == 0


async def test_rejected_frames_are_kept_bounded_with_hex_and_reason(page):
    page.feed(AIDON[:1])
    broken = AIDON[2][:60]  # truncated in the middle of the list
    page.bridge.handle_content(broken)
    state = await page.json("/api/state")
    (reject,) = state["rejects"]
    assert reject["hex"] == broken.hex()
    assert reject["length"] == len(broken)
    assert reject["kind"] and reject["reason"]
    html = await (await page.get("/")).text()
    assert broken.hex() in html
    for index in range(20):
        page.bridge.handle_content(bytes([0x42]) * (5000 + index))
    rejects = (await page.json("/api/state"))["rejects"]
    assert len(rejects) == 8
    assert rejects[0]["length"] == 5019  # newest first
    assert len(rejects[0]["hex"]) == 2048  # 1 kB kept of each


async def test_no_secret_in_any_response(page_factory):
    password, key = "s3cr3t-pa55word", "00112233445566778899aabbccddeeff"
    settings = make_settings(
        mqtt={"username": "u", "password": password},
        meter={"encryption_key": key, "authentication_key": key.upper()},
    )
    page = await page_factory(settings)
    page.feed(AIDON)
    page.bridge.handle_content(b"\xdb\x08" + bytes(40))  # a ciphered APDU that fails
    for path in PATHS:
        body = (await (await page.get(path)).read()).decode().lower()
        assert password not in body, path
        assert key not in body, path


async def test_events_push_each_new_reading(page):
    page.feed(AIDON[:1])
    async with page.session.get(page.url + "/api/events") as response:
        assert await response.content.readline() == b"retry: 5000\n"
        events = _EventReader(response)
        assert (await events.next())[0] == "status"
        name, data = await events.next()  # the current state of each meter on connect
        assert name == "reading"
        assert data["meter"]["fields"]["active_power_import"] == 1672
        page.bridge.handle_content(AIDON[1])
        name, data = await events.next()
        assert name == "reading"
        assert data["meter"]["fields"]["active_power_import"] == 512
        assert data["meter"]["sample"][1] == 512
        assert data["bridge"]["frames"] == 2


class _EventReader:
    def __init__(self, response) -> None:
        self.response = response

    async def next(self) -> tuple[str, dict[str, Any]]:
        name, data = "", ""
        while True:
            line = (await asyncio.wait_for(self.response.content.readline(), 5)).decode()
            if line == "\n" and name:
                return name, json.loads(data)
            if line.startswith("event: "):
                name = line[7:].strip()
            elif line.startswith("data: "):
                data = line[6:]


async def test_page_off_leaves_the_port_closed():
    settings = make_settings(web={"enabled": False})
    bridge = Bridge(settings, PrintPublisher("han2mqtt", lambda _line: None))
    assert await _start_page(bridge, None) is None
    assert bridge.listeners == []
