"""Soak: ``han2mqtt run`` at full speed for minutes, at QoS 0 and QoS 1, counting every reading.

A TCP peer sends the built-in real frames back to back for ``--minutes`` (TCP flow control paces
it to what the daemon takes), then goes silent.  A subscriber at the same QoS counts the JSON
state messages (one per decoded frame).  When the stream is over and the daemon has drained, the
frames sent, the frames the daemon decoded (``bridge/info``), the readings received and what the
daemon says it dropped or replaced must agree: a reading lost without a counter is a failure.
The daemon's RSS is sampled every few seconds, so a leak shows as a slope.

Usage: python benchmarks/soak.py [--minutes M] [--qos 0 1]
Exit code 1 when a reading went missing uncounted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pipeline import cpu_seconds, free_port, start_broker

from han2mqtt.simulator import load_samples

RSS_PERIOD = 5.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Tally:
    """What the subscriber saw: state messages and the daemon's last ``bridge/info``."""

    states: int = 0
    info: dict[str, object] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with self.lock:
            if message.topic.endswith("/bridge/info"):
                self.info = json.loads(message.payload)
            elif message.topic.endswith("/state") and "/bridge/" not in message.topic:
                self.states += 1


@dataclass
class Sender:
    """A meter on TCP that sends whole frames as fast as they are taken, until ``stop``."""

    frames: list[bytes]
    port: int
    sent: int = 0
    go: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._main, daemon=True).start()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(asyncio.start_server(self._send, "127.0.0.1", self.port))
        loop.run_forever()

    async def _send(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Whole frames per write, so the count of frames sent is exact; drain() waits only
        # while the transport holds more than its high-water mark (TCP flow control).
        block = b"".join(self.frames)
        await asyncio.to_thread(self.go.wait)
        while not self.stop.is_set():
            writer.write(block)
            self.sent += len(self.frames)
            await writer.drain()
        await asyncio.sleep(3600)  # silent but connected, like an idle meter


def soak(minutes: float, qos: int) -> bool:
    samples = load_samples()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        broker_port, meter_port = free_port(), free_port()
        broker = start_broker(directory, broker_port)
        tally = Tally()
        subscriber = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        subscriber.max_inflight_messages_set(1000)
        subscriber.on_message = tally.on_message
        subscriber.connect("127.0.0.1", broker_port)
        subscriber.subscribe("han2mqtt/+/state", qos=qos)
        subscriber.subscribe("han2mqtt/bridge/info", qos=qos)
        subscriber.loop_start()
        config = directory / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "source": {"type": "tcp", "host": "127.0.0.1", "port": meter_port},
                    "mqtt": {"host": "127.0.0.1", "port": broker_port, "qos": qos},
                    "log": {"level": "WARNING"},
                    "publish": {"info_interval": 1.0},
                }
            )
        )
        sender = Sender(samples, meter_port)
        sender.start()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "han2mqtt", "run", "--config", str(config)]
        )
        time.sleep(1.5)
        cpu_before = cpu_seconds(daemon.pid)
        sender.go.set()
        samples_rss: list[tuple[float, float]] = []
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            time.sleep(RSS_PERIOD)
            samples_rss.append((time.monotonic() - started, rss_mib(daemon.pid)))
        sender.stop.set()
        sending = time.monotonic() - started
        # Drain: wait until the readings stop growing (the daemon empties its socket and queue).
        previous = -1
        while tally.states != previous:
            previous = tally.states
            time.sleep(3.0)
        cpu = cpu_seconds(daemon.pid) - cpu_before
        daemon.terminate()
        daemon.wait(15)
        subscriber.loop_stop()
        broker.terminate()
        broker.wait(10)
    return report(Run(qos, sender.sent, sending, cpu, samples_rss), tally)


@dataclass
class Run:
    """One soak's own measurements."""

    qos: int
    sent: int
    seconds: float
    cpu: float
    rss: list[tuple[float, float]]


def report(run: Run, tally: Tally) -> bool:
    qos, sent, seconds, cpu, rss = run.qos, run.sent, run.seconds, run.cpu, run.rss
    info = tally.info
    decoded = int(str(info.get("decoded", 0)))
    mqtt = info.get("mqtt", {})
    assert isinstance(mqtt, dict)
    lost = {key: mqtt[key] for key in ("dropped", "replaced") if key in mqtt}
    counted = sum(int(value) for value in lost.values())
    print(f"--- QoS {qos}: {seconds / 60:.1f} min at full speed")
    print(f"frames sent       : {sent:,} ({sent / seconds:,.0f}/s)")
    print(f"frames decoded    : {decoded:,} (bridge/info)")
    print(f"readings received : {tally.states:,}  counted losses: {lost or 'none'}")
    print(f"daemon CPU        : {cpu * 1000 / max(decoded, 1):.3f} ms per frame")
    if rss:
        first, last = rss[0][1], rss[-1][1]
        peak = max(value for _, value in rss)
        print(
            f"daemon RSS        : first {first:.1f} MiB, last {last:.1f} MiB, peak {peak:.1f} MiB"
        )
    ok = decoded == sent and tally.states + counted >= sent
    print("result            :", "OK" if ok else "READINGS LOST WITHOUT A COUNTER")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--qos", type=int, nargs="+", default=[0, 1], choices=[0, 1, 2])
    args = parser.parse_args()
    results = [soak(args.minutes, qos) for qos in args.qos]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
