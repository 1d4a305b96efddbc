"""End-to-end throughput: TCP meter → ``han2mqtt run`` → mosquitto → a subscriber.

A TCP peer sends frames as fast as the daemon takes them (it pauses reading when its queue is
full); a subscriber counts the JSON state messages (one per frame) and every other message.
Prints frames/s, MQTT messages/s, the daemon's CPU time per frame and its peak RSS.
``--sse N`` keeps N status-page event streams open and read (a page open in N browsers) while
frames flow, ``--no-web`` turns the status page off: with both, the page's cost shows.
The energy stage runs with the Norwegian capacity tariff on; ``--prices`` adds the money stage
(a fixed spot price, day/night grid rates, taxes, VAT and strømstøtte: every frame priced and
costed, with no network in the measurement).

Usage: python benchmarks/pipeline.py [--frames N] [--state-only] [--no-web | --sse N] [--prices]
       [--no-history]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from han2mqtt.simulator import load_samples

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Counter:
    def __init__(self) -> None:
        self.states = 0
        self.messages = 0
        self.decoded = 0
        self.first: float | None = None
        self.last = 0.0
        self.lock = threading.Lock()

    def on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        with self.lock:
            if message.topic.endswith("/bridge/info"):
                info = json.loads(message.payload)
                self.messages = info["mqtt"]["published"]
                self.decoded = info["decoded"]
                return
            # han2mqtt/+/state also matches han2mqtt/bridge/state: its "online" at start-up and
            # "offline" at exit are no frames and would stretch the measured window.
            if message.topic.endswith("/state") and not message.topic.endswith("/bridge/state"):
                self.states += 1
                self.first = self.first if self.first is not None else now
                self.last = now


def start_broker(directory: Path, port: int) -> subprocess.Popen[bytes]:
    conf = directory / "mosquitto.conf"
    conf.write_text(
        f"user {os.environ.get('USER', 'root')}\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
    )
    broker = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return broker


def serve_in_thread(frames: list[bytes], port: int) -> None:
    """A TCP peer that sends the whole stream as fast as the daemon takes it.

    It writes the frames back to back in large writes and lets TCP flow control pace it (the
    daemon pauses reading while its queue is full); a write and an event-loop turn per frame
    would measure this process, which shares its GIL with the subscriber, not the daemon.
    """
    stream = b"".join(frames)

    async def send(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for start in range(0, len(stream), 64 * 1024):
            writer.write(stream[start : start + 64 * 1024])
            await writer.drain()
        await asyncio.sleep(3600)  # keep the line open, silent, like an idle meter

    def main() -> None:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(asyncio.start_server(send, "127.0.0.1", port))
        loop.run_forever()

    threading.Thread(target=main, daemon=True).start()


class EventStreams:
    """``count`` readers of ``/api/events`` in a thread, counting the reading events."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.events = 0
        self.connected = 0

    def start(self) -> None:
        import socket  # noqa: PLC0415

        sockets = []
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), 5)
            sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: bench\r\n\r\n")
            sockets.append(sock)
        self.connected = len(sockets)

        def read(sock: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := sock.recv(65536):
                    self.events += data.count(b"event: reading")

        for sock in sockets:
            threading.Thread(target=read, args=(sock,), daemon=True).start()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument(
        "--state-only",
        action="store_true",
        help="publish only the JSON state topic (fields, OBIS topics and discovery off)",
    )
    parser.add_argument("--no-web", action="store_true", help="status page off (web.enabled)")
    parser.add_argument(
        "--no-history", action="store_true", help="quarter-hour ledger off (history.enabled)"
    )
    parser.add_argument("--sse", type=int, default=0, help="status-page event streams to read")
    parser.add_argument("--prices", action="store_true", help="the money stage on (fixed price)")
    return parser.parse_args()


def _money() -> dict[str, object]:
    """The money stage's sections: every frame priced and costed, no network."""
    return {
        "prices": {"source": "fixed", "fixed": 1.2, "area": "NO1", "vat": 0.25},
        "grid": {
            "holidays": "NO",
            "taxes": 0.0713,
            "energy": [
                {
                    "price": 0.36,
                    "hours": "06-22",
                    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                    "holidays": False,
                },
                {"price": 0.28},
            ],
            "subsidy": {"scheme": "stromstotte"},
        },
    }


def main() -> None:
    args = _arguments()
    samples = load_samples()
    frames = (samples * (args.frames // len(samples) + 1))[: args.frames]

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        broker_port, meter_port, web_port = free_port(), free_port(), free_port()
        broker = start_broker(directory, broker_port)
        counter = Counter()
        subscriber = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        subscriber.on_message = counter.on_message
        subscriber.connect("127.0.0.1", broker_port)
        # Only the state topic (one message per frame): a Python subscriber of every topic
        # would measure itself. The total message count comes from the daemon's bridge/info.
        subscriber.subscribe("han2mqtt/+/state", qos=0)
        subscriber.subscribe("han2mqtt/bridge/info", qos=0)
        subscriber.loop_start()
        config = directory / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    **(_money() if args.prices else {}),
                    "source": {"type": "tcp", "host": "127.0.0.1", "port": meter_port},
                    # The energy stage always runs; the capacity tariff on, as users in
                    # Norway run it.
                    "meter": {"timezone": "Europe/Oslo"},
                    "tariff": {"preset": "no"},
                    "state": {"dir": str(directory / "state")},
                    # The quarter-hour ledger and its database, as by default.
                    "history": {"enabled": not args.no_history},
                    "mqtt": {"host": "127.0.0.1", "port": broker_port, "queue_size": 100_000},
                    "log": {"level": "WARNING"},
                    "publish": {
                        "info_interval": 0.5,
                        "fields": not args.state_only,
                        "obis": not args.state_only,
                    },
                    "homeassistant": {"discovery": not args.state_only},
                    "web": {"enabled": not args.no_web, "port": web_port},
                }
            )
        )
        daemon = subprocess.Popen(
            [sys.executable, "-m", "han2mqtt", "run", "--config", str(config)]
        )
        time.sleep(1.5)  # start-up (imports, broker connection) is not part of the measurement
        streams = EventStreams(web_port, args.sse)
        if args.sse and not args.no_web:
            streams.start()
            time.sleep(0.5)
        cpu_before = cpu_seconds(daemon.pid)
        serve_in_thread(frames, meter_port)
        deadline = time.monotonic() + 300
        while counter.states < len(frames) and time.monotonic() < deadline:
            previous = counter.states
            time.sleep(2.0)
            if counter.states == previous and counter.states > 0:
                break  # nothing more is coming
        time.sleep(1.0)  # the last bridge/info
        cpu = cpu_seconds(daemon.pid) - cpu_before
        rss = peak_rss_mib(daemon.pid)
        daemon.terminate()
        daemon.wait(15)
        subscriber.loop_stop()
        broker.terminate()
        broker.wait(10)

    _report(args, counter, streams, cpu, rss, len(frames), len(samples))


def _report(  # noqa: PLR0913, PLR0917 - what the run measured
    args: argparse.Namespace,
    counter: Counter,
    streams: EventStreams,
    cpu: float,
    rss: float,
    frames: int,
    samples: int,
) -> None:
    elapsed = max(counter.last - (counter.first or counter.last), 1e-9)
    print(f"frames sent      : {frames} ({samples} real captures repeated)")
    received = f"{counter.states} JSON state messages received, {counter.decoded} decoded"
    print(f"frames published : {received}")
    rate = counter.states / elapsed
    per_frame = counter.messages / max(counter.decoded, 1)
    print(
        f"throughput       : {rate:,.0f} frames/s, {rate * per_frame:,.0f} MQTT messages/s "
        f"({per_frame:.1f} messages per frame)"
    )
    per_frame_ms = cpu * 1000 / max(counter.states, 1)
    print(f"daemon CPU       : {per_frame_ms:.3f} ms per frame ({cpu:.2f} s total)")
    print(f"daemon peak RSS  : {rss:.1f} MiB")
    money = "on (fixed price, grid rules, strømstøtte)" if args.prices else "off"
    web = "off" if args.no_web else f"on, {streams.connected} event stream(s) open"
    print(
        f"status page      : {web}; {streams.events} reading events received; "
        f"ledger {'off' if args.no_history else 'on'}"
    )
    print(f"money stage      : {money}")


if __name__ == "__main__":
    main()
