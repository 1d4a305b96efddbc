#!/usr/bin/env bash
# Run han2mqtt's whole pipeline on simulated meters (a day in a minute), no meter needed.
# Without a broker it prints a summary of the MQTT messages it would publish (--verbose: all).
# --mqtt-host HOST publishes them under the base topic han2mqtt-demo, without Home Assistant
# discovery unless --discovery is given. Remove what it left on the broker with:
#   HAN2MQTT_MQTT__HOST=HOST HAN2MQTT_MQTT__BASE_TOPIC=han2mqtt-demo .venv/bin/han2mqtt purge
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/han2mqtt demo "$@"
