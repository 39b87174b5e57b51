#!/usr/bin/env bash
# The container image's whole filesystem: the executable, the C libraries `ldd` says it loads, a
# non-root user, the default config and an empty /tmp. Usage: scripts/image-rootfs.sh EXE OUT_DIR
# (OUT_DIR is replaced). Run by `make image` on the host and by the Dockerfile's source stage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

exe=${1:?usage: image-rootfs.sh EXE OUT_DIR}
out=${2:?usage: image-rootfs.sh EXE OUT_DIR}
[ -x "$exe" ] || { echo "image-rootfs: $exe is not an executable" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/predixy" "$out/tmp"
chmod 1777 "$out/tmp"
cp "$exe" "$out/usr/local/bin/predixy"

# Each library at the path the loader looks for it (the program interpreter included), copied
# through symlinks. glibc ≥ 2.34 has DNS and /etc/hosts lookups inside libc.so.6: no NSS modules.
libs=$(ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -n "$libs" ] || { echo "image-rootfs: ldd found no libraries in $exe (static? not glibc?)" >&2; exit 1; }
for lib in $libs; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done

# uid/gid 65532 (as distroless' "nonroot"): numeric in the Dockerfile's USER, so Kubernetes'
# runAsNonRoot can check it; named here so ps and ls show a name.
printf 'predixy:x:65532:65532:predixy:/nonexistent:/sbin/nologin\n' >"$out/etc/passwd"
printf 'predixy:x:65532:\n' >"$out/etc/group"
# /etc/hosts (which runtimes mount) before DNS, as on any host.
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
cp config.yaml "$out/etc/predixy/config.yaml"
