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
  # The Node-RED flow test: Node-RED itself comes from npm, below.
  have node || missing+=(nodejs)
  have npm || missing+=(npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

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
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  echo "$wanted" >"$stamp"
fi

# Node-RED for tests/packaging/test_node_red.py, in .cache/node-red (not in git), once.
if [ "$want_services" = 1 ] && [ ! -f .cache/node-red/node_modules/node-red/red.js ]; then
  echo "setup: installing Node-RED into .cache/node-red"
  mkdir -p .cache/node-red
  npm install --prefix .cache/node-red --no-audit --no-fund --loglevel=error node-red@4
fi
