# Shared by the services/*.sh scripts (sourced, not run): where state and logs go, addresses,
# installs and waiting. Each script starts one service on 127.0.0.1 unless one already answers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.tools/services"
LOGS="$ROOT/reports/services"
mkdir -p "$STATE" "$LOGS"

say() { echo "make services: $*"; }
fail() { echo "make services: $*" >&2; exit 1; }

# host and port of "scheme://user@host:port/path" or "host:port"
host_of() { local rest="${1#*://}"; rest="${rest##*@}"; rest="${rest%%/*}"; echo "${rest%:*}"; }
port_of() { local rest="${1#*://}"; rest="${rest##*@}"; rest="${rest%%/*}"; echo "${rest##*:}"; }

# Does something accept a TCP connection at host:port?
listening() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# already_up NAME MARKER VARIABLE: whether the script's server (its `answers`) is up already,
# saying whose it is (MARKER: the file a start by make services leaves); a server of the user's
# own, named by VARIABLE, that does not answer is an error, not something to start.
already_up() {
  local name="$1" marker="$2" variable="$3"
  if answers; then
    if [[ -f "$marker" ]]; then say "$name: already running on $HOST:$PORT (started by make services)"
    else say "$name: using the server that answers on $HOST:$PORT"; fi
    return 0
  fi
  [[ -z "${!variable:-}" ]] || fail "$variable=${!variable} does not answer"
  return 1
}

# wait_for SECONDS WHAT COMMAND...: retry COMMAND every half second until it succeeds.
wait_for() {
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || fail "$what did not answer within ${seconds} s (log in ${LOGS#"$ROOT"/})"
    sleep 0.5
  done
}

# apt_install PACKAGE...: install Debian packages, which needs root and apt-get.
apt_install() {
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null ||
    fail "install $* first (make services installs them with apt-get when run as root)"
  say "installing $* with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# A free TCP port on 127.0.0.1, chosen by the kernel.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# stop_pid NAME PIDFILE: stop the process in PIDFILE (TERM, then KILL after 30 s) and forget it.
stop_pid() {
  local name="$1" pidfile="$2" pid
  [[ -f "$pidfile" ]] || { say "$name: not started by make services, left alone"; return 0; }
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    say "$name: stopped"
  fi
  rm -f "$pidfile"
}
