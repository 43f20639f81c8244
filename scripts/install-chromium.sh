#!/bin/sh
# Installs Debian's headless-capable Chromium for the report's browser test (tests/test_report.py).
# Idempotent: does nothing when a Chromium is already there. Never fails the build: when it
# cannot install, it says why and exits 0 (the test then fails with the same advice, unless
# LOADGEN_SKIP_BROWSER=1).
set -u

for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null 2>&1; then
        echo "install-chromium: $(command -v "$name") is already installed"
        exit 0
    fi
done

if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: not root; run 'sudo apt-get install -y chromium' (or set LOADGEN_SKIP_BROWSER=1)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get here; install Chromium yourself, or set LOADGEN_CHROMIUM=/path/to/chrome"
    exit 0
fi

echo "install-chromium: installing chromium with apt-get"
if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
    echo "install-chromium: installed $(command -v chromium)"
else
    echo "install-chromium: apt-get could not install chromium (offline?); the browser test will say so"
fi
exit 0
