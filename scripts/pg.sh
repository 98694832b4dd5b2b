#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks, in a directory of its own.
#
#   scripts/pg.sh start DIR PORT [DBNAME]   initialise (once) and start; prints the database URL
#   scripts/pg.sh stop DIR                  stop the server (a no-op when it is not running)
#
# No server is assumed to exist: the Debian package is installed when the server binaries
# are missing (as root only). PostgreSQL refuses to run as root, so as root the cluster
# belongs to the unprivileged `postgres` user (created when absent); as anyone else it
# belongs to the caller. The server listens on 127.0.0.1:PORT and on a unix socket in DIR,
# trusts every local connection (it holds test data only), and is tuned for throwaway use:
#
#   fsync=off, synchronous_commit=off, full_page_writes=off
#     These trade crash safety for speed: a power cut can corrupt the cluster. That is the
#     right trade for a cluster deleted after the run, and the wrong one for anything else
#     -- never copy these settings to production. They do not change transaction
#     semantics (isolation, locking, SKIP LOCKED), which is what the tests exercise.
#   max_connections=200
#     Multi-worker tests run several processes, each with a connection pool.
#
# Idempotent: `start` on a running cluster only makes sure the database exists; `stop` on
# a stopped or missing one does nothing.
set -euo pipefail

DBNAME_DEFAULT=chfw
PG_USER=postgres

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

log() {
    echo "pg.sh: $*" >&2
}

usage() {
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

is_root() {
    [ "$(id -u)" -eq 0 ]
}

# The directory holding initdb/pg_ctl/postgres: $PG_BINDIR, the newest Debian
# /usr/lib/postgresql/*/bin, or initdb on PATH (other systems).
find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        [ -x "$PG_BINDIR/initdb" ] || die "PG_BINDIR=$PG_BINDIR has no initdb"
        echo "$PG_BINDIR"
        return 0
    fi
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null |
        sort -V | tail -n 1)
    if [ -n "$dir" ]; then
        dirname "$dir"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

install_server() {
    is_root || die "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them
  (Debian/Ubuntu: sudo apt-get install postgresql) or set PG_BINDIR to their directory."
    log "PostgreSQL server not found: installing the Debian package"
    # Only our own throwaway clusters are wanted: stop the package from creating and
    # starting a system-wide 'main' cluster on port 5432. postgresql-common installs this
    # file through ucf; UCF_FORCE_CONFFOLD (and dpkg's --force-confold) keep ours.
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
    fi
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        postgresql >&2
}

ensure_bindir() {
    if ! BINDIR=$(find_bindir); then
        install_server
        BINDIR=$(find_bindir) || die "installed the postgresql package but found no initdb"
    fi
}

ensure_user() {
    is_root || return 0
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
        log "creating the system user '$PG_USER' to run the server"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh "$PG_USER"
    fi
}

# Run a server program as the cluster's owner: `postgres` as root, else the caller.
as_owner() {
    if is_root; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

url_for() {
    echo "postgresql+psycopg://$PG_USER@127.0.0.1:$1/$2"
}

is_running() {
    [ -f "$1/data/PG_VERSION" ] && as_owner "$BINDIR/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

cmd_start() {
    local dir=$1 port=$2 dbname=${3:-$DBNAME_DEFAULT}
    [[ "$port" =~ ^[0-9]+$ ]] || die "port must be a number, got '$port'"
    ensure_bindir
    ensure_user
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if is_root; then
        chown "$PG_USER:" "$dir"
        chmod 700 "$dir"
        runuser -u "$PG_USER" -- test -w "$dir" ||
            die "user '$PG_USER' cannot write to $dir: choose a directory whose parents it can
  enter (e.g. one made by mktemp -d under /tmp)"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        log "initialising a cluster in $dir/data"
        as_owner "$BINDIR/initdb" -D "$dir/data" -U "$PG_USER" --auth=trust \
            --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
            die "initdb failed; see $dir/initdb.log"
        # Later settings win over postgresql.conf's defaults; see the header for why.
        cat >>"$dir/data/postgresql.conf" <<EOF

# --- chfw test cluster (scripts/pg.sh): throwaway, never production ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    else
        # A re-used cluster: keep the port in line with the one asked for.
        sed -i "s/^port = .*/port = $port/" "$dir/data/postgresql.conf"
    fi
    if ! is_running "$dir"; then
        log "starting PostgreSQL on 127.0.0.1:$port"
        as_owner "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >&2 ||
            die "the server did not start; see $dir/server.log"
    fi
    local tries=0
    until "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port"; do
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || die "the server on port $port is not accepting connections"
        sleep 0.1
    done
    local psql=("$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres)
    if [ -z "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$dbname'")" ]; then
        "${psql[@]}" -c "CREATE DATABASE \"$dbname\"" >&2
    fi
    url_for "$port" "$dbname"
}

cmd_stop() {
    local dir=$1
    [ -f "$dir/data/PG_VERSION" ] || return 0
    BINDIR=$(find_bindir) || die "PostgreSQL server binaries not found; cannot stop $dir"
    if is_running "$dir"; then
        as_owner "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2
    fi
}

[ $# -ge 1 ] || usage
case "$1" in
start)
    [ $# -ge 3 ] && [ $# -le 4 ] || usage
    cmd_start "$2" "$3" "${4:-}"
    ;;
stop)
    [ $# -eq 2 ] || usage
    cmd_stop "$2"
    ;;
*)
    usage
    ;;
esac
