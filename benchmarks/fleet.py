"""A fleet through one process: N meters → MQTT relay topics → ``han2mqtt run`` → mosquitto.

Every meter publishes one frame every 2 s on its own topic (``fleet/<n>/raw``), as relays do:
Aidon list 2 (meter id, power, currents, voltages) every 10 s and list 1 (power only, no meter
id) in between, after one list 3 (energy registers) at start; half the meters send binary frames,
half hex text.  The frames are the real Aidon captures re-encoded with other meter ids
(``tests/fleet.py``).  A subscriber counts the JSON state messages (one per published reading),
the discovery messages per meter and the availability messages.

The quarter-hour ledger (``history``) is on, as by default, its database in the temporary
directory.  For each fleet size it prints frames/s, the daemon's CPU (per frame and in % of
one core), its RSS now and at its peak, and checks that every frame sent was published,
discovery went out once per meter and every meter is online.

Usage: python benchmarks/fleet.py [--meters 10 100 1000] [--seconds 30] [--period 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pipeline import cpu_seconds, free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fleet, from the repository
from tests.fleet import meter_frames

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
WARM_UP = 6.0
"""Seconds before measuring: start-up, the first list of every meter, discovery."""
CYCLE = (0, 1, 1, 1, 1)
"""Index into lists 2, 1, 3 per period: list 2 every fifth frame, list 1 in between."""


def rss_mib(pid: int, key: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Tally:
    """What the subscriber saw."""

    states: int = 0
    discovery: Counter[str] = field(default_factory=Counter)
    online: set[str] = field(default_factory=set)
    info: dict[str, object] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        topic = message.topic
        with self.lock:
            if topic.endswith("/bridge/info"):
                self.info = json.loads(message.payload)
            elif topic.endswith("/state"):
                if not topic.endswith("/bridge/state"):
                    self.states += 1
            elif topic.endswith("/config"):
                self.discovery[topic] += 1
            elif topic.endswith("/availability") and message.payload == b"online":
                self.online.add(topic)


def start_broker(directory: Path, port: int) -> subprocess.Popen[bytes]:
    conf = directory / "mosquitto.conf"
    conf.write_text(
        f"user {os.environ.get('USER', 'root')}\nlistener {port} 127.0.0.1\n"
        "allow_anonymous true\nmax_queued_messages 100000\n"
    )
    broker = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return broker


class Fleet:
    """``meters`` relays, each publishing one frame per ``period`` seconds, phases spread."""

    def __init__(self, meters: int, port: int, period: float) -> None:
        self.period = period
        self.payloads = []
        for number in range(meters):
            frames = meter_frames(number)
            if number % 2:  # half the relays send hex text
                self.payloads.append([frame.hex().encode() for frame in frames])
            else:
                self.payloads.append(frames)
        self.sent = 0
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        meters = len(self.payloads)
        started = time.monotonic()
        step = 0  # the step-th frame of the fleet: meter step % meters, its (step // meters)-th
        while not self._stop.is_set():
            due = started + step * self.period / meters
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            number, round_number = step % meters, step // meters
            lists = self.payloads[number]
            # list 3 first (discovery with the energy registers), then the cycle
            payload = lists[2] if round_number == 0 else lists[CYCLE[round_number % len(CYCLE)]]
            self.client.publish(f"fleet/{number}/raw", payload, qos=0)
            self.sent += 1
            step += 1


def run(meters: int, seconds: float, period: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = free_port()
        broker = start_broker(directory, port)
        tally = Tally()
        subscriber = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        subscriber.on_message = tally.on_message
        subscriber.connect("127.0.0.1", port)
        for topic in (
            "han2mqtt/+/state",
            "han2mqtt/+/availability",
            "han2mqtt/bridge/info",
            "homeassistant/device/+/config",
        ):
            subscriber.subscribe(topic, qos=0)
        subscriber.loop_start()
        config = directory / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "source": {"type": "mqtt", "topic": "fleet/+/raw"},
                    "meter": {"offline_after": 30},
                    "mqtt": {"host": "127.0.0.1", "port": port, "queue_size": 100_000},
                    "log": {"level": "WARNING"},
                    "publish": {"info_interval": 5},
                    "web": {"port": free_port()},  # the status page on, as by default
                    # The quarter-hour ledger on, as by default, writing in the temporary dir.
                    "state": {"dir": str(directory / "state")},
                    "history": {"enabled": True},
                }
            )
        )
        daemon = subprocess.Popen(
            [sys.executable, "-m", "han2mqtt", "run", "--config", str(config)]
        )
        time.sleep(1.5)  # imports and connects
        fleet = Fleet(meters, port, period)
        fleet.start()
        time.sleep(WARM_UP)
        cpu_before, sent_before, states_before = cpu_seconds(daemon.pid), fleet.sent, tally.states
        started = time.monotonic()
        time.sleep(seconds)
        cpu = cpu_seconds(daemon.pid) - cpu_before
        elapsed = time.monotonic() - started
        states = tally.states - states_before
        sent = fleet.sent - sent_before
        rss, peak = rss_mib(daemon.pid), rss_mib(daemon.pid, "VmHWM:")
        fleet.stop()
        time.sleep(6.0)  # the last frames through, and a bridge/info after them
        total_sent, total_states = fleet.sent, tally.states
        info = tally.info
        daemon.terminate()
        daemon.wait(15)
        subscriber.loop_stop()
        fleet.client.loop_stop()
        broker.terminate()
        broker.wait(10)
    return {
        "meters": meters,
        "sent/s": sent / elapsed,
        "frames/s": states / elapsed,
        "cpu %": 100 * cpu / elapsed,
        "cpu ms/frame": 1000 * cpu / max(states, 1),
        "rss": rss,
        "peak rss": peak,
        "lost": total_sent - total_states,
        "discovery": sum(tally.discovery.values()) / max(len(tally.discovery), 1),
        "discovered": len(tally.discovery),
        "online": len(tally.online),
        "info": info,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per size")
    parser.add_argument(
        "--period", type=float, default=2.0, help="seconds between a meter's frames"
    )
    args = parser.parse_args()
    print(
        "meters | frames/s sent | published | daemon CPU | CPU per frame | RSS (peak) | "
        "not published | discovery per meter | meters online"
    )
    for meters in args.meters:
        r = run(meters, args.seconds, args.period)
        print(
            f"{meters:6d} | {r['sent/s']:13.1f} | {r['frames/s']:9.1f} | {r['cpu %']:8.1f} % | "
            f"{r['cpu ms/frame']:10.3f} ms | {r['rss']:5.1f} MiB ({r['peak rss']:5.1f}) | "
            f"{r['lost']:13.0f} | {r['discovery']:4.2f} x {r['discovered']:5.0f} | "
            f"{r['online']:5.0f}",
            flush=True,
        )
        info = r["info"]
        assert isinstance(info, dict)
        counters = {k: info.get(k) for k in ("frames", "decoded", "decode_errors")}
        print(
            f"         bridge/info: {counters}, source {info.get('source')},"
            f" mqtt {info.get('mqtt')}"
        )


if __name__ == "__main__":
    main()
