# Sourced by .ci/deploy: a Docker engine for CI on a machine that has none and reaches no image
# registry. Functions, no side effects when sourced.
#   docker_up    install nothing, start dockerd in its own network namespace (idempotent)
#   base_image   node:20-bookworm-slim made locally (debootstrap + this machine's Node), cached
#   compose_v2   the Compose v2 plugin from Debian trixie's docker-compose package, cached
#   npm_relay    the npm registry reachable from builds (--add-host REGISTRY_HOST:BRIDGE_IP)
#   docker_down  stop what docker_up and npm_relay started
# Settings (environment): EVCI_PREFIX (network namespace names, default evci-), EVCI_CACHE.

EVCI_PREFIX="${EVCI_PREFIX:-evci-}"
EVCI_CACHE="${EVCI_CACHE:-/var/cache/evcharging-ci}"
DOCK_NS="${EVCI_PREFIX}dock"
DOCK_DATA="$EVCI_CACHE/docker"           # images survive between runs (the base image takes minutes)
DOCK_RUN="/run/${EVCI_PREFIX}docker"
DOCK_BRIDGE_IP=10.78.0.1
export DOCKER_HOST="unix://$DOCK_RUN/docker.sock"
export DOCKER_CONFIG="$EVCI_CACHE/docker-config"   # holds cli-plugins/docker-compose
export DOCKER_BUILDKIT=0                            # the classic builder: no frontend image to pull
export COMPOSE_DOCKER_CLI_BUILD=0

log() { printf '[deploy] %s\n' "$*" >&2; }
in_dock() { nsenter --net="/run/netns/$DOCK_NS" "$@"; }

docker_up() {
  mkdir -p "$EVCI_CACHE" "$DOCK_RUN" "$DOCKER_CONFIG"
  if docker info >/dev/null 2>&1; then log "dockerd already up"; return; fi
  [ -e "/run/netns/$DOCK_NS" ] || ip netns add "$DOCK_NS"
  in_dock ip link set lo up
  # In its own namespace, dockerd's bridge and iptables rules never touch the host's.
  in_dock setsid dockerd --data-root "$DOCK_DATA" --exec-root "$DOCK_RUN/exec" -H "$DOCKER_HOST" \
    --pidfile "$DOCK_RUN/dockerd.pid" --storage-driver=overlay2 \
    --bip "$DOCK_BRIDGE_IP/24" --default-address-pool base=10.79.0.0/16,size=24 \
    >"$DOCK_RUN/dockerd.log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 60); do docker info >/dev/null 2>&1 && { log "dockerd up ($(docker version -f '{{.Server.Version}}'))"; return; }; sleep 1; done
  tail -20 "$DOCK_RUN/dockerd.log" >&2; log "dockerd did not start"; return 1
}

ca_bundle() {
  # The CA bundle npm trusts here (a TLS-intercepting proxy's CA, if any, is in it).
  local f; f="$(npm config get cafile 2>/dev/null || true)"
  [ -n "$f" ] && [ "$f" != null ] && [ "$f" != undefined ] && [ -f "$f" ] && { echo "$f"; return; }
  for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do [ -f "$f" ] && { echo "$f"; return; }; done
}

base_image() {
  if docker image inspect node:20-bookworm-slim >/dev/null 2>&1; then log "base image cached"; return; fi
  local rootfs="$EVCI_CACHE/rootfs"
  rm -rf "$rootfs"
  log "debootstrap bookworm (minbase + kcat, socat for the Kafka stand-in): a few minutes, once"
  debootstrap --variant=minbase --include=kcat,socat,ca-certificates bookworm "$rootfs" http://deb.debian.org/debian >"$EVCI_CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$EVCI_CACHE/debootstrap.log" >&2; return 1; }
  # This machine's Node 20 and npm, as the official image has them.
  cp "$(command -v node)" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$(npm root -g)/npm" "$rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  local ca; ca="$(ca_bundle)"
  if [ -n "$ca" ]; then cp "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"; printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/usr/local/etc/npmrc"; fi
  chroot "$rootfs" groupadd -g 1000 node
  chroot "$rootfs" useradd -u 1000 -g node -m -s /bin/bash node
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'CMD ["node"]' - node:20-bookworm-slim >/dev/null
  rm -rf "$rootfs"
  log "base image node:20-bookworm-slim made locally"
}

compose_v2() {
  local plugin="$DOCKER_CONFIG/cli-plugins/docker-compose"
  if [ -x "$plugin" ] && docker compose version >/dev/null 2>&1; then log "compose $(docker compose version --short) cached"; return; fi
  # Debian 12's docker-compose is 1.29 (no top-level `name:`); trixie packages Compose v2.
  local tmp; tmp="$(mktemp -d)"; chmod 755 "$tmp"
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
  echo "deb http://deb.debian.org/debian trixie main" >"$tmp/sources.list"
  local o=(-o Dir::Etc::sourcelist="$tmp/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::lists="$tmp/lists" -o Dir::Cache="$tmp" -o APT::Get::List-Cleanup=0)
  apt-get "${o[@]}" update -qq >/dev/null
  (cd "$tmp" && apt-get "${o[@]}" download docker-compose >/dev/null)
  dpkg-deb -x "$tmp"/docker-compose_*.deb "$tmp/x"
  mkdir -p "$(dirname "$plugin")"
  cp "$(find "$tmp/x" -type f -name docker-compose -perm -u+x | head -1)" "$plugin"
  rm -rf "$tmp"
  log "compose $(docker compose version --short) from trixie"
}

npm_relay() {
  # (nsenter run directly, not through in_dock: a backgrounded function is a subshell, and $! would be its pid.)
  # Builds run `npm ci`: the registry's host resolves (--add-host) to the bridge address, where a
  # relay in the daemon's namespace forwards over a UNIX socket to the registry from this one.
  REGISTRY_HOST="$(node -e 'console.log(new URL(process.argv[1]).hostname)' "$(npm config get registry)")"
  local sock="$DOCK_RUN/npm-relay.sock"
  if [ -f "$DOCK_RUN/relay.pids" ]; then return; fi
  rm -f "$sock"
  socat UNIX-LISTEN:"$sock",fork,mode=600 TCP:"$REGISTRY_HOST":443 </dev/null >/dev/null 2>&1 & echo $! >>"$DOCK_RUN/relay.pids"
  nsenter --net="/run/netns/$DOCK_NS" socat TCP-LISTEN:443,bind="$DOCK_BRIDGE_IP",fork,reuseaddr UNIX-CONNECT:"$sock" </dev/null >/dev/null 2>&1 & echo $! >>"$DOCK_RUN/relay.pids"
  export REGISTRY_HOST
}

docker_down() {
  if [ -f "$DOCK_RUN/relay.pids" ]; then xargs -r kill <"$DOCK_RUN/relay.pids" 2>/dev/null || true; rm -f "$DOCK_RUN/relay.pids"; fi
  if [ -f "$DOCK_RUN/dockerd.pid" ]; then
    local pid; pid="$(cat "$DOCK_RUN/dockerd.pid")"
    kill "$pid" 2>/dev/null || true
    local i; for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  ip netns del "$DOCK_NS" 2>/dev/null || true
}
