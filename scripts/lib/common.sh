# Shared by scripts/test and the benchmarks: installing what is missing, and a throwaway
# PostgreSQL server on a loopback port. Source it; it defines functions only.

log() { printf '\n==> %s\n' "$*"; }

# summary PATH CPORT REFERENCE RATIO: one row for scripts/bench's table, appended to the file
# named by $BENCH_SUMMARY when it is set (a benchmark run alone prints its own table).
summary() {
    if [ -n "${BENCH_SUMMARY:-}" ]; then printf '%s\t%s\t%s\t%s\n' "$@" >> "$BENCH_SUMMARY"; fi
}
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Python packages for the tests go into the python3 on PATH when its pip may install them (a
# pyenv or virtualenv Python). A system Python that refuses (PEP 668: Debian 12's) or has no
# pip gets a virtual environment in target/py instead, put first on PATH so that the tests'
# `python3` and `st` are its; a later run finds it there.
PY_VENV="$PWD/target/py"
if [ -x "$PY_VENV/bin/python3" ]; then export PATH="$PY_VENV/bin:$PATH"; fi

# pip_install PACKAGE...
pip_install() {
    if python3 -m pip install --quiet "$@"; then return 0; fi
    if [ "$(command -v python3)" = "$PY_VENV/bin/python3" ]; then return 1; fi
    log "this python3 may not install packages with pip: using a virtual environment in target/py"
    python3 -m venv "$PY_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$PY_VENV"; }
    export PATH="$PY_VENV/bin:$PATH"
    python3 -m pip install --quiet "$@"
}

# py_need MODULE PACKAGE WHAT: installs PACKAGE with pip when python3 cannot import MODULE.
py_need() {
    if ! python3 -c "import $1" >/dev/null 2>&1; then
        log "$3 not found: installing $2 with pip"
        pip_install "$2"
    fi
}

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_bindir() {
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return
    fi
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# Starts PostgreSQL in a temp dir; sets PG_URL (admin database), PG_DIR, PG_BIN, PG_PORT.
# Call pg_stop (for example from an EXIT trap) to stop it and remove its files.
pg_start() {
    PG_BIN="$(pg_bindir || true)"
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
        log "PostgreSQL not found: installing it from the system's packages (apt-get install postgresql)"
        apt_install postgresql
        PG_BIN="$(pg_bindir)"
    fi
    PG_DIR="$(mktemp -d /tmp/cport-pg.XXXXXX)"
    PG_PORT="$(free_port)"
    PG_RUN_AS=()
    if [ "$(id -u)" -eq 0 ]; then
        # initdb refuses to run as root: run the server as the postgres system user.
        id postgres >/dev/null 2>&1 || as_root useradd --system --home-dir "$PG_DIR" postgres
        chown postgres "$PG_DIR"
        PG_RUN_AS=(runuser -u postgres --)
    fi
    log "starting a throwaway PostgreSQL ($("$PG_BIN/postgres" --version)) on 127.0.0.1:$PG_PORT"
    "${PG_RUN_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
    # pg_ctl -w returns once the server accepts connections.
    "${PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400 $*" start >/dev/null
    PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}

pg_stop() {
    if [ -n "${PG_DIR:-}" ]; then
        "${PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}

# cargo-deb builds the Debian package (scripts/package, tests/package.rs).
CARGO_DEB_VERSION=3.8.0
ensure_cargo_deb() {
    if ! cargo deb --version >/dev/null 2>&1; then
        log "cargo-deb not found: installing it with cargo install (a few minutes, once)"
        cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
    fi
}
