#!/usr/bin/env bash
# PostgreSQL for the tests: a cluster of its own ("churn_test") where the postgres role needs no
# password on 127.0.0.1, made and started with Debian's cluster tools (no systemd).
# Usage: services/postgres.sh start|stop. CHURN_TEST_POSTGRES names a server of your own instead.
source "$(dirname "$0")/lib.sh"

CLUSTER=churn_test
URL="${CHURN_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/postgres}"
HOST="$(host_of "$URL")"
PORT="$(port_of "$URL")"
STARTED="$STATE/postgres.started"

answers() { listening "$HOST" "$PORT"; }

# The newest PostgreSQL whose server is installed (the client alone has /usr/lib/postgresql/N too).
newest_version() {
  find /usr/lib/postgresql -path '*/bin/postgres' 2>/dev/null | cut -d/ -f5 | sort -V | tail -n 1
}

start() {
  already_up PostgreSQL "$STARTED" CHURN_TEST_POSTGRES && return 0
  [[ -n "$(newest_version)" ]] && command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version
  version="$(newest_version)"
  [[ $(id -u) == 0 ]] || fail "PostgreSQL does not answer on $HOST:$PORT, and starting one needs root (or set CHURN_TEST_POSTGRES)"
  if ! pg_lsclusters --no-header | awk '{print $1 "/" $2}' | grep -qx "$version/$CLUSTER"; then
    pg_createcluster "$version" "$CLUSTER" --port "$PORT" --start-conf manual \
      -- --auth-local=peer --auth-host=trust >/dev/null
  fi
  pg_conftool "$version" "$CLUSTER" set port "$PORT"
  ln -sf "/var/log/postgresql/postgresql-$version-$CLUSTER.log" "$LOGS/postgresql.log"
  pg_ctlcluster "$version" "$CLUSTER" start
  echo "$version" > "$STARTED"
  wait_for 30 PostgreSQL answers
  say "PostgreSQL $version: started cluster $CLUSTER on $HOST:$PORT"
}

stop() {
  [[ -f "$STARTED" ]] || { say "PostgreSQL: not started by make services, left alone"; return 0; }
  pg_ctlcluster --mode fast "$(cat "$STARTED")" "$CLUSTER" stop 2>/dev/null || true
  rm -f "$STARTED"
  say "PostgreSQL: stopped"
}

"${1:?start or stop}"
