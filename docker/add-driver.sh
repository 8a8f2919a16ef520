#!/usr/bin/env bash
# Adds a driver to the running network.
#   docker/add-driver.sh frank [REQUESTS_FILE]
# Local network (`npm start`): `evcharging add-driver` (it drives to every CP, the newest first).
# Compose (EVCHARGING_COMPOSE set): a container evcharging-driver-frank; the request file (one
# CP id a line) defaults to the image's docker/requests/driver-alice.txt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || die "usage: add-driver.sh NAME [REQUESTS_FILE]"

if ! compose_mode; then evcharging add-driver "$1"; exit; fi

id="driver-${1#driver-}"
requests="${2:-docker/requests/driver-alice.txt}"
compose run -d --no-deps --name "evcharging-$id" driver-alice \
  driver --id "$id" --requests "$requests" --wait-s 2 --max-charge-s 20
echo "added $id: container evcharging-$id"
