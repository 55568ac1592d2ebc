# shellcheck shell=bash
# Docker for paas on a Debian host: the engine (docker.io) running, and the local base image
# `paas/busybox:latest` that examples and tests build FROM (no registry is reachable, so it is
# made from Debian's busybox-static with `docker import`).
#
# Sourced by scripts/up, scripts/test and scripts/bench. Every function is idempotent and says
# nothing when there is nothing to do.
#
#   ensure_docker       install docker.io if missing; start dockerd if `docker info` fails
#   ensure_base_image   import paas/busybox:latest if missing
#
# Knobs: PAAS_DOCKERD_LOG (where a dockerd we start writes its log), PAAS_DOCKER_POOL (the
#        address pool of the networks a dockerd we start hands out, default 10.210.0.0/16),
#        PAAS_BASE_IMAGE (default paas/busybox:latest).

PAAS_BASE_IMAGE="${PAAS_BASE_IMAGE:-paas/busybox:latest}"
PAAS_DOCKERD_LOG="${PAAS_DOCKERD_LOG:-/var/log/paas-dockerd.log}"
PAAS_DOCKER_POOL="${PAAS_DOCKER_POOL:-10.210.0.0/16}"

paas_say() {
    printf -- '-----> %s\n' "$*" >&2
}

paas_die() {
    printf 'error: %s\n' "$*" >&2
    return 1
}

# Runs a command as root: directly when we are root, through sudo otherwise.
paas_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        paas_die "need root to run: $*"
    fi
}

paas_apt_updated=""
paas_apt_install() {
    if [ -z "$paas_apt_updated" ]; then
        paas_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
        paas_apt_updated=1
    fi
    paas_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Runs "$@" holding a host-wide lock named $1, so parallel test processes that find the same
# thing missing do not all set it up at once.
paas_with_lock() {
    local lock="${TMPDIR:-/tmp}/paas-$1.lock"
    shift
    if ! command -v flock >/dev/null 2>&1; then
        "$@"
        return
    fi
    (
        flock 9
        "$@"
    ) 9>"$lock"
}

ensure_docker() {
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        paas_say "Installing docker.io (apt-get)"
        paas_apt_install docker.io || paas_die "could not install docker.io" || return 1
    fi
    docker info >/dev/null 2>&1 || paas_with_lock dockerd paas_start_dockerd
}

paas_start_dockerd() {
    # Someone else may have started it while we waited for the lock.
    docker info >/dev/null 2>&1 && return 0
    paas_say "Starting dockerd (log: $PAAS_DOCKERD_LOG)"
    paas_as_root mkdir -p "$(dirname "$PAAS_DOCKERD_LOG")" || return 1
    # Every app has a network of its own, and Docker's default pools hold about 30 networks:
    # unless /etc/docker/daemon.json says otherwise, hand out /24s from 10.210.0.0/16 (256).
    local pools=()
    grep -qs default-address-pools /etc/docker/daemon.json \
        || pools=(--default-address-pool "base=$PAAS_DOCKER_POOL,size=24")
    # setsid + nohup: the daemon outlives the script that started it; its output goes to the
    # log only, so callers waiting on our output are not held open by it.
    # shellcheck disable=SC2016 # $1 is expanded by the inner sh.
    paas_as_root sh -c 'log=$1; shift; exec setsid nohup dockerd "$@" >>"$log" 2>&1 </dev/null' \
        sh "$PAAS_DOCKERD_LOG" "${pools[@]}" 9>&- &
    local waited=0
    until docker info >/dev/null 2>&1; do
        if [ "$waited" -ge 600 ]; then
            tail -n 20 "$PAAS_DOCKERD_LOG" >&2
            paas_die "dockerd did not answer within 60 s; see $PAAS_DOCKERD_LOG"
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    paas_say "dockerd is up"
}

# The busybox binary from busybox-static (static, so the image needs no libc).
paas_static_busybox() {
    if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
        paas_say "Installing busybox-static (apt-get)"
        paas_apt_install busybox-static || paas_die "could not install busybox-static" || return 1
    fi
    dpkg-query -L busybox-static | grep -E '/busybox$' | head -n 1
}

ensure_base_image() {
    docker image inspect "$PAAS_BASE_IMAGE" >/dev/null 2>&1 ||
        paas_with_lock base-image paas_import_base_image
}

paas_import_base_image() {
    docker image inspect "$PAAS_BASE_IMAGE" >/dev/null 2>&1 && return 0
    local busybox
    busybox="$(paas_static_busybox)" || return 1
    [ -x "$busybox" ] || paas_die "busybox-static is installed but $busybox is missing" || return 1
    paas_say "Building base image $PAAS_BASE_IMAGE from $busybox"

    local rootfs
    rootfs="$(mktemp -d)" || return 1
    (
        set -e
        cd "$rootfs"
        mkdir -p bin sbin usr/bin usr/sbin etc root home tmp var/tmp var/www proc sys dev
        chmod 1777 tmp var/tmp
        cp "$busybox" bin/busybox
        chmod 755 bin/busybox
        # One symlink per applet, where busybox itself says it belongs (bin/sh, usr/bin/env, ...).
        "$busybox" --list-full | while read -r applet; do
            case "$applet" in bin/busybox | linuxrc) continue ;; esac
            [ -e "$applet" ] || ln -s /bin/busybox "$applet"
        done
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >etc/passwd
        printf 'root:x:0:\nnogroup:x:65534:\n' >etc/group
        printf 'root:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n' >etc/shadow
        chmod 600 etc/shadow
        printf 'hosts: files dns\n' >etc/nsswitch.conf
    ) || { rm -rf "$rootfs"; paas_die "could not assemble the base image rootfs"; return 1; }

    tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf - . |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["/bin/sh"]' \
            --message "paas base image from busybox-static" \
            - "$PAAS_BASE_IMAGE" >/dev/null
    local status=$?
    rm -rf "$rootfs"
    [ "$status" -eq 0 ] || paas_die "docker import of $PAAS_BASE_IMAGE failed" || return 1
    paas_say "Base image $PAAS_BASE_IMAGE is ready"
}
