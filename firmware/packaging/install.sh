#!/bin/sh
# Installs the evcharging charging-point firmware on a Raspberry Pi (Raspberry Pi OS / Debian,
# arm64 or armhf) or any Linux with Node.js >= 20 and systemd. Run as root from the unpacked folder:
#   sudo ./install.sh            install or upgrade, keep an existing firmware.env, (re)start
#   sudo ./install.sh --no-start install only
set -eu
PREFIX=${PREFIX:-/opt/evcharging-firmware}
CONFDIR=${CONFDIR:-/etc/evcharging}
UNIT=/etc/systemd/system/evcharging-firmware.service
START=1
[ "${1:-}" = "--no-start" ] && START=0
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "install.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (sudo ./install.sh)"
command -v node >/dev/null 2>&1 || die "Node.js is not installed (Node.js 20 or newer: see README.md)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "Node.js $(node -v) is too old: 20 or newer is needed"
case "$(node -p 'process.arch')" in
  arm64|arm|x64) ;;
  *) die "no serial port binding in this package for $(node -p 'process.arch')" ;;
esac

id evcharging >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin --groups dialout evcharging
getent group dialout >/dev/null && usermod -a -G dialout evcharging

mkdir -p "$PREFIX" "$CONFDIR"
# Replace the program files, never the configuration.
rm -rf "$PREFIX.new"
mkdir -p "$PREFIX.new"
cp -R "$here"/. "$PREFIX.new"/
rm -rf "$PREFIX.old"
[ -d "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
mv "$PREFIX.new" "$PREFIX"
rm -rf "$PREFIX.old"

if [ ! -f "$CONFDIR/firmware.env" ]; then
  sed "s#@@PREFIX@@#$PREFIX#g" "$here/firmware.env" > "$CONFDIR/firmware.env"
  echo "install.sh: wrote $CONFDIR/firmware.env: set CP_ENGINE_ID and CP_ENGINE_MQTT_URL there"
fi
sed -e "s#@@PREFIX@@#$PREFIX#g" -e "s#@@CONFDIR@@#$CONFDIR#g" "$here/evcharging-firmware.service" > "$UNIT"

# Check the serial binding loads on this machine before enabling the service.
(cd "$PREFIX" && node -e "import('serialport').then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); })") \
  || die "the serial port binding does not load on this machine"

systemctl daemon-reload
systemctl enable evcharging-firmware.service >/dev/null
if [ "$START" = 1 ]; then
  systemctl restart evcharging-firmware.service
  echo "install.sh: evcharging-firmware started; logs: journalctl -u evcharging-firmware -f"
else
  echo "install.sh: installed; start with: systemctl start evcharging-firmware"
fi
