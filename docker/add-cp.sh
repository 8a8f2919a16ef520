#!/usr/bin/env bash
# Adds a charging point (engine + monitor) to the running network.
#   docker/add-cp.sh 12 75.0 0.38              (the original's form: number, kW, €/kWh)
#   docker/add-cp.sh 11 --kw 75 --price 0.38 [--profile dc-50kw]
# Local network (`npm start`): `evcharging add-cp`. Compose (EVCHARGING_COMPOSE set): two
# containers, evcharging-cp-011 and evcharging-monitor-011, on the deployment's network;
# GATEWAY_HOST / CENTRAL_HOST name the gateway and central when they run on another machine.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || die "usage: add-cp.sh NUMBER|ID [KW [EUR_PER_KWH]] [--kw KW] [--price EUR] [--profile NAME]"

if ! compose_mode; then evcharging add-cp "$@"; exit; fi

id="$(cp_id "$1")"; shift
# Positional kW and price, as the original's script took them.
num='^[0-9]+([.][0-9]+)?$'
if [[ "${1:-}" =~ $num ]]; then set -- --kw "$1" "${@:2}"; if [[ "${3:-}" =~ $num ]]; then set -- "$1" "$2" --price "$3" "${@:4}"; fi; fi
name="$(echo "$id" | tr '[:upper:]' '[:lower:]')"
compose run -d --no-deps --name "evcharging-$name" cp-1 \
  cp --id "$id" --mqtt "mqtt://${GATEWAY_HOST:-gateway}:1883" --health-port 8001 --speed "${EVCHARGING_SPEED:-30}" "$@"
compose run -d --no-deps --name "evcharging-monitor-$name" monitor-1 \
  monitor --cp "$id" --engine "evcharging-$name:8001" --central "http://${CENTRAL_HOST:-central}:8000"
echo "added $id: containers evcharging-$name and evcharging-monitor-$name"
