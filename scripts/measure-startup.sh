#!/usr/bin/env bash
# Measures what docs/performance.md reports for `dgov serve` with no configuration: time from
# exec to the first 200 from /healthz, and resident memory after idling. Usage:
#   scripts/measure-startup.sh [runs=5] [idle-seconds=20]
set -euo pipefail
runs="${1:-5}"; idle="${2:-20}"
cd "$(dirname "$0")/.."
make -s build
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
port=18080
for i in $(seq 1 "$runs"); do
  data="$work/data$i"
  [ "$i" -gt 1 ] && data="$work/data1"   # run 1: first start (keys made); later runs: restart
  start=$(date +%s%N)
  DGOV_DATA_DIR="$data" DGOV_HTTP_ADDR="127.0.0.1:$port" DGOV_LOG_LEVEL=warn bin/dgov serve &
  pid=$!
  until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.01; done
  ready=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ "$i" -eq 1 ] || [ "$i" -eq "$runs" ]; then
    sleep "$idle"
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    echo "run $i: healthz after ${ready} ms; RSS after ${idle}s idle: $((rss/1024)) MiB"
  else
    echo "run $i: healthz after ${ready} ms"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
