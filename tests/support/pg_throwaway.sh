#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for tests, on 127.0.0.1 only, in a temporary directory.
#
#   pg_throwaway.sh start [--tls] PORT [WATCH_PID]  starts a cluster and prints KEY=VALUE lines:
#       PG_HOST PG_PORT PG_USER PG_PASSWORD PG_DBNAME PG_DIR PG_PID [PG_CERT] [PG_WATCHDOG_PID]
#     With --tls, the server also accepts TLS (ssl=on) with a throwaway self-signed
#     certificate for 127.0.0.1, printed as PG_CERT; clients may still connect
#     without TLS. With WATCH_PID, a watchdog stops the server and removes PG_DIR
#     once that process exits, so a crashed test leaves nothing running.
#   pg_throwaway.sh restart DIR  restarts the server (fast shutdown) and prints PG_PID.
#   pg_throwaway.sh stop DIR     stops the server at once and removes DIR.
#
# initdb refuses to run as root, so as root the cluster runs as the `postgres` user
# that Debian's postgresql-15 package creates. fsync and synchronous commit are off:
# the data is disposable. PG_BIN overrides /usr/lib/postgresql/15/bin.
set -euo pipefail

BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Waits up to 10 s for the process `$1` to exit.
wait_for_exit() {
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

stop_server() {
  local dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    local pid
    pid=$(head -1 "$dir/data/postmaster.pid")
    # SIGQUIT is PostgreSQL's immediate shutdown.
    kill -QUIT "$pid" 2>/dev/null || true
    wait_for_exit "$pid" || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

# Makes a self-signed certificate for 127.0.0.1, valid for one day, in the data
# directory: PostgreSQL requires its key to belong to the server's user, mode 0600.
make_certificate() {
  local data=$1
  if ! as_owner openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
      -keyout "$data/server.key" -out "$data/server.crt" >"$data/../openssl.log" 2>&1; then
    echo "pg_throwaway: openssl could not make the server certificate:" >&2
    cat "$data/../openssl.log" >&2
    return 1
  fi
  chmod 600 "$data/server.key"
}

start() {
  local tls=
  if [ "${1:-}" = "--tls" ]; then
    tls=1
    shift
  fi
  local port=${1:?usage: pg_throwaway.sh start [--tls] PORT [WATCH_PID]}
  local watch_pid=${2:-}
  if [ ! -x "$BIN/initdb" ] || [ ! -x "$BIN/pg_ctl" ]; then
    echo "pg_throwaway: initdb or pg_ctl not found in $BIN; install postgresql-15" >&2
    exit 2
  fi

  local dir password
  dir=$(mktemp -d "${TMPDIR:-/tmp}/puddle-pg.XXXXXX")
  chmod 700 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  echo "$password" >"$dir/pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/pwfile"

  if ! as_owner "$BIN/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
      -A scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
    echo "pg_throwaway: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    exit 1
  fi
  rm -f "$dir/pwfile"

  local options="-p $port -h 127.0.0.1 -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if [ -n "$tls" ]; then
    if ! make_certificate "$dir/data"; then
      rm -rf "$dir"
      exit 1
    fi
    options="$options -c ssl=on -c ssl_cert_file=$dir/data/server.crt -c ssl_key_file=$dir/data/server.key"
  fi

  # The Unix socket stays inside $dir; TCP listens on 127.0.0.1 only.
  if ! as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 -o "$options" \
      start >/dev/null 2>&1; then
    echo "pg_throwaway: server did not start on 127.0.0.1:$port; its log:" >&2
    cat "$dir/log" >&2 || true
    stop_server "$dir"
    exit 1
  fi

  PGPASSWORD=$password "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt \
    -c "CREATE DATABASE puddle" >/dev/null

  echo "PG_HOST=127.0.0.1"
  echo "PG_PORT=$port"
  echo "PG_USER=postgres"
  echo "PG_PASSWORD=$password"
  echo "PG_DBNAME=puddle"
  echo "PG_DIR=$dir"
  echo "PG_PID=$(head -1 "$dir/data/postmaster.pid")"
  [ -n "$tls" ] && echo "PG_CERT=$dir/data/server.crt"

  if [ -n "$watch_pid" ]; then
    # Polls once a second; exits by itself once `stop` has removed $dir.
    setsid bash -c '
      while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
      [ -d "$2" ] && "$3" stop "$2"
    ' watchdog "$watch_pid" "$dir" "$(readlink -f "$0")" </dev/null >/dev/null 2>&1 &
    echo "PG_WATCHDOG_PID=$!"
  fi
}

restart() {
  local dir=${1:?usage: pg_throwaway.sh restart DIR}
  as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -m fast -w -t 30 restart >/dev/null
  echo "PG_PID=$(head -1 "$dir/data/postmaster.pid")"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  restart) shift; restart "$@" ;;
  stop) shift; stop_server "${1:?usage: pg_throwaway.sh stop DIR}" ;;
  *) echo "usage: pg_throwaway.sh start [--tls] PORT [WATCH_PID] | restart DIR | stop DIR" >&2; exit 2 ;;
esac
