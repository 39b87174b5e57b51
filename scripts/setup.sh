#!/usr/bin/env bash
# Idempotent machine set-up for a fresh Debian 12: node deps, redis-server/redis-cli, chromium (the dashboard's
# browser test), systemd-analyze (the unit's test), and port 6379 left free for the proxy. `setup.sh image|cross`:
# only the tools those need.
# Quiet when there is nothing to do; on failure prints what failed (with the tool's output) and exits non-zero.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG=$(mktemp -t predixy-setup.XXXXXX)
trap 'rm -f "$LOG"' EXIT

die() {
  echo "setup: $*" >&2
  exit 1
}

# Runs a command with its output kept aside; shows that output only if the command fails.
quiet() {
  if ! "$@" >"$LOG" 2>&1; then
    echo "setup: failed: $*" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
}

# Privileged steps: as root directly, else through sudo when present.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) for: $*"
  fi
}

APT_UPDATED=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand (expected Debian 12)"
  if [ -z "$APT_UPDATED" ]; then
    quiet as_root apt-get update -qq
    APT_UPDATED=1
  fi
  quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# ---- Tools only some targets need, on request ----
# image: podman, for make image and its test (building needs no daemon).
# cross: qemu-user and an arm64 glibc, for the release test to run the linux-arm64 executable.
case "${1:-}" in
  image)
    command -v podman >/dev/null 2>&1 || apt_install podman
    command -v podman >/dev/null 2>&1 || die "podman still missing after apt-get install"
    exit 0
    ;;
  cross)
    command -v qemu-aarch64-static >/dev/null 2>&1 || apt_install qemu-user-static
    [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || apt_install libc6-arm64-cross
    command -v qemu-aarch64-static >/dev/null 2>&1 || die "qemu-aarch64-static still missing after apt-get install"
    exit 0
    ;;
esac

# ---- systemd-analyze: the tests verify deploy/systemd/predixy.service with it ----
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt_install systemd
  command -v systemd-analyze >/dev/null 2>&1 || die "systemd-analyze still missing after apt-get install systemd"
fi

# ---- Redis: the cluster tooling runs /usr/bin/redis-server and redis-cli ----
if [ ! -x /usr/bin/redis-server ] || [ ! -x /usr/bin/redis-cli ]; then
  apt_install redis-server redis-tools
  [ -x /usr/bin/redis-server ] && [ -x /usr/bin/redis-cli ] || die "redis-server/redis-cli still missing after apt-get install"
fi

# ---- Tests: openssl makes the test CA for the TLS tests ----
if ! command -v openssl >/dev/null 2>&1; then apt_install openssl; fi

# ---- redis-py (Debian's python3-redis): the tests drive predixy with it, as a real client ----
if ! /usr/bin/python3 -c 'import redis' >/dev/null 2>&1; then
  apt_install python3-redis
  /usr/bin/python3 -c 'import redis' >/dev/null 2>&1 || die "python3-redis still missing after apt-get install"
fi

# ---- Chromium: the dashboard's browser test drives Debian's chromium through playwright-core ----
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
  [ -x /usr/bin/chromium ] || die "chromium still missing after apt-get install"
fi

# ---- Node dependencies (bun itself comes from npm) ----
# npm rewrites node_modules/.package-lock.json on every install, so it dates the installed tree.
STAMP=node_modules/.package-lock.json
if [ ! -x node_modules/.bin/bun ] || [ ! -e "$STAMP" ] || [ package.json -nt "$STAMP" ] ||
  { [ -e package-lock.json ] && [ package-lock.json -nt "$STAMP" ]; }; then
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  command -v npm >/dev/null 2>&1 || die "npm not found and could not be installed"
  if [ -e package-lock.json ]; then
    quiet npm ci --no-audit --no-fund --loglevel=error
  else
    quiet npm install --no-audit --no-fund --loglevel=error
  fi
  [ -x node_modules/.bin/bun ] || die "npm finished but node_modules/.bin/bun is missing"
  touch "$STAMP"
fi

# ---- Port 6379: Debian's package starts a redis-server there, which is the proxy's default port ----
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  # systemd is running: stop the distro service and keep it from coming back at boot.
  if systemctl is-active --quiet redis-server 2>/dev/null; then quiet as_root systemctl stop redis-server; fi
  if systemctl is-enabled --quiet redis-server 2>/dev/null; then quiet as_root systemctl disable redis-server; fi
elif [ -x /etc/init.d/redis-server ]; then
  # No systemd (containers): the sysvinit script is what the package's postinst used.
  if /etc/init.d/redis-server status >/dev/null 2>&1; then
    if command -v service >/dev/null 2>&1; then
      quiet as_root service redis-server stop
    else
      quiet as_root /etc/init.d/redis-server stop
    fi
  fi
  if command -v update-rc.d >/dev/null 2>&1 && compgen -G "/etc/rc[2-5].d/S*redis-server" >/dev/null; then
    quiet as_root update-rc.d redis-server disable
  fi
fi

# Pids of processes listening on TCP port $1, read from /proc (ss is absent from minimal images).
listeners() {
  local hex inodes inode
  hex=$(printf ':%04X' "$1")
  inodes=$(awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  for inode in $inodes; do
    find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$inode\]" 2>/dev/null | cut -d/ -f3
  done | sort -u
}

alive() { [ -d "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# A node our cluster tooling started runs in a directory next to the cluster.json it writes.
ours() {
  local cwd
  cwd=$(readlink "/proc/$1/cwd" 2>/dev/null) && [ -e "$cwd/../cluster.json" ]
}

# Last resort: a redis-server still on 6379 that is not ours is the distro's; kill it.
for pid in $(listeners 6379); do
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  [ "$comm" = redis-server ] || die "port 6379 (the proxy's default) is held by '$comm' (pid $pid); stop it or give the proxy another port"
  ours "$pid" && continue
  as_root kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then
    as_root kill -9 "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  alive "$pid" && die "redis-server pid $pid on port 6379 survived SIGKILL"
done
true
