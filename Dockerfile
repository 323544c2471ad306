# syntax=docker/dockerfile:1
# One image for both tiers: `megaphone edge`, `megaphone session` and `megaphone user …` are
# commands of the same ENTRYPOINT (the k8s/ manifests pass `edge` or `session` as args).
#
# Base: Node 20 on Debian bookworm (glibc 2.36). uWebSockets.js is a prebuilt native addon
# (binaries/uws_linux_<arch>_115.node for Node 20's ABI) linked against glibc and its loader
# ld-linux (objdump -T shows symbols up to GLIBC_2.27); Alpine's musl cannot load it, and uWS
# then falls back to a slow JavaScript implementation with only a warning, so the last stage
# below loads the binary itself at build time and fails the build if it cannot.
# Override NODE_IMAGE to pin a digest (node:20-bookworm-slim@sha256:…).
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: every dependency, the TypeScript build, then drop the dev dependencies ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own `prepare` (tsc) would run before the sources are copied,
# and no dependency needs an install script (uWS ships its binaries; bufferutil and
# utf-8-validate are optional and load their bundled prebuilds). Manifests first, sources
# after, so a source change does not reinstall the dependencies.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY services ./services
# Only services/ is in the context: tsc compiles it to dist/services (tests and benchmarks
# are not part of the image).
RUN npx tsc -p tsconfig.json
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund
# uWS ships binaries for every platform and Node ABI (about 110 MB); keep the one this base loads.
RUN node -e "const fs = require('fs'), dir = 'node_modules/uWebSockets.js/binaries/'; \
  const keep = 'uws_' + process.platform + '_' + process.arch + '_' + process.versions.modules + '.node'; \
  for (const f of fs.readdirSync(dir)) if (f !== keep) fs.rmSync(dir + f)"

# ---- runtime: production node_modules and the compiled services, nothing else ----
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="megaphone" \
      org.opencontainers.image.description="Megaphone XMPP server: uWebSockets.js edges, Redis Streams, sharded session tier" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the process: nothing is written outside /tmp at run time
# (logs go to stdout), so the root filesystem can be mounted read-only.
# package.json says "type": "module": the compiled files are ES modules.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/services ./dist/services
# Fail the build here, not at run time, if this base cannot load the uWS binary.
RUN node -e "require('/app/node_modules/uWebSockets.js/binaries/uws_' + process.platform + '_' + process.arch + '_' + process.versions.modules + '.node')"
# The base image's `node` user, by number so that runAsNonRoot can verify it without /etc/passwd.
USER 1000:1000
EXPOSE 5280 9100
# No HEALTHCHECK: Kubernetes ignores it; the pods' probes call /healthz and /readyz (k8s/).
# Signals: node runs as PID 1 with no init. The kernel gives PID 1 no default signal actions,
# but megaphone installs its own SIGTERM/SIGINT handlers (services/cli/services.ts: drain, then
# exit) and starts no child processes, so there is nothing to forward and no zombie to reap;
# tini would add a package for neither. A SIGTERM that arrives before those handlers are
# installed (the first second of start-up) is ignored, and terminationGracePeriodSeconds ends
# the pod. Exec form, and node itself rather than npm, so the signal reaches megaphone.
ENTRYPOINT ["node", "/app/dist/services/cli/main.js"]
CMD ["--help"]
