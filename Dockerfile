# predixy's container image: the one executable, the C libraries it loads (ldd), and nothing else.
#
#   docker build -t predixy:latest .       compiles from source in a Node stage (needs a registry)
#   make image                             the same image with podman and no registry: the final
#                                          stage's files are gathered on the host (ROOTFS=prebuilt)
#   docker run -d -p 6379:6379 -v ./config.yaml:/etc/predixy/config.yaml predixy:latest
#
# The config is /etc/predixy/config.yaml unless PREDIXY_CONFIG or `-c FILE` says otherwise
# (a TOML file: -e PREDIXY_CONFIG=/etc/predixy/config.toml). docs/DEPLOY.md has the rest.

# Which stage provides /rootfs: "source" (build here) or "prebuilt" (dist/rootfs from make image).
ARG ROOTFS=source

FROM docker.io/library/node:20-bookworm-slim AS source
WORKDIR /src
COPY package.json package-lock.json ./
# Bun itself comes from npm, as a dev dependency.
RUN npm ci --no-audit --no-fund --loglevel=error
COPY . .
# --version reports it: docker build --build-arg PREDIXY_COMMIT=$(git rev-parse --short=12 HEAD) .
ARG PREDIXY_COMMIT=unknown
RUN node_modules/.bin/bun build --compile --minify --define "PREDIXY_COMMIT=\"${PREDIXY_COMMIT}\"" \
      src/main.ts --outfile /tmp/predixy \
 && scripts/image-rootfs.sh /tmp/predixy /rootfs

FROM scratch AS prebuilt
COPY dist/rootfs/ /rootfs/

FROM ${ROOTFS} AS rootfs

FROM scratch
COPY --from=rootfs /rootfs/ /
USER 65532:65532
ENV PREDIXY_CONFIG=/etc/predixy/config.yaml
# Clients; and the admin HTTP server (dashboard, /metrics, /healthz, /readyz: [admin], port 9380
# by default; the shipped config.yaml binds it to 0.0.0.0 so that a published port reaches it).
EXPOSE 6379 9380
# The executable PINGs its own port (over TLS on a TLS-only config): a scratch image has no curl.
# A PONG means predixy accepts and answers: liveness. It listens before it knows the cluster, so
# "ready" is the admin server's /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/predixy", "--ping"]
# SIGTERM drains: stop accepting, answer what clients already sent, exit (docker stop's 10 s
# grace covers the default 5 s command timeout; see docs/DEPLOY.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/predixy"]
