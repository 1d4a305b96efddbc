"""The image, built from the shipped Dockerfile with Debian's podman and run for real.

Cold (nothing cached) this debootstraps the base and builds the image (about 3 minutes here);
warm it reuses both (see tests/packaging/podman.py). Select it with ``-m container``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Broker, Capture, free_port
from tests.integration.helpers import AIDON, AIDON_ID, MeterSimulator
from tests.packaging.podman import CACHE, Podman, missing_tools

# Cold, the first test also debootstraps the base and builds the image: minutes, not seconds.
pytestmark = [
    pytest.mark.container,
    pytest.mark.integration,
    pytest.mark.broker,
    pytest.mark.timeout(1800),
]

SECRET = "/run/secrets/mqtt__password"
OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture(scope="module")
def podman() -> Podman:
    if os.geteuid() != 0:
        pytest.skip("the container test runs rootful podman (scripts/test.sh runs as root)")
    if missing := missing_tools():
        pytest.skip(f"{', '.join(missing)} missing (scripts/setup.sh --with-test-services)")
    return Podman(CACHE / "podman")


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    started = time.monotonic()
    tag = podman.build()
    print(f"image {tag} ready in {time.monotonic() - started:.0f} s")
    return tag


@pytest.fixture
def container_name(podman: Podman) -> Iterator[str]:
    name = f"han2mqtt-test-{free_port()}"
    yield name
    podman("rm", "--force", "--volumes", name, check=False, timeout=60)


def _env(broker: Broker, meter_port: int, web_port: int = 0, **more: str) -> list[str]:
    env = {
        "HAN2MQTT_SOURCE__TYPE": "tcp",
        "HAN2MQTT_SOURCE__HOST": "127.0.0.1",
        "HAN2MQTT_SOURCE__PORT": str(meter_port),
        "HAN2MQTT_SOURCE__WATCHDOG": "5",
        "HAN2MQTT_MQTT__HOST": broker.host,
        "HAN2MQTT_MQTT__PORT": str(broker.port),
        "HAN2MQTT_MQTT__CLIENT_ID": f"container-{broker.port}",
        "HAN2MQTT_HEALTH__MAX_AGE": "3",
        # The image's status page listens on 0.0.0.0:8080: on the host's network, this host's
        # loopback and a free port instead.
        "HAN2MQTT_WEB__HOST": "127.0.0.1",
        "HAN2MQTT_WEB__PORT": str(web_port),
        **more,
    }
    return [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]


def _health(podman: Podman, name: str) -> int:
    return podman("healthcheck", "run", name, check=False, timeout=60).returncode


def _wait_health(podman: Podman, name: str, code: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (seen := _health(podman, name)) != code:
        assert time.monotonic() < deadline, f"healthcheck still exits {seen}"
        time.sleep(0.5)


def test_the_image_runs_as_documented(
    podman: Podman, image: str, broker: Broker, capture_factory, container_name: str
):
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    # --format docker keeps the HEALTHCHECK (the OCI format has none).
    assert inspected["Healthcheck"]["Test"] == ["CMD", "han2mqtt", "healthcheck"]
    assert inspected["Config"]["User"] == "han2mqtt"
    assert not inspected["Config"].get("Volumes")
    capture: Capture = capture_factory(broker)
    meter = MeterSimulator(AIDON, interval=0.2)
    meter.start()
    web_port = free_port()
    try:
        podman(
            "run",
            "--detach",
            "--name",
            container_name,
            "--network",
            "host",  # the broker and the meter listen on the host's 127.0.0.1
            "--health-interval",
            "disable",  # no systemd timer here: the test runs the check itself
            *_env(broker, meter.port, web_port),
            image,
        )
        capture.wait_for(lambda _m: capture.last(f"han2mqtt/{AIDON_ID}/state") is not None, 60)
        capture.wait_value(f"han2mqtt/{AIDON_ID}/availability", "online")
        assert podman("exec", container_name, "id", "-u").stdout.strip() == "1000"
        assert "dialout" in podman("exec", container_name, "id", "-Gn").stdout.split()
        _wait_health(podman, container_name, 0, timeout=15)
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/state", timeout=10) as page:
            assert AIDON_ID in page.read().decode()  # the status page serves from the image too
        meter.stop()  # the meter goes silent: after health.max_age (3 s) the check fails
        _wait_health(podman, container_name, 1, timeout=20)
        started = time.monotonic()
        podman("stop", "--time", "20", container_name, timeout=60)
        stopped_after = time.monotonic() - started
        capture.wait_value("han2mqtt/bridge/state", "offline", timeout=5)
    finally:
        meter.stop()
    state = json.loads(podman("inspect", container_name).stdout)[0]["State"]
    logs = podman("logs", container_name).stderr
    assert state["ExitCode"] == 0, logs
    assert stopped_after < 5, f"podman stop took {stopped_after:.1f} s"  # SIGTERM, no SIGKILL
    # The image leaves nothing behind (no anonymous /config volume) when it is removed.
    podman("rm", container_name)
    assert podman("volume", "ls", "--quiet").stdout.strip() == ""


def test_the_runtime_venv_has_no_pip_or_setuptools(podman: Podman, image: str):
    probe = podman(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python",
        image,
        "-c",
        "import importlib.util as u; print([m for m in ('pip', 'setuptools', 'han2mqtt')"
        " if u.find_spec(m)])",
    )
    assert probe.stdout.strip() == "['han2mqtt']"
    bins = podman("run", "--rm", "--entrypoint", "ls", image, "/opt/han2mqtt/bin").stdout.split()
    assert "han2mqtt" in bins
    assert not [name for name in bins if name.startswith("pip")]


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd missing")
def test_the_compose_secret_recipe(podman: Podman, image: str, broker_factory, tmp_path: Path):
    """A secret bind-mounted as Compose does: the host file's owner and mode as they are."""
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "meter", "s3cret"], check=True)
    broker: Broker = broker_factory(f"allow_anonymous false\npassword_file {passwords}")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secret = secrets / "mqtt_password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)  # root's, as `printf ... > file` under sudo leaves it
    meter = MeterSimulator(AIDON, interval=0.2)
    meter.start()
    args = [
        "--network",
        "host",
        "--health-interval",
        "disable",
        "--volume",
        f"{secret}:{SECRET}:ro",
        *_env(broker, meter.port, free_port(), HAN2MQTT_MQTT__USERNAME="meter"),
        image,
    ]
    try:
        denied = podman("run", "--rm", *args, check=False, timeout=60)
        assert denied.returncode == 2
        message = denied.stderr.strip().splitlines()[-1]
        assert message.startswith(f"han2mqtt: error: cannot read {SECRET}: Permission denied")
        assert "uid 1000" in message
        # What the README says to do: the container user (uid 1000) owns it, mode 0400.
        os.chown(secret, 1000, 0)
        secret.chmod(0o400)
        name = f"han2mqtt-secret-{broker.port}"
        try:
            podman("run", "--detach", "--name", name, *args)
            # The broker refuses anonymous clients: a reading there came with the password.
            seen = subprocess.run(
                [
                    *("mosquitto_sub", "-p", str(broker.port), "-u", "meter", "-P", "s3cret"),
                    *("-t", f"han2mqtt/{AIDON_ID}/state", "-C", "1", "-W", "60"),
                ],
                capture_output=True,
                text=True,
                timeout=90,
                check=False,
            )
            assert json.loads(seen.stdout)["meter_id"] == AIDON_ID, podman("logs", name).stderr
        finally:
            podman("rm", "--force", name, check=False, timeout=60)
    finally:
        meter.stop()


def _meter_times(capture: Capture) -> dict[str, str]:
    """The last state that carries the meter's clock: its ``meter_datetime`` and ``meter_time``."""
    for _topic, payload, _retained in reversed(capture.messages):
        state = json.loads(payload) if payload.startswith("{") else {}
        if "meter_time" in state and "meter_datetime" in state:
            return state
    return {}


def test_data_survives_a_recreated_container_and_tz_sets_the_zone(
    podman: Podman, image: str, broker: Broker, capture_factory, container_name: str
):
    """docker-compose.yml's named volume on /data and its TZ line, as a re-creation meets them."""
    volume = f"han2mqtt-data-{broker.port}"
    capture: Capture = capture_factory(broker, (f"han2mqtt/{AIDON_ID}/state",))
    meter = MeterSimulator(AIDON, interval=0.2)
    meter.start()
    common = ["--detach", "--network", "host", "--health-interval", "disable"]
    common += ["--volume", f"{volume}:/data", *_env(broker, meter.port, free_port())]
    try:
        # On UTC (no TZ, no meter.timezone): the Aidon's naive local clock is warned about.
        podman("run", "--name", container_name, *common, image)
        capture.wait_for(lambda _m: _meter_times(capture) != {}, 60)
        podman("stop", "--time", "20", container_name, timeout=60)
        logs = podman("logs", container_name).stderr
        assert "meter.timezone is unset and this host's time zone is UTC" in logs, logs
        state = _meter_times(capture)
        assert state["meter_time"].endswith("+00:00")
        podman("rm", container_name)
        capture.clear()
        # Re-created with TZ, as the compose file sets it: the state from /data is restored.
        podman("run", "--name", container_name, "--env", "TZ=Europe/Oslo", *common, image)
        capture.wait_for(lambda _m: _meter_times(capture) != {}, 60)
        podman("stop", "--time", "20", container_name, timeout=60)
        logs = podman("logs", container_name).stderr
        assert "energy state restored from /data/" in logs, logs
        assert "time zone is UTC" not in logs, logs
        state = _meter_times(capture)
        local = datetime.fromisoformat(state["meter_datetime"]).replace(tzinfo=OSLO)
        assert state["meter_time"] == local.isoformat()
    finally:
        meter.stop()
        podman("rm", "--force", container_name, check=False, timeout=60)
        podman("volume", "rm", "--force", volume, check=False, timeout=60)
