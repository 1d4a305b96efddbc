"""32-bit ARM (Debian armhf, as 32-bit Raspberry Pi OS) under qemu-user emulation, for test_arm.py.

The root file system is Debian bookworm armhf, minbase with ``python3`` and nothing else, made with
``debootstrap`` from the Debian mirror the host's apt uses; ARM programs run through
``qemu-arm-static`` registered with binfmt_misc (its ``F`` flag: the chroot needs no emulator of
its own). The tarball is kept in ``.cache/arm`` (keyed by mirror and package list), so only the
first run ever debootstraps (about 10 minutes here under emulation); each test module unpacks a
fresh copy.

The image test builds the shipped Dockerfile for ``linux/arm/v7`` with podman in a store of its own
(``.cache/podman-arm``), from a stand-in base made of the same tarball plus what the python images
hold (venv, pip, certificates, the C headers).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from tests.packaging.podman import (
    CACHE,
    ROOT,
    _hash,
    _unmount_below,
    _which,
    debian_mirror,
    host_ca_bundle,
    host_pip_network_config,
)

ARM_CACHE = CACHE / "arm"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# What the python:<version>-slim images hold beyond python3: the Dockerfile's build stage relies
# on venv and pip, and cffi's build (no armv7 wheel) on Python.h.
BASE_IMAGE_PACKAGES = ("python3-venv", "python3-pip", "ca-certificates", "python3-dev")
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def emulation_unavailable() -> str | None:
    """Register qemu-arm with binfmt_misc if need be; None when it works, else why it cannot."""
    if os.geteuid() != 0:
        return "mounting binfmt_misc and chroot need root (scripts/test.sh runs as root)"
    missing = [t for t in ("qemu-arm-static", "update-binfmts", "debootstrap") if not _which(t)]
    if missing:
        return f"{', '.join(missing)} missing (scripts/setup.sh --with-test-services)"
    if not (BINFMT / "register").exists():
        mounted = _run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
        if mounted.returncode != 0:
            return f"binfmt_misc cannot be mounted: {mounted.stderr.strip()}"
    entry = BINFMT / "qemu-arm"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        enabled = _run([_which("update-binfmts") or "update-binfmts", "--enable", "qemu-arm"])
        if enabled.returncode != 0 or not entry.exists():
            return f"update-binfmts --enable qemu-arm failed: {enabled.stderr.strip()}"
    flags = next((line for line in entry.read_text().splitlines() if line.startswith("flags")), "")
    if "F" not in flags.split(":", 1)[-1]:
        return f"qemu-arm is registered without the F flag ({flags!r}): a chroot cannot use it"
    return None


def _run(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def rootfs_tarball() -> Path:
    """Debian bookworm armhf, minbase with python3 only, as a tarball made once per mirror."""
    mirror = debian_mirror()
    key = _hash(mirror.encode(), b"bookworm armhf minbase python3 1")
    return _cached(ARM_CACHE / f"bookworm-armhf-python3-{key}.tar", _bootstrap)


def base_image_tarball() -> Path:
    """The stand-in for python:<version>-slim-bookworm on arm/v7: the rootfs plus its packages."""
    key = _hash(rootfs_tarball().name.encode(), ",".join(BASE_IMAGE_PACKAGES).encode(), b"1")

    def make(root: Path) -> None:
        unpack(rootfs_tarball(), root)
        with Chroot(root) as chroot:
            chroot.check("apt-get update -qq", timeout=1200)
            chroot.check(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
                + " ".join(BASE_IMAGE_PACKAGES),
                timeout=2400,
            )
        (root / "usr/local/bin/python").symlink_to("/usr/bin/python3")  # as in the python images
        (root / "etc/resolv.conf").unlink(missing_ok=True)
        _tidy(root)

    return _cached(ARM_CACHE / f"bookworm-armhf-base-image-{key}.tar", make)


def _cached(tarball: Path, make: Callable[[Path], None]) -> Path:
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent) as work:
        root = Path(work) / "rootfs"
        try:
            make(root)
        finally:
            _unmount_below(root)  # an interrupted run leaves /proc mounted
        partial = Path(work) / "partial.tar"  # its own per maker: two runs may race
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
            check=True,
            timeout=600,
        )
        partial.rename(tarball)
    return tarball


def _bootstrap(root: Path) -> None:
    result = _run(
        [
            _which("debootstrap") or "debootstrap",
            "--arch=armhf",
            "--variant=minbase",
            "--include=python3",
            "bookworm",
            str(root),
            debian_mirror(),
        ],
        timeout=3600,
    )
    if result.returncode != 0:
        raise AssertionError(f"debootstrap failed:\n{result.stdout[-3000:]}{result.stderr}")
    _tidy(root)


def _tidy(root: Path) -> None:
    for leftover in (root / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()
    for leftover in (root / "var/lib/apt/lists").glob("*_*"):
        leftover.unlink()


def unpack(tarball: Path, root: Path) -> None:
    root.mkdir(parents=True)
    subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-xf", str(tarball)], check=True)


@dataclass
class Chroot:
    """Commands run inside ``root`` as root, with a clean environment and /proc mounted.

    The network is the host's (the broker and the package index are reached as from the host); the
    host's CA bundle and pip index settings are copied in, as the image build gets them, because
    the package index may only be reachable through a proxy with a CA of its own.
    """

    root: Path

    def __enter__(self) -> Self:
        # /proc only: debootstrap made the device nodes in /dev, and a bind-mounted host /dev
        # could be deleted with the tree if an unmount ever failed.
        subprocess.run(["mount", "-t", "proc", "proc", str(self.root / "proc")], check=True)
        shutil.copy(host_ca_bundle(), self.root / "etc/han2mqtt-test-ca.crt")
        pip_conf = host_pip_network_config().replace(
            "/etc/ssl/certs/ca-certificates.crt", "/etc/han2mqtt-test-ca.crt"
        )
        (self.root / "etc/pip.conf").write_text(pip_conf)
        resolv = self.root / "etc/resolv.conf"
        resolv.unlink(missing_ok=True)
        shutil.copy("/etc/resolv.conf", resolv)
        return self

    def __exit__(self, *_exc: object) -> None:
        _unmount_below(self.root)

    def command(self, script: str, env: dict[str, str] | None = None) -> list[str]:
        """The host command that runs ``sh -c script`` in the chroot with only ``env`` added."""
        base = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
        pairs = [f"{key}={value}" for key, value in {**base, **(env or {})}.items()]
        return ["chroot", str(self.root), "/usr/bin/env", "-i", *pairs, "/bin/sh", "-c", script]

    def run(self, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``sh -c script`` in the chroot; stdout and stderr as text."""
        return _run(self.command(script), timeout=timeout)

    def check(self, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = self.run(script, timeout)
        if result.returncode != 0:
            raise AssertionError(
                f"in the armhf chroot, {shlex.quote(script)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result


def copy_repository(target: Path) -> None:
    """The repository's files as a fresh clone has them (tracked or new, never ignored ones)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    target.mkdir(parents=True)
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
