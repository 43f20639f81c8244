#!/usr/bin/env bash
# What bench/throughput.py compares loadgen against: nginx and wrk (apt-get, when missing)
# and locust (pip, into .venv). Idempotent and quiet: does nothing when all are present.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
    if ! command -v apt-get >/dev/null; then
        echo "bench/install.sh: install ${missing[*]} with your package manager" >&2
        exit 2
    fi
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "bench/install.sh: apt-get install ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq >/dev/null
    # The lock timeout waits out another apt-get instead of failing at once.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
        -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! "$PY" -c 'import locust' 2>/dev/null; then
    echo "bench/install.sh: pip install locust" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check locust
fi
