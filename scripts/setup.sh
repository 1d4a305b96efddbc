#!/usr/bin/env bash
# Set up a fresh Debian machine for han2mqtt: system packages (only those missing), a virtual
# environment in .venv, and the package with its test tools. Safe to run again.
# Usage: scripts/setup.sh [--with-test-services]
set -euo pipefail
cd "$(dirname "$0")/.."

want_services=0
[ "${1:-}" = "--with-test-services" ] && want_services=1

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
have python3 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "$want_services" = 1 ]; then
  have mosquitto || missing+=(mosquitto)
  have mosquitto_sub || missing+=(mosquitto-clients)
  have socat || missing+=(socat)
  have openssl || missing+=(openssl)
  have systemd-analyze || missing+=(systemd)
  have chromium || missing+=(chromium)
  # The container test (tests/packaging/test_container.py): rootful podman with runc, and a base
  # image made with debootstrap (no image registry is reachable).
  have podman || missing+=(podman)
  have runc || missing+=(runc)
  have debootstrap || missing+=(debootstrap)
  # The ARM test (tests/packaging/test_arm.py): an armhf chroot and an arm/v7 image under
  # qemu-user emulation, registered with binfmt_misc by the test itself.
  have qemu-arm-static || missing+=(qemu-user-static)
  have update-binfmts || missing+=(binfmt-support)
  # The Node-RED flow test: Node-RED itself comes from npm, below.
  have node || missing+=(nodejs)
  have npm || missing+=(npm)
fi
apt_updated=0
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  [ "$apt_updated" = 1 ] || $sudo apt-get update -qq
  apt_updated=1
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# A compiler and headers only where pip has no wheel of some dependency for this machine (cffi and
# PyYAML on 32-bit ARM, for instance): pip itself is asked (scripts/missing_wheels.py).
build_packages=(gcc libc6-dev libffi-dev python3-dev)
install_build_packages_if_needed() {
  local without platform absent=() package
  if ! without="$(.venv/bin/python scripts/missing_wheels.py test)"; then
    echo "setup: cannot tell which dependencies have wheels here; installing without build packages"
    return 0
  fi
  [ -n "$without" ] || return 0
  for package in "${build_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
      || absent+=("$package")
  done
  platform="$(.venv/bin/python -c 'import sys, sysconfig; print(sysconfig.get_platform(),
    sys.implementation.name, "%d.%d" % sys.version_info[:2])')"
  if [ "${#absent[@]}" -eq 0 ]; then
    echo "setup: no wheel for this machine ($platform) of $without: building from source"
    return 0
  fi
  echo "setup: no wheel for this machine ($platform) of $without: installing ${absent[*]} to build"
  apt_install "${absent[@]}"
}

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# The install is editable: code changes need no new install, a changed pyproject.toml (dependencies,
# entry points) does. The stamp holds the hash of the pyproject.toml last installed.
stamp=.venv/.han2mqtt-pyproject.sha256
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || [ ! -x .venv/bin/han2mqtt ]; then
  echo "setup: installing han2mqtt and its test tools into .venv"
  rm -f "$stamp"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  install_build_packages_if_needed
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  echo "$wanted" >"$stamp"
fi

# Node-RED for tests/packaging/test_node_red.py, in .cache/node-red (not in git), once.
if [ "$want_services" = 1 ] && [ ! -f .cache/node-red/node_modules/node-red/red.js ]; then
  echo "setup: installing Node-RED into .cache/node-red"
  mkdir -p .cache/node-red
  npm install --prefix .cache/node-red --no-audit --no-fund --loglevel=error node-red@4
fi
