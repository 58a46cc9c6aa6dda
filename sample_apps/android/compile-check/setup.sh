#!/usr/bin/env bash
# Setup for the Kotlin compile checks (tests/test_sdk_compile.py):
#   bash sample_apps/android/compile-check/setup.sh
# Installs Debian's openjdk-17-jdk-headless (only if javac is missing; needs root or sudo) and the npm
# package kotlin-compiler pinned in package-lock.json (npm ci). Safe to run repeatedly.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v javac >/dev/null 2>&1; then
  sudo_=""
  if [ "$(id -u)" != "0" ]; then sudo_="sudo"; fi
  echo "setup: installing Debian openjdk-17-jdk-headless" >&2
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "setup: npm not found; install Node.js >= 20 (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi

cd "$here"
if [ ! -x node_modules/kotlin-compiler/bin/kotlinc ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci in $here" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
# npm does not keep the executable bits of the compiler's shell launchers.
chmod +x node_modules/kotlin-compiler/bin/kotlin node_modules/kotlin-compiler/bin/kotlinc \
  node_modules/kotlin-compiler/bin/kotlinc-jvm
