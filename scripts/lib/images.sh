# shellcheck shell=bash
# Local images for add-on services, for machines that reach Debian's mirror but no registry:
# `paas/debian:bookworm` (a minbase debootstrap, `docker import`ed) and, built FROM it with
# Debian's packages, `paas/postgres:15` and `paas/redis:7`, which behave like the official
# `postgres` and `redis` images (same environment variables, data directories, ports and
# command lines; see scripts/lib/images/*/). Examples build FROM paas/debian:bookworm too.
#
# Sourced after scripts/lib/docker.sh by scripts/up and scripts/test. Every function is
# idempotent: an image that exists is kept, and nothing is said when there is nothing to do.
#
#   ensure_debian_image    debootstrap and import paas/debian:bookworm if missing
#   ensure_postgres_image  docker build paas/postgres:15 if missing
#   ensure_redis_image     docker build paas/redis:7 if missing
#   ensure_addon_images    both add-on images
#
# Knobs: PAAS_DEBIAN_IMAGE, PAAS_POSTGRES_IMAGE, PAAS_REDIS_IMAGE (the tags),
#        PAAS_DEBIAN_MIRROR (default: the mirror this machine's apt uses, else deb.debian.org).

PAAS_DEBIAN_IMAGE="${PAAS_DEBIAN_IMAGE:-paas/debian:bookworm}"
PAAS_POSTGRES_IMAGE="${PAAS_POSTGRES_IMAGE:-paas/postgres:15}"
PAAS_REDIS_IMAGE="${PAAS_REDIS_IMAGE:-paas/redis:7}"
PAAS_IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/images" && pwd)"

ensure_addon_images() {
    ensure_postgres_image && ensure_redis_image
}

# The first Debian (not security) archive in this machine's apt sources, deb822 or one-line.
paas_debian_mirror() {
    if [ -n "${PAAS_DEBIAN_MIRROR:-}" ]; then
        printf '%s\n' "$PAAS_DEBIAN_MIRROR"
        return
    fi
    local mirror
    mirror="$(
        {
            sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
            sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' \
                /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
        } | grep -E '^https?://.*/debian/?$' | head -n 1
    )"
    printf '%s\n' "${mirror:-http://deb.debian.org/debian}"
}

ensure_debian_image() {
    docker image inspect "$PAAS_DEBIAN_IMAGE" >/dev/null 2>&1 ||
        paas_with_lock debian-image paas_import_debian_image
}

paas_import_debian_image() {
    docker image inspect "$PAAS_DEBIAN_IMAGE" >/dev/null 2>&1 && return 0
    if ! command -v debootstrap >/dev/null 2>&1; then
        paas_say "Installing debootstrap (apt-get)"
        paas_apt_install debootstrap || paas_die "could not install debootstrap" || return 1
    fi
    local mirror
    mirror="$(paas_debian_mirror)"
    paas_say "Building $PAAS_DEBIAN_IMAGE (debootstrap --variant=minbase bookworm $mirror, about a minute)"

    local rootfs log
    rootfs="$(mktemp -d)" || return 1
    log="$(mktemp)" || return 1
    if ! paas_as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        paas_as_root rm -rf "$rootfs"
        rm -f "$log"
        paas_die "debootstrap failed"
        return 1
    fi
    rm -f "$log"
    # shellcheck disable=SC2016 # expanded by the inner sh
    paas_as_root sh -c '
        set -e
        cd "$1"
        printf "deb %s bookworm main\ndeb %s bookworm-updates main\n" "$2" "$2" >etc/apt/sources.list
        # Services that packages install are not started while an image is built.
        printf "#!/bin/sh\nexit 101\n" >usr/sbin/policy-rc.d
        chmod 755 usr/sbin/policy-rc.d
        # Small images: no package lists or caches kept, no docs, man pages or translations.
        printf "%s\n" "APT::Install-Recommends \"false\";" "APT::Install-Suggests \"false\";" \
            "Acquire::Languages \"none\";" \
            "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true\"; };" \
            "Dir::Cache::pkgcache \"\"; Dir::Cache::srcpkgcache \"\";" >etc/apt/apt.conf.d/docker-clean
        printf "%s\n" "path-exclude /usr/share/doc/*" "path-include /usr/share/doc/*/copyright" \
            "path-exclude /usr/share/man/*" "path-exclude /usr/share/info/*" \
            "path-exclude /usr/share/locale/*" "path-include /usr/share/locale/locale.alias" \
            >etc/dpkg/dpkg.cfg.d/docker-slim
        find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
        rm -rf usr/share/man/* usr/share/info/* var/lib/apt/lists/* var/cache/apt/* \
            var/cache/debconf/*-old var/log/*.log var/log/apt/* dev/* proc/* sys/* tmp/* \
            etc/hostname etc/machine-id
        find usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    ' sh "$rootfs" "$mirror" || {
        paas_as_root rm -rf "$rootfs"
        paas_die "could not trim the Debian rootfs"
        return 1
    }

    paas_as_root tar -C "$rootfs" --numeric-owner -cf - . |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["bash"]' \
            --message "paas Debian bookworm (debootstrap --variant=minbase)" \
            - "$PAAS_DEBIAN_IMAGE" >/dev/null
    local status=$?
    paas_as_root rm -rf "$rootfs"
    [ "$status" -eq 0 ] || paas_die "docker import of $PAAS_DEBIAN_IMAGE failed" || return 1
    paas_say "$PAAS_DEBIAN_IMAGE is ready"
}

ensure_postgres_image() {
    docker image inspect "$PAAS_POSTGRES_IMAGE" >/dev/null 2>&1 ||
        paas_with_lock postgres-image paas_build_addon_image "$PAAS_POSTGRES_IMAGE" postgres
}

ensure_redis_image() {
    docker image inspect "$PAAS_REDIS_IMAGE" >/dev/null 2>&1 ||
        paas_with_lock redis-image paas_build_addon_image "$PAAS_REDIS_IMAGE" redis
}

# Builds tag from scripts/lib/images/<dir> FROM the Debian image; the build log is shown only
# when the build fails.
paas_build_addon_image() { # tag, directory under scripts/lib/images
    local tag=$1 dir="$PAAS_IMAGES_DIR/$2"
    docker image inspect "$tag" >/dev/null 2>&1 && return 0
    ensure_debian_image || return 1
    paas_say "Building $tag from Debian packages (docker build $dir, a minute or two)"
    local log
    log="$(mktemp)" || return 1
    if ! docker build --build-arg "BASE=$PAAS_DEBIAN_IMAGE" -t "$tag" "$dir" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        paas_die "docker build of $tag failed"
        return 1
    fi
    rm -f "$log"
    paas_say "$tag is ready"
}
