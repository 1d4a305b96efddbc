"""examples/node-red-flow.json deployed into a real, headless Node-RED next to the real daemon.

Node-RED comes from npm into .cache/node-red (scripts/setup.sh --with-test-services). The test
deploys the shipped flow through the admin API with its broker node pointed at the test broker,
and copies what reaches each of the flow's debug nodes (what a user sees) to MQTT topics of its
own, so it can assert on it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from han2mqtt.simulator import load_samples
from tests import encoder
from tests.conftest import Broker, Capture, free_port, wait_for_port
from tests.integration.helpers import AIDON_ID, MeterSimulator, start_daemon, stop_daemon
from tests.integration.helpers import write_config as daemon_config

ROOT = Path(__file__).resolve().parents[2]
RED_JS = ROOT / ".cache" / "node-red" / "node_modules" / "node-red" / "red.js"
FLOW = ROOT / "examples" / "node-red-flow.json"
CAPTURE = "nodered-test"

pytestmark = [pytest.mark.integration, pytest.mark.broker]


def _with_power(frame: bytes, values: dict[str, int]) -> bytes:
    """A real Aidon frame with other double-long-unsigned power values, HDLC checks redone."""
    information = bytearray(frame[9:-3])  # between header (flag, format, addresses, HCS) and FCS
    for code, value in values.items():
        marker = encoder.obis(code) + b"\x06"
        at = information.index(marker) + len(marker)
        information[at : at + 4] = value.to_bytes(4, "big")
    return encoder.hdlc(bytes(information))


# An exporting house: lists 2 and 3 say import 0 W, export 1500 W; list 1 carries import only.
SAMPLES = load_samples()
EXPORTING = [
    _with_power(SAMPLES[0], {"1-0:1.7.0.255": 0, "1-0:2.7.0.255": 1500}),
    _with_power(SAMPLES[1], {"1-0:1.7.0.255": 0}),
    _with_power(SAMPLES[1], {"1-0:1.7.0.255": 0}),
]


@dataclass
class NodeRed:
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Node-RED-Deployment-Type": "full"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            text = response.read().decode()
        return json.loads(text) if text else None

    def wait_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            assert self.process.poll() is None, self.log.read_text(errors="replace")
            assert time.monotonic() < deadline, f"{text!r} not in {self.log.read_text()}"
            time.sleep(0.2)


@pytest.fixture
def node_red(tmp_path: Path) -> Iterator[NodeRed]:
    node = shutil.which("node")
    if node is None or not RED_JS.exists():
        pytest.skip(
            "node or Node-RED missing (scripts/setup.sh --with-test-services installs them)"
        )
    user_dir = tmp_path / "node-red"
    user_dir.mkdir()
    port = free_port()
    settings = user_dir / "settings.js"
    settings.write_text(
        "module.exports = {\n"
        f"  uiHost: '127.0.0.1', uiPort: {port}, flowFile: 'flows.json',\n"
        "  credentialSecret: false, telemetry: { enabled: false },\n"
        "  logging: { console: { level: 'info', metrics: false, audit: false } },\n"
        "};\n"
    )
    log = tmp_path / "node-red.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [node, str(RED_JS), "--userDir", str(user_dir), "--settings", str(settings)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    red = NodeRed(port, log, process)
    try:
        wait_for_port(port, timeout=60)
        red.wait_log("Started flows")
        yield red
    finally:
        process.terminate()
        process.wait(20)


def _flow_for_test(broker: Broker) -> list[dict[str, Any]]:
    """The shipped flow, its broker pointed at ours, with a tap in front of each debug node."""
    flow: list[dict[str, Any]] = json.loads(FLOW.read_text())
    for node in flow:
        if node["type"] == "mqtt-broker":
            node.update(broker=broker.host, port=str(broker.port))
    debug = [node for node in flow if node["type"] == "debug"]
    tab = next(node["id"] for node in flow if node["type"] == "tab")
    out = {"id": "test.out", "type": "mqtt out", "z": tab, "broker": debug_broker(flow), "qos": "1"}
    added: list[dict[str, Any]] = [out]
    for sink in debug:
        tap = {
            "id": f"test.tap.{sink['id']}",
            "type": "function",
            "z": tab,
            "outputs": 1,
            "func": f"return {{ topic: '{CAPTURE}/{sink['name']}', "
            "payload: JSON.stringify({ topic: msg.topic, payload: msg.payload }) };",
            "wires": [["test.out"]],
        }
        added.append(tap)
        for node in flow:
            for output in node.get("wires", []):
                if sink["id"] in output:
                    output.append(tap["id"])
    return flow + added


def debug_broker(flow: list[dict[str, Any]]) -> str:
    return str(next(node["id"] for node in flow if node["type"] == "mqtt-broker"))


def _outputs(capture: Capture, name: str) -> list[dict[str, Any]]:
    with capture.lock:
        return [json.loads(p) for t, p, _ in capture.messages if t == f"{CAPTURE}/{name}"]


def test_the_shipped_flow_in_node_red(
    node_red: NodeRed, broker: Broker, capture_factory, tmp_path: Path
):
    shipped = json.loads(FLOW.read_text())
    debug = {node["name"]: node for node in shipped if node["type"] == "debug"}
    assert set(debug) == {"net power", "availability"}
    assert all(node["active"] for node in debug.values())  # shown, not shipped switched off
    capture: Capture = capture_factory(broker, (f"{CAPTURE}/#",))
    node_red.request("POST", "/flows", _flow_for_test(broker))
    node_red.wait_log("Connected to broker")
    meter = MeterSimulator(EXPORTING, interval=0.2)
    meter.start()
    daemon = start_daemon(
        daemon_config(tmp_path, broker, {"type": "tcp", "host": "127.0.0.1", "port": meter.port})
    )
    try:
        capture.wait_for(lambda _m: len(_outputs(capture, "net power")) >= 8, timeout=30)
        capture.wait_for(
            lambda _m: {"topic": AIDON_ID, "payload": "online"} in _outputs(capture, "availability")
        )
    finally:
        code, err = stop_daemon(daemon)
        meter.stop()
    assert code == 0, err
    # bridge/state "offline" (the daemon's clean stop) reaches the availability output.
    capture.wait_for(
        lambda _m: (
            _outputs(capture, "availability")[-1] == {"topic": AIDON_ID, "payload": "offline"}
        )
    )
    # Every frame, list 1 (import only) included, gives import - the last export: never 0 - 0.
    powers = _outputs(capture, "net power")
    assert {(p["topic"], p["payload"]) for p in powers} == {(AIDON_ID, -1500)}, powers
    time.sleep(0.5)  # a parse error of the last message would be logged right after it
    log = node_red.log.read_text(errors="replace")
    # Node-RED's own start-up warnings (projects, credentials) are not the flow's.
    errors = [line for line in log.splitlines() if "[error]" in line or "[warn] [" in line]
    assert errors == [], log
    nodes = {node["id"] for node in node_red.request("GET", "/flows")}
    assert {node["id"] for node in shipped} <= nodes  # the deployed flow is the shipped one
