# A throwaway PostgreSQL server on 127.0.0.1 for tests (sourced by scripts/test.sh):
# `start_postgres` runs initdb into a temporary directory and starts the server on a free
# loopback port (as the postgres user when run as root: the server refuses root), exporting
# SLUICE_TEST_POSTGRES_URL; `stop_postgres` stops it and removes the directory. Without
# Debian's postgresql package it says so and exports nothing: the tests that need it skip.

start_postgres() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "postgresql is not installed: the PostgreSQL connector tests are skipped"
    return 0
  fi
  PG_DIR=$(mktemp -d /tmp/sluice-pg.XXXXXX)
  PG_RUN=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$PG_DIR"
    PG_RUN=(runuser -u postgres --)
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${PG_RUN[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log"; return 1; }
  "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
    || { cat "$PG_DIR/server.log"; return 1; }
  export SLUICE_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL for the tests at $SLUICE_TEST_POSTGRES_URL"
}

stop_postgres() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
