#!/usr/bin/env bash
# Prepares the browser tests: Debian's chromium (Playwright cannot download browsers here)
# and the pinned npm packages. Safe to run again; installs only what is missing.
#   tests/browser/setup.sh && (cd tests/browser && npm test)
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v chromium >/dev/null; then
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo -n)
    echo "==> installing chromium"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core >/dev/null
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are needed for the browser tests (apt-get install nodejs npm)" >&2
    exit 1
fi
want=$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./node_modules/playwright-core/package.json').version } catch { '' }")
if [[ "$want" != "$have" ]]; then
    echo "==> npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi
