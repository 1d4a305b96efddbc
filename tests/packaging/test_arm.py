"""32-bit Raspberry Pi OS, emulated: Debian bookworm armhf in a chroot, and the image for arm/v7.

What the issue asks of the Pi path (see tests/packaging/arm.py for how the chroot is made):
``scripts/demo.sh`` from a fresh copy of the repository sets itself up on an armhf system that has
python3 only (cffi and PyYAML have no armv7 wheel: setup.sh must find that out and install the
compiler) and prints the same messages as on this machine; the built wheel installs, decodes as
here and runs against the host's mosquitto; the Dockerfile builds for linux/arm/v7 and its image
runs. Select with ``-m arm``. Cold (no .cache/arm, no image) it takes tens of minutes of emulation;
skipped, saying why, only where emulation cannot be registered.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Broker, Capture
from tests.integration.helpers import AIDON, AIDON_ID, MeterSimulator
from tests.packaging.arm import (
    Chroot,
    base_image_tarball,
    copy_repository,
    emulation_unavailable,
    rootfs_tarball,
    unpack,
)
from tests.packaging.podman import CACHE, ROOT, Platform, Podman, missing_tools

pytestmark = [pytest.mark.arm, pytest.mark.integration, pytest.mark.timeout(5400)]

HOST_HAN2MQTT = str(Path(sys.executable).with_name("han2mqtt"))
CORPUS = Path("/work/shared/corpus/frames.json")
# A plain HDLC list, a DSMR P1 telegram and an AES-GCM ciphered one (cryptography, built on cffi,
# which armhf has to compile): decoded in the chroot exactly as here.
DECODED = (
    "no-aidon-doc-1p-list2",
    "se-p1-landisgyr-e360-a",
    "at-landisgyr-e450-burgenland-gh501-2",
)
IMAGE = "localhost/han2mqtt-test-armv7"
ARMV7 = Platform("arm", "v7", base_image_tarball)
# setup.sh's one line of why, on 32-bit ARM.
WHY = re.compile(
    r"^setup: no wheel for this machine \(linux-armv7l cpython 3\.11\) of (?P<names>[^:]+): "
    r"installing gcc libc6-dev libffi-dev python3-dev to build$",
    re.MULTILINE,
)


def _timed(what: str, started: float) -> None:
    print(f"{what}: {time.monotonic() - started:.0f} s")


def _comparable(demo_output: str) -> str:
    """The demo's messages without what depends on the wall clock, not on the meters.

    Receive times differ from run to run; ``bridge/info`` goes out when its counters change but at
    most once a second, so a run under emulation (tens of times slower) sends more of them, and
    the closing line counts them.  Every meter's lines must be the same.
    """
    lines = [
        line
        for line in demo_output.splitlines()
        if not line.startswith("han2mqtt/bridge/info ")
        and not re.match(r"\d+ messages on \d+ topics", line)
    ]
    return re.sub(r'"timestamp":"[^"]*"', '"timestamp":"…"', "\n".join(lines))


@pytest.fixture(scope="module")
def emulation() -> None:
    if reason := emulation_unavailable():
        pytest.skip(f"ARM emulation cannot be registered: {reason}")


@pytest.fixture(scope="module")
def host_demo() -> str:
    return subprocess.run(
        [HOST_HAN2MQTT, "demo", "--interval", "0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


@pytest.fixture(scope="module")
def armhf(emulation: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chroot]:
    started = time.monotonic()
    tarball = rootfs_tarball()
    _timed(f"armhf root file system {tarball.name}", started)
    root = tmp_path_factory.mktemp("armhf") / "rootfs"
    unpack(tarball, root)
    with Chroot(root) as chroot:
        yield chroot
    shutil.rmtree(root)  # after the unmount: hundreds of MB


@pytest.fixture(scope="module")
def demo_sh(armhf: Chroot) -> subprocess.CompletedProcess[str]:
    """The issue's acceptance check: scripts/demo.sh, fresh copy, a system with python3 only."""
    bare = armhf.run("python3 -c 'import venv, ensurepip'")
    assert bare.returncode != 0, "the chroot should not have python3-venv yet"
    copy_repository(armhf.root / "src/han2mqtt")
    started = time.monotonic()
    result = armhf.run("cd /src/han2mqtt && scripts/demo.sh --interval 0", timeout=4800)
    _timed("scripts/demo.sh in the armhf chroot", started)
    return result


def test_demo_sh_sets_itself_up_on_armhf(demo_sh: subprocess.CompletedProcess[str], host_demo):
    output = demo_sh.stdout + demo_sh.stderr
    assert demo_sh.returncode == 0, output[-4000:]
    assert "setup: installing python3-venv" in demo_sh.stdout
    why = WHY.search(demo_sh.stdout)
    assert why, demo_sh.stdout[-2000:]
    print(why.group(0))
    assert {"cffi", "PyYAML"} <= set(why.group("names").split())
    messages = demo_sh.stdout[demo_sh.stdout.index("han2mqtt/bridge/state online") :]
    assert _comparable(messages) == _comparable(host_demo)


@pytest.fixture(scope="module")
def wheel_venv(armhf: Chroot, demo_sh, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The built wheel installed in a venv of its own (after demo.sh put python3-venv in)."""
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), ROOT],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("han2mqtt-*.whl")
    (armhf.root / "tmp" / wheel.name).write_bytes(wheel.read_bytes())
    started = time.monotonic()
    armhf.check(f"python3 -m venv /opt/wheel && /opt/wheel/bin/pip install -q /tmp/{wheel.name}")
    _timed("the wheel installed in the armhf chroot", started)
    return "/opt/wheel/bin/han2mqtt"


def test_the_wheel_runs_the_demo_as_here(armhf: Chroot, wheel_venv: str, host_demo: str):
    machine = armhf.check("python3 -c 'import platform; print(platform.machine())'").stdout
    assert machine.strip() == "armv7l"
    demo = armhf.check(f"{wheel_venv} demo --interval 0", timeout=600)
    assert _comparable(demo.stdout) == _comparable(host_demo)


def test_the_wheel_decodes_as_here(armhf: Chroot, wheel_venv: str, tmp_path: Path):
    frames = {item["id"]: item for item in json.loads(CORPUS.read_text())}
    for name in DECODED:
        frame = frames[name]
        # Hex as text for HDLC, the telegram itself for P1: the same file here and there.
        (tmp_path / name).write_text(frame["hex_or_text"])
        (armhf.root / "tmp" / name).write_text(frame["hex_or_text"])
        key = ["--key", frame["key_hex"]] if frame["key_hex"] else []
        here = subprocess.run(
            [HOST_HAN2MQTT, "decode", *key, str(tmp_path / name)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        there = armhf.check(f"{wheel_venv} decode {' '.join(key)} /tmp/{name}", timeout=300)
        assert there.stdout == here, name
        assert '"meter_manufacturer"' in here, here


def test_the_wheel_runs_against_the_hosts_broker(
    armhf: Chroot, wheel_venv: str, broker: Broker, capture_factory
):
    capture: Capture = capture_factory(broker)
    meter = MeterSimulator(AIDON, interval=0.5)
    meter.start()
    env = {
        "HAN2MQTT_SOURCE__TYPE": "tcp",
        "HAN2MQTT_SOURCE__HOST": "127.0.0.1",
        "HAN2MQTT_SOURCE__PORT": str(meter.port),
        "HAN2MQTT_MQTT__HOST": broker.host,
        "HAN2MQTT_MQTT__PORT": str(broker.port),
        "HAN2MQTT_MQTT__CLIENT_ID": f"armhf-{broker.port}",
        "HAN2MQTT_STATE__DIR": "/tmp/state",
        "HAN2MQTT_WEB__ENABLED": "false",
    }
    daemon = subprocess.Popen(
        armhf.command(f"exec {wheel_venv} run", env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        try:
            capture.wait_for(lambda _m: capture.last(f"han2mqtt/{AIDON_ID}/state") is not None, 180)
        except AssertionError as missing:
            daemon.kill()
            errors = daemon.communicate(timeout=30)[1]
            raise AssertionError(f"{missing}\n{errors[-3000:]}") from None
        capture.wait_value(f"han2mqtt/{AIDON_ID}/availability", "online")
        state = json.loads(capture.last(f"han2mqtt/{AIDON_ID}/state") or "{}")
        assert state["meter_id"] == AIDON_ID
        daemon.send_signal(signal.SIGTERM)
        _, errors = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, errors[-3000:]
        capture.wait_value("han2mqtt/bridge/state", "offline", timeout=10)
    finally:
        meter.stop()
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate(timeout=30)


@pytest.fixture(scope="module")
def armv7_image(emulation: None) -> tuple[Podman, str]:
    if missing := missing_tools():
        pytest.skip(f"{', '.join(missing)} missing (scripts/setup.sh --with-test-services)")
    podman = Podman(CACHE / "podman-arm")  # a store of its own: the same base name, for arm
    started = time.monotonic()
    tag = podman.build(image=IMAGE, platform=ARMV7, timeout=5400)
    _timed(f"image {tag} for linux/arm/v7", started)
    return podman, tag


def test_the_image_builds_and_runs_on_arm_v7(armv7_image: tuple[Podman, str], host_demo: str):
    podman, tag = armv7_image
    inspected = json.loads(podman("image", "inspect", tag).stdout)[0]
    # The docker format keeps the architecture, not the variant: the CPU inside says armv7l.
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "arm")
    assert inspected["Config"]["User"] == "han2mqtt"
    run = ("run", "--rm", "--network", "none", "--arch", "arm", "--variant", "v7")
    probe = "import platform; print(platform.machine())"
    machine = podman(*run, "--entrypoint", "python", tag, "-c", probe)
    assert machine.stdout.strip() == "armv7l"
    demo = podman(*run, tag, "demo", "--interval", "0", timeout=600)
    assert _comparable(demo.stdout) == _comparable(host_demo)
