#!/usr/bin/env bash
# Adds a driver to the running network.
#   docker/add-driver.sh frank 8105            (the original's form: its app at http://localhost:8105)
#   docker/add-driver.sh frank [REQUESTS_FILE]
# Local network (`npm start`): `evcharging add-driver` (it drives to every CP, the newest first;
# with a port it is driven from its browser app there).
# Compose (EVCHARGING_COMPOSE set): a container evcharging-driver-frank; the request file (one
# CP id a line) defaults to the image's docker/requests/driver-alice.txt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || die "usage: add-driver.sh NAME [PORT | REQUESTS_FILE]"
port=""
if [[ "${2:-}" =~ ^[0-9]+$ ]]; then port="$2"; fi

if ! compose_mode; then evcharging add-driver "$1" ${port:+"$port"}; exit; fi

id="driver-${1#driver-}"
if [ -n "$port" ]; then
  compose run -d --no-deps --name "evcharging-$id" -p "$port:$port" driver-alice \
    driver --id "$id" --http "$port" --central "http://${CENTRAL_HOST:-central}:8000"
  echo "added $id: container evcharging-$id, its app at http://localhost:$port/"; exit
fi
requests="${2:-docker/requests/driver-alice.txt}"
compose run -d --no-deps --name "evcharging-$id" driver-alice \
  driver --id "$id" --requests "$requests" --wait-s 2 --max-charge-s 20
echo "added $id: container evcharging-$id"
