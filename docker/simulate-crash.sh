#!/usr/bin/env bash
# Crashes a component with SIGKILL, as a power cut or an OOM kill would.
#   docker/simulate-crash.sh [COMPONENT]      (no name: a random running one)
#   docker/simulate-crash.sh ev-cp-e-5        (the original's names: ev-cp-e-N, ev-cp-m-N, ev-driver-NAME, ev-central)
# Local network (`npm start`): `evcharging crash`; bring it back with `evcharging restart NAME`.
# Compose (EVCHARGING_COMPOSE set): COMPONENT is a service or container name; its container is
# killed with SIGKILL; bring it back with `docker compose -f "$EVCHARGING_COMPOSE" start NAME`
# (or `docker start NAME` for a container added by add-cp.sh / add-driver.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if ! compose_mode; then evcharging crash "$@"; exit; fi

target="${1:-}"
if [ -z "$target" ]; then
  mapfile -t running < <(compose ps --status running --services)
  [ ${#running[@]} -gt 0 ] || die "nothing is running"
  target="${running[RANDOM % ${#running[@]}]}"
fi
if compose ps --services | grep -qx "$target"; then
  compose kill -s SIGKILL "$target"
else
  docker kill --signal KILL "$target"
fi
echo "crashed $target (SIGKILL)"
