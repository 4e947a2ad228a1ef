#!/usr/bin/env bash
# Redis for the tests: Debian's redis-server, run by hand on 127.0.0.1 with nothing kept on disk.
# Usage: services/redis.sh start|stop. CHURN_TEST_REDIS names a server of your own instead.
source "$(dirname "$0")/lib.sh"

URL="${CHURN_TEST_REDIS:-redis://127.0.0.1:6379/0}"
HOST="$(host_of "$URL")"
PORT="$(port_of "$URL")"
PIDFILE="$STATE/redis.pid"

answers() {
  local reply
  reply="$(timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$PORT && printf 'PING\r\n' >&3 && head -c 5 <&3" 2>/dev/null)"
  [[ "$reply" == "+PONG" || "$reply" == "-NOAU" ]]
}

start() {
  already_up Redis "$PIDFILE" CHURN_TEST_REDIS && return 0
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server
    # Where init scripts may run, the package starts a server of its own: use that one.
    if answers; then say "Redis: using the server its package started on $HOST:$PORT"; return 0; fi
  fi
  mkdir -p "$ROOT/.tools/redis"
  redis-server --bind "$HOST" --port "$PORT" --daemonize yes --pidfile "$PIDFILE" \
    --logfile "$LOGS/redis.log" --dir "$ROOT/.tools/redis" --save '' --appendonly no
  wait_for 30 Redis answers
  say "Redis: started on $HOST:$PORT"
}

stop() { stop_pid Redis "$PIDFILE"; }

"${1:?start or stop}"
