#!/usr/bin/env bash
# make loadtest: start the service (unless HOST is given), run Locust at a fixed rate, gate it.
#
#   HOST            target an already running service instead of starting one
#   LOADTEST_RATE   offered requests/s (default 510: 2% over the 500 gate, so that scheduling
#                   jitter of the constant-throughput users cannot fail a healthy service)
#   LOADTEST_REPORTS where the HTML and CSV reports go (default reports/loadtest)
#   LOADTEST_API_KEY the key Locust sends; with CHURN_AUTH=required and none given, a key named
#                   "loadtest" is made (or replaced), with a rate limit far above any test's rate
# When it starts the service with history on (CHURN_HISTORY_ENABLED, default true), it stops the
# service afterwards and checks that every answered request is in the history (CHURN_HISTORY_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
reports="${LOADTEST_REPORTS:-reports/loadtest}"
port="${CHURN_PORT:-3000}"
export LOADTEST_RATE="${LOADTEST_RATE:-510}"
mkdir -p "$reports"

server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; true; }
trap cleanup EXIT

if [ -z "${HOST:-}" ]; then
  HOST="http://127.0.0.1:$port"
  "$bin/bentoml" serve . --port "$port" >"$reports/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 120); do
    curl -sf "$HOST/readyz" >/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { echo "the service did not start:"; tail -20 "$reports/server.log"; exit 1; }
    sleep 0.5
  done
fi
if [ "${CHURN_AUTH:-off}" = required ] && [ -z "${LOADTEST_API_KEY:-}" ]; then
  LOADTEST_API_KEY="$("$bin/python" -m serving keys create --name loadtest --scopes predict \
    --rate 1000000/second --replace 2>/dev/null)"
  export LOADTEST_API_KEY
fi
check_history=""
if [ -n "$server_pid" ] && [ "${CHURN_HISTORY_ENABLED:-true}" != false ]; then
  check_history=1
  export LOADTEST_ANSWERED="$reports/answered.csv"
fi
echo "Load test: $LOADTEST_RATE requests/s offered to $HOST (10 s warm-up, then 60 s)"
if [ -n "$server_pid" ]; then
  "$bin/python" -m loadtests.service_cpu snapshot "$server_pid" "$HOST" >"$reports/service-cpu-before.json"
fi
"$bin/locust" --config loadtests/locust.conf --host "$HOST" \
  --csv "$reports/locust" --html "$reports/locust.html" "$@" >"$reports/locust.log" 2>&1 || true
if [ -n "$server_pid" ]; then
  "$bin/python" -m loadtests.service_cpu report "$reports/service-cpu-before.json" "$server_pid" "$HOST" \
    | tee "$reports/service-cpu.txt"
fi
gate=0
"$bin/python" -m loadtests.gate "$reports/locust_stats.csv" \
  --min-rps "${MIN_RPS:-500}" --max-p50 "${MAX_P50_MS:-20}" --max-p99 "${MAX_P99_MS:-100}" || gate=$?
if [ -n "$check_history" ]; then
  cleanup  # the workers write what they buffered as they stop
  server_pid=""
  "$bin/python" -m loadtests.recorded "$LOADTEST_ANSWERED" || gate=1
fi
exit "$gate"
