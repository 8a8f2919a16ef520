# Shared by add-cp.sh, add-driver.sh and simulate-crash.sh (sourced, not run).
# Two targets:
#   - a network started by `evcharging up` / `npm start` on this machine (the default): the
#     scripts call the CLI, which reaches it through its control port (EVCHARGING_CONTROL_PORT);
#   - a compose deployment: set EVCHARGING_COMPOSE to its compose file (e.g.
#     docker/docker-compose.yml, or FILE:OVERRIDE…); the scripts start or kill containers of the image.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

evcharging() { node "$root/bin/evcharging.js" "$@"; }

compose_mode() { [ -n "${EVCHARGING_COMPOSE:-}" ]; }

# EVCHARGING_COMPOSE: one compose file, or several separated by ':' (a file and its overrides).
compose() {
  local args=() file
  IFS=: read -ra files <<<"$EVCHARGING_COMPOSE"
  for file in "${files[@]}"; do
    case "$file" in /*) ;; *) file="$root/${file#./}" ;; esac
    args+=(-f "$file")
  done
  docker compose "${args[@]}" "$@"
}

# 11 → CP-011; an id is kept.
cp_id() {
  if [[ "$1" =~ ^[0-9]+$ ]]; then printf 'CP-%03d' "$((10#$1))"; else printf '%s' "$1"; fi
}

die() { echo "$(basename "$0"): $*" >&2; exit 2; }
