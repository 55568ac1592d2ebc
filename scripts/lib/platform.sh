# shellcheck shell=bash
# The one wiring of Traefik + paas-agent + paas-gitd on loopback, shared by scripts/up and
# scripts/bench (the e2e fixtures run the same `paas-agent traefik-config`). Needs lib/docker.sh
# (paas_say, paas_die) and PAAS_BIN, the directory of the paas binaries.
#
#   platform_agent_config CONFIG LISTEN DOMAIN TRAEFIK_API [RUNTIME_LINE...]
#       a new agent config (mode 0600) with a fresh token (also in CONFIG's dir as `token`) and
#       instance key, routing through Traefik's entrypoint `web` and polling TRAEFIK_API
#       (host:port); each RUNTIME_LINE (`key = value`) goes into [runtime]
#   platform_agent_on_swarm CONFIG REGISTRY_URL
#       turns that agent config to the swarm engine (the apps as Swarm services of the manager
#       its DOCKER_HOST is, routed by the cluster's Traefik container paas-traefik), its images
#       through the registry at REGISTRY_URL (`http://HOST:PORT`)
#   platform_traefik_config FILE AGENT_CONFIG WEB API
#       Traefik's static config (mode 0600: it holds the instance key), as the agent prints it
#   platform_gitd_init DATA HTTP_LISTEN SSH_LISTEN DOMAIN ROUTER_PORT AGENT_URL TOKEN_FILE
#                      ADMIN_PASSWORD_FILE
#       `paas-gitd init` and its gitd.toml, wired to the agent
#   platform_start LAUNCH LOGS TRAEFIK_CONFIG AGENT_CONFIG TRAEFIK_API AGENT_LISTEN GITD_DATA
#                  GITD_HTTP
#       starts Traefik, the agent and gitd in that order, each through `LAUNCH NAME COMMAND...`
#       (the caller's way of running a daemon), and waits for each to answer; with an empty
#       TRAEFIK_CONFIG, Traefik runs elsewhere (a cluster's) and is only waited for
#   platform_wait_for WHAT LOGS COMMAND...
#       polls COMMAND for up to 60 s; fails naming LOGS

platform_agent_config() {
    local config=$1 listen=$2 domain=$3 traefik_api=$4
    shift 4
    local dir token
    dir=$(dirname "$config")
    "$PAAS_BIN/paas-agent" init --config "$config.generated" --token-file "$dir/token" >/dev/null
    rm "$config.generated"
    token=$(cat "$dir/token")
    (
        umask 077
        {
            echo "# paas-agent settings written by scripts/lib/platform.sh; see docs/operations.md."
            echo "token = \"$token\""
            echo "listen = \"$listen\""
            echo
            echo "[runtime]"
            echo "domain = \"$domain\""
            echo "traefik_entrypoint = \"web\""
            echo "traefik_api = \"http://$traefik_api\""
            local line
            for line in "$@"; do
                echo "$line"
            done
        } >"$config"
    )
    "$PAAS_BIN/paas-agent" add-instance-key --config "$config" >/dev/null
}

platform_agent_on_swarm() {
    local config=$1 registry=$2
    # A top-level key: before the first table.
    sed -i "s|^listen = .*|&\nengine = \"swarm\"|" "$config"
    printf '\n[registry]\nurl = "%s"\n\n[swarm]\ntraefik_container = "paas-traefik"\n' "$registry" >>"$config"
}

platform_traefik_config() {
    local file=$1 agent_config=$2 web=$3 api=$4
    (
        umask 077
        "$PAAS_BIN/paas-agent" traefik-config --config "$agent_config" --web "$web" --api "$api" \
            >"$file.partial"
    )
    mv "$file.partial" "$file"
}

platform_gitd_init() {
    local data=$1 http=$2 ssh=$3 domain=$4 router_port=$5 agent_url=$6 token_file=$7 password_file=$8
    "$PAAS_BIN/paas-gitd" init --data "$data" --admin-password-file "$password_file" >/dev/null
    cat >"$data/gitd.toml" <<TOML
# paas-gitd settings written by scripts/lib/platform.sh; see docs/operations.md.
http_listen = "$http"
ssh_listen = "$ssh"
ssh_public_host = "127.0.0.1"
domain = "$domain"
web_port = $router_port

[agent]
url = "$agent_url"
token = "$(cat "$token_file")"
TOML
}

platform_wait_for() {
    local what=$1 logs=$2 tries=0
    shift 2
    until "$@" >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -ge 600 ]; then
            paas_die "$what did not come up; see the logs in $logs"
            return 1
        fi
        sleep 0.1
    done
}

platform_start() {
    local launch=$1 logs=$2 traefik_config=$3 agent_config=$4 traefik_api=$5 agent_listen=$6
    local gitd_data=$7 gitd_http=$8
    if [ -n "$traefik_config" ]; then
        "$launch" traefik traefik --configFile="$traefik_config"
    fi
    platform_wait_for "Traefik" "$logs" curl -sf "http://$traefik_api/ping"
    "$launch" agent "$PAAS_BIN/paas-agent" serve --config "$agent_config"
    platform_wait_for "paas-agent" "$logs" bash -c "exec 3<>/dev/tcp/${agent_listen%:*}/${agent_listen##*:}"
    "$launch" gitd "$PAAS_BIN/paas-gitd" serve --data "$gitd_data"
    platform_wait_for "paas-gitd" "$logs" curl -s "http://$gitd_http/v1/whoami"
}
