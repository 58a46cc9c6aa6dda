#!/usr/bin/env bash
# Setup for the web sample app and its end-to-end test (tests/test_web_e2e.py):
#   sample_apps/web/setup.sh
# Installs Debian's chromium (only if missing; needs root or sudo) and the app's npm
# dependencies from the committed package-lock.json (npm ci). Safe to run repeatedly.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  sudo_=""
  if [ "$(id -u)" != "0" ]; then sudo_="sudo"; fi
  echo "setup: installing Debian chromium" >&2
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "setup: npm not found; install Node.js >= 20 (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi

cd "$here"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci in $here" >&2
  # npm ci refuses lockfiles that lack entries for optional per-platform packages (rollup's
  # native binaries for other OSes are not recorded by npm on Linux: npm/cli#4828). In that
  # case install from the same lockfile with `npm install --no-save`, which keeps every
  # locked version and never rewrites package-lock.json.
  npm ci --no-audit --no-fund --loglevel=error 2>/dev/null \
    || npm install --no-save --no-audit --no-fund --loglevel=error
fi
