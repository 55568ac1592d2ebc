#!/bin/sh
# The official redis image's entrypoint contract, for Debian's redis-server: options or a
# config file as the first argument mean redis-server; the server runs as the redis user in
# /data and is exec'd, so it is the process that receives `docker stop`'s SIGTERM (and saves).
set -eu

# `docker run IMAGE --appendonly yes` or `docker run IMAGE /etc/redis.conf`.
first=${1:-}
if [ "${first#-}" != "$first" ] || [ "${first%.conf}" != "$first" ]; then
    set -- redis-server "$@"
fi

if [ "${1:-}" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    find . \! -user redis -exec chown redis:redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

# The official image's redis-server is built with protected mode off and answers on every
# address; Debian's defaults come from its config file, which a command line does not read.
# Given first, these are overridden by the caller's own options (the last one wins); a config
# file of the caller's is left to decide.
if [ "${1:-}" = 'redis-server' ]; then
    case "${2:-}" in
    *.conf) ;;
    *)
        shift
        set -- redis-server --protected-mode no --bind 0.0.0.0 "$@"
        ;;
    esac
fi

# Dumps and append-only files readable by the redis user only.
if [ "$(umask)" = '0022' ]; then
    umask 0077
fi
exec "$@"
