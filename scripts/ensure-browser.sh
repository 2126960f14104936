#!/usr/bin/env bash
# Browser tests drive Debian's headless Chromium; install it once when missing (we run as
# root on dgov's machines; elsewhere, install the chromium package yourself).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -n "${DGOV_CHROME:-}" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is not installed and we are not root: install Debian's chromium package, or set DGOV_CHROME" >&2
  exit 1
fi
echo "installing chromium for the browser tests…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
