"""The status page's budget: page size, server render time, first paint in Chromium, daemon RSS.

Runs ``han2mqtt run`` on the demo source (four simulated meters, a step every 0.5 s; until
2026-12 three meters replaying the built-in frames) with a real mosquitto, once with the page off
and once on, and prints:
- the uncompressed size of the page, its script, style and icon;
- the server's time for ``GET /`` and ``GET /api/state`` (median of 200, over one connection);
- first contentful paint in headless Chromium (cold first load, then the median of 10 reloads);
- the daemon's RSS after 20 s, page off, and page on with a browser showing it.

Usage: python benchmarks/web.py   (needs Debian's chromium and mosquitto)
"""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.web.chromium import Chromium

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def daemon(
    directory: Path, broker_port: int, web_port: int, *, web: bool
) -> subprocess.Popen[bytes]:
    config = directory / f"config-{web}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": {"type": "demo", "demo_interval": 0.5},
                "mqtt": {"host": "127.0.0.1", "port": broker_port, "client_id": f"bench-{web}"},
                "log": {"level": "WARNING"},
                "web": {"enabled": web, "port": web_port},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAN2MQTT_")}
    command = [sys.executable, "-m", "han2mqtt", "run", "--config", str(config)]
    return subprocess.Popen(command, env=env)


def timed_gets(port: int, path: str, count: int = 200) -> tuple[float, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    times, size = [], 0
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        size = len(response.read())
        times.append(time.perf_counter() - started)
    connection.close()
    return statistics.median(times) * 1000, size


async def paints(url: str, profile: Path) -> tuple[float, list[float]]:
    expression = "performance.getEntriesByName('first-contentful-paint')[0]?.startTime"
    async with Chromium(profile) as browser:
        found = []
        for _ in range(11):
            await browser.open(url)
            found.append(float(await browser.wait_for(expression)))
        if browser.errors:
            print(f"browser errors: {browser.errors}")
        return found[0], found[1:]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        broker_port = free_port()
        conf = directory / "mosquitto.conf"
        conf.write_text(
            f"user {os.environ.get('USER', 'root')}\nlistener {broker_port} 127.0.0.1\n"
            "allow_anonymous true\n"
        )
        # The broker and the daemons are started once and run while we measure: no blocking.
        broker = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)  # noqa: ASYNC220
        try:
            off = daemon(directory, broker_port, free_port(), web=False)
            await asyncio.sleep(20)
            rss_off = rss_mib(off.pid)
            off.terminate()
            off.wait(15)
            port = free_port()
            on = daemon(directory, broker_port, port, web=True)
            await asyncio.sleep(3)
            sizes = {
                path: timed_gets(port, path, 1)[1]
                for path in ("/", "/app.js", "/app.css", "/favicon.svg")
            }
            page_ms, _ = timed_gets(port, "/")
            state_ms, _ = timed_gets(port, "/api/state")
            profile = directory / "profile"
            profile.mkdir()
            cold, warm = await paints(f"http://127.0.0.1:{port}/", profile)
            async with Chromium(directory / "profile2") as browser:  # a page open while measured
                await browser.open(f"http://127.0.0.1:{port}/")
                await asyncio.sleep(15)
                rss_on = rss_mib(on.pid)
            on.terminate()
            on.wait(15)
        finally:
            broker.terminate()
            broker.wait(10)
    total = sum(sizes.values())
    listed = ", ".join(f"{path} {size:,} B" for path, size in sizes.items())
    print(f"page sizes       : {listed}; total {total:,} B (budget 50,000)")
    print(f"server time      : GET / {page_ms:.2f} ms, GET /api/state {state_ms:.2f} ms (median)")
    spread = f"median {statistics.median(warm):.0f}, min {min(warm):.0f}, max {max(warm):.0f}"
    print(f"first paint      : {cold:.0f} ms cold; 10 reloads: {spread} ms")
    print(f"daemon RSS       : {rss_off:.1f} MiB page off, {rss_on:.1f} MiB page on and open")


if __name__ == "__main__":
    asyncio.run(main())
