#!/usr/bin/env bash
# make image: the Dockerfile built with Debian's podman and no registry. The final stage's files
# (executable, its libraries, user, default config) are gathered here from dist/predixy, and the
# Dockerfile's prebuilt path copies them, so no base image is pulled.
# Env: PODMAN_OPTS (global podman options, e.g. a private --root/--runroot), IMAGE (name, default predixy).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh image
[ -x dist/predixy ] || { echo "image: dist/predixy is missing (make build)" >&2; exit 1; }
VERSION=$(node -p 'require("./package.json").version')
IMAGE=${IMAGE:-predixy}

bash scripts/image-rootfs.sh dist/predixy dist/rootfs
# --format docker: the OCI image format has no HEALTHCHECK; Docker's keeps it.
# shellcheck disable=SC2086 # PODMAN_OPTS is a list of options
podman ${PODMAN_OPTS:-} build --quiet --format docker --build-arg ROOTFS=prebuilt \
  -t "$IMAGE:$VERSION" -t "$IMAGE:latest" . >/dev/null
echo "image: $IMAGE:$VERSION, $IMAGE:latest"
