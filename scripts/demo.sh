#!/usr/bin/env bash
# Run han2mqtt's whole pipeline on built-in real meter frames, no meter needed.
# Without a broker it prints the MQTT messages it would publish; pass --mqtt-host HOST to publish.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/han2mqtt demo "$@"
