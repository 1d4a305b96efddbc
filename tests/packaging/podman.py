"""Podman for the container test: a private store, a stand-in base image, the shipped Dockerfile.

No image registry is reachable where the tests run, so the ``python:<version>-slim-bookworm`` base
is made here with ``debootstrap`` (Debian bookworm, minbase, with python3, python3-venv, python3-pip
and ca-certificates, plus a ``python`` command) from the Debian mirror the host's apt uses, and
imported under the base image's own name; then the Dockerfile is built unchanged with
``--pull=never --format docker``.

Everything podman keeps lives under ``.cache/podman`` in the repository (its own containers.conf,
storage.conf and registries.conf, passed by environment variables), so the host's podman
configuration and images are never touched. The debootstrap tarball is kept in
``.cache/container`` (keyed by mirror and package list) and the image is tagged with a hash of
everything the build reads, so a rerun with nothing changed builds nothing, and a code change only
re-runs the steps from ``COPY`` on (podman's layer cache).
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
IMAGE = "localhost/han2mqtt-test"
# The build's pip and apt reach the package index as the host's do: the host's CA bundle (a
# proxy's CA included) is mounted over the image's during RUN steps only.
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Network settings of the host's pip worth passing on; local paths (find-links, file:// indexes)
# do not exist inside the build.
PIP_NETWORK_KEYS = (
    "index-url",
    "extra-index-url",
    "trusted-host",
    "proxy",
    "timeout",
    "default-timeout",
    "retries",
)


def missing_tools() -> list[str]:
    return [tool for tool in ("podman", "debootstrap", "runc") if _which(tool) is None]


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (f"{d}/{tool}" for d in ("/usr/sbin", "/sbin") if Path(d, tool).exists()), None
    )


def _hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:16]


def debian_mirror() -> str:
    """The Debian archive the host's apt uses (deb822 .sources or the one-line format)."""
    candidates: list[str] = []
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:(.*)$", stanza, re.MULTILINE)
            types = re.search(r"^Types:(.*)$", stanza, re.MULTILINE)
            if (
                uris
                and suites
                and types
                and "deb" in types.group(1).split()
                and "bookworm" in suites.group(1).split()
            ):
                candidates.append(uris.group(1))
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in lists:
        if path.exists():
            candidates += re.findall(
                r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", path.read_text(), re.MULTILINE
            )
    return candidates[0] if candidates else "http://deb.debian.org/debian"


def base_image_name() -> str:
    """The first stage's FROM, with the Dockerfile's default PYTHON_VERSION, fully qualified."""
    text = (ROOT / "Dockerfile").read_text()
    version = re.search(r"^ARG PYTHON_VERSION=(\S+)", text, re.MULTILINE)
    base = re.search(r"^FROM (\S+)", text, re.MULTILINE)
    assert version and base
    name = base.group(1).replace("${PYTHON_VERSION}", version.group(1))
    return f"docker.io/library/{name}"


def build_context_hash() -> str:
    """A hash of every file the image build reads (what .dockerignore lets through)."""
    parts: list[bytes] = []
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        parts += [name.encode(), (ROOT / name).read_bytes()]
    for path in sorted((ROOT / "han2mqtt").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            parts += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    return _hash(*parts)


@dataclass(frozen=True)
class Platform:
    """A foreign platform to build for (``--arch``/``--variant``) and its stand-in base's maker."""

    arch: str
    variant: str
    base: Callable[[], Path]

    @property
    def args(self) -> tuple[str, ...]:
        return ("--arch", self.arch, "--variant", self.variant)


@dataclass
class Podman:
    """``podman`` with a private configuration and store."""

    home: Path

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # runc, cgroupfs (systemd may not be PID 1), and ulimits a process without
        # CAP_SYS_RESOURCE may set: the shell's hard limits, or less.
        limits = []
        for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
            hard = resource.getrlimit(which)[1]
            value = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
            limits.append(f'"{name}={value}:{value}"')
        (self.home / "containers.conf").write_text(
            "[containers]\n"
            f"default_ulimits = [{', '.join(limits)}]\n"
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'tmp_dir = "{self.home}/tmp"\n'
        )
        (self.home / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.home}/storage"\n'
            f'runroot = "{self.home}/run"\n'
        )
        # Short names resolve to local images only: nothing is ever pulled.
        (self.home / "registries.conf").write_text(
            'unqualified-search-registries = []\nshort-name-mode = "permissive"\n'
        )

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CONTAINERS_CONF=str(self.home / "containers.conf"),
            CONTAINERS_STORAGE_CONF=str(self.home / "storage.conf"),
            CONTAINERS_REGISTRIES_CONF=str(self.home / "registries.conf"),
        )
        return env

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {result.returncode}\n{result.stderr}")
        return result

    def exists(self, image: str) -> bool:
        return self("image", "exists", image, check=False).returncode == 0

    def ensure_base_image(self, platform: Platform | None = None) -> str:
        """Import the stand-in base image under its real name, unless it is there already."""
        name = base_image_name()
        if not self.exists(name):
            tarball = platform.base() if platform else base_tarball()
            self("import", *(platform.args if platform else ()), str(tarball), name, timeout=600)
        return name

    def build(
        self, image: str = IMAGE, platform: Platform | None = None, timeout: float = 1200
    ) -> str:
        """Build the Dockerfile unchanged (only once per build context), return the image."""
        tag = f"{image}:{build_context_hash()}"
        if self.exists(tag):
            return tag
        self.ensure_base_image(platform)
        pip_conf = self.home / "pip.conf"
        pip_conf.write_text(host_pip_network_config())
        result = self(
            "build",
            *(platform.args if platform else ()),
            "--pull=never",
            "--format",
            "docker",  # the OCI format has no HEALTHCHECK
            "--network",
            "host",
            "--volume",
            f"{host_ca_bundle()}:{IMAGE_CA_BUNDLE}:ro",
            "--volume",
            f"{pip_conf}:/etc/pip.conf:ro",
            "--tag",
            tag,
            str(ROOT),
            timeout=timeout,
            check=False,
        )
        (self.home / "build.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise AssertionError(f"podman build failed:\n{result.stdout[-3000:]}{result.stderr}")
        self("image", "prune", "--force", check=False)  # earlier builds' layers
        return tag


def host_ca_bundle() -> str:
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        os.environ.get("REQUESTS_CA_BUNDLE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise AssertionError("no CA bundle on the host")


def host_pip_network_config() -> str:
    """The host pip's index, proxy and timeout settings as a pip.conf for the build."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        match = re.fullmatch(r"[^.]*\.([\w-]+)='(.*)'", line.strip())
        if match and match.group(1) in PIP_NETWORK_KEYS:
            settings[match.group(1)] = match.group(2)
    for key in PIP_NETWORK_KEYS:
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value:
            settings[key] = value
    for key in ("index-url", "extra-index-url"):
        urls = [u for u in settings.get(key, "").split() if u.startswith(("http://", "https://"))]
        settings[key] = " ".join(urls)
    lines = ["[global]", f"cert = {IMAGE_CA_BUNDLE}"]
    lines += [f"{key} = {value}" for key, value in settings.items() if value]
    return "\n".join(lines) + "\n"


def base_tarball() -> Path:
    """The debootstrapped root file system as a tarball, made once per mirror and package list."""
    mirror = debian_mirror()
    key = _hash(mirror.encode(), ",".join(BASE_PACKAGES).encode(), b"bookworm minbase 1")
    tarball = CACHE / "container" / f"bookworm-minbase-{key}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent) as work:
        rootfs = Path(work) / "rootfs"
        try:
            _debootstrap(rootfs, mirror, tarball)
        finally:
            _unmount_below(rootfs)  # an interrupted debootstrap leaves /proc mounted
    return tarball


def _unmount_below(root: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False, timeout=60)


def _debootstrap(rootfs: Path, mirror: str, tarball: Path) -> None:
    """Debian bookworm minbase with the base packages, into ``rootfs``, then into ``tarball``."""
    result = subprocess.run(
        [
            _which("debootstrap") or "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            "bookworm",
            str(rootfs),
            mirror,
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"debootstrap failed:\n{result.stdout[-3000:]}{result.stderr}")
    # As in the python images: `python` is the interpreter; no package lists or .debs left.
    (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3")
    for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()
    for leftover in (rootfs / "var/lib/apt/lists").glob("*_*"):
        leftover.unlink()
    partial = tarball.with_suffix(".partial")
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
        check=True,
        timeout=600,
    )
    partial.rename(tarball)
