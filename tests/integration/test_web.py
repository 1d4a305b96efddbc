"""The status page of a real ``han2mqtt run`` fed by the TCP meter simulator, with a real
mosquitto, looked at with urllib and with a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.integration.helpers import (
    AIDON,
    AIDON_ID,
    MeterSimulator,
    start_daemon,
    stop_daemon,
    write_config,
)
from tests.web.chromium import CHROMIUM, Chromium

pytestmark = [pytest.mark.integration, pytest.mark.broker]
POWERS = {"1672", "512", "1743"}  # active_power_import of the Aidon lists 2, 1 and 3
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own page
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_for_meter(base: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, body = _get(base + "/api/state", 1)
        except OSError:
            status, body = 0, b""
        if status == 200:
            state: dict[str, Any] = json.loads(body)
            if AIDON_ID in state["meters"]:
                return state
        time.sleep(0.1)
    raise AssertionError(f"no meter on {base}/api/state within {timeout} s")


@pytest.fixture
def slow_meter():
    simulator = MeterSimulator(AIDON, interval=0.4)
    simulator.start()
    yield simulator
    simulator.stop()


def _daemon(tmp_path: Path, broker, meter, **web: Any):
    port = web.pop("port", None) or free_port()
    config = write_config(
        tmp_path,
        broker,
        {"type": "tcp", "host": "127.0.0.1", "port": meter.port},
        web={"port": port, **web},
    )
    return start_daemon(config), f"http://127.0.0.1:{port}"


def test_daemon_serves_every_endpoint_and_stops_with_a_stream_open(tmp_path, broker, meter):
    daemon, base = _daemon(tmp_path, broker, meter)
    try:
        state = _wait_for_meter(base)
        assert state["bridge"]["source"]["address"] == f"tcp 127.0.0.1:{meter.port}"
        deadline = time.monotonic() + 15

        def ready(state: dict[str, Any]) -> bool:
            # A frame can be decoded a moment before the source reports "connected".
            return bool(state["bridge"]["mqtt"]["connected"]) and (
                state["bridge"]["source"]["state"] == "connected"
            )

        while not ready(state) and time.monotonic() < deadline:
            time.sleep(0.2)
            state = json.loads(_get(base + "/api/state")[1])
        assert state["bridge"]["source"]["state"] == "connected"
        assert state["bridge"]["mqtt"]["connected"]
        assert state["meters"][AIDON_ID]["fields"]["meter_type"] == "6534"
        status, html = _get(base + "/")
        assert status == 200
        assert AIDON_ID.encode() in html
        status, metrics = _get(base + "/metrics")
        assert b"han2mqtt_frames_total" in metrics
        assert _get(base + "/api/history?minutes=5")[0] == 200
        # An event stream stays open while the daemon is told to stop.
        stream = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), 5)
        stream.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"text/event-stream" in stream.recv(4096)
        started = time.monotonic()
        code, err = stop_daemon(daemon)
        assert code == 0, err
        assert time.monotonic() - started < 8, "an open event stream held the shutdown"
        stream.close()
        assert "status page on http://127.0.0.1:" in err
        assert "Traceback" not in err
    finally:
        if daemon.poll() is None:
            stop_daemon(daemon)


def test_a_taken_port_is_an_error_at_start(tmp_path, broker, meter):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon, _ = _daemon(tmp_path, broker, meter, port=port)
        try:
            _, err = daemon.communicate(timeout=30)
        finally:
            if daemon.poll() is None:
                stop_daemon(daemon)
    assert daemon.returncode == 2, err
    assert f"web.port: cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_page_off(tmp_path, broker, meter, capture_factory):
    capture = capture_factory(broker, ("han2mqtt/#",))
    daemon, base = _daemon(tmp_path, broker, meter, enabled=False)
    try:
        capture.wait_for(lambda _m: capture.last(f"han2mqtt/{AIDON_ID}/state") is not None)
        with pytest.raises(OSError):
            _get(base + "/", 1)
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err
    assert "status page" not in err


@pytest.fixture
def browser_profile(tmp_path: Path) -> Path:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/test.sh installs it)")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    return profile


async def test_the_page_in_a_real_browser(tmp_path, broker, slow_meter, browser_profile):
    daemon, base = _daemon(tmp_path, broker, slow_meter)
    section = f"document.querySelector('section[data-meter=\"{AIDON_ID}\"]')"
    power = f"{section}?.querySelector('[data-v=active_power_import]')?.textContent"
    try:
        _wait_for_meter(base)
        async with Chromium(browser_profile) as browser:
            await browser.open(base + "/")
            assert await browser.wait_for(f"{power} && {power} !== '–'")
            # JavaScript connects the event stream and keeps the value current.
            await browser.wait_for("document.getElementById('live').textContent === 'live'")
            seen = {await browser.evaluate(power)}
            deadline = time.monotonic() + 15
            while len(seen) < 3 and time.monotonic() < deadline:
                seen.add(await browser.evaluate(power))
                time.sleep(0.05)
            assert seen == POWERS, seen
            points = f"{section}.querySelector('polyline[data-line=import]').getAttribute('points')"
            assert await browser.wait_for(f"{points}.split(' ').length >= 3")
            frames = "document.querySelector('[data-b=frames]').textContent"
            first = int(await browser.evaluate(frames))
            await browser.wait_for(f"Number({frames}) > {first}")
            paint = await browser.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime"
            )
            shot = await browser.screenshot(tmp_path / "status-page.png")
            assert shot.startswith(b"\x89PNG") and len(shot) > 10_000
            _keep(tmp_path / "status-page.png")
            assert browser.errors == [], browser.errors
            print(f"first contentful paint: {paint:.0f} ms")
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err


async def test_the_page_without_javascript_and_on_a_phone(tmp_path, broker, meter, browser_profile):
    daemon, base = _daemon(tmp_path, broker, meter)
    try:
        _wait_for_meter(base)
        async with Chromium(browser_profile, width=390, height=844) as browser:
            await browser.send(
                "Emulation.setDeviceMetricsOverride",
                width=390,
                height=844,
                deviceScaleFactor=2,
                mobile=True,
            )
            await browser.send("Emulation.setScriptExecutionDisabled", value=True)
            await browser.open(base + "/")
            text = await browser.evaluate("document.body.innerText")
            assert AIDON_ID in text
            assert any(power in text for power in POWERS)
            assert "snapshot" in text  # no script ran: the server's rendering alone
            width = await browser.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page scrolls sideways on a phone: {width} px"
            await browser.screenshot(tmp_path / "status-page-phone.png")
            _keep(tmp_path / "status-page-phone.png")
            assert browser.errors == [], browser.errors
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err


def _keep(shot: Path) -> None:
    """Screenshots also go to build/test-artifacts/ (kept after the run, for CI and the README)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)
