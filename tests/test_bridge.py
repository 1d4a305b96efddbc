"""The bridge's decisions, driven with real frames and the demo's printing publisher."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC
from pathlib import Path

import pytest

from han2mqtt import daemon
from han2mqtt.bridge import METER_ID_GRACE, Bridge, PrintPublisher, utc_zone_warning
from han2mqtt.config import Settings
from han2mqtt.daemon import _housekeeping
from han2mqtt.io.relay import Delivery
from han2mqtt.protocol.hdlc import HdlcFrameReader
from han2mqtt.simulator import load_samples
from han2mqtt.tracker import UNKNOWN_METER
from tests import corpus

AIDON_ID = "7359992891237028"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Printed:
    """What the publisher printed: (topic, payload, retained) per message."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)

    def messages(self) -> list[tuple[str, str, bool]]:
        result = []
        for line in self.lines:
            retained = line.endswith(" (retained)\n")
            text = line.removesuffix("\n").removesuffix(" (retained)")
            topic, _, payload = text.partition(" ")
            result.append((topic, payload, retained))
        return result

    def topics(self) -> list[str]:
        return [topic for topic, _, _ in self.messages()]

    def clear(self) -> None:
        self.lines.clear()


def _contents() -> dict[str, bytes]:
    frames = load_samples()
    payloads = [frame.payload for frame in HdlcFrameReader().read(b"".join(frames))]
    return {"aidon_list2": payloads[0], "aidon_list1": payloads[1], "aidon_list3": payloads[2]}


CONTENTS = _contents()


def _bridge(**sections: dict[str, object]) -> tuple[Bridge, Printed, Clock]:
    printed, clock = Printed(), Clock()
    settings = Settings.model_validate(sections)
    bridge = Bridge(settings, PrintPublisher("han2mqtt", printed.write), clock)
    return bridge, printed, clock


def test_list1_before_any_meter_id_is_held_then_unknown_then_retired():
    bridge, printed, clock = _bridge()
    bridge.handle_content(CONTENTS["aidon_list1"])
    assert printed.lines == []  # held back: a list naming the meter usually follows
    clock.now += METER_ID_GRACE + 1
    bridge.handle_content(CONTENTS["aidon_list1"])
    unknown_discovery = f"homeassistant/device/han2mqtt_{UNKNOWN_METER}/config"
    assert unknown_discovery in printed.topics()
    assert f"han2mqtt/{UNKNOWN_METER}/active_power_import" in printed.topics()
    printed.clear()

    bridge.handle_content(CONTENTS["aidon_list2"])  # the meter names itself
    removed = {topic for topic, payload, retained in printed.messages() if retained and not payload}
    assert removed == {unknown_discovery, f"han2mqtt/{UNKNOWN_METER}/availability"}
    assert set(bridge.tracker.meters) == {AIDON_ID}
    printed.clear()
    bridge.handle_content(CONTENTS["aidon_list1"])
    assert f"han2mqtt/{AIDON_ID}/active_power_import" in printed.topics()
    assert not any(UNKNOWN_METER in topic for topic in printed.topics())


def test_a_configured_meter_id_is_never_retired():
    bridge, printed, _ = _bridge(meter={"id": "house"})
    bridge.handle_content(CONTENTS["aidon_list1"])
    bridge.handle_content(CONTENTS["aidon_list2"])
    assert set(bridge.tracker.meters) == {"house"}
    assert not [m for m in printed.messages() if m[2] and not m[1]]


def test_resend_all_sends_no_stale_state_for_an_offline_meter():
    bridge, printed, clock = _bridge()
    bridge.handle_content(CONTENTS["aidon_list2"])
    clock.now += 3600
    bridge.expire()
    printed.clear()
    bridge.resend_all()
    messages = printed.messages()
    assert (f"han2mqtt/{AIDON_ID}/availability", "offline", True) in messages
    assert f"homeassistant/device/han2mqtt_{AIDON_ID}/config" in printed.topics()
    assert f"han2mqtt/{AIDON_ID}/state" not in printed.topics()
    assert f"han2mqtt/{AIDON_ID}/voltage_l1" not in printed.topics()


@pytest.mark.parametrize(
    ("connects", "dropped", "resent"), [(1, 0, False), (1, 5, True), (2, 0, True)]
)
def test_what_a_connect_sends_again(connects: int, dropped: int, resent: bool):
    bridge, printed, _ = _bridge()
    bridge.handle_content(CONTENTS["aidon_list2"])
    printed.clear()
    bridge.publisher.stats.connects = connects
    bridge.publisher.stats.dropped = dropped
    bridge.on_broker_connected()
    sent = f"homeassistant/device/han2mqtt_{AIDON_ID}/config" in printed.topics()
    assert sent is resent


async def test_the_heartbeat_means_a_decoded_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(daemon, "_HOUSEKEEPING_PERIOD", 0.01)
    heartbeat = tmp_path / "heartbeat"
    bridge, _, _ = _bridge(health={"heartbeat_file": str(heartbeat)})
    task = asyncio.create_task(_housekeeping(bridge))
    try:
        await asyncio.sleep(0.05)
        assert not heartbeat.exists()  # started, but nothing decoded yet
        bridge.handle_content(b"\xe6\xe7\x00\x0f garbage that does not decode")
        await asyncio.sleep(0.05)
        assert bridge.decode_errors == 1
        assert not heartbeat.exists()
        bridge.handle_content(CONTENTS["aidon_list2"])
        await asyncio.sleep(0.05)
        assert heartbeat.exists()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


DEVICE = f"homeassistant/device/han2mqtt_{AIDON_ID}/config"
ENERGY = "1_0_1_8_0_255"  # the component of the hourly list's energy register


def _last_components(printed: Printed) -> set[str]:
    payloads = [payload for topic, payload, _ in printed.messages() if topic == DEVICE]
    return set(json.loads(payloads[-1])["cmps"])


def _previous_run_discovery() -> bytes:
    bridge, printed, _ = _bridge(meter={"timezone": "UTC"})
    for name in ("aidon_list2", "aidon_list3"):
        bridge.handle_content(CONTENTS[name])
    payload = [p for t, p, _ in printed.messages() if t == DEVICE][-1]
    assert ENERGY in json.loads(payload)["cmps"]
    return payload.encode()


def test_a_restart_keeps_the_components_the_broker_holds_whatever_comes_first():
    retained = _previous_run_discovery()
    # The broker's copy arrives before the first frame: the first discovery is complete.
    bridge, printed, _ = _bridge()
    bridge.on_discovery_config(DEVICE, retained, True)
    bridge.handle_content(CONTENTS["aidon_list2"])
    assert ENERGY in _last_components(printed)
    # The first frame comes first: a smaller discovery went out, and is completed at once.
    bridge, printed, _ = _bridge()
    bridge.handle_content(CONTENTS["aidon_list2"])
    assert ENERGY not in _last_components(printed)
    bridge.on_discovery_config(DEVICE, retained, True)
    assert ENERGY in _last_components(printed)


def test_only_retained_copies_of_this_instance_count():
    retained = _previous_run_discovery()
    bridge, printed, _ = _bridge()
    bridge.handle_content(CONTENTS["aidon_list2"])
    bridge.on_discovery_config(DEVICE, retained, False)  # our own publication coming back
    bridge.on_discovery_config(DEVICE, b"", True)  # a purge
    other = _bridge(mqtt={"base_topic": "other"})[0]
    other.on_discovery_config(DEVICE, retained, True)  # another instance's device
    assert ENERGY not in _last_components(printed)
    assert other._retained_components == {}


async def test_an_exception_while_publishing_costs_one_frame_not_the_daemon(
    caplog: pytest.LogCaptureFixture,
):
    # A consumer of published readings with a bug (the seam the status page plugs into): it
    # fails on the first two readings.  Before, the exception ended the daemon's task group.
    bridge, printed, _ = _bridge()
    failures: list[str] = []

    def flaky(meter: str, *_args: object) -> None:
        if len(failures) < 2:
            failures.append(meter)
            raise RuntimeError("listener bug")

    bridge.listeners.append(flaky)
    queue: asyncio.Queue[bytes | Delivery] = asyncio.Queue()
    for name in ("aidon_list2", "aidon_list1", "aidon_list3", "aidon_list1"):
        queue.put_nowait(CONTENTS[name])
    task = asyncio.create_task(daemon._consume(bridge, queue))
    try:
        for _ in range(100):
            if queue.empty() and bridge.frames == 4:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert bridge.internal_errors == 2
    assert json.loads(bridge.info_message().payload)["internal_errors"] == 2
    tracebacks = [r for r in caplog.records if r.exc_info and "internal error" in r.getMessage()]
    assert len(tracebacks) == 1  # once per kind, not per frame
    # The frames after the failures were published as usual.
    assert printed.topics().count(f"han2mqtt/{AIDON_ID}/state") == 4


@pytest.mark.parametrize("depth", [3000, 200_000])
def test_a_deeply_nested_retained_discovery_is_ignored_quietly(
    depth: int, caplog: pytest.LogCaptureFixture
):
    # Below the container bound (3000) json.loads itself would overflow the stack; above it the
    # payload is refused before parsing.  Either way: no RecursionError, no traceback.
    caplog.set_level("DEBUG")
    retained = _previous_run_discovery()
    nested = b'{"avty":[{"t":"han2mqtt/bridge/state"}],"cmps":' + b"[" * depth + b"]" * depth + b"}"
    # An explicit zone: on a UTC host the meter's local clock would be warned about.
    bridge, printed, _ = _bridge(meter={"timezone": "UTC"})
    bridge.handle_content(CONTENTS["aidon_list2"])
    bridge.on_discovery_config(DEVICE, nested, True)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("not ours, or not valid" in r.getMessage() for r in caplog.records)
    bridge.on_discovery_config(DEVICE, retained, True)  # a good one still works after it
    assert ENERGY in _last_components(printed)


def test_foreign_components_in_our_retained_discovery_are_not_adopted():
    previous = json.loads(_previous_run_discovery())
    previous["cmps"]["relay"] = {  # someone else's entity smuggled into our device
        "p": "switch",
        "name": "Relay",
        "uniq_id": f"han2mqtt_{AIDON_ID}_relay",
        "cmd_t": "somewhere/set",
        "stat_t": "han2mqtt/x/relay",
    }
    previous["cmps"]["other_sensor"] = {
        "p": "sensor",
        "uniq_id": "zigbee_other_sensor",
        "stat_t": "han2mqtt/x/other",
    }
    previous["cmps"]["1_0_99_99_0_255"] = {  # our id pattern, but another base topic's state
        "p": "sensor",
        "uniq_id": f"han2mqtt_{AIDON_ID}_1_0_99_99_0_255",
        "stat_t": "elsewhere/x",
    }
    bridge, printed, _ = _bridge()
    bridge.on_discovery_config(DEVICE, json.dumps(previous).encode(), True)
    bridge.handle_content(CONTENTS["aidon_list2"])
    components = _last_components(printed)
    assert ENERGY in components  # ours from the last run: kept
    assert {"relay", "other_sensor", "1_0_99_99_0_255"}.isdisjoint(components)


KAIFA_ID = "6970631403275928"


def _kaifa(name: str) -> bytes:
    found = corpus.content(corpus.by_id(name))
    assert found is not None
    return found


def test_an_id_less_list_goes_only_to_a_meter_of_its_own_family():
    bridge, printed, _ = _bridge()
    bridge.handle_content(_kaifa("no-kaifa-ma304h3e-list2-gh180"))
    printed.clear()
    # Aidon's list 1 after a Kaifa named itself: not the Kaifa's reading; held back.
    bridge.handle_content(CONTENTS["aidon_list1"])
    assert printed.lines == []
    assert bridge.held_back == 1
    assert json.loads(bridge.info_message().payload)["held_back"] == 1
    # The Kaifa's own list 1 is still attributed to it.
    bridge.handle_content(_kaifa("no-kaifa-ma304h3e-list1-gh180"))
    assert f"han2mqtt/{KAIFA_ID}/active_power_import" in printed.topics()
    printed.clear()
    # Once the Aidon has named itself, its list 1 goes to it, never to the Kaifa.
    bridge.handle_content(CONTENTS["aidon_list2"])
    bridge.handle_content(CONTENTS["aidon_list1"])
    assert not any(topic.startswith(f"han2mqtt/{KAIFA_ID}/") for topic in printed.topics())
    assert printed.topics().count(f"han2mqtt/{AIDON_ID}/state") == 2


def test_a_hostile_meter_id_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture):
    caplog.set_level("INFO")
    hostile = "evil\nERROR x\x1b[2J"  # as long as the real id: the frame stays well-formed
    content = CONTENTS["aidon_list2"].replace(AIDON_ID.encode(), hostile.encode())
    bridge, _, clock = _bridge()
    bridge.handle_content(content)
    clock.now += 61
    bridge.expire()
    lines = [record.getMessage() for record in caplog.records]
    assert any("evil\\nERROR x\\x1b[2J" in line for line in lines)  # online, then offline
    assert sum("evil" in line for line in lines) == 2
    assert all("\n" not in line and "\x1b" not in line for line in lines)


def test_the_number_of_meters_is_capped_and_bridge_info_stays_small(
    caplog: pytest.LogCaptureFixture,
):
    bridge, printed, clock = _bridge(meter={"max_meters": 20})
    template = CONTENTS["aidon_list2"]
    for number in range(50):
        meter = f"{number:016d}"
        bridge.handle_content(template.replace(AIDON_ID.encode(), meter.encode()))
        clock.now += 1
        if number == 10:
            clock.now += 100  # the first eleven go offline
            bridge.expire()
    assert len(bridge.tracker.meters) == 20
    assert bridge.tracker.evicted == 30
    assert set(bridge.tracker.meters) == {f"{n:016d}" for n in range(30, 50)}
    # An online meter that is forgotten is first published offline.
    messages = printed.messages()
    offline = [t for t, p, _ in messages if t.endswith("/availability") and p == "offline"]
    assert "han2mqtt/0000000000000029/availability" in offline
    info = json.loads(bridge.info_message().payload)
    assert (info["meters_total"], info["meters_online"], info["meters_evicted"]) == (20, 20, 30)
    assert list(info["meters"]) == [f"{n:016d}" for n in range(49, 39, -1)]  # latest ten
    evictions = [r for r in caplog.records if "max_meters" in r.getMessage()]
    assert len(evictions) == 1  # summarized, not one line per meter


def test_meter_ids_beyond_the_cap_do_not_grow_bridge_info():
    bridge, _, clock = _bridge(meter={"max_meters": 2000})
    template = CONTENTS["aidon_list2"]
    sizes = []
    for number in range(300):
        bridge.handle_content(template.replace(AIDON_ID.encode(), f"{number:016d}".encode()))
        clock.now += 1
        if number in (20, 299):
            sizes.append(len(bridge.info_message().payload))
    assert sizes[1] <= sizes[0] + 10  # only the counts' digits grow


def test_health_follows_valid_frames_whether_they_decode_or_not():
    """systemd restarts a daemon that stays unhealthy: that revives a dead input, not a bad key."""
    content = corpus.content(corpus.by_id("dk-kamstrup-omnipower-enc-testkey"))
    assert content is not None
    bridge, _, clock = _bridge(meter={"encryption_key": "0F" * 16}, health={"max_age": 30})
    for _ in range(10):  # frames under a wrong key, one every 10 s: none decodes
        clock.now += 10
        bridge.handle_content(content)
        assert bridge.healthy()
    assert bridge.decoder.stats.decoded == 0
    clock.now += 31  # the input falls silent
    assert not bridge.healthy()
    bridge.handle_content(CONTENTS["aidon_list2"])
    assert bridge.healthy()


@pytest.mark.parametrize(
    ("tz", "configured", "warned"),
    [
        ("UTC", None, True),
        ("Etc/UTC", None, True),
        ("Europe/Oslo", None, False),
        ("Europe/London", None, False),
        ("UTC", "Europe/Oslo", False),
        ("UTC", "UTC", False),
    ],
)
def test_local_meter_time_read_on_utc_is_warned_once(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tz: str,
    configured: str | None,
    warned: bool,
):
    monkeypatch.setenv("TZ", tz)
    bridge, _, _ = _bridge(meter={"timezone": configured})
    for _ in range(3):  # list 3 carries the meter's clock, without a UTC offset
        bridge.handle_content(CONTENTS["aidon_list3"])
    warnings = [
        r.getMessage() for r in caplog.records if "meter.timezone is unset" in r.getMessage()
    ]
    assert len(warnings) == (1 if warned else 0)
    if warned:
        assert "TZ=Europe/Oslo" in warnings[0]


def test_a_meter_clock_with_an_offset_needs_no_zone():
    assert utc_zone_warning(UTC, "2026-12-06T22:00:00+01:00", explicit=None) is None
    assert utc_zone_warning(UTC, "2026-12-06T22:00:00", explicit=None) is not None
    assert utc_zone_warning(UTC, "not a time", explicit=None) is None
