"""What ships besides the package: Dockerfile, compose file, systemd unit, Node-RED flow."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml

from han2mqtt._version import __version__
from han2mqtt.mqtt.topics import availability_topic, field_topic, state_topic
from tests.conftest import Broker, Capture, free_port

ROOT = Path(__file__).resolve().parents[2]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def _instruction(name: str) -> list[str]:
    return [args for op, args in _dockerfile_instructions() if op == name]


def _build_context_copy(target: Path) -> Path:
    """What the build stage's COPY instructions put into its WORKDIR."""
    target.mkdir()
    build_stage = _dockerfile_instructions()[
        : [op for op, _ in _dockerfile_instructions()].index("FROM", 2)
    ]
    for op, args in build_stage:
        if op != "COPY" or args.startswith("--"):
            continue
        *sources, destination = args.split()
        for name in sources:
            origin = ROOT / name
            where = target / destination if destination not in ("./", ".") else target / name
            if origin.is_dir():
                shutil.copytree(origin, where, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, where)
    return target


def test_image_version_label_follows_the_package():
    assert f"ARG VERSION={__version__}" in (ROOT / "Dockerfile").read_text()


def test_dockerfile_follows_the_packaging_conventions():
    froms = _instruction("FROM")
    assert len(froms) == 2, "multi-stage"
    assert all("slim" in f for f in froms)
    user = _instruction("USER")
    assert user and user[-1] not in ("root", "0")
    assert any("dialout" in run for run in _instruction("RUN"))
    assert json.loads(_instruction("HEALTHCHECK")[0].split("CMD", 1)[1]) == [
        "han2mqtt",
        "healthcheck",
    ]
    assert json.loads(_instruction("ENTRYPOINT")[0]) == [
        "han2mqtt"
    ]  # exec form: SIGTERM reaches it
    assert _instruction("STOPSIGNAL") == ["SIGTERM"]
    env = " ".join(_instruction("ENV"))
    assert "PYTHONUNBUFFERED=1" in env
    assert "HAN2MQTT_HEALTH__HEARTBEAT_FILE" in env
    assert _instruction("WORKDIR")[-1] == "/config"  # ./config.yaml = /config/config.yaml
    assert "org.opencontainers.image.title" in " ".join(_instruction("LABEL"))
    assert "--platform linux/amd64,linux/arm64,linux/arm/v7" in (ROOT / "Dockerfile").read_text()
    assert (ROOT / ".dockerignore").exists()
    text = (ROOT / "Dockerfile").read_text()
    assert "# syntax=" not in text  # Docker would fetch a frontend image before building
    assert not _instruction("VOLUME")  # an anonymous volume on every env-only run
    assert "--group-add 20" not in text
    assert '--group-add "$(stat -c %g /dev/ttyUSB0)"' in text
    assert "--format docker" in text  # Podman's OCI default drops the HEALTHCHECK
    assert any("pip uninstall --yes --quiet pip setuptools" in run for run in _instruction("RUN"))


@pytest.mark.integration
@pytest.mark.broker
def test_dockerfile_install_and_entry_commands_work_in_a_fresh_venv(
    tmp_path: Path, broker: Broker, capture_factory
):
    """Run the image's install line and its ENTRYPOINT + CMD, as the container would.

    The install runs in a directory holding only what the build stage COPYs, so a file the image
    forgets fails here (and the repository is left without build/ leftovers).
    """
    install = next(run for run in _instruction("RUN") if "pip install" in run)
    source = _build_context_copy(tmp_path / "src")
    venv = tmp_path / "opt-han2mqtt"
    script = install.replace("/opt/han2mqtt", str(venv)).replace("python ", f"{sys.executable} ", 1)
    subprocess.run(["bash", "-c", script], cwd=source, check=True, timeout=600, capture_output=True)
    command = json.loads(_instruction("ENTRYPOINT")[0]) + json.loads(_instruction("CMD")[0])
    env_line = " ".join(_instruction("ENV"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAN2MQTT_")}
    env.update(dict(re.findall(r"(\w+)=(\S+)", env_line)))
    env["PATH"] = f"{venv}/bin:{env.get('PATH', '')}"
    env["HAN2MQTT_HEALTH__HEARTBEAT_FILE"] = str(tmp_path / "heartbeat")
    env.update(
        {
            "HAN2MQTT_SOURCE__TYPE": "demo",
            "HAN2MQTT_SOURCE__DEMO_INTERVAL": "0.1",
            "HAN2MQTT_MQTT__HOST": broker.host,
            "HAN2MQTT_MQTT__PORT": str(broker.port),
            "HAN2MQTT_WEB__HOST": "127.0.0.1",  # the image's 0.0.0.0 is for a container
            "HAN2MQTT_WEB__PORT": str(free_port()),
        }
    )
    workdir = tmp_path / "config"
    workdir.mkdir()
    capture: Capture = capture_factory(broker)
    process = subprocess.Popen(command, cwd=workdir, env=env, stderr=subprocess.PIPE, text=True)
    try:
        capture.wait_for(
            lambda _m: capture.last("han2mqtt/7359992891237028/active_power_import") is not None
        )
        health = json.loads(_instruction("HEALTHCHECK")[0].split("CMD", 1)[1])
        # The heartbeat follows the first decoded frame within a housekeeping round (1 s);
        # Docker polls the same way, with retries.
        deadline = time.monotonic() + 10
        while subprocess.run(health, env=env, cwd=workdir, timeout=60, check=False).returncode:
            assert time.monotonic() < deadline, "healthcheck never passed"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    capture.wait_value("han2mqtt/bridge/state", "offline")


def test_compose_file_brings_mosquitto_and_han2mqtt_with_the_documented_paths():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto")
    app = services["han2mqtt"]
    assert app["image"] == "han2mqtt/han2mqtt:latest"
    assert "./config:/config:ro" in app["volumes"]
    assert app["devices"] == ["/dev/ttyUSB0:/dev/ttyUSB0"]
    # The image's user is in dialout already; a fixed gid would be wrong where the device's
    # group is another one (the comment says how to find it).
    assert "group_add" not in app
    assert "stat -c %g /dev/ttyUSB0" in (ROOT / "docker-compose.yml").read_text()
    assert "file: ./secrets/mqtt__password" in (ROOT / "docker-compose.yml").read_text()
    assert app["restart"] == "unless-stopped"
    assert app["environment"]["HAN2MQTT_MQTT__HOST"] == "mosquitto"
    for volume in services["mosquitto"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).exists(), source
    # Only the broker comes from the environment: anything else would silently override the
    # config/config.yaml the user edits.
    assert {key for key in app["environment"] if key.startswith("HAN2MQTT_")} == {
        "HAN2MQTT_MQTT__HOST"
    }
    # The meter's zone (meter.timezone in config.yaml still wins): without it, UTC.
    assert app["environment"]["TZ"] == "Europe/Oslo"
    # state.dir on a named volume: the tariff peaks survive a re-created container.
    assert "han2mqtt-data:/data" in app["volumes"]
    assert "han2mqtt-data" in compose["volumes"]
    assert "source: {type: tcp" in (ROOT / "docker-compose.yml").read_text()  # the TCP variant


def test_systemd_unit_verifies(tmp_path: Path):
    unit = (ROOT / "systemd" / "han2mqtt.service").read_text()
    for required in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "DynamicUser=yes",
        "SupplementaryGroups=dialout",
        "ConfigurationDirectory=han2mqtt",
        # A directory: empty for a broker without a password, mqtt__password in it for a login.
        "LoadCredential=han2mqtt:/etc/han2mqtt/credentials\n",
        "DevicePolicy=closed",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyACM rw",
        "DeviceAllow=char-ttyAMA rw",
        "ProtectSystem=strict",
        "RestartPreventExitStatus=2",  # a config error: restarting every 10 s cannot fix it
        "WatchdogSignal=SIGTERM",  # a clean "offline", no core dump
    ):
        assert required in unit, required
    directives = [line.strip() for line in unit.splitlines() if not line.startswith("#")]
    assert "PrivateDevices=yes" not in directives  # it would hide /dev/ttyUSB0
    # The dynamic user must be able to read /etc/han2mqtt/config.yaml as the README installs it.
    assert not any(d.startswith("ConfigurationDirectoryMode=07") for d in directives)
    readme = (ROOT / "README.md").read_text()
    assert "install -D -m 0644 config.example.yaml /etc/han2mqtt/config.yaml" in readme
    assert "sudo install -d -m 0700 /etc/han2mqtt/credentials" in readme
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit was checked by content only")
    executable = shutil.which("han2mqtt") or str(Path(sys.executable).parent / "han2mqtt")
    local = tmp_path / "han2mqtt.service"
    local.write_text(unit.replace("/opt/han2mqtt/bin/han2mqtt", executable))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(local)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "han2mqtt.service" not in result.stderr, result.stderr


def test_node_red_flow_subscribes_to_real_topics():
    flow = json.loads((ROOT / "examples" / "node-red-flow.json").read_text())
    ids = {node["id"] for node in flow}
    mqtt_in = [node for node in flow if node["type"] == "mqtt in"]
    assert mqtt_in
    real = [
        state_topic("han2mqtt", "7359992890941742"),
        availability_topic("han2mqtt", "7359992890941742"),
        field_topic("han2mqtt", "7359992890941742", "active_power_import"),
    ]
    for node in mqtt_in:
        assert node["broker"] in ids
        assert any(paho.topic_matches_sub(node["topic"], topic) for topic in real), node["topic"]
    # han2mqtt/+/state matches han2mqtt/bridge/state too ("online", not JSON): read as text,
    # and only what a switch lets through goes to the JSON parser.
    (state,) = [node for node in mqtt_in if node["topic"] == "han2mqtt/+/state"]
    assert state["datatype"] == "utf8"
    nodes = {node["id"]: node for node in flow}
    (switch,) = [nodes[target] for target in state["wires"][0]]
    assert switch["type"] == "switch"
    assert switch["rules"][0] == {"t": "eq", "v": "han2mqtt/bridge/state", "vt": "str"}
    assert [nodes[target]["type"] for target in switch["wires"][1]] == ["json"]
    for node in flow:
        for output in node.get("wires", []):
            assert set(output) <= ids


def _documentation() -> str:
    """The README and the topic pages under docs/, as one text."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(page.read_text() for page in pages)


def test_readme_commands_run_as_written(tmp_path: Path):
    """Every '$ ' line in the docs' sh blocks runs and prints what the docs show."""
    blocks = re.findall(r"```sh\n(.*?)```", _documentation(), flags=re.DOTALL)
    checked = 0
    bin_dir = Path(sys.executable).parent
    for block in blocks:
        lines = block.splitlines()
        for index, line in enumerate(lines):
            if not line.startswith("$ ") or "scripts/test.sh" in line:
                continue  # the test command itself would run this test again
            command = line[2:].replace(".venv/bin/", f"{bin_dir}/")
            expected = []
            for following in lines[index + 1 :]:
                if following.startswith("$ "):
                    break
                expected.append(following)
            result = subprocess.run(
                shlex.split(command),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, (command, result.stderr)
            for want in expected:
                if want.strip() and not want.startswith("#"):
                    assert want in result.stdout, (command, want)
            checked += 1
    assert checked >= 3


def _copy_for_setup(target: Path) -> Path:
    """What scripts/setup.sh needs of a clone: the package, pyproject.toml and the scripts."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, target / name)
    for name in ("han2mqtt", "scripts"):
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _setup(clone: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    result = subprocess.run(
        ["scripts/setup.sh"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.integration
def test_setup_installs_again_only_when_pyproject_changes(tmp_path: Path):
    clone = _copy_for_setup(tmp_path / "clone")
    assert "setup: installing" in _setup(clone)
    assert (clone / ".venv" / "bin" / "han2mqtt").exists()
    assert _setup(clone) == ""  # nothing changed: no pip at all
    # Code changes need no install (it is editable) ...
    (clone / "han2mqtt" / "_version.py").write_text('__version__ = "9.9.9"\n')
    assert _setup(clone) == ""
    version = subprocess.run(
        [clone / ".venv" / "bin" / "han2mqtt", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout == "han2mqtt 9.9.9\n"
    # ... a changed pyproject.toml does (new dependencies, entry points).
    with (clone / "pyproject.toml").open("a") as pyproject:
        pyproject.write("# changed\n")
    assert "setup: installing" in _setup(clone)
    assert _setup(clone) == ""


@pytest.mark.integration
def test_the_wheel_builds_without_warnings_and_states_its_licence(tmp_path: Path):
    source = _build_context_copy(tmp_path / "src")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Warning" not in output.replace("BuildBackendWarning: Editable", ""), output
    assert "deprecated" not in output, output
    (wheel,) = tmp_path.glob("han2mqtt-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"han2mqtt-{__version__}.dist-info/METADATA").decode()
    assert "License-Expression: MIT\n" in metadata


def _tracked_copy(target: Path) -> Path:
    """The repository's tracked files, as a fresh clone has them."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def _succeeds(command: list[str]) -> None:
    """Run a build or install step (up to 10 minutes); fail with the end of its stderr."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_python_m_build_gives_a_wheel_that_runs_the_demo_in_a_fresh_venv(tmp_path: Path):
    """The README's pip section: ``python -m build``, the wheel in a new venv, ``han2mqtt demo``."""
    clone = _tracked_copy(tmp_path / "clone")
    dist = tmp_path / "dist"
    _succeeds([sys.executable, "-m", "build", "--outdir", str(dist), str(clone)])
    (wheel,) = dist.glob("han2mqtt-*.whl")
    (sdist,) = dist.glob("han2mqtt-*.tar.gz")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    _succeeds(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)]
    )
    # Every package data file of the source tree is in the installed package.
    package = ROOT / "han2mqtt"
    assets = sorted(
        str(path.relative_to(package))
        for pattern in ("data/*.hex", "web/assets/*", "py.typed")
        for path in package.glob(pattern)
    )
    probe = (
        "import sys; from importlib import resources; root = resources.files('han2mqtt'); "
        "print(all(root.joinpath(name).is_file() for name in sys.argv[1:]), root)"
    )
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, *assets],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert found.startswith("True ") and str(venv) in found, found
    demo = subprocess.run(
        [str(venv / "bin" / "han2mqtt"), "demo", "--interval", "0", "--hours", "1.5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("HAN2MQTT_")},
    )
    assert demo.returncode == 0, demo.stderr
    assert "last hour " in demo.stdout
    # The sdist builds the same wheel.
    again = tmp_path / "again"
    _succeeds(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(again), str(sdist)]
    )
    (second,) = again.glob("han2mqtt-*.whl")
    with zipfile.ZipFile(wheel) as first_archive, zipfile.ZipFile(second) as second_archive:
        assert sorted(first_archive.namelist()) == sorted(second_archive.namelist())
        assert f"han2mqtt-{__version__}.dist-info/licenses/LICENSE" in first_archive.namelist()
