#!/usr/bin/env bash
# A private MariaDB server for tests: its own datadir, socket, pid file, error
# log and loopback port under one folder, started with --no-defaults so it never
# reads the system's my.cnf and never touches the system's server
# (/run/mysqld, /var/lib/mysql, systemd).
#
#   tests/mariadb/mariadb.sh start DIR     start (or reuse) the server of DIR
#   tests/mariadb/mariadb.sh stop DIR      stop it; the data stays for a restart
#   tests/mariadb/mariadb.sh destroy DIR   stop it and remove DIR
#   tests/mariadb/mariadb.sh env DIR       print the export lines for the tests
#
# DIR holds data/ (the datadir), mysqld.sock, mysqld.pid, error.log, port,
# password and env. start creates the database dynamo_test and the user dynamo
# (password in DIR/password), allowed everything on dynamo_test and on any
# database named dynamo_%; DIR/env exports DYNAMO_TEST_MYSQL_SOCKET, _HOST,
# _PORT, _USER, _PASSWORD, _DATABASE and _DIR.
#
# A second start while the server of DIR runs does nothing; a restart after
# stop keeps the data, the socket and (when still free) the port.
set -euo pipefail

READY_DEADLINE=${DYNAMO_MARIADB_READY_DEADLINE:-30}  # seconds until ping answers
STOP_DEADLINE=${DYNAMO_MARIADB_STOP_DEADLINE:-30}    # seconds until it exits after TERM
DATABASE=dynamo_test
DB_USER=dynamo

die() {
  echo "mariadb.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start|stop|destroy|env DIR" >&2
  exit 2
}

find_program() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    return 0
  fi
  for dir in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
    if [[ -x "$dir/$name" ]]; then
      echo "$dir/$name"
      return 0
    fi
  done
  die "$name not found: install the Debian package mariadb-server"
}

# Sets the paths of the server kept in $1 (made absolute; created when asked).
set_paths() {
  local dir=$1 create=$2
  [[ -n "$dir" ]] || usage
  if [[ "$create" == 1 ]]; then
    mkdir -p "$dir"
  fi
  [[ -d "$dir" ]] || return 1
  DIR=$(cd "$dir" && pwd -P)
  DATA_DIR="$DIR/data"
  SOCKET="$DIR/mysqld.sock"
  PID_FILE="$DIR/mysqld.pid"
  ERROR_LOG="$DIR/error.log"
  PORT_FILE="$DIR/port"
  PASSWORD_FILE="$DIR/password"
  ENV_FILE="$DIR/env"
  INIT_MARK="$DATA_DIR/.dynamo-initialized"
  # A unix socket path is limited to 107 bytes.
  if ((${#SOCKET} > 100)); then
    die "the socket path $SOCKET is too long for a unix socket; use a shorter DIR"
  fi
  return 0
}

# The account that administers the server over its socket: root when root,
# else the current user (mariadb-install-db gives both socket authentication).
admin_user() {
  if ((EUID == 0)); then echo root; else id -un; fi
}

# Whether process $1 is a mariadbd serving this DIR's datadir (so a pid file
# naming a recycled pid never makes us signal an unrelated process).
is_our_server() {
  local pid=$1 arg
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  while IFS= read -r -d '' arg; do
    if [[ "$arg" == "--datadir=$DATA_DIR" ]]; then
      return 0
    fi
  done <"/proc/$pid/cmdline"
  return 1
}

# The pid of the running server of DIR: the pid file's when it names it, else
# the one found among the processes (a lost or stale pid file).
server_pid() {
  local pid proc
  if [[ -f "$PID_FILE" ]]; then
    pid=$(tr -dc '0-9' <"$PID_FILE")
    if is_our_server "$pid"; then
      echo "$pid"
      return 0
    fi
  fi
  local comm
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    comm=""
    { read -r comm <"$proc/comm"; } 2>/dev/null || continue
    if [[ "$comm" == mariadbd* || "$comm" == mysqld* ]] && is_our_server "$pid"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

pid_alive() {
  [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null
}

ping_server() {
  "$MARIADB_ADMIN" --no-defaults --socket="$SOCKET" -u"$(admin_user)" \
    --connect-timeout=2 ping >/dev/null 2>&1
}

admin_sql() {
  "$MARIADB" --no-defaults --socket="$SOCKET" -u"$(admin_user)" --batch -e "$1"
}

pick_port() {
  local python
  python=$(command -v /usr/bin/python3 || command -v python3 || true)
  [[ -n "$python" ]] || die "python3 not found (needed to pick a free port)"
  "$python" - "$@" <<'EOF'
import socket, sys
def free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]
# The port of an earlier run when it is still free, else any free one.
for arg in sys.argv[1:]:
    if arg.isdigit() and free(int(arg)):
        print(int(arg))
        sys.exit(0)
print(free(0))
EOF
}

write_env() {
  local password port
  password=$(<"$PASSWORD_FILE")
  port=$(<"$PORT_FILE")
  {
    printf 'export DYNAMO_TEST_MYSQL_SOCKET=%q\n' "$SOCKET"
    printf 'export DYNAMO_TEST_MYSQL_HOST=127.0.0.1\n'
    printf 'export DYNAMO_TEST_MYSQL_PORT=%q\n' "$port"
    printf 'export DYNAMO_TEST_MYSQL_USER=%q\n' "$DB_USER"
    printf 'export DYNAMO_TEST_MYSQL_PASSWORD=%q\n' "$password"
    printf 'export DYNAMO_TEST_MYSQL_DATABASE=%q\n' "$DATABASE"
    printf 'export DYNAMO_TEST_MYSQL_DIR=%q\n' "$DIR"
  } >"$ENV_FILE.tmp"
  chmod 600 "$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

init_datadir() {
  if [[ -f "$INIT_MARK" ]]; then
    return 0
  fi
  # A datadir without the mark is a half-done earlier attempt: start over.
  rm -rf "$DATA_DIR"
  mkdir -p "$DATA_DIR"
  # No --user: with it, mariadb-install-db also chowns the system server's PAM
  # helper folder. The socket-authenticated admin is the user running this.
  if ! "$INSTALL_DB" --no-defaults --auth-root-socket-user="$(admin_user)" --datadir="$DATA_DIR" \
    --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve \
    >"$DIR/install-db.log" 2>&1; then
    tail -n 30 "$DIR/install-db.log" >&2 || true
    die "mariadb-install-db failed for $DATA_DIR (log: $DIR/install-db.log)"
  fi
  touch "$INIT_MARK"
}

# Starts mariadbd on $1 in the background; returns 0 once ping answers, 1 when
# the server exited (error log in $ERROR_LOG), dies on the deadline.
launch() {
  local port=$1 pid deadline
  local -a user_opt=()
  if ((EUID == 0)); then user_opt=(--user=root); fi
  : >>"$ERROR_LOG"
  local log_start
  log_start=$(wc -l <"$ERROR_LOG")
  # Its own session: a Ctrl-C in the terminal that runs the tests does not
  # reach it, and its output goes to files, never to the caller's pipes.
  setsid "$MARIADBD" --no-defaults "${user_opt[@]}" --datadir="$DATA_DIR" \
    --socket="$SOCKET" --port="$port" --bind-address=127.0.0.1 \
    --pid-file="$PID_FILE" --log-error="$ERROR_LOG" --skip-name-resolve \
    --skip-log-bin --innodb-buffer-pool-size=32M --max-connections=500 \
    </dev/null >>"$DIR/mariadbd.out" 2>&1 9>&- &
  pid=$!
  deadline=$((SECONDS + READY_DEADLINE))
  while ! ping_server; do
    if ! pid_alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      LAUNCH_LOG=$(tail -n "+$((log_start + 1))" "$ERROR_LOG" 2>/dev/null | tail -n 30)
      return 1
    fi
    if ((SECONDS >= deadline)); then
      kill -TERM "$pid" 2>/dev/null || true
      tail -n 30 "$ERROR_LOG" >&2 || true
      die "the server of $DIR did not answer ping within ${READY_DEADLINE} s" \
        "(error log: $ERROR_LOG)"
    fi
    sleep 0.05
  done
  # mariadbd writes the pid file itself; make sure it names this server.
  if [[ ! -s "$PID_FILE" ]]; then echo "$pid" >"$PID_FILE"; fi
  return 0
}

# One start or stop of a DIR at a time (the lock's fd is not passed on to
# the server, so it is released when this script ends).
lock_dir() {
  exec 9>>"$DIR/.lock"
  flock 9
}

cmd_start() {
  set_paths "$1" 1
  lock_dir
  local pid
  if pid=$(server_pid) && ping_server; then
    echo "$pid" >"$PID_FILE"
    if [[ ! -f "$ENV_FILE" && -f "$PASSWORD_FILE" && -f "$PORT_FILE" ]]; then
      write_env
    fi
    echo "mariadb.sh: reusing the running server of $DIR (pid $pid)"
    return 0
  fi
  if pid=$(server_pid); then
    # Running but not answering: still starting or stuck; stop it first.
    stop_pid "$pid"
  fi
  rm -f "$PID_FILE"
  rm -f "$SOCKET" "$SOCKET.lock"

  init_datadir

  local port="" attempt saved=""
  [[ -f "$PORT_FILE" ]] && saved=$(<"$PORT_FILE")
  for attempt in 1 2 3 4 5; do
    port=$(pick_port "$saved")
    [[ -n "$port" && "$port" != None ]] || die "no free loopback port"
    if launch "$port"; then
      break
    fi
    # Another process may have taken the port meanwhile: try another one.
    if [[ "$attempt" == 5 ]] || ! grep -qiE "address already in use|bind on tcp/ip port" \
      <<<"$LAUNCH_LOG"; then
      printf '%s\n' "$LAUNCH_LOG" >&2
      die "the server of $DIR exited while starting (error log: $ERROR_LOG)"
    fi
    saved=""
    rm -f "$PID_FILE" "$SOCKET" "$SOCKET.lock"
  done
  echo "$port" >"$PORT_FILE"

  if [[ ! -s "$PASSWORD_FILE" ]]; then
    (umask 077 && od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$PASSWORD_FILE")
  fi
  local password
  password=$(<"$PASSWORD_FILE")
  local sql="CREATE DATABASE IF NOT EXISTS \`$DATABASE\`;"
  local host
  for host in localhost 127.0.0.1 ::1; do
    sql+="CREATE USER IF NOT EXISTS '$DB_USER'@'$host' IDENTIFIED BY '$password';"
    sql+="ALTER USER '$DB_USER'@'$host' IDENTIFIED BY '$password';"
    sql+="GRANT ALL ON \`$DATABASE\`.* TO '$DB_USER'@'$host';"
    sql+="GRANT ALL ON \`dynamo\\_%\`.* TO '$DB_USER'@'$host';"
  done
  admin_sql "$sql" || die "could not create the database and user on the server of $DIR"
  write_env
  echo "mariadb.sh: server of $DIR ready (pid $(server_pid), port $port, socket $SOCKET)"
}

# TERM, wait until gone (bounded), then KILL.
stop_pid() {
  local pid=$1 deadline
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + STOP_DEADLINE))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      echo "mariadb.sh: server pid $pid did not exit within ${STOP_DEADLINE} s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.05
  done
}

cmd_stop() {
  set_paths "$1" 0 || { echo "mariadb.sh: $1 does not exist, nothing to stop"; return 0; }
  lock_dir
  local pid tries=0
  while ((tries++ < 3)) && pid=$(server_pid); do
    stop_pid "$pid"
    echo "mariadb.sh: stopped the server of $DIR (pid $pid)"
  done
  rm -f "$PID_FILE"
}

cmd_destroy() {
  if [[ ! -d "$1" ]]; then
    return 0
  fi
  cmd_stop "$1"
  rm -rf "$DIR"
}

cmd_env() {
  set_paths "$1" 0 || die "$1 does not exist: run start first"
  [[ -f "$ENV_FILE" ]] || die "$ENV_FILE does not exist: run start first"
  cat "$ENV_FILE"
}

[[ $# -eq 2 ]] || usage
MARIADBD=$(find_program mariadbd)
INSTALL_DB=$(find_program mariadb-install-db)
MARIADB_ADMIN=$(find_program mariadb-admin)
MARIADB=$(find_program mariadb)
case "$1" in
  start) cmd_start "$2" ;;
  stop) cmd_stop "$2" ;;
  destroy) cmd_destroy "$2" ;;
  env) cmd_env "$2" ;;
  *) usage ;;
esac
