#!/bin/bash
# The official postgres image's entrypoint contract, for Debian's postgresql-15: on the first
# start with an empty $PGDATA, initdb as $POSTGRES_USER with $POSTGRES_PASSWORD, password
# (scram-sha-256) auth for every connection that is not over the local socket, listening on all
# addresses, and $POSTGRES_DB created; then (and on every later start) exec the server as the
# postgres user, so it is the process that receives `docker stop`'s signal.
set -Eeuo pipefail

# `docker run IMAGE -c fsync=off` passes server options.
if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    install -d -o postgres -g postgres -m 2777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = 'postgres' ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    POSTGRES_USER="${POSTGRES_USER:-postgres}"
    POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo 'error: the database is uninitialized and POSTGRES_PASSWORD is not set' >&2
        exit 1
    fi

    echo "Initialising the database in $PGDATA as $POSTGRES_USER"
    # Only the local socket is trusted (the setup below uses it); every TCP connection, from
    # 127.0.0.1 too, must give the password.
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is several arguments, as in the official image
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

    # A server on the socket only, to create the database and run init scripts.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres)
    if [ "$POSTGRES_DB" != 'postgres' ]; then
        "${psql[@]}" --set db="$POSTGRES_DB" -q <<<'CREATE DATABASE :"db";'
    fi
    shopt -s nullglob
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
        *.sh)
            echo "running $f"
            # shellcheck disable=SC1090 # the operator's scripts
            . "$f"
            ;;
        *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
        *) echo "ignoring $f" ;;
        esac
    done
    shopt -u nullglob
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo 'PostgreSQL init process complete; ready for start up.'
fi

exec "$@"
