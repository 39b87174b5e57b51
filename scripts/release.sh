#!/usr/bin/env bash
# Release tarballs: one executable per Linux target, with example configs, LICENSE, README and the
# systemd unit, plus SHA256SUMS. Usage: scripts/release.sh [OUT_DIR] (default dist); TARGETS picks
# targets (default: all four below). Needs only the npm registry, or npm's cache once filled.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=${1:-dist}
TARGETS=${TARGETS:-linux-x64 linux-arm64 linux-x64-musl linux-arm64-musl}
BUN=node_modules/.bin/bun
VERSION=$(node -p 'require("./package.json").version')
BUN_VERSION=$(node -p 'require("./node_modules/bun/package.json").version')
COMMIT=$(git describe --always --dirty --abbrev=12 --exclude='*' 2>/dev/null || echo unknown)
# Archive timestamps from the commit, so the same commit gives byte-identical tarballs.
EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
RUNTIMES=node_modules/.cache/predixy-runtimes

die() { echo "release: $*" >&2; exit 1; }

# Bun's --compile appends the bundle to a Bun runtime built for the target. Bun would download a
# foreign target's runtime itself; we take the same files from the npm registry instead, through
# npm (so its cache works offline), pinned by the integrity that package-lock.json records for
# the optional dependencies of the `bun` package.
npm_package() {
  case $1 in
    linux-x64) echo @oven/bun-linux-x64 ;;
    linux-arm64) echo @oven/bun-linux-aarch64 ;;
    linux-x64-musl) echo @oven/bun-linux-x64-musl ;;
    linux-arm64-musl) echo @oven/bun-linux-aarch64-musl ;;
    *) die "unknown target $1 (known: linux-x64 linux-arm64 linux-x64-musl linux-arm64-musl)" ;;
  esac
}

# The target this machine runs, if it is a glibc Linux one: its runtime is the Bun we build with.
host_target() {
  ldd --version 2>&1 | grep -qi glibc || return 0
  case $(uname -m) in
    x86_64) echo linux-x64 ;;
    aarch64 | arm64) echo linux-arm64 ;;
  esac
}

# Path of the Bun runtime for target $1, fetched and checked on first use.
runtime() {
  local pkg dir locked got tgz
  pkg=$(npm_package "$1")
  if [ "$1" = "$(host_target)" ]; then
    readlink -f "$BUN"
    return
  fi
  dir=$RUNTIMES/${pkg#@oven/}-$BUN_VERSION
  if [ ! -x "$dir/bun" ]; then
    locked=$(node -p "(require('./package-lock.json').packages['node_modules/$pkg'] || {}).integrity || ''")
    [ -n "$locked" ] || die "$pkg is not in package-lock.json (is the bun dev dependency installed?)"
    mkdir -p "$dir"
    got=$(npm pack "$pkg@$BUN_VERSION" --prefer-offline --pack-destination "$dir" --json --loglevel=error |
      node -e 'const [p] = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(p.integrity + " " + p.filename)')
    tgz=$dir/${got#* }
    [ "${got%% *}" = "$locked" ] || { rm -f "$tgz"; die "$pkg@$BUN_VERSION: integrity ${got%% *} differs from package-lock.json's $locked"; }
    tar -xzf "$tgz" -C "$dir" --strip-components=2 package/bin/bun
    rm -f "$tgz"
  fi
  echo "$dir/bun"
}

mkdir -p "$OUT"
tarballs=()
for target in $TARGETS; do
  name=predixy-$VERSION-$target
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir "$stage/$name"
  rt=$(runtime "$target")
  "$BUN" build --compile --minify --target="bun-$target" --compile-executable-path="$rt" \
    --define "PREDIXY_COMMIT=\"$COMMIT\"" src/main.ts --outfile "$stage/$name/predixy" >/dev/null
  cp LICENSE README.md config.yaml predixy.toml deploy/systemd/predixy.service "$stage/$name/"
  cp docs/DEPLOY.md "$stage/$name/DEPLOY.md"
  tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "$name" |
    gzip -n >"$OUT/$name.tar.gz"
  rm -rf "$stage"
  trap - EXIT
  tarballs+=("$name.tar.gz")
  echo "release: $OUT/$name.tar.gz"
done
(cd "$OUT" && sha256sum "${tarballs[@]}" >SHA256SUMS)
echo "release: $OUT/SHA256SUMS"
